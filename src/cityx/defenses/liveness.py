"""Liveness guard: stale data and dead detectors that read "empty".

The runtime guard (:mod:`.guards`) judges readings that break physics. A
detector that dies usually reads *empty* (no count, no occupancy, speed
-1), which is also what a quiet lane reads; and a feed that stops updating
repeats the last readings. This guard tells them apart with two rules:

- ``dead``: a lane reads empty for longer than its own traffic makes
  believable. With the lane's arrival rate ``r`` (vehicles per second over
  the loop, before the silence began, from at least ``min_vehicles``
  vehicles) a quiet spell of ``z`` seconds has probability about
  ``exp(-r z)``; the lane is flagged once that falls below ``p_quiet``
  (and after at least ``min_silence_s``). A queue of three or more that
  turns into "empty" within a second and stays empty for
  ``vanish_s`` seconds is flagged at once (a queue cannot leave so fast).
  A lane that never saw ``min_vehicles`` vehicles is never called dead:
  an empty lane and a dead detector look the same until vehicles should
  have been seen.
- ``stale``: the observation's timestamp did not advance, or lags the
  simulator's clock by more than ``max_age_s``; or a lane whose vehicles
  move (mean speed above 1 m/s) repeats exactly the same occupancy, queue
  and speed for ``frozen_s`` seconds (moving vehicles change them every
  second).

What it cannot see: readings delivered late with fresh timestamps (the
``world.stale`` attack) and a detector frozen on a standing queue (the
runtime guard's ``stuck`` rule covers that). Flags are per lane; the
oversight layer turns them into alerts per intersection.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from cityx.core import (
    NistFunction,
    Observation,
    Param,
    PluginKind,
    PluginMeta,
    Principle,
    Tags,
)
from cityx.worlds.traffic import NetworkInfo

from .guards import Guard

LIVENESS_RULES = ("dead", "stale")


class LivenessGuard:
    """Flags dead and stale detectors on every observation; never changes one."""

    def __init__(
        self,
        network: NetworkInfo,
        *,
        p_quiet: float = 1e-3,
        min_vehicles: float = 5.0,
        min_silence_s: float = 30.0,
        vanish_s: float = 3.0,
        max_age_s: float = 5.0,
        frozen_s: float = 3.0,
    ) -> None:
        self.lanes = network.lanes
        n = len(self.lanes)
        self.owner = np.fromiter(
            (k for k, i in enumerate(network.intersections) for _ in i.lanes), np.int64, n
        )
        self.quiet_factor = math.log(1.0 / p_quiet)
        self.min_vehicles = min_vehicles
        self.min_silence_s = min_silence_s
        self.vanish_s = vanish_s
        self.max_age_s = max_age_s
        self.frozen_s = frozen_s
        self._prev: NDArray[np.float64] | None = None
        self._last_time: float | None = None
        self._t0: float | None = None
        self._seen = np.zeros(n)  # vehicles over each loop before the current silence
        self._live_s = np.zeros(n)  # seconds of readings before the current silence
        self._silent_s = np.zeros(n)
        self._vanished = np.zeros(n, dtype=bool)
        self._frozen_s = np.zeros(n)
        self._late = False
        self.current: dict[str, NDArray[np.bool_]] = {
            r: np.zeros(n, dtype=bool) for r in LIVENESS_RULES
        }
        self.steps = 0
        self.by_rule: Counter[str] = Counter()
        self.first_flag_s: dict[str, float] = {}

    def observe(self, observation: Observation) -> Observation:
        o = observation
        if self._t0 is None:
            self._t0 = o.time_s
        self.steps += 1
        now = np.stack([o.occupancy, o.halting, o.mean_speed])
        empty = (o.counts == 0) & (o.occupancy <= 0) & (o.halting == 0) & (o.mean_speed < 0)
        prev = self._prev
        # Dead: a silence longer than the lane's own rate makes believable.
        self._silent_s = np.where(empty, self._silent_s + 1.0, 0.0)
        live = ~empty
        self._seen = self._seen + np.where(live, o.counts, 0.0)
        self._live_s = self._live_s + live
        rate = self._seen / np.maximum(self._live_s, 1.0)
        with np.errstate(divide="ignore"):
            needed = np.where(rate > 0, self.quiet_factor / np.where(rate > 0, rate, 1.0), np.inf)
        believable = np.maximum(needed, self.min_silence_s)
        dead = (self._seen >= self.min_vehicles) & (self._silent_s >= believable)
        if prev is not None:
            self._vanished = np.where(empty, self._vanished | ((prev[1] >= 3) & empty), False)
        dead |= self._vanished & (self._silent_s >= self.vanish_s)
        # Stale: the timestamp, or a moving lane repeating itself exactly.
        stale = np.zeros(len(self.lanes), dtype=bool)
        if self._last_time is not None and o.time_s <= self._last_time:
            stale[:] = True
        if self._late:
            stale[:] = True
        if prev is not None:
            same = (now == prev).all(axis=0) & (o.mean_speed > 1.0)
            self._frozen_s = np.where(same, self._frozen_s + 1.0, 0.0)
            stale |= self._frozen_s >= self.frozen_s
        self._prev = now
        self._last_time = o.time_s
        self.current = {"dead": dead, "stale": stale}
        t = o.time_s - self._t0
        for rule, mask in self.current.items():
            k = int(mask.sum())
            if k:
                self.by_rule[rule] += k
                self.first_flag_s.setdefault(rule, t)
        return observation

    def before_step(self, simulation: Any, time_s: float) -> None:
        # The simulator's clock is the truth the observation's timestamp is judged by.
        clock = float(simulation.simulation.getTime()) if simulation is not None else time_s
        self._late = self._last_time is not None and clock - self._last_time > self.max_age_s

    def report(self) -> Mapping[str, Any]:
        return {
            "kind": "guard",
            "guard": "liveness",
            "steps": self.steps,
            "checks": {r: int(self.by_rule[r]) for r in LIVENESS_RULES},
            "first_flag_s": dict(self.first_flag_s),
        }


class LivenessGuardPlugin(Guard):
    """The liveness guard (it draws nothing random: ``seed`` is unused)."""

    meta: ClassVar[PluginMeta] = PluginMeta(
        id="liveness",
        kind=PluginKind.GUARD,
        version="1",
        summary="Dead detectors that read empty (silence longer than the lane's own traffic "
        "makes believable) and stale data (old timestamps, moving lanes frozen)",
        tags=Tags(Principle.SECURITY, NistFunction.MANAGE, ("AML.T0043",), ("Art. 14", "Art. 15")),
        supports=frozenset({"controller"}),
    )
    params = (
        Param("p_quiet", 1e-3, 1e-9, 0.5, "", "how unlikely a quiet spell must be to call it dead"),
        Param("min_vehicles", 5.0, 1.0, 1e6, "vehicles", "traffic a lane must have shown first"),
        Param("min_silence_s", 30.0, 1.0, 86400.0, "s", "shortest silence called dead"),
        Param("vanish_s", 3.0, 1.0, 600.0, "s", "empty seconds after a vanished queue"),
        Param("max_age_s", 5.0, 1.0, 3600.0, "s", "oldest reading that is not stale"),
        Param("frozen_s", 3.0, 2.0, 600.0, "s", "seconds a moving lane may repeat itself"),
    )

    def _hook(self, network: NetworkInfo, *, seed: int, params: dict[str, float]) -> LivenessGuard:
        del seed
        return LivenessGuard(network, **params)


__all__ = ["LIVENESS_RULES", "LivenessGuard", "LivenessGuardPlugin"]
