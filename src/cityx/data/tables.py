"""Reading data files and checking them against a submission's contract.

A *table* is a CSV or Parquet file of rows. Its *feature columns* must hold
numbers for every feature the input schema declares; the *label column*
holds the truth. Rows whose values break the schema's bounds or types are
*rejected*: counted and reported, never silently scored. Text where a
number belongs, NaNs, missing columns and unknown labels are errors that
name the file, the column and the first bad row (0-based, header excluded).
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.core import DataError, InputSchema, LabelledBatch, Level, OutputSpec, Problem, Task

_READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_EXAMPLES = 5


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; any failure is a one-line DataError."""
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"unsupported file type {path.suffix!r}", where=str(path), hint="use .csv or .parquet"
        )
    if not path.is_file():
        raise DataError("file not found", where=str(path))
    try:
        df = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for corrupt files
        raise DataError(f"cannot read {kind} file: {exc}", where=str(path)) from exc
    if df.empty:
        raise DataError("the file has no rows", where=str(path))
    return df


@dataclass(frozen=True, slots=True)
class TableInspection:
    """What checking a table against a schema found."""

    problems: tuple[Problem, ...]
    features: NDArray[np.float64] | None = None
    truth: NDArray[Any] | None = None
    rejected: NDArray[np.bool_] | None = None
    rejected_by_feature: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.level is Level.ERROR)


def inspect_table(
    df: pd.DataFrame, schema: InputSchema, outputs: OutputSpec, label_column: str, *, where: str
) -> TableInspection:
    """Check every column at once and collect all problems (no early exit)."""
    problems: list[Problem] = []
    columns = [str(c) for c in df.columns]
    missing = [n for n in (*schema.names, label_column) if n not in df.columns]
    for name in missing:
        close = difflib.get_close_matches(name, columns, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(Problem(f"{where}: column {name!r}", f"missing{hint}"))
    if missing:
        return TableInspection(tuple(problems))

    raw = df[list(schema.names)]
    numeric = raw.apply(pd.to_numeric, errors="coerce")
    was_text = numeric.isna() & raw.notna()
    for name in np.asarray(raw.columns)[was_text.any(axis=0).to_numpy()]:
        row = int(np.flatnonzero(was_text[name].to_numpy())[0])
        problems.append(
            Problem(
                f"{where}: column {name!r}",
                f"row {row} holds {raw[name].iloc[row]!r} where a number belongs",
            )
        )
    nan = raw.isna().to_numpy()
    for j in np.flatnonzero(nan.any(axis=0)):
        rows = np.flatnonzero(nan[:, j])
        problems.append(
            Problem(
                f"{where}: column {schema.names[j]!r}",
                f"{rows.size} empty or NaN value(s), first at row {int(rows[0])}",
            )
        )

    truth = _truth(df[label_column], outputs, f"{where}: column {label_column!r}", problems)
    if problems:
        return TableInspection(tuple(problems))

    features = numeric.to_numpy(dtype=np.float64)
    violations = schema.violations(features)
    rejected = violations.bad_rows
    by_feature = violations.count_by_feature(schema.names)
    if rejected.any():
        detail = ", ".join(f"{k}: {v}" for k, v in by_feature.items())
        problems.append(
            Problem(
                where,
                f"{int(rejected.sum())} row(s) break the declared bounds or types ({detail}); "
                "they are reported and not scored",
                Level.WARNING,
            )
        )
    return TableInspection(tuple(problems), features, truth, rejected, by_feature)


def _truth(
    column: pd.Series[Any], outputs: OutputSpec, where: str, problems: list[Problem]
) -> NDArray[Any] | None:
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        problems.append(Problem(where, f"the label is empty at row {row}"))
        return None
    if outputs.task is Task.CLASSIFICATION:
        labels = column.astype(str).to_numpy()
        unknown = sorted(set(np.unique(labels)) - set(outputs.labels))
        if unknown:
            problems.append(
                Problem(
                    where, f"labels {unknown[:5]} are not among the declared {list(outputs.labels)}"
                )
            )
            return None
        return labels
    values = pd.to_numeric(column, errors="coerce")
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        problems.append(Problem(where, f"row {row} holds {column.iloc[row]!r}, not a number"))
        return None
    return values.to_numpy(dtype=np.float64)


def labelled_batch(
    path: Path, schema: InputSchema, outputs: OutputSpec, label_column: str
) -> LabelledBatch:
    """Read ``path`` into a batch for scoring; raise DataError on any error."""
    df = read_table(path)
    found = inspect_table(df, schema, outputs, label_column, where=str(path))
    if found.errors:
        first = found.errors[0]
        more = f" (and {len(found.errors) - 1} more problem(s))" if len(found.errors) > 1 else ""
        raise DataError(f"{first.message}{more}", where=first.where)
    if found.features is None or found.truth is None or found.rejected is None:
        raise DataError("could not be checked against the input schema", where=str(path))
    keep = ~found.rejected
    examples = tuple(
        {"row": int(i), **{n: _plain(df[n].iloc[i]) for n in schema.names}}
        for i in np.flatnonzero(found.rejected)[:_EXAMPLES]
    )
    return LabelledBatch(
        features=np.ascontiguousarray(found.features[keep]),
        truth=found.truth[keep],
        source=str(path),
        rejected_rows=int(found.rejected.sum()),
        rejected_by_feature=found.rejected_by_feature,
        rejected_examples=examples,
    )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
