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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from ._data import AuditData, FloatArray, IntArray, robust_scale, robust_z
from .scores import Z_LIMIT, DetectorScores, not_applicable


def label_consistency(data: AuditData, *, k: int = 15) -> DetectorScores:
    if len(data.classes) < 2:
        return not_applicable("label_consistency", data.n, "one class")
    k = min(k, data.n - 1)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(data.z).kneighbors(data.z)
    neighbours = idx[:, 1:]
    if data.target is not None:
        # A number: how far the label lies from its neighbours' median, in robust units.
        gap = data.target - np.median(data.target[neighbours], axis=1)
        return DetectorScores("label_consistency", np.abs(robust_z(gap[:, None])[:, 0]) / Z_LIMIT)
    disagree = (data.y[neighbours] != data.y[:, None]).mean(axis=1)
    # Flag when at least 80 % of neighbours disagree: a boundary row has about half.
    return DetectorScores("label_consistency", disagree / 0.8)


def out_of_fold_proba(data: AuditData, *, seed: int, folds: int = 3) -> FloatArray:
    """Each row's class probabilities from a model that never saw it.

    For a regression label: each row's prediction, one column.
    """
    if data.target is not None:
        return _out_of_fold_prediction(data, seed=seed, folds=folds)[:, None]
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


def _out_of_fold_prediction(data: AuditData, *, seed: int, folds: int) -> FloatArray:
    assert data.target is not None
    prediction = np.zeros(data.n)
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed % 2**31)
    with threadpool_limits(limits=1, user_api="openmp"):
        for train, test in splitter.split(data.z):
            model = HistGradientBoostingRegressor(
                max_iter=50, learning_rate=0.15, max_leaf_nodes=15, random_state=seed % 2**31
            )
            model.fit(data.z[train], data.target[train])
            prediction[test] = model.predict(data.z[test])
    return prediction


def confident_learning(data: AuditData, proba: FloatArray) -> DetectorScores:
    if data.target is not None:
        # A number has no classes to be confident in: its out-of-fold residual, robustly.
        residual = data.target - proba[:, 0]
        level = np.abs(robust_z(residual[:, None])[:, 0]) / Z_LIMIT
        return DetectorScores("confident_learning", level)
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


# The next-interval reading must explain the label (Cohen's kappa out of fold, chance from
# the label's own class mix; R² for a number) at least NEXT_KAPPA (NEXT_R2). Poison lowers
# that for an exact relation too (15 % of flips leave a kappa of about 0.6), so a weaker
# fit also counts when the next reading explains the label clearly better than the row's
# own readings do (by NEXT_LEAD): a label about the next interval, not about this one. On
# the SUMO tables a label about the same interval reaches 0.6 through persistence alone,
# and its own interval's readings explain it fully.
NEXT_KAPPA, NEXT_R2 = 0.7, 0.8
NEXT_FLOOR, NEXT_LEAD = 0.4, 0.1


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
    counts = np.bincount(data.y[rows], minlength=len(data.classes))
    if rows.size < 50 or (counts > 0).sum() < 2:
        return not_applicable(name, data.n, "too few rows with a next interval")
    fit = _fit_classes if data.target is None else _fit_values
    ahead = fit(data, rows, nxt, seed=seed, folds=folds)
    now = fit(data, rows, rows, seed=seed, folds=folds)
    bar = NEXT_KAPPA if data.target is None else NEXT_R2
    measure = "kappa" if data.target is None else "R²"
    lead = ahead.score >= NEXT_FLOOR and ahead.score >= now.score + NEXT_LEAD
    if ahead.score < bar and not lead:
        return not_applicable(
            name,
            data.n,
            f"no next-interval reading explains the label (best {measure} {ahead.score:.2f}, "
            f"this interval's {now.score:.2f})",
        )
    level = np.zeros(data.n)
    level[rows] = ahead.level
    checked = np.zeros(data.n, dtype=bool)
    checked[rows] = True
    return DetectorScores(
        name,
        level,
        note=f"label given by the next {data.features[ahead.feature]} ({measure} "
        f"{ahead.score:.2f}; this interval's readings {now.score:.2f})",
        checked=checked,
    )


