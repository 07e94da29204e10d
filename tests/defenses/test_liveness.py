"""The liveness guard: dead detectors that read empty, and stale data."""

from __future__ import annotations

from typing import Any

import numpy as np

from cityx.core.systems import Observation
from cityx.defenses.liveness import LivenessGuard, LivenessGuardPlugin
from cityx.worlds.traffic.network import Intersection, NetworkInfo, Phase

LANES = ("busy_0", "quiet_0")


def network() -> NetworkInfo:
    links = tuple((lane, "out_0") for lane in LANES)
    phases = (Phase("Gr", 30.0), Phase("yr", 3.0), Phase("rG", 30.0), Phase("ry", 3.0))
    return NetworkInfo(intersections=(Intersection("tls", "0", phases, links, LANES),))


def obs(t: float, busy: bool, quiet_count: float = 0.0) -> Observation:
    """Lane 0: a vehicle every 4 s, moving (unless ``busy`` is False: reads empty)."""
    moving = busy and t % 4 < 2
    counts = [1.0 if busy and t % 4 == 0 else 0.0, quiet_count]
    return Observation(
        time_s=t,
        time_of_day_s=t,
        intersection_ids=("tls",),
        lanes=LANES,
        lane_start=np.array([0, 2], dtype=np.int64),
        phase=np.array([0], dtype=np.int64),
        phase_age_s=np.array([1.0]),
        counts=np.asarray(counts),
        occupancy=np.asarray([3.0 + t % 2 if moving else 0.0, 0.0]),
        halting=np.asarray([0.0, 0.0]),
        mean_speed=np.asarray([8.0 + (t % 3) if moving else -1.0, -1.0]),
    )


def run(
    seconds: int, dead_from: float | None = None, **kw: Any
) -> tuple[LivenessGuard, list[float]]:
    # The silence rule's thresholds set low, so a short synthetic series can show it.
    options = {"p_quiet": 1e-3, "min_vehicles": 5, "min_silence_s": 30, "warmup_s": 0, **kw}
    guard = LivenessGuardPlugin().hook(network(), seed=0, **options)
    assert isinstance(guard, LivenessGuard)
    flagged = []
    for t in range(seconds):
        o = obs(float(t), busy=dead_from is None or t < dead_from)
        assert guard.observe(o) is o
        if guard.current["dead"][0]:
            flagged.append(float(t))
    return guard, flagged


def test_a_busy_lane_gone_silent_is_dead_and_a_quiet_lane_is_not() -> None:
    clean, flags = run(400)
    assert flags == [] and not clean.current["dead"][1]  # the quiet lane never saw traffic
    guard, flags = run(400, dead_from=200)
    # About one vehicle in 4 s: ln(1000) * 4 = 28 s, so the 30 s floor decides.
    # The lane was already empty at 198 s (between vehicles): 30 s from there.
    assert flags and flags[0] == 198 + 29
    assert guard.report()["checks"]["dead"] > 0


def test_a_frozen_feed_and_old_timestamps_are_stale() -> None:
    guard = LivenessGuard(network())
    frozen = _fields(obs(1.0, busy=True))  # a moving lane's readings, repeated
    for t in range(6):
        guard.observe(Observation(**{**frozen, "time_s": float(t)}))
    assert guard.current["stale"][0] and not guard.current["stale"][1]
    guard = LivenessGuard(network())
    guard.observe(obs(10.0, busy=True))
    guard.observe(obs(10.0, busy=True))  # the timestamp did not advance
    assert guard.current["stale"].all()


def _fields(o: Observation) -> dict[str, Any]:
    return {f: getattr(o, f) for f in o.__dataclass_fields__}


def test_an_approach_owed_vehicles_by_its_upstream_loops_is_dead() -> None:
    # Intersection "up" sends everything from lane in_0 into edge "mid"; "down" detects mid_0.
    up = Intersection("up", "0", (Phase("G", 30.0),), (("in_0", "mid_0"),), ("in_0",))
    down = Intersection("down", "0", (Phase("G", 30.0),), (("mid_0", "out_0"),), ("mid_0",))
    net = NetworkInfo(intersections=(up, down))
    guard = LivenessGuard(net, warmup_s=0)
    assert guard.fed.tolist() == [False, True]
    first = None
    for t in range(120):
        seen_downstream = t < 40 and t % 3 == 1  # mid_0 sees its vehicles until it dies at 40 s
        o = Observation(
            time_s=float(t),
            time_of_day_s=float(t),
            intersection_ids=("up", "down"),
            lanes=("in_0", "mid_0"),
            lane_start=np.array([0, 1, 2], dtype=np.int64),
            phase=np.zeros(2, dtype=np.int64),
            phase_age_s=np.ones(2),
            counts=np.asarray([1.0 if t % 2 == 0 else 0.0, 1.0 if seen_downstream else 0.0]),
            occupancy=np.asarray([5.0, 4.0 if seen_downstream else 0.0]),
            halting=np.zeros(2),
            mean_speed=np.asarray([9.0 + t % 2, 9.0 if seen_downstream else -1.0]),
        )
        guard.observe(o)
        if first is None and guard.current["dead"][1]:
            first = t
    # 10 vehicles owed (one every 2 s) and at least 30 s of silence after the last one seen.
    assert first is not None and 38 + 29 <= first <= 38 + 31
    assert not guard.current["dead"][0]


def test_vehicles_standing_on_an_upstream_loop_at_red_are_not_owed() -> None:
    # The loop counts a vehicle standing on it every second; at red none of them left.
    up = Intersection(
        "up", "0", (Phase("G", 30.0), Phase("r", 30.0)), (("in_0", "mid_0"),), ("in_0",)
    )
    down = Intersection("down", "0", (Phase("G", 30.0),), (("mid_0", "out_0"),), ("mid_0",))
    guard = LivenessGuard(NetworkInfo(intersections=(up, down)), warmup_s=0)
    for t in range(200):
        red = t >= 40  # from 40 s the upstream signal holds in_0 at red; mid_0 empties
        seen = not red and t % 3 == 1
        guard.observe(
            Observation(
                time_s=float(t),
                time_of_day_s=float(t),
                intersection_ids=("up", "down"),
                lanes=("in_0", "mid_0"),
                lane_start=np.array([0, 1, 2], dtype=np.int64),
                phase=np.array([1 if red else 0, 0], dtype=np.int64),
                phase_age_s=np.array([t - 39.0 if red else t + 1.0, 1.0]),
                counts=np.asarray([1.0 if red or t % 2 == 0 else 0.0, 1.0 if seen else 0.0]),
                occupancy=np.asarray([20.0, 4.0 if seen else 0.0]),
                halting=np.asarray([1.0 if red else 0.0, 0.0]),
                mean_speed=np.asarray([0.0 if red else 9.0, 9.0 if seen else -1.0]),
            )
        )
        assert not guard.current["dead"][1], t
