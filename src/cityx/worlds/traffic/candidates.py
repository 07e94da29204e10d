"""Phase candidates: how a submitted controller sees the world and chooses.

A submitted controller is a model that *scores candidates*. Each step the
sandbox makes one row per (intersection, green phase) pair, the *candidate*
that this intersection show this phase next, with the features below, and
calls the model once on all rows of all intersections. Each intersection
then asks the safety envelope for its highest-scoring candidate, keeping
its current phase on a tie. Because the rows describe phases, not lanes,
one model fits networks of any shape: a model trained on a 3x3 grid runs
on Cologne unchanged.

This is observation contract ``phase-candidates/v1``. Lanes are the
detected incoming lanes of the phase's green movements (*served lanes*);
*outgoing* lanes are the detected lanes those movements lead into (lanes
that lead to another signal); queues are lane-area halting counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cityx.core.errors import InputError
from cityx.core.schema import FloatArray
from cityx.core.systems import Action, Observation

from .choices import ControllerChoice, DecidedBy, choices_from_step
from .network import GREEN, NetworkInfo

CONTRACT = "phase-candidates/v1"


@dataclass(frozen=True, slots=True)
class CandidateFeature:
    name: str
    unit: str
    min: float
    max: float
    description: str


FEATURES: tuple[CandidateFeature, ...] = (
    CandidateFeature("queue_in", "veh", 0, 1000, "Halting vehicles on the phase's served lanes"),
    CandidateFeature(
        "queue_out", "veh", 0, 1000, "Halting vehicles on the lanes the served movements enter"
    ),
    CandidateFeature(
        "pressure",
        "veh",
        -1000,
        1000,
        "Max-pressure weight: sum over green movements of queue in minus queue out",
    ),
    CandidateFeature(
        "occupancy_in", "%", 0, 100, "Mean lane-area occupancy of the served lanes, last second"
    ),
    CandidateFeature(
        "arrivals_in", "veh/s", 0, 100, "Vehicles over the served lanes' loops in the last second"
    ),
    CandidateFeature("served_lanes", "lanes", 0, 100, "Number of detected lanes the phase serves"),
    CandidateFeature(
        "queue_total", "veh", 0, 5000, "Halting vehicles on all detected lanes of the intersection"
    ),
    CandidateFeature("is_current", "", 0, 1, "1 if this is the green shown (or coming) now"),
    CandidateFeature(
        "phase_age_s", "s", 0, 86400, "Seconds the current green has been shown (0 in clearance)"
    ),
    CandidateFeature("hour", "h", 0, 24, "Simulated time of day"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)

Scorer = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True, slots=True)
class PhaseCandidates:
    """The candidate rows of a network and the matrices that fill them."""

    intersection_ids: tuple[str, ...]
    row_intersection: NDArray[np.int64]  # intersection index of each row
    row_phase: NDArray[np.int64]  # program phase index of each row
    served: FloatArray  # rows x lanes, 1 where the phase serves the lane
    entered: FloatArray  # rows x lanes, 1 where a served movement enters the lane
    incidence: FloatArray  # rows x lanes, movements in minus movements out
    lane_intersection: NDArray[np.int64]
    segment: NDArray[np.int64]  # index of each row's intersection among those with rows
    segment_start: NDArray[np.int64]  # first row of each intersection that has rows
    segment_ids: tuple[str, ...]  # the ids of those intersections

    @classmethod
    def from_network(cls, network: NetworkInfo) -> PhaseCandidates:
        lanes = [lane for i in network.intersections for lane in i.lanes]
        column = {lane: k for k, lane in enumerate(lanes)}
        served, entered, incidence, row_i, row_p = [], [], [], [], []
        starts = [0]
        for k, intersection in enumerate(network.intersections):
            for p in intersection.green_phases:
                s, e, m = np.zeros(len(lanes)), np.zeros(len(lanes)), np.zeros(len(lanes))
                for letter, (lane_in, lane_out) in zip(
                    intersection.phases[p].state, intersection.links, strict=False
                ):
                    if letter not in GREEN:
                        continue
                    if lane_in in column:
                        s[column[lane_in]] = 1.0
                        m[column[lane_in]] += 1.0
                    if lane_out in column:
                        e[column[lane_out]] = 1.0
                        m[column[lane_out]] -= 1.0
                served.append(s)
                entered.append(e)
                incidence.append(m)
                row_i.append(k)
                row_p.append(p)
            starts.append(len(row_i))
        if not row_i:
            raise InputError(
                "the network has no green phase a controller could choose",
                hint="pick a scenario with signalised intersections",
            )
        return cls(
            intersection_ids=tuple(i.id for i in network.intersections),
            row_intersection=np.asarray(row_i, dtype=np.int64),
            row_phase=np.asarray(row_p, dtype=np.int64),
            served=np.vstack(served),
            entered=np.vstack(entered),
            incidence=np.vstack(incidence),
            lane_intersection=np.repeat(
                np.arange(len(network.intersections)),
                [len(i.lanes) for i in network.intersections],
            ),
            segment=np.unique(row_i, return_inverse=True)[1].astype(np.int64),
            segment_start=np.asarray(starts[:-1], dtype=np.int64)[np.diff(starts) > 0],
            segment_ids=tuple(network.intersections[k].id for k in sorted(set(row_i))),
        )

    @property
    def rows(self) -> int:
        return int(self.row_phase.shape[0])

    def features(self, obs: Observation) -> FloatArray:
        """The rows x :data:`FEATURES` matrix for one observation."""
        n_served = self.served.sum(axis=1)
        queue_total = np.bincount(
            self.lane_intersection, weights=obs.halting, minlength=len(self.intersection_ids)
        )
        current = obs.phase[self.row_intersection]
        return np.column_stack(
            [
                self.served @ obs.halting,
                self.entered @ obs.halting,
                self.incidence @ obs.halting,
                (self.served @ obs.occupancy) / np.maximum(n_served, 1.0),
                self.served @ obs.counts,
                n_served,
                queue_total[self.row_intersection],
                (self.row_phase == current).astype(np.float64),
                obs.phase_age_s[self.row_intersection],
                np.full(self.rows, obs.time_of_day_s / 3600.0),
            ]
        )

    def choose(self, obs: Observation, scores: FloatArray) -> Action:
        """Each intersection's best-scoring phase; its current one on a tie."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape[0] != self.rows:
            raise ValueError(f"expected {self.rows} candidate scores, got {scores.shape[0]}")
        if not np.isfinite(scores).all():
            bad = int((~np.isfinite(scores)).sum())
            raise ValueError(f"{bad} of {self.rows} candidate scores are not finite")
        lo = self.segment_start
        is_best = scores >= np.maximum.reduceat(scores, lo)[self.segment]
        current = self.row_phase == obs.phase[self.row_intersection]
        # Preference 2: the current phase among the best; 1: another best row.
        preference = is_best.astype(np.int64) + (is_best & current)
        top = preference == np.maximum.reduceat(preference, lo)[self.segment]
        rows = np.flatnonzero(top)
        first = rows[np.searchsorted(rows, lo)]  # each intersection's first top row
        return Action(
            phases=dict(zip(self.segment_ids, self.row_phase[first].tolist(), strict=True))
        )


