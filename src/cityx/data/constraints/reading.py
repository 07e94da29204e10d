"""Reading a threat model from its TOML constraints file.

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
import hashlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cityx.core import FeatureType, InputSchema

from .model import (
    DEFAULT_THREAT_MODEL,
    Consistency,
    Ratio,
    Sensor,
    Temporal,
    ThreatModel,
    ThreatModelError,
)


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


def _or(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def load_threat_model(path: Path, schema: InputSchema) -> ThreatModel:
    """Read and check a constraints file against the model's input schema."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
        raw = tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise ThreatModelError("constraints file not found", where=where) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ThreatModelError(f"not valid TOML: {exc}", where=where) from None
    model = parse_threat_model(raw, schema, where=where)
    return replace(model, sha256=hashlib.sha256(data).hexdigest())


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


def schema_threat_model(schema: InputSchema) -> ThreatModel:
    """The fallback threat model: every feature its own controlled sensor, bounds only.

    Its ``source`` is :data:`DEFAULT_THREAT_MODEL`, which reports print.
    """
    return parse_threat_model(
        {
            "controlled": list(schema.names),
            "sensors": {n: {"features": [n]} for n in schema.names},
        },
        schema,
        where=DEFAULT_THREAT_MODEL,
    )


__all__ = ["load_threat_model", "parse_threat_model", "schema_threat_model"]
