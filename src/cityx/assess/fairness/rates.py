"""Per-group confusion counts and rates, for every group and resample at once.

For a binary view of a classifier (one *positive* label against the rest),
each row falls in one *cell*: true negative, false positive, false negative
or true positive. Counting cells per group with one ``np.bincount`` over
``group * 4 + cell`` gives a (..., g, 4) array; a leading axis of bootstrap
resamples costs no Python loop. The *rates* are:

- TPR (recall) = TP / P, FNR = FN / P, with P = TP + FN the true positives;
- TNR = TN / N, FPR = FP / N, with N = TN + FP the true negatives;
- PPV (precision) = TP / (TP + FP), FDR = FP / (TP + FP);
- NPV = TN / (TN + FN), FOR = FN / (TN + FN);
- selection rate = (TP + FP) / n, accuracy = (TP + TN) / n, base rate = P / n.

A rate whose denominator is zero is *undefined* (NaN here, ``None`` in
JSON), never 0. For a regressor the per-group sums of |r|, r² and r (r the
residual, predicted minus true) give MAE, RMSE and mean residual.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

TN, FP, FN, TP = 0, 1, 2, 3
RATES = (
    "tpr",
    "tnr",
    "ppv",
    "npv",
    "fpr",
    "fnr",
    "fdr",
    "for",
    "selection_rate",
    "accuracy",
    "base_rate",
)
REGRESSION_METRICS = ("mae", "rmse", "mean_residual")


def cell_codes(
    groups: NDArray[np.int64],
    truth_positive: NDArray[np.bool_],
    predicted_positive: NDArray[np.bool_],
) -> NDArray[np.int64]:
    """One code per row: ``group * 4 + cell``."""
    return groups * 4 + truth_positive.astype(np.int64) * 2 + predicted_positive.astype(np.int64)


def confusion_by_group(codes: NDArray[np.int64], g: int) -> NDArray[np.int64]:
    """Cell counts per group for rows of ``codes`` (shape (..., n)): (..., g, 4)."""
    flat = codes.reshape(-1, codes.shape[-1])
    width = g * 4
    offset = np.arange(flat.shape[0], dtype=np.int64)[:, None] * width
    counts = np.bincount((flat + offset).ravel(), minlength=flat.shape[0] * width)
    return counts.reshape((*codes.shape[:-1], g, 4))


def rates_from_counts(counts: NDArray[np.int64]) -> NDArray[np.float64]:
    """The rates of :data:`RATES` from (..., g, 4) counts: (..., g, len(RATES))."""
    c = counts.astype(np.float64)
    tn, fp, fn, tp = c[..., TN], c[..., FP], c[..., FN], c[..., TP]
    pos, neg, pp, pn = tp + fn, tn + fp, tp + fp, tn + fn
    n = pos + neg
    numerators = (tp, tn, tp, tn, fp, fn, fp, fn, pp, tp + tn, pos)
    denominators = (pos, neg, pp, pn, neg, pos, pp, pn, n, n, n)
    num = np.stack(numerators, axis=-1)
    den = np.stack(denominators, axis=-1)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def residual_sums(
    groups: NDArray[np.int64], residual: NDArray[np.float64], g: int
) -> NDArray[np.float64]:
    """Per group: n, sum |r|, sum r², sum r, shape (g, 4)."""
    return np.stack(
        [
            np.bincount(groups, minlength=g).astype(np.float64),
            np.bincount(groups, weights=np.abs(residual), minlength=g),
            np.bincount(groups, weights=residual * residual, minlength=g),
            np.bincount(groups, weights=residual, minlength=g),
        ],
        axis=-1,
    )


def residual_sums_batched(
    groups: NDArray[np.int64], residual: NDArray[np.float64], g: int
) -> NDArray[np.float64]:
    """:func:`residual_sums` over rows of (b, n) arrays at once: (b, g, 4)."""
    b = groups.shape[0]
    keys = (groups + np.arange(b, dtype=np.int64)[:, None] * g).ravel()
    r = residual.ravel()
    size = b * g
    sums = [
        np.bincount(keys, minlength=size).astype(np.float64),
        np.bincount(keys, weights=np.abs(r), minlength=size),
        np.bincount(keys, weights=r * r, minlength=size),
        np.bincount(keys, weights=r, minlength=size),
    ]
    return np.stack([s.reshape(b, g) for s in sums], axis=-1)


def regression_from_sums(sums: NDArray[np.float64]) -> NDArray[np.float64]:
    """MAE, RMSE and mean residual from (..., g, 4) sums; NaN for an empty group."""
    n = sums[..., 0]
    out = np.full((*n.shape, 3), np.nan)
    ok = n > 0
    safe = np.where(ok, n, 1.0)
    out[..., 0] = np.where(ok, sums[..., 1] / safe, np.nan)
    out[..., 1] = np.where(ok, np.sqrt(sums[..., 2] / safe), np.nan)
    out[..., 2] = np.where(ok, sums[..., 3] / safe, np.nan)
    return out


def auc_by_group(
    groups: NDArray[np.int64], truth_positive: NDArray[np.bool_], score: NDArray[np.float64], g: int
) -> NDArray[np.float64]:
    """ROC AUC per group from mid-ranks within each group (Mann-Whitney U).

    NaN for a group without both classes.
    """
    order = np.lexsort((score, groups))
    sg, ss = groups[order], score[order]
    # Tie blocks: runs of equal (group, score); each member gets the block's mean rank.
    new_block = np.ones(sg.size, dtype=np.bool_)
    new_block[1:] = (sg[1:] != sg[:-1]) | (ss[1:] != ss[:-1])
    block = np.cumsum(new_block) - 1
    block_start = np.flatnonzero(new_block)
    block_size = np.diff(np.append(block_start, sg.size))
    group_start = np.searchsorted(sg, np.arange(g))
    mid_rank = (block_start - group_start[sg[block_start]]) + (block_size + 1) / 2.0
    ranks = np.empty(sg.size)
    ranks[order] = mid_rank[block]
    pos = np.bincount(groups, weights=truth_positive.astype(np.float64), minlength=g)
    total = np.bincount(groups, minlength=g).astype(np.float64)
    neg = total - pos
    rank_sum = np.bincount(groups, weights=np.where(truth_positive, ranks, 0.0), minlength=g)
    den = pos * neg
    out = np.full(g, np.nan)
    np.divide(rank_sum - pos * (pos + 1) / 2.0, den, out=out, where=den > 0)
    return out


def calibration_by_group(
    groups: NDArray[np.int64],
    truth_positive: NDArray[np.bool_],
    score: NDArray[np.float64],
    g: int,
    bins: int = 10,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per group: expected calibration error over equal-width score bins, and calibration gap.

    The gap is the mean score minus the base rate (calibration in the large).
    """
    b = np.clip((score * bins).astype(np.int64), 0, bins - 1)
    key = groups * bins + b
    size = g * bins
    n_cell = np.bincount(key, minlength=size).astype(np.float64)
    s_cell = np.bincount(key, weights=score, minlength=size)
    y_cell = np.bincount(key, weights=truth_positive.astype(np.float64), minlength=size)
    gap = np.abs(s_cell - y_cell).reshape(g, bins).sum(axis=1)
    n = n_cell.reshape(g, bins).sum(axis=1)
    ece = np.full(g, np.nan)
    np.divide(gap, n, out=ece, where=n > 0)
    drift = np.full(g, np.nan)
    np.divide(
        s_cell.reshape(g, bins).sum(axis=1) - y_cell.reshape(g, bins).sum(axis=1),
        n,
        out=drift,
        where=n > 0,
    )
    return ece, drift


__all__ = [
    "FN",
    "FP",
    "RATES",
    "REGRESSION_METRICS",
    "TN",
    "TP",
    "auc_by_group",
    "calibration_by_group",
    "cell_codes",
    "confusion_by_group",
    "rates_from_counts",
    "regression_from_sums",
    "residual_sums",
    "residual_sums_batched",
]
