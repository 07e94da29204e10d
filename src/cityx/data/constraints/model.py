"""Physical constraints on sensor readings, and the threat model that names what an attacker holds.

An evasion attack searches readings inside them, and a counterfactual
explanation must stay inside them too, so they live here, below both.

A *sensor* is a roadside detector that reports a group of features (say
``flow_n``, ``occupancy_n``, ``speed_n`` for the northern approach's
loop); the attacker *controls* some sensors and can change only their
features. Each feature keeps within its *bounds* (physical range), moves
at most its *maximum change* (in the feature's unit) from the true
reading, and integer features (vehicle counts) stay integers; a feature
with a *resolution* ``r`` stays a multiple of ``r`` (an hourly rate
counted over 3 minutes moves in steps of 20 veh/h).

*Linked features*: a loop that counts ``flow`` vehicles per interval of
``T`` seconds at mean speed ``v`` km/h, each occupying the loop for an
*effective length* ``L`` metres (vehicle plus loop), is occupied
``occupancy = 360 * L * flow / (T * v)`` percent of the time. A reading is
*consistent* when its occupancy lies within that relation for ``L`` in
``[min_length_m, max_length_m]``, give or take ``slack`` percentage points
(small counts are noisy). ``T`` is the period the flow is counted over
(3600 for an hourly rate); when a sensor names a ``lanes`` feature, its
flow is a sum over that many lanes and its occupancy a mean over them.
An attacked reading must be consistent, or at
least no less consistent than the true one was (real data is noisy too).

*Ratios*: a feature derived from two others (``speed_ratio =
mean_speed_kmh / free_flow_kmh``) is recomputed from them, never set on
its own.

*Temporal smoothness*: when rows are time series of a sensor, an attacked
value may differ from the previous interval's true value by at most
``max_step``, or by no more than the true value itself did.

The file that declares them is read by :mod:`.reading`; :mod:`.projection`
moves a reading back inside them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cityx.core import FloatArray, InputError

# The name of the threat model used when a submission declares none (see
# :func:`.reading.schema_threat_model`): reports print it, so a reader sees
# the attack did not use the vendor's or the city's threat model.
DEFAULT_THREAT_MODEL = "default: schema bounds, every sensor"


class ThreatModelError(InputError):
    """A constraints file is malformed, names unknown features or contradicts the data."""


@dataclass(frozen=True, slots=True)
class Sensor:
    """One detector: the features it reports and, if linked, their roles."""

    name: str
    features: tuple[str, ...]
    flow: str | None = None
    occupancy: str | None = None
    speed: str | None = None
    lanes: str | None = None

    @property
    def linked(self) -> bool:
        return None not in (self.flow, self.occupancy, self.speed)


@dataclass(frozen=True, slots=True)
class Consistency:
    """The linked-feature relation's parameters (see the module docstring)."""

    min_length_m: float = 2.0
    max_length_m: float = 25.0
    slack: float = 2.0
    interval_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Temporal:
    """Rows are time series of ``group_by``, in ``order_by`` order; steps per feature."""

    group_by: tuple[str, ...]
    order_by: str
    max_step: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ratio:
    """``feature = numerator / denominator``, to within ``tolerance`` (data is rounded)."""

    feature: str
    numerator: str
    denominator: str
    tolerance: float = 1e-3


@dataclass(frozen=True, slots=True)
class ThreatModel:
    """What the attacker may change, and how far; one entry per model feature.

    ``low``, ``high`` and ``max_change`` follow ``features`` (the model's
    input order); ``max_change`` is ``inf`` where only the bounds limit.
    """

    features: tuple[str, ...]
    sensors: tuple[Sensor, ...]
    controlled: tuple[str, ...]
    integer: frozenset[str]
    low: tuple[float, ...]
    high: tuple[float, ...]
    max_change: tuple[float, ...]
    consistency: Consistency | None = None
    temporal: Temporal | None = None
    resolution: Mapping[str, float] = field(default_factory=dict)
    ratios: tuple[Ratio, ...] = ()
    source: str = "<threat model>"
    # SHA-256 of the file it was read from: a report names exactly which one.
    sha256: str | None = None

    def sensor(self, name: str) -> Sensor:
        for s in self.sensors:
            if s.name == name:
                return s
        raise KeyError(name)

    def index(self, feature: str) -> int:
        return self.features.index(feature)

    @property
    def controlled_features(self) -> tuple[str, ...]:
        names = {f for s in self.sensors if s.name in self.controlled for f in s.features}
        return tuple(f for f in self.features if f in names)

    def controlled_mask(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        names = set(self.controlled_features)
        return np.array([f in names for f in self.features], dtype=bool)

    def quantum(self) -> FloatArray:
        """The step each feature moves in: its resolution, 1 for integers, 0 if continuous."""
        return np.array(
            [self.resolution.get(f, 1.0 if f in self.integer else 0.0) for f in self.features],
            dtype=np.float64,
        )

    def arrays(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        return (
            np.asarray(self.low, dtype=np.float64),
            np.asarray(self.high, dtype=np.float64),
            np.asarray(self.max_change, dtype=np.float64),
        )

    def max_step(self) -> FloatArray:
        """Temporal step limit per feature (``inf`` where none is declared)."""
        steps = self.temporal.max_step if self.temporal else {}
        return np.array([steps.get(f, math.inf) for f in self.features], dtype=np.float64)

    def restricted_to(self, sensors: Sequence[str]) -> ThreatModel:
        """The same constraints with the attacker holding only ``sensors``."""
        return replace(self, controlled=tuple(sensors))

    @property
    def is_default(self) -> bool:
        """Whether this is the fallback for a submission that declares no threat model."""
        return self.source == DEFAULT_THREAT_MODEL

    def describe(self) -> dict[str, Any]:
        """What a report says about the threat model: where it came from, and its reach."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "default": self.is_default,
            "controlled": list(self.controlled),
            "controlled_features": list(self.controlled_features),
            "linked": self.consistency is not None,
            "temporal": self.temporal is not None,
        }


__all__ = [
    "DEFAULT_THREAT_MODEL",
    "Consistency",
    "Ratio",
    "Sensor",
    "Temporal",
    "ThreatModel",
    "ThreatModelError",
]
