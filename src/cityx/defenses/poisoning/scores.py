"""A detector's scores: every row's level against the detector's own threshold.

A *level* of 1.0 means "at the threshold" for every detector, so the
audit's ensemble can compare them. Thresholds are robust z-scores (see
:mod:`._data`) or, for confident learning, per-class average confidences:
none needs the poison rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._data import FloatArray, robust_z

Z_LIMIT = 4.5  # robust z: 1 in ~30,000 clean rows under normality, more under heavy tails


@dataclass(frozen=True, slots=True)
class DetectorScores:
    """One detector's verdict on every row; ``level`` >= 1 means flagged."""

    name: str
    level: FloatArray
    applicable: bool = True
    note: str = ""
    checked: np.ndarray | None = None  # rows the detector could judge, when not all
    # Patterns the detector found but could not tell from natural traffic: no row is
    # flagged for them, and the audit says what they are.
    candidates: tuple[str, ...] = ()

    @property
    def flagged(self) -> np.ndarray:
        return self.level >= 1.0


def not_applicable(name: str, n: int, note: str) -> DetectorScores:
    return DetectorScores(name, np.zeros(n), applicable=False, note=note)


def upper_z(score: FloatArray, groups: np.ndarray | None = None) -> FloatArray:
    """Robust z of ``score`` (within each group), negative side cut at 0."""
    if groups is None:
        return np.maximum(robust_z(score[:, None])[:, 0], 0.0)
    out = np.zeros_like(score)
    for g in np.unique(groups):
        members = groups == g
        out[members] = np.maximum(robust_z(score[members][:, None])[:, 0], 0.0)
    return out


__all__ = ["Z_LIMIT", "DetectorScores", "not_applicable", "upper_z"]
