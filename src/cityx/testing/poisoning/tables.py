"""What a table family hands the protocol: the table, its label, its sources, and about it.

Words used here:

- *family*: a kind of training table, drawn from a seed (:mod:`.series`,
  :mod:`.windows`, :mod:`.plain`); a *variant* is the sub-kind one seed drew
  (a label task, a shipped data set, a generator);
- *trusted set*: clean rows of the same family and seed that are not in the
  table (other runs, other windows, other samples), the rows a regulator
  might hold back as known to be clean;
- *reading group*: the columns one detector read together at one place and
  time, by role (count, occupancy, speed, queue); traffic families name
  theirs so that attacks can plant physically inconsistent readings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from cityx.core import Task


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    """One reading group's columns by role (empty string: the table has none)."""

    count: str
    occupancy: str
    speed: str
    queue: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class TableMeta:
    """About a drawn table: where it came from and what an attack may use."""

    family: str
    variant: str
    task: Task
    features: tuple[str, ...]
    trusted: pd.DataFrame
    time_col: str | None = None
    readings: tuple[ReadingColumns, ...] = ()


DrawnTable = tuple[pd.DataFrame, str, tuple[str, ...], TableMeta]
Family = Callable[[int], DrawnTable]

__all__ = ["DrawnTable", "Family", "ReadingColumns", "TableMeta"]
