"""Runtime guards: flag implausible or inconsistent observations before a controller acts.

A *guard* plugin (kind ``guard``) makes a :class:`~cityx.core.WorldHook`
placed after any attack on the sensor path: ``hook(network, seed=,
**params)``, with parameters checked against their declared bounds. The
hook returns each observation unchanged and *flags* lanes whose readings
break physics or disagree with other readings.

The built-in ``runtime`` guard's *rules*, each a few numpy operations over
all lanes:

- ``count_rate``: more vehicles over a loop in one second than can pass it;
- ``over_capacity``: more halting vehicles than the lane-area detector
  holds (its length over the 6 m the shortest queued car takes, plus the
  two vehicles part-covering its ends);
- ``queue_without_occupancy``: a queue of n cars covers at least n car
  lengths of the detector, so its occupancy cannot be far lower;
- ``empty_with_queue``: the detector says "empty" (speed -1) yet reports
  a queue or occupancy;
- ``queue_jump``: the queue grew or shrank by more vehicles in one second
  than can enter or leave it (conservation between the approach and the
  stop line);
- ``vanished``: a queue of several cars turned into an empty detector in
  one second;
- ``no_discharge``: a queue that does not move, with nothing over the
  stop-line loop, through ``no_discharge_s`` seconds of its own green;
- ``stuck``: a lane that reads a queue or occupancy exactly constant for
  ``stuck_s`` seconds while the other lanes of its intersection see
  traffic (a dead detector that reads "empty" looks like an empty lane:
  this guard cannot tell them apart).

``report()`` says how many steps and lane-seconds it flagged, by rule and
lane, and from when: times are seconds since the run's first observation.
With ``attack_start_s`` it also splits the flags into before and after
that time; *detection* is a flag after an attack started, read against
the same guard's flags on the paired unattacked run (false alarms).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar, final

import numpy as np
from numpy.typing import NDArray

from cityx.core import (
    NistFunction,
    Observation,
    Param,
    Parameterised,
    PluginKind,
    PluginMeta,
    Principle,
    Tags,
    WorldHook,
)
from cityx.worlds.traffic import NetworkInfo

RULES = (
    "count_rate",
    "over_capacity",
    "queue_without_occupancy",
    "empty_with_queue",
    "queue_jump",
    "vanished",
    "no_discharge",
    "stuck",
)
_MIN_JAM_M = 6.0  # the least road a queued vehicle takes (a short car and its gap)
_CAR_M = 5.0


def _green_table(network: NetworkInfo) -> NDArray[np.bool_]:
    """``table[p, j]``: lane ``j`` has a green movement in its intersection's phase ``p``."""
    lanes = [(i, lane) for i in network.intersections for lane in i.lanes]
    phases = max((len(i.phases) for i in network.intersections), default=0)
    table = np.zeros((max(phases, 1), len(lanes)), dtype=bool)
    for j, (i, lane) in enumerate(lanes):
        links = [k for k, (src, _) in enumerate(i.links) if src == lane]
        for p, phase in enumerate(i.phases):
            table[p, j] = any(phase.state[k] in "Gg" for k in links if k < len(phase.state))
    return table


