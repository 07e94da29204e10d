"""The two kinds of system under test.

A *predictor* maps a batch of feature rows to labels (with class scores) or
values: congestion, incident, demand. A *controller* maps an observation of
the world to an action: which phase each signal shows next. Both are called
with whole batches; neither is ever called one row at a time in a loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from .schema import FloatArray, InputSchema, OutputSpec
from .trips import TripTable


@dataclass(frozen=True, slots=True)
class Prediction:
    """A predictor's answer for a batch of n rows.

    ``values`` holds n labels (as strings) for a classifier or n floats for
    a regressor; ``scores`` holds an n x k matrix of class scores whose
    columns follow ``classes``, when the model gives them.
    """

    values: NDArray[np.generic]
    scores: FloatArray | None = None
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.values.ndim != 1:
            raise ValueError(f"prediction values must be 1-D, got shape {self.values.shape}")
        if self.scores is not None and (
            self.scores.ndim != 2
            or self.scores.shape[0] != self.values.shape[0]
            or self.scores.shape[1] != len(self.classes)
        ):
            raise ValueError(
                f"scores of shape {self.scores.shape} do not match {self.values.shape[0]} rows "
                f"and {len(self.classes)} classes"
            )


@runtime_checkable
class Predictor(Protocol):
    """Batch of rows in, labels/scores/values out."""

    @property
    def schema(self) -> InputSchema: ...

    @property
    def outputs(self) -> OutputSpec: ...

    def predict(self, batch: FloatArray) -> Prediction: ...


@dataclass(frozen=True, slots=True)
class IntersectionObservation:
    """What one signalised intersection's detectors report at a step, by lane."""

    intersection: str
    phase: int
    phase_age_s: float
    counts: Mapping[str, float] = field(default_factory=dict)
    occupancy: Mapping[str, float] = field(default_factory=dict)
    halting: Mapping[str, float] = field(default_factory=dict)
    mean_speed: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Observation:
    """The world as the controller sees it: all intersections at one time, as arrays.

    Intersection ``k`` is ``intersection_ids[k]``; its detected incoming lanes
    are ``lanes[lane_start[k]:lane_start[k + 1]]``, and the lane columns
    (``counts``, ``occupancy``, ``halting``, ``mean_speed``) follow ``lanes``.
    Arrays keep a step's observation cheap to build and to batch into one
    model call; :attr:`intersections` gives the per-intersection view.
    """

    time_s: float
    time_of_day_s: float
    intersection_ids: tuple[str, ...]
    lanes: tuple[str, ...]
    lane_start: NDArray[np.int64]  # len(intersection_ids) + 1 offsets into ``lanes``
    phase: NDArray[np.int64]
    phase_age_s: FloatArray
    counts: FloatArray
    occupancy: FloatArray
    halting: FloatArray
    mean_speed: FloatArray

    @property
    def intersections(self) -> tuple[IntersectionObservation, ...]:
        out = []
        for k, tls in enumerate(self.intersection_ids):
            lo, hi = int(self.lane_start[k]), int(self.lane_start[k + 1])
            lanes = self.lanes[lo:hi]
            out.append(
                IntersectionObservation(
                    intersection=tls,
                    phase=int(self.phase[k]),
                    phase_age_s=float(self.phase_age_s[k]),
                    counts=dict(zip(lanes, self.counts[lo:hi].tolist(), strict=True)),
                    occupancy=dict(zip(lanes, self.occupancy[lo:hi].tolist(), strict=True)),
                    halting=dict(zip(lanes, self.halting[lo:hi].tolist(), strict=True)),
                    mean_speed=dict(zip(lanes, self.mean_speed[lo:hi].tolist(), strict=True)),
                )
            )
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Action:
    """The next phase each intersection should show, by intersection id."""

    phases: Mapping[str, int]


@runtime_checkable
class Controller(Protocol):
    """Observation in, action out; one call per step for all intersections."""

    def act(self, observation: Observation) -> Action: ...


@runtime_checkable
class WorldHook(Protocol):
    """Something that sits between the world and the controller: an attack or a guard.

    ``observe`` is on the sensor path: it returns the observation the
    controller will see (an attack tampers with it; a runtime guard returns
    it unchanged and records what it flags). ``before_step`` is on the world
    path, called with the running simulator (libsumo) before each step (an
    attack may insert real vehicles). ``report`` says what it did; it is
    kept with the run's result. A hook never sees the controller's code.
    """

    def observe(self, observation: Observation) -> Observation: ...

    def before_step(self, simulation: Any, time_s: float) -> None: ...

    def report(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class WorldCell:
    """One simulation of a trial: a controller on a scenario, seed and demand level.

    ``controller`` is ``"submission"`` for the system under test, else a
    baseline's name.
    """

    scenario: str
    controller: str
    seed: int
    demand: float
    seconds: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> WorldCell:
        return cls(
            scenario=str(obj["scenario"]),
            controller=str(obj["controller"]),
            seed=int(obj["seed"]),
            demand=float(obj["demand"]),
            seconds=int(obj["seconds"]),
        )


@dataclass(frozen=True, slots=True)
class WorldOutcome:
    """A cell's KPIs (overall and by group kind and group), safety report and state.

    A KPI is None where it is undefined (a mean over no trips).

    ``error`` says why a cell did not finish (``complete`` is then False and
    the KPIs, if any, are partial). ``trips`` is the run's trip table, when
    its outputs could be read; it is kept beside the JSON form, not in it.
    """

    cell: WorldCell
    kpis: Mapping[str, float | None]
    by_group: Mapping[str, Mapping[str, Mapping[str, float | None]]] = field(default_factory=dict)
    safety: Mapping[str, Any] = field(default_factory=dict)
    complete: bool = True
    error: str | None = None
    out: str | None = None
    trips: TripTable | None = None

    def to_json(self) -> dict[str, Any]:
        """Everything but the trip table (which has a file of its own)."""
        return {
            "cell": self.cell.to_json(),
            "kpis": dict(self.kpis),
            "by_group": {
                kind: {name: dict(kpis) for name, kpis in groups.items()}
                for kind, groups in self.by_group.items()
            },
            "safety": dict(self.safety),
            "complete": self.complete,
            "error": self.error,
            "out": self.out,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, trips: TripTable | None = None) -> WorldOutcome:
        return cls(
            cell=WorldCell.from_json(obj["cell"]),
            kpis=dict(obj["kpis"]),
            by_group=dict(obj.get("by_group", {})),
            safety=dict(obj.get("safety", {})),
            complete=bool(obj.get("complete", True)),
            error=obj.get("error"),
            out=obj.get("out"),
            trips=trips,
        )


class WorldRunner(Protocol):
    """Runs cells of a trial in the sandbox, in parallel where it can."""

    def run(self, cells: Sequence[WorldCell]) -> list[WorldOutcome]: ...


__all__ = [
    "Action",
    "Controller",
    "IntersectionObservation",
    "Observation",
    "Prediction",
    "Predictor",
    "WorldCell",
    "WorldHook",
    "WorldOutcome",
    "WorldRunner",
]
