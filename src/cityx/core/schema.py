"""Input and output contracts of a system under test.

An *input schema* lists the features a predictor reads, in order, each with
its type, unit and physical bounds; a *batch* is a 2-D float array whose
columns follow that order. An *output spec* says what comes back: class
labels for a classifier, a value range for a regressor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class FeatureType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    type: FeatureType = FeatureType.FLOAT
    unit: str = ""
    min: float | None = None
    max: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", FeatureType(self.type))
        if self.type is FeatureType.BOOL:
            object.__setattr__(self, "min", 0.0)
            object.__setattr__(self, "max", 1.0)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} > max {self.max}")


@dataclass(frozen=True, slots=True)
class InputViolations:
    """Which rows of a batch break the schema, and how (boolean masks, n x d)."""

    non_finite: NDArray[np.bool_]
    out_of_range: NDArray[np.bool_]
    not_integer: NDArray[np.bool_]

    @property
    def bad_rows(self) -> NDArray[np.bool_]:
        cells = self.non_finite | self.out_of_range | self.not_integer
        return np.asarray(cells.any(axis=1))

    def count_by_feature(self, names: tuple[str, ...]) -> dict[str, int]:
        cells = self.non_finite | self.out_of_range | self.not_integer
        counts = cells.sum(axis=0)
        return {n: int(c) for n, c in zip(names, counts, strict=True) if c}


@dataclass(frozen=True, slots=True)
class InputSchema:
    features: tuple[Feature, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate feature names: {', '.join(dupes)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def lower(self) -> FloatArray:
        return np.array([-np.inf if f.min is None else f.min for f in self.features])

    @property
    def upper(self) -> FloatArray:
        return np.array([np.inf if f.max is None else f.max for f in self.features])

    @property
    def integer_mask(self) -> NDArray[np.bool_]:
        return np.array([f.type is not FeatureType.FLOAT for f in self.features])

    def violations(self, batch: FloatArray) -> InputViolations:
        """Vectorised check of a batch against types and bounds."""
        if batch.ndim != 2 or batch.shape[1] != len(self.features):
            raise ValueError(f"batch has shape {batch.shape}, expected (n, {len(self.features)})")
        finite = np.isfinite(batch)
        with np.errstate(invalid="ignore"):
            out = finite & ((batch < self.lower) | (batch > self.upper))
            frac = finite & self.integer_mask & (batch != np.round(batch))
        return InputViolations(non_finite=~finite, out_of_range=out, not_integer=frac)


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """What a predictor answers: class labels, or values in a range."""

    task: Task
    labels: tuple[str, ...] = ()
    value_min: float | None = None
    value_max: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task(self.task))
        if self.task is Task.CLASSIFICATION and len(self.labels) < 2:
            raise ValueError("a classifier must declare at least two labels")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")


__all__ = [
    "Feature",
    "FeatureType",
    "FloatArray",
    "InputSchema",
    "InputViolations",
    "OutputSpec",
    "Task",
]
