"""The words of a training table that poisoning attacks and defences share.

- *features*: the numeric columns that describe traffic, not the label,
  the source columns (which sensor a row came from) or a run's identity;
- *run*: the rows sharing the run columns (scenario, seed, demand,
  controller); *time column*: the first of :data:`TIME_COLUMNS` present,
  which puts a source's rows of one run into a time series.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

# Columns that identify a row or a run rather than describe traffic.
ID_COLUMNS = frozenset(
    {"scenario", "seed", "demand", "controller", "interval_start_s", "time_of_day_s", "time_s"}
)
# Time-order columns, best first.
TIME_COLUMNS = ("interval_start_s", "time_s", "time_of_day_s")
RUN_COLUMNS = ("scenario", "seed", "demand", "controller")


def feature_columns(table: pd.DataFrame, label: str, source_cols: Sequence[str]) -> list[str]:
    """The numeric columns that describe traffic (not label, source or run identity)."""
    skip = {label, *source_cols, *ID_COLUMNS}
    return [
        str(c)
        for c in table.columns
        if c not in skip
        and pd.api.types.is_numeric_dtype(table[c])
        and not pd.api.types.is_bool_dtype(table[c])
    ]


def time_column(table: pd.DataFrame) -> str | None:
    """The column that orders a source's rows in time, or None."""
    return next((c for c in TIME_COLUMNS if c in table.columns), None)


__all__ = ["ID_COLUMNS", "RUN_COLUMNS", "TIME_COLUMNS", "feature_columns", "time_column"]
