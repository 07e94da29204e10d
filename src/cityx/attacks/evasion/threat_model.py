"""The threat model of an evasion attack, read from a TOML constraints file.

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

File layout::

    schema_version = 1
    controlled = ["n"]                      # sensors the attacker controls
    integer = ["flow_n"]                    # default: the schema's int/bool features
    [sensors.n]
    features = ["flow_n", "occupancy_n", "speed_n"]
    flow = "flow_n"                         # roles for the linked-feature relation
    occupancy = "occupancy_n"
    speed = "speed_n"
    # lanes = "lanes_n"                     # optional: flow summed over lanes
    [bounds]                                # default: the schema's min/max
    flow_n = [0, 250]
    [max_change]                            # default: unlimited within bounds
    flow_n = 20
    [consistency]                           # present: linked features are enforced
    min_length_m = 2.0
    max_length_m = 25.0
    slack = 2.0
    interval_s = 300
    [resolution]                            # readings are multiples of this
    flow_veh_h = 20
    [[ratio]]                               # derived features
    feature = "speed_ratio"
    numerator = "mean_speed_kmh"
    denominator = "free_flow_kmh"
    [temporal]                              # present: rows are time series
    group_by = ["sensor_id"]                # one column or several
    order_by = "timestamp"
    [temporal.max_step]
    flow_n = 30
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cityx.core import FeatureType, FloatArray, InputError, InputSchema


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

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "controlled": list(self.controlled),
            "controlled_features": list(self.controlled_features),
            "linked": self.consistency is not None,
            "temporal": self.temporal is not None,
        }


class _SensorFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: list[str] = Field(min_length=1)
    flow: str | None = None
    occupancy: str | None = None
    speed: str | None = None
    lanes: str | None = None


class _ConsistencyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_length_m: float = Field(2.0, gt=0)
    max_length_m: float = Field(25.0, gt=0)
    slack: float = Field(2.0, ge=0)
    interval_s: float = Field(300.0, gt=0)


class _RatioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feature: str
    numerator: str
    denominator: str
    tolerance: float = Field(1e-3, ge=0)


class _TemporalFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group_by: str | list[str]
    order_by: str
    max_step: dict[str, float] = {}


class _ThreatFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = 1
    controlled: list[str] = Field(min_length=1)
    integer: list[str] | None = None
    sensors: dict[str, _SensorFile] = Field(min_length=1)
    bounds: dict[str, tuple[float, float]] = {}
    max_change: dict[str, float] = {}
    consistency: _ConsistencyFile | None = None
    temporal: _TemporalFile | None = None
    resolution: dict[str, float] = {}
    ratio: list[_RatioFile] = []


def load_threat_model(path: Path, schema: InputSchema) -> ThreatModel:
    """Read and check a constraints file against the model's input schema."""
    where = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ThreatModelError("constraints file not found", where=where) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ThreatModelError(f"not valid TOML: {exc}", where=where) from None
    return parse_threat_model(raw, schema, where=where)


