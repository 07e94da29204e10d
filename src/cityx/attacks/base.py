"""The attack contract: what every red-team technique declares and how it is configured.

An *attack* is a plugin of kind ``attack``. Its *spec* says what it tries
to do (the *goal*), what it acts on (the *target kind*: a ``controller``
through its sensors, a ``predictor``'s inputs, the ``message`` path, or the
``training-data``), the MITRE ATLAS techniques it realises, its class in
NIST AI 100-2 (evasion, poisoning, privacy or misuse), the *access* an
attacker needs for it, and its *parameters*, each with bounds and a
default. :meth:`Attack.configure` checks parameters against those bounds
before anything runs, so a bad intensity is one clear error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, final

from cityx.core import InputError, PluginError, PluginKind, PluginMeta, Principle, Registry, Tags
from cityx.core.taxonomy import ATLAS_NAMES, NistFunction


class AttackTarget(StrEnum):
    """What an attack acts on."""

    CONTROLLER = "controller"
    PREDICTOR = "predictor"
    MESSAGE = "message"
    TRAINING_DATA = "training-data"


class NistClass(StrEnum):
    """The attack classes of NIST AI 100-2 (adversarial machine learning taxonomy)."""

    EVASION = "evasion"
    POISONING = "poisoning"
    PRIVACY = "privacy"
    MISUSE = "misuse"


class Access(StrEnum):
    """What the attacker must be able to do.

    ``query-label``/``query-score``: send inputs to the model and read its
    labels (or class scores) back, nothing else (black box); ``white-box``:
    read the model's parameters; ``sensor``: write the readings of the
    sensors it controls; ``message-path``: send or alter messages on the
    bus; ``training-data``: insert or edit training rows.
    """

    QUERY_LABEL = "query-label"
    QUERY_SCORE = "query-score"
    WHITE_BOX = "white-box"
    SENSOR = "sensor"
    MESSAGE_PATH = "message-path"
    TRAINING_DATA = "training-data"


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of an attack: a number within ``[low, high]``."""

    name: str
    default: float
    low: float
    high: float
    unit: str = ""
    description: str = ""
    integer: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ValueError(f"parameter {self.name!r}: bounds [{self.low}, {self.high}] invalid")
        if not self.low <= self.default <= self.high:
            raise ValueError(
                f"parameter {self.name!r}: default {self.default} outside [{self.low}, {self.high}]"
            )
        if self.integer and self.default != int(self.default):
            raise ValueError(f"parameter {self.name!r}: integer with a fractional default")

    def check(self, value: Any, *, where: str) -> float:
        """``value`` as a number within bounds, or an InputError naming the parameter."""
        allowed = f"a{'n integer' if self.integer else ' number'} in [{self.low:g}, {self.high:g}]"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(
                f"parameter {self.name!r} must be {allowed}, got {value!r}", where=where
            )
        number = float(value)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            raise InputError(
                f"parameter {self.name!r} must be {allowed}, got {value!r}", where=where
            )
        if self.integer and number != int(number):
            raise InputError(
                f"parameter {self.name!r} must be {allowed}, got {value!r}", where=where
            )
        return number

    def to_json(self) -> dict[str, Any]:
        return {
            "default": self.default,
            "min": self.low,
            "max": self.high,
            "unit": self.unit,
            "integer": self.integer,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class AttackSpec:
    """What an attack declares about itself; ``plugin_meta`` is its registry entry."""

    id: str
    version: str
    goal: str
    target: AttackTarget
    atlas: tuple[str, ...]
    nist_class: NistClass
    access: frozenset[Access]
    params: tuple[Param, ...] = ()
    principle: Principle = Principle.SECURITY
    reference: str = ""
    plugin_meta: PluginMeta = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", AttackTarget(self.target))
        object.__setattr__(self, "nist_class", NistClass(self.nist_class))
        object.__setattr__(self, "access", frozenset(Access(a) for a in self.access))
        if not self.goal.strip():
            raise ValueError(f"attack {self.id!r} needs a goal")
        if not self.atlas:
            raise ValueError(f"attack {self.id!r} names no MITRE ATLAS technique")
        # A sub-technique (AML.T0043.003) is known when its parent technique is.
        unknown = [t for t in self.atlas if t[:9] not in ATLAS_NAMES]
        if unknown:
            raise ValueError(
                f"attack {self.id!r}: ATLAS techniques {unknown} are not in the taxonomy"
            )
        if not self.access:
            raise ValueError(f"attack {self.id!r} must say what access the attacker needs")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"attack {self.id!r} declares a parameter twice")
        # Tags validates the ATLAS id format; PluginMeta validates the id.
        tags = Tags(self.principle, NistFunction.MEASURE, self.atlas, ("Art. 15",))
        object.__setattr__(
            self,
            "plugin_meta",
            PluginMeta(
                id=self.id,
                kind=PluginKind.ATTACK,
                version=self.version,
                summary=self.goal,
                tags=tags,
                supports=frozenset({self.target.value}),
                reference=self.reference,
            ),
        )

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The row ``cityx attacks list --json`` prints."""
        return {
            "id": self.id,
            "goal": self.goal,
            "target": self.target.value,
            "atlas": list(self.atlas),
            "nist_class": self.nist_class.value,
            "access": sorted(a.value for a in self.access),
            "params": {p.name: p.to_json() for p in self.params},
        }


class Attack:
    """Base class of attack plugins: a spec, and parameters checked before a run.

    Subclasses set ``spec`` and ``meta = spec.plugin_meta``; the constructor
    takes no required arguments and does no work.
    """

    spec: ClassVar[AttackSpec]
    meta: ClassVar[PluginMeta]

    @final
    @classmethod
    def configure(cls, values: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Every declared parameter, from ``values`` or its default, checked against its bounds."""
        values = dict(values or {})
        where = f"attack {cls.spec.id}"
        known = {p.name for p in cls.spec.params}
        extra = sorted(set(values) - known)
        if extra:
            raise InputError(
                f"unknown parameter(s) {', '.join(extra)}",
                where=where,
                hint=f"known: {', '.join(sorted(known)) or 'none'}",
            )
        return {
            p.name: p.check(values.get(p.name, p.default), where=where) for p in cls.spec.params
        }


def describe_attacks(registry: Registry) -> list[dict[str, Any]]:
    """One ``{"id", "goal", "target", "atlas", "params", ...}`` row per registered attack."""
    rows = []
    for plugin_id in registry.ids(PluginKind.ATTACK):
        plugin = registry.load(PluginKind.ATTACK, plugin_id)
        spec = getattr(plugin, "spec", None)
        if not isinstance(spec, AttackSpec) or spec.id != plugin_id:
            raise PluginError(
                f"attack {plugin_id!r} must declare spec = AttackSpec(id={plugin_id!r}, ...)",
                where=f"attack {plugin_id!r}",
            )
        rows.append(spec.to_json())
    return rows


__all__ = [
    "Access",
    "Attack",
    "AttackSpec",
    "AttackTarget",
    "NistClass",
    "Param",
    "describe_attacks",
]
