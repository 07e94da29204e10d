"""The two kinds of system under test.

A *predictor* maps a batch of feature rows to labels (with class scores) or
values: congestion, incident, demand. A *controller* maps an observation of
the world to an action: which phase each signal shows next. Both are called
with whole batches; neither is ever called one row at a time in a loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from .schema import FloatArray, InputSchema, OutputSpec


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
    """What one signalised intersection's detectors report at a step."""

    intersection: str
    phase: int
    phase_age_s: float
    counts: Mapping[str, float] = field(default_factory=dict)
    occupancy: Mapping[str, float] = field(default_factory=dict)
    halting: Mapping[str, float] = field(default_factory=dict)
    mean_speed: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Observation:
    """The world as the controller sees it: all intersections at one time."""

    time_s: float
    time_of_day_s: float
    intersections: tuple[IntersectionObservation, ...]


@dataclass(frozen=True, slots=True)
class Action:
    """The next phase each intersection should show, by intersection id."""

    phases: Mapping[str, int]


@runtime_checkable
class Controller(Protocol):
    """Observation in, action out; one call per step for all intersections."""

    def act(self, observation: Observation) -> Action: ...


__all__ = [
    "Action",
    "Controller",
    "IntersectionObservation",
    "Observation",
    "Prediction",
    "Predictor",
]
