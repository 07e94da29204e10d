"""Checking a worker's answer and turning it into a :class:`~cityx.core.Prediction`.

The worker runs vendor code, so its answer is checked here, in the parent:
one value per row; for a regressor, finite numbers; for a classifier,
labels among the manifest's declared *labels*, and *scores* (one column
per class, named by ``classes``) of the right shape. Non-finite scores and
scores that do not sum to one are left to the checks that measure them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import OutputSpec, Prediction, TargetOutputError, Task


def to_prediction(
    header: Mapping[str, Any],
    arrays: Mapping[str, NDArray[Any]],
    *,
    rows: int,
    spec: OutputSpec,
    where: str,
) -> Prediction:
    """The checked prediction for a batch of ``rows`` rows; TargetOutputError if it is wrong."""

    def wrong(message: str, hint: str | None = None) -> TargetOutputError:
        return TargetOutputError(message, where=where, hint=hint)

    values = arrays.get("values")
    if values is None:
        raise wrong("the model answered without values")
    if values.ndim != 1 or values.shape[0] != rows:
        raise wrong(
            f"predict returned values of shape {values.shape} for {rows} rows",
            hint="return one label or value per row",
        )
    if spec.task is Task.REGRESSION:
        if values.dtype.kind not in "biuf":
            raise wrong(f"a regression returned {values.dtype} values instead of numbers")
        numbers = values.astype(np.float64)
        bad = int(np.count_nonzero(~np.isfinite(numbers)))
        if bad:
            raise wrong(f"predict returned {bad} non-finite values (NaN or infinity) of {rows}")
        return Prediction(numbers)

    labels = values.astype(str)
    _check_known(labels, spec, wrong)
    scores = arrays.get("scores")
    classes = tuple(str(c) for c in header.get("classes") or ())
    if scores is None:
        return Prediction(labels)
    if scores.dtype.kind not in "biuf":
        raise wrong(f"predict returned {scores.dtype} scores instead of numbers")
    if scores.ndim != 2 or scores.shape != (rows, len(classes)):
        raise wrong(
            f"predict returned scores of shape {scores.shape} for {rows} rows and "
            f"{len(classes)} classes"
        )
    if len(set(classes)) != len(classes):
        raise wrong(f"the model's classes repeat: {', '.join(classes)}")
    _check_known(np.asarray(classes, dtype=str), spec, wrong, what="classes")
    return Prediction(labels, scores.astype(np.float64, copy=False), classes)


def _check_known(
    labels: NDArray[np.str_], spec: OutputSpec, wrong: Any, what: str = "labels"
) -> None:
    known = np.isin(labels, np.asarray(spec.labels, dtype=str))
    if known.all():
        return
    unexpected = np.unique(labels[~known])
    shown = ", ".join(repr(str(u)) for u in unexpected[:5])
    more = f" and {unexpected.size - 5} more" if unexpected.size > 5 else ""
    raise wrong(
        f"the model answered {what} the manifest does not declare: {shown}{more}",
        hint=f"outputs.labels declares {', '.join(spec.labels)}; make them match the model's",
    )


__all__ = ["to_prediction"]
