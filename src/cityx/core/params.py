"""Plugin parameters: named numbers with bounds, checked before anything runs.

A *parameter* is one number a plugin takes (an attack's intensity, a
guard's stuck time, a controller's cycle), declared with its default, its
allowed range ``[low, high]``, its unit and whether it must be an integer.
:func:`configure` turns the values a user gave (a mapping, possibly
partial) into every declared parameter, each checked, so a bad value is one
clear error that names the parameter and the allowed range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, final

from .errors import InputError


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a plugin: a number within ``[low, high]``."""

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
        bad = InputError(f"parameter {self.name!r} must be {allowed}, got {value!r}", where=where)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        number = float(value)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            raise bad
        if self.integer and number != int(number):
            raise bad
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


def configure(
    params: Sequence[Param], values: Mapping[str, Any] | None, *, where: str
) -> dict[str, float]:
    """Every declared parameter, from ``values`` or its default, checked against its bounds."""
    given = dict(values or {})
    known = {p.name for p in params}
    extra = sorted(set(given) - known)
    if extra:
        raise InputError(
            f"unknown parameter(s) {', '.join(extra)}",
            where=where,
            hint=f"known: {', '.join(sorted(known)) or 'none'}",
        )
    return {p.name: p.check(given.get(p.name, p.default), where=where) for p in params}


class Parameterised:
    """A plugin class that declares its parameters: ``configure`` checks values against them."""

    params: ClassVar[tuple[Param, ...]] = ()

    @final
    @classmethod
    def configure(cls, values: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Every declared parameter, from ``values`` or its default, checked against its bounds."""
        meta = getattr(cls, "meta", None)
        where = f"{meta.kind} {meta.id}" if meta is not None else cls.__name__
        return configure(cls.params, values, where=where)


__all__ = ["Param", "Parameterised", "configure"]
