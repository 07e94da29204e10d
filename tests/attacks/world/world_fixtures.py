"""A small two-approach intersection and observations over it, without SUMO."""

from __future__ import annotations

from typing import Any

import numpy as np

from cityx.core.systems import Observation
from cityx.worlds.traffic.network import Intersection, NetworkInfo, Phase

LANES = ("north_0", "north_1", "east_0", "east_1")


def network(detector_m: tuple[float, ...] = ()) -> NetworkInfo:
    links = tuple((lane, "out_0") for lane in LANES)
    phases = (Phase("GGrr", 30.0), Phase("yyrr", 3.0), Phase("rrGG", 30.0), Phase("rryy", 3.0))
    tls = Intersection("tls", "0", phases, links, LANES, detector_m=detector_m)
    return NetworkInfo(intersections=(tls,))


def observation(
    t: float,
    *,
    counts: Any = (0, 1, 0, 0),
    occupancy: Any = (10, 20, 0, 5),
    halting: Any = (1, 2, 0, 0),
    speed: Any = (3.0, 1.0, -1.0, 8.0),
    phase: int = 0,
    age: float = 10.0,
) -> Observation:
    return Observation(
        time_s=t,
        time_of_day_s=t,
        intersection_ids=("tls",),
        lanes=LANES,
        lane_start=np.array([0, 4], dtype=np.int64),
        phase=np.array([phase], dtype=np.int64),
        phase_age_s=np.array([age]),
        counts=np.asarray(counts, dtype=np.float64),
        occupancy=np.asarray(occupancy, dtype=np.float64),
        halting=np.asarray(halting, dtype=np.float64),
        mean_speed=np.asarray(speed, dtype=np.float64),
    )
