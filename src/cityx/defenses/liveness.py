"""Liveness guard: stale data and dead detectors that read "empty".

The runtime guard (:mod:`.guards`) judges readings that break physics. A
detector that dies usually reads *empty* (no count, no occupancy, speed
-1), which is also what a quiet lane reads; and a feed that stops updating
repeats the last readings. This guard tells them apart with two rules:

- ``dead``: vehicles were owed and never came. *Fed* approaches: the
  upstream signals' stop-line loops count vehicles turning into the
  approach's edge (a lane whose every movement leads there counts whole, a
  lane that splits by its share of movements); once ``owed_vehicles`` have
  entered while every detector of the approach read empty for at least
  ``owed_s`` seconds, its lanes are dead. Not every vehicle that enters an
  edge reaches its loops (trips end inside edges, vehicles park), so what
  entered during a silence is weighed by the edge's *pass-through share*:
  the vehicles its own loops counted over those its upstream loops sent,
  before the silence (1 until ``min_vehicles`` were sent; about 0.9 on
  grid3x3, where random trips also start inside edges). And a vehicle counted
  at an upstream stop line can only have taken a movement its signal
  showed open (green or yellow) at that second: with the upstream phase
  known, a lane's count goes only to the edges its open movements lead to,
  and a lane with none open sends nothing: its loop counts the vehicles
  standing on it at the red, every second (the loop's count is of vehicles
  on it during the step). Counting those as sent owed approaches on
  grid3x3 vehicles that were still waiting upstream: 7 to 10 false alerts
  per 10 minutes on clean runs, none once counted only when open (with the
  threshold then lowered from 15 owed vehicles to 10, since each is now a
  vehicle that did leave). Other lanes: a lane reads empty
  longer than its own traffic makes believable: with its arrival rate
  ``r`` (vehicles per second over the loop before the silence, from at
  least ``min_vehicles`` vehicles) a quiet spell of ``z`` seconds has
  probability about ``exp(-r z)``; it is flagged once that falls below
  ``p_quiet`` and after at least ``min_silence_s`` (10 minutes by default:
  platoons, trips that end on the edge and upstream jams make shorter
  silences ordinary). A queue of three or more that turns into "empty"
  within a second and stays empty ``vanish_s`` seconds is flagged at once.
  Nothing is called dead in the first ``warmup_s`` seconds, while the
  network fills. A lane that never saw ``min_vehicles`` vehicles and is
  not fed is never called dead: an empty lane and a dead detector look
  the same until vehicles should have been seen.
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
from cityx.worlds.traffic.network import lane_edge

from .guards import Guard

LIVENESS_RULES = ("dead", "stale")


class LivenessGuard:
    """Flags dead and stale detectors on every observation; never changes one."""

    def __init__(
        self,
        network: NetworkInfo,
        *,
        p_quiet: float = 1e-6,
        min_vehicles: float = 20.0,
        min_silence_s: float = 600.0,
        vanish_s: float = 3.0,
        max_age_s: float = 5.0,
        frozen_s: float = 3.0,
        owed_vehicles: float = 10.0,
        owed_s: float = 30.0,
        warmup_s: float = 60.0,
    ) -> None:
        self.lanes = network.lanes
        n = len(self.lanes)
        self.owed_vehicles = owed_vehicles
        self.owed_s = owed_s
        self.warmup_s = warmup_s
        self._feed, self._edge_of, self.fed = _feeds(network)
        self._phase_feed = _phase_feeds(network, self._edge_of, self._feed.shape[0])
        self._owed = np.zeros(self._feed.shape[0])
        self._sent = np.zeros(self._feed.shape[0])  # vehicles upstream sent each edge, all along
        self._arrived = np.zeros(self._feed.shape[0])  # vehicles its own loops counted
        self._edge_silent_s = np.zeros(self._feed.shape[0])
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
        self._live_s = np.zeros(n)  # seconds of readings (the current silence included)
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
        # The rate over every second before the silence (quiet ones too): counting only
        # busy seconds would overstate it and call ordinary gaps between platoons dead.
        self._seen = self._seen + o.counts
        self._live_s = self._live_s + 1.0
        rate = self._seen / np.maximum(self._live_s - self._silent_s, 1.0)
        with np.errstate(divide="ignore"):
            needed = np.where(rate > 0, self.quiet_factor / np.where(rate > 0, rate, 1.0), np.inf)
        believable = np.maximum(needed, self.min_silence_s)
        dead = ~self.fed & (self._seen >= self.min_vehicles) & (self._silent_s >= believable)
        if self._feed.shape[0]:
            # Fed approaches: vehicles owed by the upstream loops while the edge reads empty.
            edge_empty = (
                np.bincount(self._edge_of, weights=~empty, minlength=self._feed.shape[0]) == 0
            )
            self._edge_silent_s = np.where(edge_empty, self._edge_silent_s + 1.0, 0.0)
            sent = np.zeros(self._feed.shape[0])
            spans = zip(self._phase_feed, o.phase.tolist(), o.phase_age_s.tolist(), strict=True)
            for (lo, hi, by_phase), phase, age in spans:
                # Age 0: a clearance (the phase named is the green coming), or a green's
                # first second; either way the loops count vehicles standing at red.
                if age > 0:
                    sent += by_phase[int(phase) % len(by_phase)] @ o.counts[lo:hi]
            self._sent += sent
            self._arrived += np.bincount(self._edge_of, weights=o.counts, minlength=len(sent))
            # The share that reaches the loops, from before the silence (a dead detector
            # must not talk its own share down).
            before = self._sent - np.where(edge_empty, self._owed + sent, 0.0)
            share = np.where(
                before >= self.min_vehicles,
                np.clip(self._arrived / np.maximum(before, 1.0), 0.0, 1.0),
                1.0,
            )
            self._owed = np.where(edge_empty, self._owed + sent * share, 0.0)
            owed = (self._owed >= self.owed_vehicles) & (self._edge_silent_s >= self.owed_s)
            dead |= self.fed & owed[self._edge_of]
        if o.time_s - self._t0 < self.warmup_s:
            dead[:] = False  # the network is still filling: silence proves nothing yet
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


def _phase_feeds(
    network: NetworkInfo, edge_of: NDArray[np.int64], edges: int
) -> list[tuple[int, int, list[NDArray[np.float64]]]]:
    """Per intersection: its lanes' span and, per program phase, the edges x lanes weights
    of the movements open in that phase (none when none is open: the lane waits at red)."""
    lanes = network.lanes
    row: dict[str, int] = {}
    for k, lane in enumerate(lanes):
        row.setdefault(lane_edge(lane), int(edge_of[k]))
    out = []
    start = 0
    for i in network.intersections:
        mats = []
        for phase in i.phases:
            weights = np.zeros((edges, len(i.lanes)))
            for j, lane in enumerate(i.lanes):
                targets = [
                    lane_edge(dst)
                    for k, (src, dst) in enumerate(i.links)
                    if src == lane and k < len(phase.state) and phase.state[k] in "GgYy"
                ]
                for target in set(targets):
                    if target in row:
                        weights[row[target], j] += targets.count(target) / len(targets)
            mats.append(weights)
        out.append((start, start + len(i.lanes), mats))
        start += len(i.lanes)
    return out


def _feeds(
    network: NetworkInfo,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]:
    """(edges x lanes feed weights, each lane's edge index, whether its edge is fed)."""
    lanes = network.lanes
    column = {lane: k for k, lane in enumerate(lanes)}
    edges = list(dict.fromkeys(lane_edge(lane) for lane in lanes))
    row = {e: k for k, e in enumerate(edges)}
    feed = np.zeros((len(edges), len(lanes)))
    for i in network.intersections:
        by_lane: dict[str, list[str]] = {}
        for src, dst in i.links:
            by_lane.setdefault(src, []).append(lane_edge(dst))
        for src, targets in by_lane.items():
            if src not in column:
                continue
            for target in set(targets):
                if target in row:
                    feed[row[target], column[src]] += targets.count(target) / len(targets)
    edge_of = np.fromiter((row[lane_edge(lane)] for lane in lanes), np.int64, len(lanes))
    fed = (feed.sum(axis=1) > 0)[edge_of]
    return feed, edge_of, fed


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
        Param("p_quiet", 1e-6, 1e-12, 0.5, "", "how unlikely a quiet spell must be to be dead"),
        Param("min_vehicles", 20.0, 1.0, 1e6, "vehicles", "traffic a lane must have shown first"),
        Param("min_silence_s", 600.0, 1.0, 86400.0, "s", "shortest silence called dead"),
        Param("vanish_s", 3.0, 1.0, 600.0, "s", "empty seconds after a vanished queue"),
        Param("max_age_s", 5.0, 1.0, 3600.0, "s", "oldest reading that is not stale"),
        Param("frozen_s", 3.0, 2.0, 600.0, "s", "seconds a moving lane may repeat itself"),
        Param("owed_vehicles", 10.0, 1.0, 1000.0, "vehicles", "owed by upstream loops: dead"),
        Param("owed_s", 30.0, 1.0, 3600.0, "s", "shortest empty spell of a fed approach"),
        Param("warmup_s", 60.0, 0.0, 3600.0, "s", "no dead detector while the network fills"),
    )

    def _hook(self, network: NetworkInfo, *, seed: int, params: dict[str, float]) -> LivenessGuard:
        del seed
        return LivenessGuard(network, **params)


__all__ = ["LIVENESS_RULES", "LivenessGuard", "LivenessGuardPlugin"]
