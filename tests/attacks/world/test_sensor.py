"""Sensor-path world attacks on synthetic observations: targets, timing, physics, seeds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cityx.attacks import HookAttack, world_attack, world_attack_ids
from cityx.attacks.world.targets import approaches, target_mask
from cityx.core import InputError, PluginError
from cityx.worlds.traffic import NetworkInfo

from .world_fixtures import LANES, network, observation

NORTH = ["north_0", "north_1"]


HOOK_ATTACKS = [a for a in world_attack_ids() if isinstance(world_attack(a), HookAttack)]


def hook(attack: str, seed: int = 1, net: NetworkInfo | None = None, **params: object) -> Any:
    plugin = world_attack(attack)
    assert isinstance(plugin, HookAttack)
    return plugin.hook(net or network(), seed=seed, lanes=NORTH, **params)


def test_a_share_of_approaches_is_drawn_by_seed_and_never_empty() -> None:
    net = network()
    assert approaches(net) == [("tls", "north"), ("tls", "east")]
    small = target_mask(net, share=0.01, seed=3, label="sensor")
    assert small.sum() == 2 and (small[:2].all() or small[2:].all())
    assert (target_mask(net, share=0.01, seed=3, label="sensor") == small).all()
    masks = {tuple(target_mask(net, share=0.5, seed=s, label="sensor")) for s in range(20)}
    assert len(masks) == 2  # both approaches get picked for some seed
    assert target_mask(net, share=1.0, seed=0, label="sensor").all()
    assert not target_mask(net, share=0.0, seed=0, label="sensor").any()


def test_named_lanes_are_the_target_and_unknown_lanes_are_refused() -> None:
    mask = target_mask(network(), share=0.0, seed=0, label="x", lanes=["east_1"])
    assert mask.tolist() == [False, False, False, True]
    with pytest.raises(InputError, match="unknown lane"):
        target_mask(network(), share=0.0, seed=0, label="x", lanes=["west_0"])


def test_phantom_queue_spoofs_a_consistent_queue_on_target_lanes_only() -> None:
    h = hook("world.phantom-queue", intensity=0.5, start_s=2)
    before = h.observe(observation(100.0))
    assert before.halting.tolist() == [1, 2, 0, 0]  # before start_s: untouched
    h.observe(observation(101.0))
    after = h.observe(observation(102.0))
    # 0.5 x 10 phantom vehicles on top of the real queue, at most 13 in a 100 m detector.
    assert after.halting.tolist() == [6, 7, 0, 0]
    assert after.counts.tolist() == [0, 0, 0, 0]
    assert (after.occupancy[:2] >= 100 * after.halting[:2] * 5 / 100 - 1e-9).all()
    assert after.occupancy[2:].tolist() == [0, 5] and after.mean_speed[2:].tolist() == [-1, 8]
    assert (after.mean_speed[:2] <= 0.05).all()
    report = h.report()
    assert report["lanes"] == NORTH and report["active_steps"] == 1
    assert report["cost"]["sensors"] == 2 and report["cost"]["magnitude"] > 0
    full = hook("world.phantom-queue", intensity=1.0, vehicles=30)
    assert full.observe(observation(0.0)).halting.tolist() == [13, 13, 0, 0]


def test_hidden_vehicles_thin_counts_by_seed() -> None:
    busy = {"counts": (2, 2, 2, 2), "halting": (12, 12, 12, 12), "occupancy": (60,) * 4}
    full = hook("world.hidden-vehicles", intensity=1.0).observe(observation(0, **busy))
    assert full.counts.tolist() == [0, 0, 2, 2] and full.halting.tolist() == [0, 0, 12, 12]
    assert full.mean_speed[:2].tolist() == [-1, -1]
    none = hook("world.hidden-vehicles", intensity=0.0).observe(observation(0, **busy))
    assert none.halting.tolist() == [12, 12, 12, 12]

    def run(seed: int) -> list[float]:
        h = hook("world.hidden-vehicles", seed=seed, intensity=0.5)
        return [v for t in range(20) for v in h.observe(observation(t, **busy)).halting[:2]]

    assert run(4) == run(4)
    assert run(4) != run(5)
    assert 0.3 < np.mean(run(4)) / 12 < 0.7


def test_stuck_at_and_blackout() -> None:
    stuck = hook("world.stuck-at", intensity=0.5)
    for t in range(3):
        o = stuck.observe(observation(t, halting=(t, t, t, t)))
        assert o.halting.tolist()[:2] == [6, 6] and o.occupancy.tolist()[:2] == [50, 50]
        assert o.halting.tolist()[2:] == [t, t]
    dark = hook("world.blackout", intensity=0.25, period_s=8)
    seen = [dark.observe(observation(t)).mean_speed[0] for t in range(16)]
    assert seen == ([-1.0] * 2 + [3.0] * 6) * 2


def test_stale_data_arrives_exactly_late() -> None:
    h = hook("world.stale", intensity=0.5, max_delay_s=6)
    shown = [h.observe(observation(t, halting=(t, t, t, t))).halting for t in range(10)]
    assert [s[0] for s in shown] == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6]
    assert [s[3] for s in shown] == list(range(10))


def test_connected_vehicle_spoof_makes_the_approach_look_queued() -> None:
    h = hook("world.cv-spoof", intensity=0.6, speed_ms=0.5)
    o = h.observe(observation(0))
    assert o.halting.tolist() == [8, 8, 0, 0]  # 60 m of queue at 7.5 m a car
    assert o.counts.tolist() == [0, 1, 0, 0] and o.occupancy.tolist() == [10, 20, 0, 5]
    assert o.mean_speed[0] == pytest.approx((3.0 * 1 + 0.5) / 2)


def test_detector_lengths_come_from_the_network() -> None:
    net = network(detector_m=(45.0, 100.0, 100.0, 100.0))
    o = hook("world.stuck-at", net=net, intensity=1.0).observe(observation(0))
    assert o.halting.tolist()[:2] == [6, 13]


@pytest.mark.parametrize("attack", sorted(HOOK_ATTACKS))
def test_every_hook_leaves_untargeted_lanes_alone_and_reports(attack: str) -> None:
    plugin = world_attack(attack)
    assert isinstance(plugin, HookAttack)
    h = plugin.hook(network(), seed=2, lanes=["east_1"], intensity=1.0)
    for t in range(5):
        o = h.observe(observation(float(t)))
        assert o.halting[:3].tolist() == [1, 2, 0] and o.lanes == LANES
    report = h.report()
    assert report["attack"] == attack and report["kind"] == "attack"
    assert {"sensors", "magnitude", "unit"} <= set(report["cost"])


def test_bad_attack_and_bad_parameters_are_one_clear_error() -> None:
    with pytest.raises(PluginError, match=r"unknown attack 'world\.nope'"):
        world_attack("world.nope")
    with pytest.raises(PluginError, match="not one on a running world"):
        world_attack("poisoning.backdoor")
    with pytest.raises(InputError, match="'intensity' must be a number in \\[0, 1\\]"):
        hook("world.stale", intensity=2.0)
    with pytest.raises(InputError, match="unknown parameter"):
        hook("world.stale", strength=1.0)
