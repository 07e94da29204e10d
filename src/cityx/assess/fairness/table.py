"""Group fairness of a predictor on a data table.

The *table* holds the model's input columns, the true label and the
sensitive columns; the sensitive columns are read beside the inputs and
are never sent to the model unless the model declares them as inputs.
Rows that break the input schema are left out of both, and counted.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from cityx.core import DataError, Predictor, Task, stream
from cityx.data import inspect_table, read_table
from cityx.submissions import open_submission

from .groups import encode_groups
from .summary import MIN_GROUP, GroupFairness, classification_fairness, regression_fairness


def require_columns(df: pd.DataFrame, names: Sequence[str], *, what: str, where: str) -> None:
    """DataError naming the first missing column, with the closest match."""
    columns = [str(c) for c in df.columns]
    for name in names:
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"columns: {', '.join(columns[:12])}"
            raise DataError(f"{what} column {name!r} is missing", where=where, hint=hint)


def table_fairness(
    predictor: Predictor,
    df: pd.DataFrame,
    *,
    label: str,
    sensitive: Sequence[str],
    positive: str | None = None,
    bootstrap_n: int = 0,
    seed: int = 0,
    min_group: int = MIN_GROUP,
    where: str = "data",
) -> GroupFairness:
    """Score ``df`` with ``predictor`` in one batch and measure fairness by ``sensitive``."""
    require_columns(df, sensitive, what="sensitive", where=where)
    require_columns(df, [label], what="label", where=where)
    found = inspect_table(df, predictor.schema, predictor.outputs, label, where=where)
    if found.errors:
        first = found.errors[0]
        raise DataError(first.message, where=first.where)
    if found.features is None or found.truth is None or found.rejected is None:
        raise DataError("could not be checked against the input schema", where=where)
    keep = ~found.rejected
    groups = encode_groups(
        {name: df[name].to_numpy()[keep] for name in sensitive}, rows=int(keep.sum()), where=where
    )
    labels = predictor.outputs.labels
    if predictor.outputs.task is Task.CLASSIFICATION:
        if positive is None and len(labels) == 2:
            positive = labels[1]
        if positive is not None and positive not in labels:
            raise DataError(
                f"positive label {positive!r} is not one of the model's labels {list(labels)}",
                where="--positive",
            )
    prediction = predictor.predict(np.ascontiguousarray(found.features[keep]))
    rng = stream(seed, "fairness", "bootstrap")
    skipped = (
        (
            f"{int(found.rejected.sum())} row(s) break the model's declared bounds or types "
            "and were left out",
        )
        if found.rejected.any()
        else ()
    )
    if predictor.outputs.task is Task.REGRESSION:
        result = regression_fairness(
            found.truth[keep],
            prediction.values,
            groups,
            bootstrap_n=bootstrap_n,
            rng=rng,
            seed=seed,
            min_group=min_group,
        )
    else:
        truth = found.truth[keep]
        scores = None
        if prediction.scores is not None and positive in prediction.classes:
            scores = prediction.scores[:, prediction.classes.index(str(positive))]
        result = classification_fairness(
            truth,
            prediction.values,
            groups,
            positive=positive,
            scores=scores,
            bootstrap_n=bootstrap_n,
            rng=rng,
            seed=seed,
            min_group=min_group,
        )
    if skipped:
        result = _with_warnings(result, skipped)
    return result


def _with_warnings(result: GroupFairness, more: tuple[str, ...]) -> GroupFairness:
    return replace(result, warnings=(*more, *result.warnings))


def read_data(path: Path) -> pd.DataFrame:
    """A CSV or Parquet table, via :func:`cityx.data.read_table`."""
    return read_table(Path(path))


def group_fairness(
    submission: str | Path,
    data: str | Path,
    *,
    sensitive: Sequence[str],
    label: str | None = None,
    positive: str | None = None,
    bootstrap_n: int = 1000,
    seed: int = 0,
    min_group: int = MIN_GROUP,
    trust_code: bool = False,
) -> GroupFairness:
    """Fairness of a submitted predictor on ``data`` by its ``sensitive`` columns.

    The submission opens with its artifact's digest checked; ``label``
    defaults to the manifest's label column.
    """
    opened = open_submission(submission)
    data = Path(data)
    df = read_data(data)
    with opened.predictor(trust_code=trust_code) as predictor:
        return table_fairness(
            predictor,
            df,
            label=label or opened.manifest.outputs.label_column,
            sensitive=sensitive,
            positive=positive,
            bootstrap_n=bootstrap_n,
            seed=seed,
            min_group=min_group,
            where=str(data),
        )


__all__ = ["group_fairness", "read_data", "require_columns", "table_fairness"]
