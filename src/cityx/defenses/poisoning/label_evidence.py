"""Evidence that a row's label is wrong: neighbours, out-of-fold models, the next interval.

- ``label_consistency``: share of a row's nearest neighbours in feature
  space that carry another label (flips sit among rows of another class);
- ``confident_learning``: out-of-fold class probabilities from a gradient-
  boosted model; a row is a *label issue* when its own class's probability
  is below that class's average self-confidence while another class's is
  above its own (Northcutt et al., 2021);
- ``next_interval``: for a label about the next interval (``congestion_next``),
  whether it agrees with what that interval then measured: the label as
  banded by the one next-interval reading that predicts it best (out of
  fold; applicable only when that reading predicts it well). One reading
  cannot learn a multi-feature trigger, so relabelled trigger windows and
  flipped labels both disagree with it.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from ._data import AuditData, FloatArray
from .scores import DetectorScores, not_applicable


def label_consistency(data: AuditData, *, k: int = 15) -> DetectorScores:
    if len(data.classes) < 2:
        return not_applicable("label_consistency", data.n, "one class")
    k = min(k, data.n - 1)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(data.z).kneighbors(data.z)
    neighbours = idx[:, 1:]
    disagree = (data.y[neighbours] != data.y[:, None]).mean(axis=1)
    # Flag when at least 80 % of neighbours disagree: a boundary row has about half.
    return DetectorScores("label_consistency", disagree / 0.8)


def out_of_fold_proba(data: AuditData, *, seed: int, folds: int = 3) -> FloatArray:
    """Each row's class probabilities from a model that never saw it."""
    counts = np.bincount(data.y)
    folds = int(max(2, min(folds, counts.min())))
    proba = np.zeros((data.n, len(data.classes)))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed % 2**31)
    # One OpenMP thread: on a shared 2-core machine, busy-waiting OpenMP teams slow the
    # gradient boosting down by an order of magnitude when another process holds a core.
    with threadpool_limits(limits=1, user_api="openmp"):
        for train, test in splitter.split(data.z, data.y):
            model = HistGradientBoostingClassifier(
                max_iter=50, learning_rate=0.15, max_leaf_nodes=15, random_state=seed % 2**31
            )
            model.fit(data.z[train], data.y[train])
            part = np.zeros((test.size, len(data.classes)))
            part[:, model.classes_] = model.predict_proba(data.z[test])
            proba[test] = part
    return proba


def confident_learning(data: AuditData, proba: FloatArray) -> DetectorScores:
    k = len(data.classes)
    if k < 2:
        return not_applicable("confident_learning", data.n, "one class")
    own = proba[np.arange(data.n), data.y]
    # Per-class threshold: the average probability of the class among rows labelled with it.
    thresholds = np.array(
        [proba[data.y == j, j].mean() if (data.y == j).any() else 1.0 for j in range(k)]
    )
    above = proba >= thresholds[None, :]
    above[np.arange(data.n), data.y] = False
    other = np.where(above, proba, -1.0).max(axis=1)
    issue = (own < thresholds[data.y]) & (other >= 0)
    # Level: 1 at the issue boundary, growing with the margin of the other class.
    margin = np.clip(other - own, 0.0, 1.0)
    level = np.where(issue, 1.0 + margin, np.clip(1.0 - (thresholds[data.y] - own), 0, 0.99))
    level = np.where(issue & (margin < 0.2), 0.99, level)  # near-ties are not evidence
    return DetectorScores("confident_learning", level)


# The next-interval reading must explain the label this much better than chance (Cohen's
# kappa, out of fold) before disagreeing with it is evidence. On the SUMO tables a label
# about the same interval reaches 0.6 through persistence alone, the next-interval label
# 1.0 clean and 0.78 with 10 % of its labels flipped. Chance agreement is taken from the
# label's own class mix.
NEXT_KAPPA = 0.7


def next_interval(data: AuditData, *, seed: int, folds: int = 3) -> DetectorScores:
    name = "next_interval"
    if data.order is None or data.series is None or data.time is None:
        return not_applicable(name, data.n, "no time column")
    s = data.series[data.order]
    t = data.time[data.order]
    gaps = np.diff(t)[s[:-1] == s[1:]]
    if gaps.size == 0:
        return not_applicable(name, data.n, "no series with two intervals")
    # The interval: the commonest step within a series; a row whose next one is missing
    # has nothing to be checked against.
    steps, seen = np.unique(gaps, return_counts=True)
    step = steps[seen.argmax()]
    has_next = np.r_[(s[:-1] == s[1:]) & np.isclose(np.diff(t), step), False]
    rows = data.order[has_next]
    nxt = data.order[np.flatnonzero(has_next) + 1]
    y = data.y[rows]
    k = len(data.classes)
    counts = np.bincount(y, minlength=k)
    if rows.size < 50 or (counts > 0).sum() < 2:
        return not_applicable(name, data.n, "too few rows with a next interval")
    folds = int(max(2, min(folds, counts[counts > 0].min())))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed % 2**31)
    split = list(splitter.split(rows, y))
    best: tuple[float, int, FloatArray] | None = None
    expected = (counts / counts.sum()) ** 2
    for j in range(data.x.shape[1]):
        feature = data.x[nxt, j : j + 1]
        proba = np.zeros((rows.size, k))
        for train, test in split:
            # Bands of one reading: a few leaves, each big enough not to memorise poison.
            tree = DecisionTreeClassifier(
                max_leaf_nodes=2 * k, min_samples_leaf=max(10, rows.size // 200), random_state=0
            )
            tree.fit(feature[train], y[train])
            proba[test[:, None], tree.classes_[None, :]] = tree.predict_proba(feature[test])
        agree = float((proba.argmax(axis=1) == y).mean())
        chance = float(expected.sum())
        kappa = (agree - chance) / max(1.0 - chance, 1e-9)
        if best is None or kappa > best[0]:
            best = (kappa, j, proba)
    assert best is not None
    kappa, j, proba = best
    if kappa < NEXT_KAPPA:
        return not_applicable(
            name, data.n, f"no next-interval reading explains the label (best kappa {kappa:.2f})"
        )
    level = np.zeros(data.n)
    # 1.0 when the label's own band probability is one half; 2.0 when it is nil.
    level[rows] = 2.0 * (1.0 - proba[np.arange(rows.size), y])
    checked = np.zeros(data.n, dtype=bool)
    checked[rows] = True
    return DetectorScores(
        name,
        level,
        note=f"label banded by the next {data.features[j]} (kappa {kappa:.2f})",
        checked=checked,
    )


__all__ = [
    "NEXT_KAPPA",
    "confident_learning",
    "label_consistency",
    "next_interval",
    "out_of_fold_proba",
]