@dataclass(frozen=True, slots=True)
class _Fit:
    """The one reading that explains the label best: its score and each row's level."""

    feature: int
    score: float
    level: FloatArray


def _fit_classes(
    data: AuditData, rows: IntArray, source: IntArray, *, seed: int, folds: int
) -> _Fit:
    """Bands of one reading of the ``source`` rows against the labels of ``rows``."""
    y = data.y[rows]
    k = len(data.classes)
    counts = np.bincount(y, minlength=k)
    folds = int(max(2, min(folds, counts[counts > 0].min())))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed % 2**31)
    split = list(splitter.split(rows, y))
    chance = float(((counts / counts.sum()) ** 2).sum())
    best: _Fit | None = None
    for j in range(data.x.shape[1]):
        feature = data.x[source, j : j + 1]
        proba = np.zeros((rows.size, k))
        for train, test in split:
            # Bands of one reading: a few leaves, each big enough not to memorise poison.
            tree = DecisionTreeClassifier(
                max_leaf_nodes=2 * k, min_samples_leaf=max(10, rows.size // 200), random_state=0
            )
            tree.fit(feature[train], y[train])
            proba[test[:, None], tree.classes_[None, :]] = tree.predict_proba(feature[test])
        own = proba[np.arange(rows.size), y]
        agree = float((proba.argmax(axis=1) == y).mean())
        kappa = (agree - chance) / max(1.0 - chance, 1e-9)
        if best is None or kappa > best.score:
            # 1.0 when the label's own band probability is one half; 2.0 when it is nil.
            best = _Fit(j, kappa, 2.0 * (1.0 - own))
    assert best is not None
    return best


def _fit_values(
    data: AuditData, rows: IntArray, source: IntArray, *, seed: int, folds: int
) -> _Fit:
    """A number against one reading of the ``source`` rows: its residual, in robust units."""
    assert data.target is not None
    y = data.target[rows]
    split = list(KFold(n_splits=folds, shuffle=True, random_state=seed % 2**31).split(rows))
    best: _Fit | None = None
    for j in range(data.x.shape[1]):
        feature = data.x[source, j : j + 1]
        predicted = np.zeros(rows.size)
        spread = np.zeros(rows.size)
        for train, test in split:
            # Fine leaves: a label that is a reading itself leaves no residual to speak of.
            tree = DecisionTreeRegressor(min_samples_leaf=max(5, rows.size // 500), random_state=0)
            tree.fit(feature[train], y[train])
            # Each leaf's median and median absolute deviation: poison in a leaf moves
            # neither, where it would move a mean and a standard deviation.
            frame = pd.DataFrame({"leaf": tree.apply(feature[train]), "y": y[train]})
            middle = frame.groupby("leaf")["y"].median()
            frame["gap"] = (frame["y"] - frame["leaf"].map(middle)).abs()
            mad = 1.4826 * frame.groupby("leaf")["gap"].median()
            at = pd.Series(tree.apply(feature[test]))
            predicted[test] = at.map(middle).to_numpy(dtype=np.float64)
            spread[test] = at.map(mad).to_numpy(dtype=np.float64)
        residual = y - predicted
        r2 = 1.0 - float(np.mean(residual**2)) / max(float(np.var(y)), 1e-12)
        if best is None or r2 > best.score:
            scale = np.maximum(spread, float(robust_scale(residual[:, None])[0, 0]))
            best = _Fit(j, r2, np.abs(residual) / scale / Z_LIMIT)
    assert best is not None
    return best


__all__ = [
    "NEXT_KAPPA",
    "NEXT_R2",
    "confident_learning",
    "label_consistency",
    "next_interval",
    "out_of_fold_proba",
]
