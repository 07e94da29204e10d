"""The runtime guard: silent on plausible readings, each check fires on what it is for."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cityx.core import InputError
from cityx.core.systems import Observation
from cityx.defenses.guards import RULES, RuntimeGuardPlugin
from cityx.worlds.traffic.network import Intersection, NetworkInfo, Phase

LANES = ("north_0", "north_1", "east_0", "east_1")


def network() -> NetworkInfo:
    links = tuple((lane, "out_0") for lane in LANES)
    phases = (Phase("GGrr", 30.0), Phase("yyrr", 3.0), Phase("rrGG", 30.0), Phase("rryy", 3.0))
    return NetworkInfo(intersections=(Intersection("tls", "0", phases, links, LANES),))


def plausible(t: int) -> dict[str, Any]:
    """A slowly changing queue with the occupancy, speed and passages it implies."""
    h = float((0, 1, 2, 3, 4, 3, 2, 1)[(t // 10) % 8])
    return {
        "counts": [float(t % 3 == 0)] * 4,
        "halting": [h] * 4,
        "occupancy": [10 * h + 5] * 4,
        "speed": [2.0 if h else 5.0] * 4,
        "phase": 0 if t % 60 < 30 else 2,
        "age": float(t % 30),
    }


def obs(t: float, values: dict[str, Any]) -> Observation:
    return Observation(
        time_s=t,
        time_of_day_s=t,
        intersection_ids=("tls",),
        lanes=LANES,
        lane_start=np.array([0, 4], dtype=np.int64),
        phase=np.array([values["phase"]], dtype=np.int64),
        phase_age_s=np.array([values["age"]]),
        counts=np.asarray(values["counts"], dtype=np.float64),
        occupancy=np.asarray(values["occupancy"], dtype=np.float64),
        halting=np.asarray(values["halting"], dtype=np.float64),
        mean_speed=np.asarray(values["speed"], dtype=np.float64),
    )


def run(seconds: int, change: Any = None, **options: Any) -> dict[str, Any]:
    guard = RuntimeGuardPlugin().hook(network(), seed=0, **options)
    for t in range(seconds):
        values = plausible(t)
        if change is not None:
            change(t, values)
        o = obs(1000.0 + t, values)
        assert guard.observe(o) is o  # a guard never changes what the controller sees
    return dict(guard.report())


def test_plausible_readings_raise_no_flag() -> None:
    report = run(400, attack_start_s=100)
    assert report["flagged_steps"] == 0 and report["first_flag_s"] is None
    assert set(report["checks"]) == set(RULES) and report["steps"] == 400


def _set(lane: int, **values: float) -> Any:
    def change(t: int, v: dict[str, Any]) -> None:
        if t >= 50:
            for key, value in values.items():
                v[key][lane] = value

    return change


@pytest.mark.parametrize(
    ("check", "change"),
    [
        ("count_rate", _set(0, counts=5)),
        ("over_capacity", _set(1, halting=30, occupancy=100, speed=0)),
        ("queue_without_occupancy", _set(2, halting=10, occupancy=1, speed=0.5)),
        ("empty_with_queue", _set(3, halting=3, speed=-1)),
    ],
)
def test_each_plausibility_check_fires(check: str, change: Any) -> None:
    report = run(80, change, attack_start_s=40)
    assert report["checks"][check] > 0
    assert report["first_flag_s"] == 50 and report["flagged_steps_before"] == 0
    assert report["flagged_steps_after"] == report["flagged_steps"] > 0


def test_queue_jumps_and_vanishing_queues_break_conservation() -> None:
    def jump(t: int, v: dict[str, Any]) -> None:
        if t == 50:
            v["halting"][0], v["occupancy"][0] = 12.0, 80.0
        if t == 60:
            v["halting"][1], v["occupancy"][1] = 6.0, 40.0
        if t == 61:
            v["halting"][1], v["occupancy"][1], v["speed"][1] = 0.0, 0.0, -1.0

    report = run(70, jump)
    assert report["checks"]["queue_jump"] >= 2 and report["checks"]["vanished"] == 1
    assert set(report["lanes"]) == {"north_0", "north_1"}


def test_a_queue_that_does_not_discharge_on_green() -> None:
    def blocked(t: int, v: dict[str, Any]) -> None:
        v["phase"], v["age"] = 0, float(t)  # north has green throughout
        if t >= 40:
            v["halting"][0], v["occupancy"][0], v["counts"][0], v["speed"][0] = 6, 40, 0, 0

    report = run(80, blocked)
    # No discharge from the 20th second of green with the same queue and no passage.
    assert report["checks"]["no_discharge"] == 80 - 40 - 19
    assert report["lanes"] == {"north_0": 80 - 40 - 19}


def test_a_stuck_detector_while_its_neighbours_see_traffic() -> None:
    def stuck(t: int, v: dict[str, Any]) -> None:
        v["counts"][0], v["halting"][0], v["occupancy"][0], v["speed"][0] = 0, 2, 15, 1
        v["phase"] = 2  # red for it: a standing queue is no discharge failure

    report = run(260, stuck, stuck_s=180)
    assert report["checks"]["stuck"] == 260 - 180
    assert report["first_flag_s"] == 180
    # A lane that is merely empty for as long is not flagged.
    quiet = run(260, _set(0, counts=0, halting=0, occupancy=0, speed=-1), stuck_s=180)
    assert quiet["checks"]["stuck"] == 0


def test_guard_options_must_be_numbers_within_bounds() -> None:
    with pytest.raises(InputError, match="'stuck_s' must be a number in"):
        RuntimeGuardPlugin().hook(network(), seed=0, stuck_s="long")
    with pytest.raises(InputError, match="unknown parameter"):
        RuntimeGuardPlugin().hook(network(), seed=0, patience=3)