class RuntimeGuard:
    """Plausibility and consistency checks on every observation; never changes one."""

    def __init__(
        self,
        network: NetworkInfo,
        *,
        max_count_per_s: float = 2.0,
        max_queue_jump: float = 3.0,
        no_discharge_s: float = 20.0,
        stuck_s: float = 180.0,
        stuck_neighbour_counts: float = 10.0,
        attack_start_s: float | None = None,
    ) -> None:
        self.lanes = network.lanes
        n = len(self.lanes)
        self.owner = np.fromiter(
            (k for k, i in enumerate(network.intersections) for _ in i.lanes), np.int64, n
        )
        self.n_intersections = len(network.intersections)
        self.e2_m = network.detector_lengths()
        # Short vehicles and the two part-covered at the detector's ends: a margin.
        self.capacity = np.ceil(self.e2_m / _MIN_JAM_M) + 2.0
        self.green = _green_table(network)
        self.max_count = max_count_per_s
        self.max_jump = max_queue_jump
        self.no_discharge_s = no_discharge_s
        self.stuck_s = stuck_s
        self.stuck_neighbour_counts = stuck_neighbour_counts
        self.attack_start_s = attack_start_s
        self._t0: float | None = None
        self._prev: NDArray[np.float64] | None = None
        self._blocked_s = np.zeros(n)
        self._since = np.zeros(n)  # relative time of each lane's last change
        self._traffic = np.zeros(self.n_intersections)  # cumulative counts per intersection
        self._traffic_at_change = np.zeros(n)
        self.steps = 0
        self.flagged_steps = 0
        self.flagged_before = 0
        self.flagged_after = 0
        self.first_flag_s: float | None = None
        self.first_flag_after_s: float | None = None
        self.by_check: Counter[str] = Counter()
        self.by_lane = np.zeros(n, dtype=np.int64)
        # The last observation's flags by rule (lane masks): oversight marks choices made
        # on a stuck detector out of distribution.
        self.last: dict[str, NDArray[np.bool_]] = {}

    def observe(self, observation: Observation) -> Observation:
        o = observation
        if self._t0 is None:
            self._t0 = o.time_s
        t = o.time_s - self._t0
        self.steps += 1
        flags = self.last = self._check(o, t)
        hit = np.zeros(len(self.lanes), dtype=bool)
        for name, mask in flags.items():
            k = int(mask.sum())
            if k:
                self.by_check[name] += k
                hit |= mask
        if hit.any():
            self.by_lane += hit
            self.flagged_steps += 1
            if self.first_flag_s is None:
                self.first_flag_s = t
            if self.attack_start_s is not None:
                if t >= self.attack_start_s:
                    self.flagged_after += 1
                    if self.first_flag_after_s is None:
                        self.first_flag_after_s = t
                else:
                    self.flagged_before += 1
        return observation

    def _check(self, o: Observation, t: float) -> dict[str, NDArray[np.bool_]]:
        counts, occ, halting, speed = o.counts, o.occupancy, o.halting, o.mean_speed
        now = np.stack([counts, occ, halting, speed])
        prev = self._prev
        self._prev = now
        queue_cover = 100.0 * (halting - 1.0) * _CAR_M / self.e2_m
        flags = {
            "count_rate": counts > self.max_count,
            "over_capacity": halting > self.capacity,
            "queue_without_occupancy": (halting >= 2) & (occ < 0.5 * queue_cover),
            "empty_with_queue": (speed < 0) & ((halting > 0) | (occ > 0)),
        }
        # Per-lane green from each intersection's phase; no green is known during a clearance.
        phase = np.clip(o.phase, 0, self.green.shape[0] - 1)[self.owner]
        green = self.green[phase, np.arange(len(self.lanes))] & (o.phase_age_s[self.owner] >= 5)
        blocked = green & (halting >= 2) & (counts == 0)
        if prev is not None:
            blocked &= halting >= prev[2]
        self._blocked_s = np.where(blocked, self._blocked_s + 1.0, 0.0)
        flags["no_discharge"] = self._blocked_s >= self.no_discharge_s
        # Stuck: unchanged readings while the rest of the intersection had traffic.
        traffic = np.bincount(self.owner, weights=counts, minlength=self.n_intersections)
        self._traffic += traffic
        if prev is None:
            self._since[:] = t
            self._traffic_at_change[:] = self._traffic[self.owner]
            flags["stuck"] = np.zeros(len(self.lanes), dtype=bool)
            return flags
        changed = (now != prev).any(axis=0)
        self._since = np.where(changed, t, self._since)
        self._traffic_at_change = np.where(
            changed, self._traffic[self.owner], self._traffic_at_change
        )
        others = self._traffic[self.owner] - self._traffic_at_change
        # An empty lane may stay empty for long; a constant queue or occupancy may not.
        busy = (halting > 0) | (occ > 0)
        flags["stuck"] = (
            busy & (t - self._since >= self.stuck_s) & (others >= self.stuck_neighbour_counts)
        )
        jump = np.abs(halting - prev[2])
        flags["queue_jump"] = jump > self.max_jump
        flags["vanished"] = (prev[2] >= 3) & (speed < 0) & (occ <= 0)
        return flags

    def before_step(self, simulation: Any, time_s: float) -> None:
        return None

    def report(self) -> Mapping[str, Any]:
        lanes = {
            lane: int(n) for lane, n in zip(self.lanes, self.by_lane.tolist(), strict=True) if n
        }
        return {
            "kind": "guard",
            "guard": "runtime",
            "steps": self.steps,
            "flagged_steps": self.flagged_steps,
            "flagged_steps_before": self.flagged_before,
            "flagged_steps_after": self.flagged_after,
            "attack_start_s": self.attack_start_s,
            "first_flag_s": self.first_flag_s,
            "first_flag_after_s": self.first_flag_after_s,
            "checks": {name: int(self.by_check[name]) for name in RULES},
            "lanes": lanes,
        }


class Guard(Parameterised, ABC):
    """Base class of guard plugins; constructors take nothing and do no work."""

    meta: ClassVar[PluginMeta]

    @final
    def hook(self, network: NetworkInfo, *, seed: int, **params: Any) -> WorldHook:
        """The guard's hook for a run on ``network``, parameters checked first."""
        return self._hook(network, seed=seed, params=self.configure(params))

    @abstractmethod
    def _hook(self, network: NetworkInfo, *, seed: int, params: dict[str, float]) -> WorldHook:
        """Build the hook from checked parameters."""


class RuntimeGuardPlugin(Guard):
    """The runtime guard (it draws nothing random: ``seed`` is unused)."""

    meta: ClassVar[PluginMeta] = PluginMeta(
        id="runtime",
        kind=PluginKind.GUARD,
        version="1",
        summary="Plausibility and consistency rules on every observation: counts, capacity, "
        "occupancy, queue conservation, discharge, stuck readings",
        tags=Tags(Principle.SECURITY, NistFunction.MANAGE, ("AML.T0043",), ("Art. 15",)),
        supports=frozenset({"controller"}),
    )
    params = (
        Param(
            "max_count_per_s", 2.0, 0.1, 100.0, "vehicles/s", "most vehicles over a loop a second"
        ),
        Param("max_queue_jump", 3.0, 0.5, 100.0, "vehicles", "most queue change in a second"),
        Param("no_discharge_s", 20.0, 1.0, 3600.0, "s", "green seconds a queue may stand still"),
        Param("stuck_s", 180.0, 5.0, 86400.0, "s", "seconds a busy reading may stay constant"),
        Param(
            "stuck_neighbour_counts",
            10.0,
            0.0,
            10_000.0,
            "vehicles",
            "traffic the rest of the intersection must see meanwhile",
        ),
        Param(
            "attack_start_s",
            -1.0,
            -1.0,
            86400.0,
            "s",
            "when an attack began, to split flags before/after it (-1: none)",
        ),
    )

    def _hook(self, network: NetworkInfo, *, seed: int, params: dict[str, float]) -> RuntimeGuard:
        del seed
        start = params.pop("attack_start_s")
        return RuntimeGuard(network, attack_start_s=None if start < 0 else start, **params)


__all__ = ["RULES", "Guard", "RuntimeGuard", "RuntimeGuardPlugin"]
