"""How well predicted probabilities match outcomes: ECE, Brier score, reliability table.

*ECE* (expected calibration error): over :data:`BINS` equal-width bins of
confidence, the share-weighted gap between mean confidence and the share of
choices that were right; a *reliability* table lists the bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cityx.core import InputError
from cityx.core.schema import FloatArray

BINS = 10


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    lo: float
    hi: float
    count: int
    confidence: float | None  # mean predicted P(right) in the bin
    right: float | None  # share right in the bin


@dataclass(frozen=True, slots=True)
class Reliability:
    """ECE, Brier score and the reliability table of predictions ``p`` against outcomes."""

    n: int
    ece: float
    brier: float
    base_rate: float
    bins: tuple[ReliabilityBin, ...]
    auc: float | None = None  # None when only one outcome occurs

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "ece": round(self.ece, 4),
            "brier": round(self.brier, 4),
            "auc": None if self.auc is None else round(self.auc, 4),
            "base_rate": round(self.base_rate, 4),
            "bins": [
                {
                    "range": [b.lo, b.hi],
                    "count": b.count,
                    "confidence": None if b.confidence is None else round(b.confidence, 4),
                    "right": None if b.right is None else round(b.right, 4),
                }
                for b in self.bins
            ],
        }


def reliability(
    p: FloatArray, right: Sequence[bool] | FloatArray, *, bins: int = BINS
) -> Reliability:
    """Equal-width bins of ``p``; ECE = sum over bins of share * |mean p - share right|."""
    # scikit-learn only to fit and score, never to apply a calibration: imported here so that
    # a run under oversight does not pay for it.
    from sklearn.metrics import roc_auc_score

    probs = np.asarray(p, dtype=np.float64)
    y = np.asarray(right, dtype=np.float64)
    if probs.shape != y.shape or probs.size == 0:
        raise InputError(f"need as many outcomes as predictions, got {probs.size} and {y.size}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1], right=False), 0, bins - 1)
    table, ece = [], 0.0
    for k in range(bins):
        mask = which == k
        count = int(mask.sum())
        if count:
            conf, share = float(probs[mask].mean()), float(y[mask].mean())
            ece += count / probs.size * abs(conf - share)
            table.append(ReliabilityBin(float(edges[k]), float(edges[k + 1]), count, conf, share))
        else:
            table.append(ReliabilityBin(float(edges[k]), float(edges[k + 1]), 0, None, None))
    auc = float(roc_auc_score(y, probs)) if 0 < y.sum() < y.size else None
    return Reliability(
        n=int(probs.size),
        ece=ece,
        brier=float(np.mean((probs - y) ** 2)),
        base_rate=float(y.mean()),
        bins=tuple(table),
        auc=auc,
    )


def ece_interval(
    p: FloatArray, right: FloatArray, *, seed: int = 0, draws: int = 1000
) -> tuple[float, float]:
    """A 95 % bootstrap interval of the ECE (decision points resampled)."""
    rng = np.random.default_rng(seed)
    probs, y = np.asarray(p, dtype=np.float64), np.asarray(right, dtype=np.float64)
    values = []
    for _ in range(draws):
        k = rng.integers(0, probs.size, probs.size)
        values.append(_ece_only(probs[k], y[k]))
    lo, hi = np.quantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def _ece_only(probs: FloatArray, y: FloatArray, bins: int = BINS) -> float:
    which = np.clip(np.digitize(probs, np.linspace(0.0, 1.0, bins + 1)[1:-1]), 0, bins - 1)
    conf = np.bincount(which, weights=probs, minlength=bins)
    share = np.bincount(which, weights=y, minlength=bins)
    return float(np.abs(conf - share).sum() / probs.size)


__all__ = ["BINS", "Reliability", "ReliabilityBin", "ece_interval", "reliability"]
