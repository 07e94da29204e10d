"""Models with the scikit-learn calling convention.

An *estimator* here is any object with ``predict(batch)``, and optionally
``predict_proba(batch)`` with ``classes_`` naming its columns: a fitted
scikit-learn model loaded from skops or a pickle, or the object a vendor's
entry point returns. If it was fitted on a table with column names
(``feature_names_in_``), it is called with a pandas table whose columns
carry the manifest's feature names, so the names, not the order, decide
which column is which.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cityx.core import FloatArray, TargetError, Task

from .describe import Description, NotDescribable
from .describe_estimators import describe_estimator
from .model import LoadRequest, RawPrediction, TargetModel, brief, label_array, value_array


class EstimatorModel(TargetModel):
    """Shared ``predict`` of the skops, pickle and entry-point adapters."""

    def __init__(self, estimator: Any, request: LoadRequest, *, what: str) -> None:
        if not callable(getattr(estimator, "predict", None)):
            raise request.load_error(
                f"the {what} gives a {type(estimator).__name__}, which has no predict(batch) method"
            )
        n_in = getattr(estimator, "n_features_in_", None)
        request.check_feature_count(n_in if isinstance(n_in, int) else None, what=what)
        self._estimator = estimator
        self._request = request
        self._columns = _fitted_columns(estimator, request, what)
        proba = getattr(estimator, "predict_proba", None)
        self._proba = proba if request.task is Task.CLASSIFICATION and callable(proba) else None
        classes = getattr(estimator, "classes_", None)
        self._classes = tuple(label_array(classes).tolist()) if classes is not None else ()

    def classes(self) -> tuple[str, ...]:
        return self._classes if self._proba is not None else ()

    def describe(self) -> Description:
        if self._columns is not None and list(self._columns) != list(self._request.features):
            raise NotDescribable("the model reads its columns by name in another order")
        return describe_estimator(self._estimator, len(self._request.features))

    def predict(self, batch: FloatArray) -> RawPrediction:
        table = self._table(batch)
        values = self._estimator.predict(table)
        if self._request.task is Task.REGRESSION:
            return RawPrediction(value_array(values))
        labels = label_array(values)
        if self._proba is None:
            return RawPrediction(labels)
        scores = np.asarray(self._proba(table), dtype=np.float64)
        return RawPrediction(labels, scores, self._score_classes(scores))

    def _score_classes(self, scores: FloatArray) -> tuple[str, ...]:
        if self._classes:
            return self._classes
        # No classes_: the columns can only follow the manifest's labels.
        if scores.ndim == 2 and scores.shape[1] == len(self._request.labels):
            return self._request.labels
        raise TargetError(
            f"predict_proba gave {scores.shape[1] if scores.ndim == 2 else '?'} columns, the "
            f"model has no classes_ naming them and the manifest declares "
            f"{len(self._request.labels)} labels",
            where=self._request.where,
            hint="give the model a classes_ attribute listing its labels in column order",
        )

    def _table(self, batch: FloatArray) -> Any:
        if self._columns is None:
            return batch
        # heavy: the format's library loads in the worker, only for an artifact of it
        import pandas as pd

        frame = pd.DataFrame(batch, columns=list(self._request.features), copy=False)
        return frame[list(self._columns)]


def _fitted_columns(estimator: Any, request: LoadRequest, what: str) -> tuple[str, ...] | None:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return None
    try:
        columns = tuple(str(n) for n in names)
    except TypeError as exc:
        raise request.load_error(
            f"the {what} has unreadable feature_names_in_: {brief(exc)}"
        ) from exc
    missing = sorted(set(columns) - set(request.features))
    extra = sorted(set(request.features) - set(columns))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"it reads {', '.join(missing)}, which the manifest does not declare")
        if extra:
            parts.append(f"the manifest declares {', '.join(extra)}, which it never saw")
        raise request.load_error(
            f"the {what} was fitted on other features: {'; '.join(parts)}",
            hint="make [[inputs.features]] name the columns the model was fitted on",
        )
    return columns


__all__ = ["EstimatorModel"]
