"""Sensitive features turned into integer group codes.

A *sensitive feature* is a column naming who a row is about (a district, a
time-of-day band); it is given beside the model's inputs, never taken from
them. A *group* is one value of a sensitive feature, or, with several
features, one combination of their values: an *intersectional* group,
named by the values joined with ``|`` (``east|night``). Groups are coded
0..g-1 in sorted name order so every per-group computation is one
``np.bincount``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import DataError

SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class GroupCodes:
    """Per-row group codes, the group names they index and the features used."""

    codes: NDArray[np.int64]
    names: tuple[str, ...]
    features: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.names)

    def sizes(self) -> NDArray[np.int64]:
        return np.bincount(self.codes, minlength=self.count)


def as_text(values: Sequence[Any] | NDArray[Any]) -> NDArray[np.str_]:
    """Values as strings; whole floats lose their ``.0`` so 1 and 1.0 name one group."""
    array = np.asarray(values)
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)
    return array.astype(str)


def encode_groups(
    features: Mapping[str, Sequence[Any] | NDArray[Any]], *, rows: int, where: str = "data"
) -> GroupCodes:
    """Code the rows by the combination of their sensitive values.

    Raises DataError naming the column when a feature has the wrong length,
    holds an empty value, or takes a single value (nothing to compare).
    """
    if not features:
        raise DataError("no sensitive feature was given", where=where)
    parts: list[NDArray[np.str_]] = []
    for name, values in features.items():
        text = as_text(values)
        if text.ndim != 1 or text.shape[0] != rows:
            raise DataError(
                f"sensitive column {name!r} has {text.shape[0] if text.ndim else 0} values for "
                f"{rows} rows",
                where=where,
            )
        empty = np.isin(text, ("", "nan", "None", "NaN"))
        if empty.any():
            raise DataError(
                f"sensitive column {name!r} is empty at row {int(np.flatnonzero(empty)[0])}",
                where=where,
                hint="fill it or drop those rows: a row without a group cannot be judged",
            )
        if np.unique(text).size < 2:
            raise DataError(
                f"sensitive column {name!r} is constant ({str(text[0])!r}): there are no groups "
                "to compare",
                where=where,
            )
        parts.append(text)
    joined = parts[0]
    for part in parts[1:]:
        joined = np.char.add(np.char.add(joined, SEPARATOR), part)
    names, codes = np.unique(joined, return_inverse=True)
    return GroupCodes(
        codes=codes.astype(np.int64).reshape(-1),
        names=tuple(str(n) for n in names),
        features=tuple(features),
    )


__all__ = ["SEPARATOR", "GroupCodes", "as_text", "encode_groups"]
