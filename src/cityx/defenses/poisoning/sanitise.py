"""Sanitise and retrain: drop flagged rows, retrain, compare before and after.

*Accuracy* is measured on held-out clean rows; *attack success* on held-out
rows carrying the attack's trigger (the share predicted as the target
class), when the attack has one. A *robust* retrain also down-weights rows
by their suspicion score instead of only dropping the flagged ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cityx.core import Fields

from ._data import FloatArray


@dataclass(frozen=True, slots=True)
class RetrainComparison:
    accuracy_before: float
    accuracy_after: float
    attack_success_before: float | None
    attack_success_after: float | None
    rows_dropped: int
    # With suspicion scores: every row kept, suspicious ones down-weighted.
    accuracy_robust: float | None = None
    attack_success_robust: float | None = None

    def to_json(self) -> dict[str, float | int | None]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "accuracy_before": r(self.accuracy_before),
            "accuracy_after": r(self.accuracy_after),
            "accuracy_robust": r(self.accuracy_robust),
            "attack_success_before": r(self.attack_success_before),
            "attack_success_after": r(self.attack_success_after),
            "attack_success_robust": r(self.attack_success_robust),
            "rows_dropped": self.rows_dropped,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "sanitising") -> RetrainComparison:
        """The comparison as recorded: rounded to 4 decimals by :meth:`to_json`."""
        f = Fields.of(data, where)
        return cls(
            accuracy_before=f.number("accuracy_before"),
            accuracy_after=f.number("accuracy_after"),
            attack_success_before=f.number_or_null("attack_success_before"),
            attack_success_after=f.number_or_null("attack_success_after"),
            rows_dropped=f.integer("rows_dropped"),
            accuracy_robust=f.number_or_null("accuracy_robust"),
            attack_success_robust=f.number_or_null("attack_success_robust"),
        )


def sanitise(table: pd.DataFrame, flagged: np.ndarray) -> pd.DataFrame:
    """``table`` without its flagged rows (positions), index reset."""
    return table.loc[~np.asarray(flagged, dtype=bool)].reset_index(drop=True)


def robust_weights(scores: FloatArray) -> FloatArray:
    """Sample weights: 1 for unsuspicious rows, falling to 0 at twice the threshold."""
    return np.asarray(np.clip(2.0 - np.asarray(scores, dtype=np.float64), 0.0, 1.0))


def retrain_and_compare(
    train: pd.DataFrame,
    flagged: np.ndarray,
    *,
    label: str,
    features: list[str],
    test: pd.DataFrame,
    triggered: pd.DataFrame | None = None,
    target: str | None = None,
    scores: FloatArray | None = None,
    seed: int = 0,
) -> RetrainComparison:
    """Train the same model on poisoned and sanitised data; score both on clean test rows.

    With the audit's ``scores``, a third model keeps every row, weighted by
    :func:`robust_weights`.
    """
    # heavy: scikit-learn loads only when a reference model is trained
    from sklearn.ensemble import HistGradientBoostingClassifier

    def fit(
        frame: pd.DataFrame, weights: FloatArray | None = None
    ) -> HistGradientBoostingClassifier:
        model = HistGradientBoostingClassifier(max_iter=100, random_state=seed % 2**31)
        return model.fit(
            frame[features].to_numpy(float),
            frame[label].astype(str).to_numpy(),
            sample_weight=weights,
        )

    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # One OpenMP thread: robust to a shared machine (see audit._run_detectors).
    with threadpool_limits(limits=1, user_api="openmp"):
        before, after = fit(train), fit(sanitise(train, flagged))
        robust = fit(train, robust_weights(scores)) if scores is not None else None
    x_test, y_test = test[features].to_numpy(float), test[label].astype(str).to_numpy()

    def success(model: HistGradientBoostingClassifier) -> float | None:
        if triggered is None or target is None or triggered.empty:
            return None
        return float((model.predict(triggered[features].to_numpy(float)) == target).mean())

    def accuracy(model: HistGradientBoostingClassifier) -> float:
        return float((model.predict(x_test) == y_test).mean())

    return RetrainComparison(
        accuracy_before=accuracy(before),
        accuracy_after=accuracy(after),
        attack_success_before=success(before),
        attack_success_after=success(after),
        rows_dropped=int(np.asarray(flagged).sum()),
        accuracy_robust=accuracy(robust) if robust is not None else None,
        attack_success_robust=success(robust) if robust is not None else None,
    )
