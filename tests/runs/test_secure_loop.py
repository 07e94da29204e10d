"""The secure loop: the controller sees only verified observations; signals obey only
verified commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cityx.core.systems import Action, Observation
from cityx.interop import InMemoryTransport, Signer, generate_key
from cityx.interop.messages import Catalog, signal_phase_command
from cityx.runs.secure_loop import SIGNALS, SecureLoop

from ..support.paths import SUBMISSIONS
from ..worlds.traffic.test_candidates import LANES, NETWORK, observe


class Recorder:
    """An inner controller that remembers what it saw and asks for fixed phases."""

    def __init__(self) -> None:
        self.seen: list[Observation] = []

    def act(self, observation: Observation) -> Action:
        self.seen.append(observation)
        return Action(phases={"A": 2, "B": 0})


class Tampering(InMemoryTransport):
    """A bus on which an attacker flips one byte of every ``every``-th observation."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every, self.n = every, 0

    def publish(self, topic: str, data: bytes) -> None:
        if "TrafficFlowObserved" in topic:
            self.n += 1
            if self.n % self.every == 0:
                data = data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]
        super().publish(topic, data)


def run(loop: SecureLoop, seconds: int = 10) -> list[Action]:
    actions = []
    for t in range(seconds):
        actions.append(loop.act(observe([3, 1, 5, 0, 2, 7], phase=(0, 0), t=3600.0 + t)))
    loop.close()
    return actions


def test_the_controller_sees_what_the_detectors_signed(tmp_path: Path) -> None:
    inner = Recorder()
    actions = run(SecureLoop(inner, NETWORK, folder=tmp_path, interval_s=5))
    assert len(inner.seen) == 2  # one decision per 5 s interval
    seen = inner.seen[-1]
    assert seen.halting.tolist() == [3, 1, 5, 0, 2, 7]
    assert seen.counts.tolist() == [5.0] * len(LANES)  # one vehicle a second, summed
    assert seen.occupancy.tolist() == pytest.approx([10.0] * len(LANES))
    assert actions[-1].phases == {"A": 2, "B": 0}
    stats = json.loads((tmp_path / "interop.json").read_text())
    assert stats["observations"] == {"accepted": 2 * len(LANES), "missing": 0}
    assert stats["commands"] == {"accepted": 4}


def test_tampered_observations_never_reach_the_controller(tmp_path: Path) -> None:
    inner = Recorder()
    run(SecureLoop(inner, NETWORK, folder=tmp_path, interval_s=5, transport=Tampering(3)))
    stats = json.loads((tmp_path / "interop.json").read_text())["observations"]
    rejected = sum(v for k, v in stats.items() if k.startswith("rejected:"))
    assert rejected == 4 and stats["missing"] == 4
    assert stats["accepted"] == 2 * len(LANES) - 4
    # A lane whose message was rejected reads as empty, never as the forged value.
    missing = [o.halting == 0 for o in inner.seen]
    assert sum(int(m.sum()) for m in missing) >= 4


def test_a_forged_command_is_not_obeyed(tmp_path: Path) -> None:
    bus = InMemoryTransport()
    loop = SecureLoop(Recorder(), NETWORK, folder=tmp_path, interval_s=5, transport=bus)
    loop.act(observe([0] * 6))
    attacker = Signer(
        generate_key("urn:cityx:vendor:mallory:controller"), catalog=Catalog.builtin()
    )
    forged = signal_phase_command(
        "A-1",
        intersection="A",
        phase_index=0,
        duration_s=5.0,
        reason="attack",
        issued_by=attacker.key.issuer,
        issued_at=1.0e9,
    )
    topic = f"cityx/v1/{loop.city}/SignalPhaseCommand/x"
    bus.publish(topic, attacker.sign(forged, audience=SIGNALS, topic=topic).encode())
    assert loop.act(observe([0] * 6, t=3601.0)).phases == {"A": 2, "B": 0}
    loop.close()
    stats = json.loads((tmp_path / "interop.json").read_text())["commands"]
    assert stats["rejected:unknown_key"] == 1 and stats["accepted"] == 2


def test_the_interval_must_allow_a_command_duration(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 5 s"):
        SecureLoop(Recorder(), NETWORK, folder=tmp_path, interval_s=2)


@pytest.mark.slow
@pytest.mark.parametrize(
    "bus", ["memory", pytest.param("mqtt://127.0.0.1:1883", marks=pytest.mark.mqtt)]
)
def test_a_submission_runs_wired_through_the_bus(tmp_path: Path, bus: str) -> None:
    from cityx.runs import run_controller_world

    from ..worlds.traffic.conftest import needs_resco, needs_sumo

    needs_sumo()
    needs_resco()
    acme = SUBMISSIONS / "acme-signals"
    result = run_controller_world("cologne1", acme, seconds=60, seed=1, out=tmp_path, bus=bus)
    assert result.complete
    stats = json.loads((tmp_path / "interop.json").read_text())
    assert stats["observations"]["missing"] == 0 and stats["observations"]["accepted"] > 0
    assert stats["commands"]["accepted"] == 12  # one intersection, every 5 s of 60 s
    assert np.isfinite(result.kpis.overall["mean_waiting_s"] or 0.0)
