"""Sanitise and retrain: drop flagged rows, retrain, compare before and after.

*Accuracy* is measured on held-out clean rows; *attack success* on held-out
rows carrying the attack's trigger (the share predicted as the target
class), when the attack has one. A *robust* retrain also down-weights rows
by their suspicion score instead of only dropping the flagged ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._data import FloatArray


@dataclass(frozen=True, slots=True)
class RetrainComparison:
    accuracy_before: float
    accuracy_after: float
    attack_success_before: float | None
    attack_success_after: float | None
    rows_dropped: int

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "accuracy_before": round(self.accuracy_before, 4),
            "accuracy_after": round(self.accuracy_after, 4),
            "attack_success_before": None
            if self.attack_success_before is None
            else round(self.attack_success_before, 4),
            "attack_success_after": None
            if self.attack_success_after is None
            else round(self.attack_success_after, 4),
            "rows_dropped": self.rows_dropped,
        }


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
    seed: int = 0,
) -> RetrainComparison:
    """Train the same model on poisoned and sanitised data; score both on clean test rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    def fit(frame: pd.DataFrame) -> HistGradientBoostingClassifier:
        model = HistGradientBoostingClassifier(max_iter=100, random_state=seed % 2**31)
        return model.fit(frame[features].to_numpy(float), frame[label].astype(str).to_numpy())

    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # One OpenMP thread: robust to a shared machine (see audit._run_detectors).
    with threadpool_limits(limits=1, user_api="openmp"):
        before, after = fit(train), fit(sanitise(train, flagged))
    x_test, y_test = test[features].to_numpy(float), test[label].astype(str).to_numpy()

    def success(model: HistGradientBoostingClassifier) -> float | None:
        if triggered is None or target is None or triggered.empty:
            return None
        return float((model.predict(triggered[features].to_numpy(float)) == target).mean())

    return RetrainComparison(
        accuracy_before=float((before.predict(x_test) == y_test).mean()),
        accuracy_after=float((after.predict(x_test) == y_test).mean()),
        attack_success_before=success(before),
        attack_success_after=success(after),
        rows_dropped=int(np.asarray(flagged).sum()),
    )
