"""The baseline controllers a controller under test is compared with.

- ``fixed``: the network's own static program, untouched (signal mode
  ``program``; no Python runs per step).
- ``actuated``: the same phases run by SUMO's actuated logic, which extends
  a green while its own detectors see a steady stream of vehicles, within
  each green's min/max duration (signal mode ``actuated``).
- ``max-pressure``: ours, in Python, through the safety envelope. The
  *pressure* of a green phase is the sum over the movements it gives green
  of (queue on the incoming lane - queue on the outgoing lane); the queue is
  the lane-area detector's halting count, and an outgoing lane without a
  detector (one that does not lead to another signal) counts as empty. Each
  step every intersection asks for its highest-pressure green, keeping the
  current one on a tie; the envelope holds minimum greens and clearances.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cityx.core.errors import InputError
from cityx.core.systems import Action, Controller, Observation

from .network import GREEN, NetworkInfo
from .world import SignalMode

BASELINES: Mapping[str, SignalMode] = {
    "fixed": SignalMode.PROGRAM,
    "actuated": SignalMode.ACTUATED,
    "max-pressure": SignalMode.ENVELOPE,
}


@dataclass(frozen=True, slots=True)
class _Incidence:
    lanes: tuple[str, ...]  # the column order of ``matrix`` (every detected lane)
    matrix: NDArray[np.float64]  # green phase rows x lanes: +movements in, -movements out
    phases: NDArray[np.int64]  # program phase index of each row
    starts: tuple[int, ...]  # first row of each intersection (and one past the last)


def _incidence(network: NetworkInfo) -> _Incidence:
    lanes = tuple(lane for i in network.intersections for lane in i.lanes)
    column = {lane: k for k, lane in enumerate(lanes)}
    rows: list[NDArray[np.float64]] = []
    phases: list[int] = []
    starts = [0]
    for intersection in network.intersections:
        for p in intersection.green_phases:
            row = np.zeros(len(lanes))
            for letter, (lane_in, lane_out) in zip(
                intersection.phases[p].state, intersection.links, strict=False
            ):
                if letter in GREEN:
                    if lane_in in column:
                        row[column[lane_in]] += 1.0
                    if lane_out in column:
                        row[column[lane_out]] -= 1.0
            rows.append(row)
            phases.append(p)
        starts.append(len(rows))
    matrix = np.vstack(rows) if rows else np.zeros((0, len(lanes)))
    return _Incidence(lanes, matrix, np.asarray(phases, dtype=np.int64), tuple(starts))


class MaxPressure:
    """Max-pressure signal control over all intersections at once (vectorised)."""

    def __init__(self, network: NetworkInfo) -> None:
        self.network = network
        self._incidence: _Incidence | None = None

    def act(self, observation: Observation) -> Action:
        inc = self._incidence
        if inc is None:
            inc = self._incidence = _incidence(self.network)
        queue = np.fromiter(
            (q for o in observation.intersections for q in o.halting.values()),
            dtype=np.float64,
            count=len(inc.lanes),
        )
        pressure = inc.matrix @ queue
        phases: dict[str, int] = {}
        for k, o in enumerate(observation.intersections):
            lo, hi = inc.starts[k], inc.starts[k + 1]
            if hi == lo:
                continue
            segment = pressure[lo:hi]
            best = float(segment.max())
            current = np.flatnonzero(inc.phases[lo:hi] == o.phase)
            if current.size and segment[current[0]] >= best:
                phases[o.intersection] = o.phase
            else:
                phases[o.intersection] = int(inc.phases[lo + int(segment.argmax())])
        return Action(phases=phases)


def make_controller(name: str, network: NetworkInfo) -> tuple[SignalMode, Controller | None]:
    """The signal mode and (for Python controllers) the controller of a baseline."""
    if name not in BASELINES:
        raise InputError(f"unknown controller {name!r}", hint=f"known: {', '.join(BASELINES)}")
    mode = BASELINES[name]
    return mode, (MaxPressure(network) if name == "max-pressure" else None)


__all__ = ["BASELINES", "MaxPressure", "make_controller"]
