"""A check's details: what it measured beyond its metrics, in a type it owns.

A check's *metrics* are the numbers a policy may set limits on; its
*details* are everything else a reader or an export needs (a confusion
matrix, the probes sent, a campaign's attack groups). Each check class
names its details type in ``details_type``: a frozen dataclass deriving
from :class:`Details` that writes its JSON object (``to_json``) and reads
it back (``from_json``), so only the check knows its keys while the
results document keeps one shape per check.

*Raw details* (:class:`RawDetails`) are details kept as the JSON object
they were read from: those of a check not installed here, of a check that
declares no type, or of a document whose details do not fit the declared
type (an older runner's, or one edited by hand).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from .errors import DataError


class Details(ABC):
    """Base of a check's typed details: a frozen dataclass that writes and reads its JSON.

    ``from_json(d.to_json())`` equals ``d``; ``from_json`` raises a
    :class:`~cityx.core.errors.DataError` naming the key when the object
    does not fit the type (a missing key, a value of the wrong kind).
    """

    __slots__ = ()

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The details as the JSON object ``results.json`` records."""

    @classmethod
    @abstractmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The details a JSON object records; a DataError when it does not fit."""


@dataclass(frozen=True, slots=True)
class RawDetails(Details):
    """Details kept as the JSON object they were read from, keys in their order."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.values)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls({str(k): v for k, v in data.items()})


@dataclass(frozen=True, slots=True)
class Fields:
    """Typed reads of a JSON object's fields, for ``from_json`` methods.

    Each read returns the value as recorded (an integer stays an integer
    where a number is asked for, so a round trip writes the same JSON) or
    raises a DataError that names the field, prefixed by ``where``. Every
    read needs the key; ``..._or_null`` reads also take ``null``, and a key
    that older documents may lack is read after :meth:`has`.
    """

    data: Mapping[str, Any]
    where: str

    @classmethod
    def of(cls, data: Any, where: str) -> Fields:
        if not isinstance(data, Mapping):
            raise DataError(f"expected a JSON object, got {_kind(data)}", where=where)
        return cls(data, where)

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise DataError(f"{key!r} is missing", where=self.where)
        return self.data[key]

    def _wrong(self, key: str, wanted: str, value: Any) -> DataError:
        return DataError(f"{key!r} must be {wanted}, got {_kind(value)}", where=self.where)

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def text_or_null(self, key: str) -> str | None:
        return None if self._get(key) is None else self.text(key)

    def integer(self, key: str) -> int:
        value = self._get(key)
        if not _is_integer(value):
            raise self._wrong(key, "an integer", value)
        return int(value)

    def number(self, key: str) -> float:
        value = self._get(key)
        if not _is_number(value):
            raise self._wrong(key, "a number", value)
        recorded: float = value  # an int stays an int, so a round trip writes the same JSON
        return recorded

    def number_or_null(self, key: str) -> float | None:
        """A number, or ``null`` (undefined); the key must be there."""
        return None if self._get(key) is None else self.number(key)

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.items(key)
        if not all(isinstance(v, str) for v in items):
            raise self._wrong(key, "a list of strings", items)
        return items

    def integers(self, key: str) -> tuple[int, ...]:
        items = self.items(key)
        if not all(_is_integer(v) for v in items):
            raise self._wrong(key, "a list of integers", items)
        return items

    def integer_rows(self, key: str) -> tuple[tuple[int, ...], ...]:
        """A list of lists of integers (a table of counts)."""
        rows = self.items(key)
        if not all(isinstance(r, list | tuple) and all(map(_is_integer, r)) for r in rows):
            raise self._wrong(key, "a list of lists of integers", rows)
        return tuple(tuple(r) for r in rows)

    def numbers(self, key: str) -> tuple[float, ...]:
        items = self.items(key)
        if not all(_is_number(v) for v in items):
            raise self._wrong(key, "a list of numbers", items)
        return items

    def items(self, key: str) -> tuple[Any, ...]:
        value = self._get(key)
        if not isinstance(value, list | tuple):
            raise self._wrong(key, "a list", value)
        return tuple(value)

    def objects(self, key: str) -> tuple[Mapping[str, Any], ...]:
        """A list of JSON objects, kept as they are."""
        items = self.items(key)
        if not all(isinstance(v, Mapping) for v in items):
            raise self._wrong(key, "a list of objects", items)
        return items

    def obj(self, key: str) -> Mapping[str, Any]:
        value = self._get(key)
        if not isinstance(value, Mapping):
            raise self._wrong(key, "an object", value)
        return value

    def obj_or_null(self, key: str) -> Mapping[str, Any] | None:
        return None if self._get(key) is None else self.obj(key)

    def field(self, key: str) -> Fields:
        """The object at ``key``, to read its own fields."""
        return Fields(self.obj(key), f"{self.where}.{key}")

    def number_map(self, key: str) -> dict[str, float]:
        """An object of numbers, keys in their order."""
        value = self.obj(key)
        if not all(_is_number(v) for v in value.values()):
            raise self._wrong(key, "an object of numbers", value)
        return dict(value)

    def nullable_number_map(self, key: str) -> dict[str, float | None]:
        """An object of numbers or ``null`` (undefined), keys in their order."""
        value = self.obj(key)
        if not all(v is None or _is_number(v) for v in value.values()):
            raise self._wrong(key, "an object of numbers or nulls", value)
        return dict(value)

    def integer_map(self, key: str) -> dict[str, int]:
        value = self.obj(key)
        if not all(_is_integer(v) for v in value.values()):
            raise self._wrong(key, "an object of integers", value)
        return dict(value)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


__all__ = ["Details", "Fields", "RawDetails"]