class ScoredController:
    """A controller that ranks phase candidates with a scoring function.

    ``score`` maps the rows x features matrix (columns ``columns``, a
    subset of :data:`FEATURE_NAMES` in the model's order) to one score per
    row; it is called once per step for all intersections.
    """

    def __init__(
        self, network: NetworkInfo, score: Scorer, *, columns: tuple[str, ...] = FEATURE_NAMES
    ) -> None:
        unknown = [c for c in columns if c not in FEATURE_NAMES]
        if unknown:
            raise InputError(
                f"unknown {CONTRACT} feature(s): {', '.join(unknown)}",
                hint=f"known: {', '.join(FEATURE_NAMES)}",
            )
        self.candidates = PhaseCandidates.from_network(network)
        self._columns = np.asarray([FEATURE_NAMES.index(c) for c in columns], dtype=np.int64)
        self._names = tuple(columns)
        self._score = score
        self._choices: list[ControllerChoice] = []

    def act(self, observation: Observation) -> Action:
        rows = self.candidates.features(observation)[:, self._columns]
        scores = self._score(rows)
        action = self.candidates.choose(observation, scores)
        # The last decision only: a caller that never takes them keeps no history.
        self._choices = list(
            choices_from_step(
                self.candidates,
                observation,
                rows,
                scores,
                action.phases,
                columns=self._names,
                decided_by=DecidedBy.MODEL,
            )
        )
        return action

    def take_choices(self) -> tuple[ControllerChoice, ...]:
        """The controller-choice/v1 records of the last decision, if not taken yet."""
        taken, self._choices = tuple(self._choices), []
        return taken


__all__ = [
    "CONTRACT",
    "FEATURES",
    "FEATURE_NAMES",
    "CandidateFeature",
    "PhaseCandidates",
    "ScoredController",
    "Scorer",
]
