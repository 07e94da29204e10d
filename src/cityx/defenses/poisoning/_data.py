"""The training table as the detectors see it.

Words used here:

- *features*: the numeric columns that describe traffic (not the label,
  the source columns or a run's identity such as seed or demand);
- *robust z*: ``(x - median) / (1.4826 * MAD)``, a z-score that a few
  poisoned rows cannot shift (the median and the median absolute deviation
  have a 50 % breakdown point), so thresholds need no poison rate;
- *z* of a feature: the robust z of its logarithm (``log1p``) when it is never
  negative, since counts, occupancies and queues are skewed and their tails
  would otherwise pass for outliers;
- a *discrete* feature takes at most :data:`DISCRETE_LEVELS` values (a flag, a
  lane count): its robust z is meaningless (a median absolute deviation of
  nearly 0 turns every other value into an outlier), so it is standardised
  plainly, and the outlier detectors read only the *continuous* ones (``zc``);
- *series*: the rows of one source in one run, in time order; *run*: the
  rows sharing the run columns (scenario, seed, demand, controller);
- *task*: ``regression`` when the label is numeric with more than
  :data:`REGRESSION_LEVELS` distinct values (a delay, a flow), else
  ``classification``. A regression label keeps its values (``target``) and
  is also cut into :data:`TARGET_BINS` quantile bins (``y``), so what counts
  rows per class (folds, per-class outliers) works for both;
- *declared bounds*: the physical range the submission's manifest gives a
  feature (``min``/``max``); a reading outside it is impossible by the
  vendor's own account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.core import DataError, Task
from cityx.data.training import ID_COLUMNS, RUN_COLUMNS, feature_columns, time_column

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
# A declared reading: its role (count, occupancy, speed, ...) and its group (the detector
# window it belongs to; "" to take the group from the name).
Reading = tuple[str, str]


def robust_scale(values: FloatArray, axis: int = 0) -> FloatArray:
    """The robust spread of ``values`` along ``axis`` (kept as a length-1 axis)."""
    med = np.median(values, axis=axis, keepdims=True)
    mad = 1.4826 * np.median(np.abs(values - med), axis=axis, keepdims=True)
    # Zero-inflated readings (empty roads, residuals that are mostly exactly 0) have a MAD
    # of nearly nothing; the 10-90 % spread, scaled to a normal's, is still robust there.
    q10, q90 = np.percentile(values, [10, 90], axis=axis, keepdims=True)
    spread = (q90 - q10) / 2.5631
    std = np.std(values, axis=axis, keepdims=True)
    scale = np.where(mad >= 0.1 * std, mad, np.maximum(mad, spread))
    # A feature constant for most rows: fall back on the sd, then on 1.
    return np.asarray(np.where(scale > 1e-9, scale, np.where(std > 1e-9, std, 1.0)))


def robust_z(values: FloatArray, axis: int = 0) -> FloatArray:
    """Robust z-scores along ``axis`` (see the module docstring)."""
    med = np.median(values, axis=axis, keepdims=True)
    return np.asarray((values - med) / robust_scale(values, axis), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class AuditData:
    """Arrays the detectors share; built once by :func:`prepare`."""

    features: tuple[str, ...]
    x: FloatArray  # raw feature values (n, d)
    z: FloatArray  # per-feature robust z (n, d); discrete features plainly standardised
    zc: FloatArray  # the continuous features' z (n, d'), what outlier detectors read
    y: IntArray  # class code per row
    classes: tuple[str, ...]
    source: IntArray  # source code per row (all 0 without a source column)
    sources: tuple[str, ...]
    series: IntArray | None  # series code per row, None without a time column
    order: IntArray | None  # row positions sorted by (series, time)
    moment: IntArray | None  # code of (run, time) per row: rows observed together
    site: IntArray | None  # code of (run, time, first source column): same intersection
    time: FloatArray | None = None  # the time column's value per row
    # Declared bounds per feature (-inf/inf where none); None when nothing was declared.
    low: FloatArray | None = None
    high: FloatArray | None = None
    ignored: tuple[str, ...] = ()  # non-numeric columns left out of the audit
    # Rows other detectors already doubt (past a rule or the label check): detectors that
    # compare a row with its neighbours leave them out of the comparison.
    doubted: NDArray[np.bool_] | None = None
    task: Task = Task.CLASSIFICATION
    target: FloatArray | None = None  # a regression label's values
    # Rows from this position on are the trusted set (known clean), None without one.
    trusted_from: int | None = None
    # Declared readings by feature name: (role, group), from a submission's manifest.
    readings: Mapping[str, Reading] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.y.size)

    @property
    def regression(self) -> bool:
        return self.task is Task.REGRESSION


def _codes(table: pd.DataFrame, cols: Sequence[str]) -> IntArray:
    if not cols:
        return np.zeros(len(table), dtype=np.int64)
    return np.asarray(
        pd.MultiIndex.from_frame(table[list(cols)].astype(str)).factorize()[0], dtype=np.int64
    )


Bounds = Mapping[str, tuple[float | None, float | None]]
DISCRETE_LEVELS = 10
REGRESSION_LEVELS = 20
TARGET_BINS = 5
# A text column whose values are numbers this often is a numeric column with bad cells.
NUMERIC_SHARE = 0.9


def prepare(
    table: pd.DataFrame,
    *,
    label: str,
    source_cols: Sequence[str] = (),
    bounds: Bounds | None = None,
) -> AuditData:
    """Check the table and build the arrays; bad input is one clear DataError.

    ``bounds`` are declared bounds by feature name (see the module docstring).
    """
    if label not in table.columns:
        raise DataError(
            f"no label column {label!r}; columns are: {', '.join(map(str, table.columns))}",
            where="--label",
        )
    missing = [c for c in source_cols if c not in table.columns]
    if missing:
        raise DataError(f"no source column {', '.join(missing)}", where="--source-col")
    bad_labels = int(table[label].isna().sum())
    if bad_labels:
        raise DataError(f"{bad_labels} rows have no label", where=f"column {label}")
    ignored = _text_columns(table, label, source_cols)
    features = tuple(feature_columns(table, label, source_cols))
    if not features:
        raise DataError("no numeric feature column to audit", where="data")
    x = table[list(features)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        cols = [features[j] for j in np.flatnonzero(bad.any(axis=0))]
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataError(
            f"{rows.size} rows have NaN or infinite values (first at row {rows[0]}) in "
            f"{', '.join(cols)}",
            where="data",
            hint="drop or repair them before the audit",
        )
    task, target, y_codes, classes = _label(table[label])
    source = _codes(table, source_cols)
    sources = (
        tuple(
            "/".join(map(str, k)) if isinstance(k, tuple) else str(k)
            for k in pd.MultiIndex.from_frame(table[list(source_cols)].astype(str)).factorize()[1]
        )
        if source_cols
        else ("all",)
    )
    time_col = time_column(table)
    run_cols = [c for c in RUN_COLUMNS if c in table.columns]
    series = order = moment = site = t = None
    if time_col is not None:
        series = _codes(table, [*run_cols, *source_cols])
        t = table[time_col].to_numpy(dtype=np.float64)
        order = np.lexsort((t, series)).astype(np.int64)
        moment = _codes(table, [*run_cols, time_col])
        site = _codes(table, [*run_cols, time_col, *source_cols[:1]]) if source_cols else moment
    z = robust_z(np.where((x >= 0).all(axis=0), np.log1p(np.maximum(x, 0.0)), x))
    discrete = np.array([np.unique(x[:, j]).size <= DISCRETE_LEVELS for j in range(x.shape[1])])
    if discrete.any():
        part = x[:, discrete]
        std = part.std(axis=0)
        z[:, discrete] = (part - part.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)
    low = high = None
    if bounds:
        low = np.array([_bound(bounds, f, 0, -np.inf) for f in features])
        high = np.array([_bound(bounds, f, 1, np.inf) for f in features])
    return AuditData(
        features=features,
        x=x,
        z=z,
        zc=z[:, ~discrete],
        y=y_codes,
        classes=classes,
        source=source,
        sources=sources,
        series=series,
        order=order,
        moment=moment,
        site=site,
        time=t,
        low=low,
        high=high,
        ignored=ignored,
        task=task,
        target=target,
    )


def _label(values: pd.Series) -> tuple[Task, FloatArray | None, IntArray, tuple[str, ...]]:
    """The task, a regression label's values, and class codes (bins for regression)."""
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > REGRESSION_LEVELS:
        target = values.to_numpy(dtype=np.float64)
        if not np.isfinite(target).all():
            raise DataError("the label holds infinite values", where=f"column {values.name}")
        # Bins by rank, so ties and skew cannot leave a bin empty.
        ranks = pd.Series(target).rank(method="first").to_numpy()
        bins = np.minimum((ranks - 1) * TARGET_BINS // len(target), TARGET_BINS - 1)
        names = tuple(f"q{i + 1}" for i in range(TARGET_BINS))
        return Task.REGRESSION, target, bins.astype(np.int64), names
    codes, classes = pd.factorize(values.astype(str), sort=True)
    return (
        Task.CLASSIFICATION,
        None,
        np.asarray(codes, dtype=np.int64),
        tuple(str(c) for c in classes),
    )


def _bound(bounds: Bounds, feature: str, side: int, default: float) -> float:
    value = bounds.get(feature, (None, None))[side]
    return default if value is None else float(value)


def _text_columns(table: pd.DataFrame, label: str, source_cols: Sequence[str]) -> tuple[str, ...]:
    """The non-numeric columns the audit leaves out; a numeric column with text is an error."""
    skip = {label, *source_cols, *ID_COLUMNS}
    found = []
    for column in table.columns:
        if column in skip or pd.api.types.is_numeric_dtype(table[column]):
            continue
        values = table[column].dropna()
        numbers = pd.to_numeric(values, errors="coerce")
        if len(values) and numbers.notna().mean() >= NUMERIC_SHARE:
            bad = values[numbers.isna()]
            raise DataError(
                f"column {column!r} holds numbers and {len(bad)} text value(s), the first "
                f"{bad.iloc[0]!r} at row {bad.index[0]}",
                where="data",
                hint="repair or remove those cells; the audit does not drop a column silently",
            )
        found.append(str(column))
    return tuple(found)
