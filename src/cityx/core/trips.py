"""Trip tables: every vehicle trip of one world run, as numpy columns.

A *trip* is one vehicle's journey through a simulated city. It is
*finished* when the vehicle arrived before the run ended; an unfinished
trip was still driving at the end. Per trip:

- ``vehicle``, ``vtype``: the vehicle's id and vehicle type;
- ``vclass``: its vehicle class (``passenger``, ``bus``, ``emergency``, ...);
- ``district``: the district of the edge it departed from (``"none"`` if
  that edge is in no district);
- ``approach``: the incoming edge by which it reached its first signal
  (``"none"`` if it met no signal);
- ``depart_s``, ``arrival_s``: simulated seconds (``arrival_s`` is NaN for
  an unfinished trip);
- ``duration_s``: from departure to arrival, or to the end of the run for
  an unfinished trip; the *travel time* of a finished trip;
- ``waiting_s``: seconds spent slower than 0.1 m/s;
- ``time_loss_s``: seconds lost against driving at the desired speed;
- ``co2_mg``: the trip's CO2, NaN when emissions were not measured.

``vclass``, ``district`` and ``approach`` are the *group kinds*: the keys
the KPIs and the fairness measures are broken down by. A table is
``partial`` when it was read from outputs a crash cut short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

GROUP_KINDS = ("vclass", "district", "approach")


@dataclass(frozen=True, slots=True, eq=False)
class TripTable:
    """One row per trip (see the module docstring); every column has one entry a trip."""

    vehicle: NDArray[np.str_]
    vtype: NDArray[np.str_]
    vclass: NDArray[np.str_]
    district: NDArray[np.str_]
    approach: NDArray[np.str_]
    depart_s: NDArray[np.float64]
    arrival_s: NDArray[np.float64]
    duration_s: NDArray[np.float64]
    waiting_s: NDArray[np.float64]
    time_loss_s: NDArray[np.float64]
    co2_mg: NDArray[np.float64]
    finished: NDArray[np.bool_]
    partial: bool = False

    TEXT: ClassVar[tuple[str, ...]] = ("vehicle", "vtype", "vclass", "district", "approach")
    NUMBERS: ClassVar[tuple[str, ...]] = (
        "depart_s",
        "arrival_s",
        "duration_s",
        "waiting_s",
        "time_loss_s",
        "co2_mg",
    )
    COLUMNS: ClassVar[tuple[str, ...]] = (*TEXT, *NUMBERS, "finished")

    def __post_init__(self) -> None:
        # Columns are normalised once here, so readers never meet a list or an object array.
        n: int | None = None
        for name in self.COLUMNS:
            dtype: Any = (
                np.str_ if name in self.TEXT else np.bool_ if name == "finished" else np.float64
            )
            column = np.asarray(getattr(self, name), dtype=dtype)
            if column.ndim != 1:
                raise ValueError(f"trip column {name!r} must be 1-D, got shape {column.shape}")
            if n is not None and column.shape[0] != n:
                raise ValueError(f"trip column {name!r} has {column.shape[0]} rows, not {n}")
            n = column.shape[0]
            object.__setattr__(self, name, column)

    def __len__(self) -> int:
        return int(self.vehicle.shape[0])

    @property
    def travel_time_s(self) -> NDArray[np.float64]:
        """Each finished trip's duration; NaN for an unfinished one."""
        return np.where(self.finished, self.duration_s, np.nan)

    def group(self, kind: str) -> NDArray[np.str_]:
        """Each trip's group of one group kind (``vclass``, ``district`` or ``approach``)."""
        if kind not in GROUP_KINDS:
            raise ValueError(f"unknown group kind {kind!r}; known: {', '.join(GROUP_KINDS)}")
        column: NDArray[np.str_] = getattr(self, kind)
        return column

    def columns(self) -> dict[str, NDArray[Any]]:
        """The columns by name, in :attr:`COLUMNS` order."""
        return {name: getattr(self, name) for name in self.COLUMNS}

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any], *, partial: bool = False) -> TripTable:
        """A table from columns by name; a missing column is a ValueError naming it."""
        missing = [name for name in cls.COLUMNS if name not in columns]
        if missing:
            raise ValueError(f"trip table without column(s) {', '.join(missing)}")
        return cls(**{name: columns[name] for name in cls.COLUMNS}, partial=partial)

    @classmethod
    def empty(cls, *, partial: bool = False) -> TripTable:
        """A table with no trips (a run that never started any)."""
        return cls.from_columns({name: [] for name in cls.COLUMNS}, partial=partial)

    def equals(self, other: TripTable) -> bool:
        """Same trips, column by column (NaN equal to NaN), and the same ``partial``."""
        return self.partial == other.partial and all(
            np.array_equal(a, b, equal_nan=name in self.NUMBERS)
            for name, a, b in zip(
                self.COLUMNS, self.columns().values(), other.columns().values(), strict=True
            )
        )


__all__ = ["GROUP_KINDS", "TripTable"]
