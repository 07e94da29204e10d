"""The fidelity report card's measures: deletion against random, stability, agreement.

- *deletion*: the share of decisions that flip when a row's top-k attributed
  features are set to a background row's values, averaged over k = 1..d (an
  area under the curve); the same for k random features is the baseline an
  explanation must beat;
- *stability*: the Spearman rank correlation of |attributions| between each
  row and its nearest other row (features standardised);
- *agreement*: the mean Spearman rank correlation between two methods'
  |attributions| for the same rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from cityx.core import FloatArray


def deletion_curves(
    x: FloatArray,
    labels: NDArray[np.str_],
    phi: FloatArray,
    background: FloatArray,
    decide: Callable[[FloatArray], NDArray[np.str_]],
    rng: np.random.Generator,
) -> tuple[float | None, float | None]:
    """Mean share of decisions flipped as top-k (then random k) features go to background values."""
    n, d = x.shape
    if n == 0:
        return None, None
    ref = background[rng.integers(0, background.shape[0], size=n)]
    by_attr = np.argsort(-np.abs(phi), axis=1)
    by_chance = np.argsort(rng.random((n, d)), axis=1)

    def curve(order: NDArray[np.int64]) -> float:
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(d)[None, :].repeat(n, axis=0), axis=1)
        ks = np.arange(1, d + 1)
        gone = rank[:, None, :] < ks[None, :, None]  # rows x k x features
        points = np.where(gone, ref[:, None, :], x[:, None, :]).reshape(-1, d)
        flipped = decide(points).reshape(n, d) != labels[:, None]
        return float(flipped.mean())

    return curve(by_attr), curve(by_chance)


def _rank(a: FloatArray) -> FloatArray:
    return np.argsort(np.argsort(a, axis=-1), axis=-1).astype(np.float64)


def mean_rank_corr(a: FloatArray, b: FloatArray) -> float | None:
    """Mean Spearman correlation between matching rows of ``a`` and ``b``."""
    if a.shape[0] == 0 or a.shape[1] < 2:
        return None
    ra, rb = _rank(a), _rank(b)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    ok = den > 0
    if not ok.any():
        return None
    return float(((ra * rb).sum(axis=1)[ok] / den[ok]).mean())


def near_row_stability(x: FloatArray, phi: FloatArray) -> float | None:
    """Rank correlation of |attributions| between each row and its nearest other row."""
    n = x.shape[0]
    if n < 2:
        return None
    sd = x.std(axis=0)
    z = x / np.where(sd > 0, sd, 1.0)
    take = z[:300]
    dist = ((take[:, None, :] - z[None, :, :]) ** 2).sum(axis=2)
    dist[np.arange(take.shape[0]), np.arange(take.shape[0])] = np.inf
    near = np.argmin(dist, axis=1)
    return mean_rank_corr(np.abs(phi[: take.shape[0]]), np.abs(phi[near]))


__all__ = ["deletion_curves", "mean_rank_corr", "near_row_stability"]