def parse_threat_model(
    raw: Mapping[str, Any], schema: InputSchema, *, where: str = "<threat model>"
) -> ThreatModel:
    """A :class:`ThreatModel` from the parsed TOML; one-line ThreatModelError on any mistake."""
    try:
        spec = _ThreatFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ThreatModelError(f"{loc}: {err['msg']}", where=where) from None
    if spec.schema_version != 1:
        raise ThreatModelError(
            f"schema_version {spec.schema_version} is not supported (use 1)", where=where
        )
    names = schema.names

    def known(feature: str, field_name: str) -> str:
        if feature not in names:
            close = difflib.get_close_matches(feature, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"the model reads {', '.join(names)}"
            raise ThreatModelError(
                f"{field_name}: unknown feature {feature!r}", where=where, hint=hint
            )
        return feature

    sensors = []
    owner: dict[str, str] = {}
    for sname, s in spec.sensors.items():
        for f in s.features:
            known(f, f"sensors.{sname}.features")
            if f in owner:
                raise ThreatModelError(
                    f"feature {f!r} belongs to both sensors {owner[f]!r} and {sname!r}", where=where
                )
            owner[f] = sname
        for role in ("flow", "occupancy", "speed", "lanes"):
            value = getattr(s, role)
            # A role may name another sensor's feature (the speed a loop's
            # occupancy depends on can come from a lane-area detector).
            if value is not None:
                known(value, f"sensors.{sname}.{role}")
        sensors.append(Sensor(sname, tuple(s.features), s.flow, s.occupancy, s.speed, s.lanes))
    for sname in spec.controlled:
        if sname not in spec.sensors:
            raise ThreatModelError(
                f"controlled: unknown sensor {sname!r}",
                where=where,
                hint=f"declared sensors: {', '.join(spec.sensors)}",
            )

    by_name = {f.name: f for f in schema.features}
    low: list[float] = [_or(by_name[n].min, -math.inf) for n in names]
    high: list[float] = [_or(by_name[n].max, math.inf) for n in names]
    for f, (lo, hi) in spec.bounds.items():
        i = names.index(known(f, "bounds"))
        if not lo <= hi:
            raise ThreatModelError(
                f"bounds.{f}: lower bound {lo:g} is above upper {hi:g}", where=where
            )
        low[i], high[i] = float(lo), float(hi)
    change = [math.inf] * len(names)
    for f, value in spec.max_change.items():
        i = names.index(known(f, "max_change"))
        if not value >= 0:
            raise ThreatModelError(
                f"max_change.{f}: must be zero or more, got {value:g}", where=where
            )
        change[i] = float(value)
    if spec.integer is None:
        integer = frozenset(f.name for f in schema.features if f.type is not FeatureType.FLOAT)
    else:
        integer = frozenset(known(f, "integer") for f in spec.integer)

    consistency = None
    if spec.consistency is not None:
        c = spec.consistency
        if c.min_length_m > c.max_length_m:
            raise ThreatModelError("consistency: min_length_m is above max_length_m", where=where)
        if not any(s.linked for s in sensors):
            raise ThreatModelError(
                "consistency: no sensor names its flow, occupancy and speed features",
                where=where,
            )
        consistency = Consistency(c.min_length_m, c.max_length_m, c.slack, c.interval_s)
    temporal = None
    if spec.temporal is not None:
        t = spec.temporal
        for f, step in t.max_step.items():
            known(f, "temporal.max_step")
            if not step >= 0:
                raise ThreatModelError(
                    f"temporal.max_step.{f}: must be zero or more, got {step:g}", where=where
                )
        groups = (t.group_by,) if isinstance(t.group_by, str) else tuple(t.group_by)
        temporal = Temporal(groups, t.order_by, dict(t.max_step))
    resolution = {}
    for f, value in spec.resolution.items():
        known(f, "resolution")
        if not value > 0:
            raise ThreatModelError(
                f"resolution.{f}: must be above zero, got {value:g}", where=where
            )
        resolution[f] = float(value)
    ratios = []
    for i, r in enumerate(spec.ratio):
        for role in ("feature", "numerator", "denominator"):
            known(getattr(r, role), f"ratio[{i}].{role}")
        ratios.append(Ratio(r.feature, r.numerator, r.denominator, r.tolerance))

    model = ThreatModel(
        features=names,
        sensors=tuple(sensors),
        controlled=tuple(spec.controlled),
        integer=integer,
        low=tuple(low),
        high=tuple(high),
        max_change=tuple(change),
        consistency=consistency,
        temporal=temporal,
        resolution=resolution,
        ratios=tuple(ratios),
        source=where,
    )
    _, _, mc = model.arrays()
    unlimited = [
        f
        for f in model.controlled_features
        if not math.isfinite(mc[model.index(f)])
        and not (math.isfinite(low[model.index(f)]) and math.isfinite(high[model.index(f)]))
    ]
    if unlimited:
        raise ThreatModelError(
            f"controlled feature(s) {', '.join(unlimited)} have neither bounds nor a max_change",
            where=where,
            hint="declare [max_change] or [bounds] for them",
        )
    return model


def previous_rows(
    model: ThreatModel, table: pd.DataFrame, keep: NDArray[np.bool_] | None = None, *, where: str
) -> FloatArray | None:
    """Each (kept) row's previous interval of the same sensor group, NaN where none.

    None when the threat model declares no temporal smoothness.
    """
    if model.temporal is None:
        return None
    group, order = list(model.temporal.group_by), model.temporal.order_by
    for column in (*group, order, *model.features):
        if column not in table.columns:
            raise ThreatModelError(
                f"temporal: column {column!r} is not in the data", where=model.source, hint=where
            )
    kept = table if keep is None else table.loc[keep]
    kept = kept[[*group, order, *model.features]].reset_index(drop=True)
    ordered = kept.sort_values([*group, order], kind="stable")
    shifted = ordered.groupby(group, sort=False)[list(model.features)].shift(1)
    return np.asarray(shifted.sort_index().to_numpy(dtype=np.float64))


def _or(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def check_against_data(model: ThreatModel, rows: FloatArray, *, where: str) -> None:
    """Refuse constraints that the true data itself breaks (bounds, integers, linked features)."""
    low, high, _ = model.arrays()
    outside = (rows < low) | (rows > high)
    for j in np.flatnonzero(outside.any(axis=0)):
        column = rows[:, j]
        raise ThreatModelError(
            f"bounds of {model.features[j]!r} are [{low[j]:g}, {high[j]:g}] but "
            f"{int(outside[:, j].sum())} of {rows.shape[0]} data rows lie outside "
            f"(data range {column.min():g} to {column.max():g})",
            where=model.source,
            hint=f"the constraints contradict {where}; widen the bounds",
        )
    quantum = model.quantum()
    safe = np.where(quantum > 0, quantum, 1.0)
    off_grid = (np.abs(rows / safe - np.round(rows / safe)) > 1e-6) & (quantum > 0)
    for j in np.flatnonzero(off_grid.any(axis=0)):
        raise ThreatModelError(
            f"{model.features[j]!r} must be a multiple of {quantum[j]:g} (integer or "
            f"resolution) but {where} holds other values",
            where=model.source,
        )
    from .projection import consistency_gap, ratio_gap

    for ratio in model.ratios:
        share = float((ratio_gap(model, ratio, rows) > 0).mean())
        if share > 0.01:
            raise ThreatModelError(
                f"ratio: {ratio.feature} = {ratio.numerator} / {ratio.denominator} fails on "
                f"{share:.0%} of the data rows",
                where=model.source,
                hint=f"the constraints contradict {where}; check the names or the tolerance",
            )
    if model.consistency is not None:
        for sensor in model.sensors:
            if not sensor.linked:
                continue
            gap = consistency_gap(model, sensor, rows)
            share = float((gap > 0).mean())
            # Real data is noisy; a relation that most true readings break is
            # not a description of these sensors.
            if share > 0.5:
                raise ThreatModelError(
                    f"consistency: {share:.0%} of the true readings of sensor {sensor.name!r} "
                    "break the linked-feature relation",
                    where=model.source,
                    hint=f"the constraints contradict {where}; widen min_length_m/max_length_m "
                    "or slack",
                )


def schema_threat_model(schema: InputSchema) -> ThreatModel:
    """The weakest threat model: every feature its own sensor, all controlled, bounds only."""
    return parse_threat_model(
        {
            "controlled": list(schema.names),
            "sensors": {n: {"features": [n]} for n in schema.names},
        },
        schema,
        where="<input schema bounds>",
    )


__all__ = [
    "Consistency",
    "Ratio",
    "Sensor",
    "Temporal",
    "ThreatModel",
    "ThreatModelError",
    "check_against_data",
    "load_threat_model",
    "parse_threat_model",
    "previous_rows",
    "schema_threat_model",
]
