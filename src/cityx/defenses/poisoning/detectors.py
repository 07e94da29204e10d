"""The model-agnostic detectors: each gives every row a suspicion score.

Each detector returns a :class:`DetectorScores` whose ``level`` is the
row's score divided by the detector's own threshold, so 1.0 means "at the
threshold" for every detector and the ensemble can compare them. The
thresholds are robust z-scores (see :mod:`._data`) or, for confident
learning, per-class average confidences: none needs the poison rate.

- ``label_consistency``: share of a row's nearest neighbours in feature
  space that carry another label (flips sit among rows of another class);
- ``confident_learning``: out-of-fold class probabilities from a gradient-
  boosted model; a row is a *label issue* when its own class's probability
  is below that class's average self-confidence while another class's is
  above its own (Northcutt et al., 2021);
- ``class_isolation``: an isolation forest per class (a triggered row is
  an outlier among the rows of its new class);
- ``spectral``: per class, the squared projection of the robustly centred
  features on their top singular vector (Tran et al., 2018): a poisoned
  sub-population pulls that vector towards itself;
- ``next_interval``: for a label about the next interval (``congestion_next``),
  whether it agrees with what that interval then measured: the label as
  banded by the one next-interval reading that predicts it best (out of
  fold; applicable only when that reading predicts it well). One reading
  cannot learn a multi-feature trigger, so relabelled trigger windows and
  flipped labels both disagree with it;
- ``bounds``: readings beyond a physical ceiling of the data: a value in
  the top of a reading's range that many rows share exactly (a jam as long
  as the detector, an occupancy of 100 %, a delay as long as the
  interval) is where the reading saturates, and nothing real lies above it;
- ``temporal``: how far a reading departs from the mean of its series'
  neighbours in time (a trigger is a short bump; a sensor's limits do not
  change between intervals);
- ``physical``: how far a reading departs from what the other readings of
  the same row predict (out-of-fold quadratic regression: flow, occupancy,
  speed, queue and delay of one approach hold together physically);
- ``cross_sensor``: how far a reading departs from the other sensors at
  the same intersection at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._data import AuditData, FloatArray, robust_z

Z_LIMIT = 4.5  # robust z: 1 in ~30,000 clean rows under normality, more under heavy tails


@dataclass(frozen=True, slots=True)
class DetectorScores:
    """One detector's verdict on every row; ``level`` >= 1 means flagged."""

    name: str
    level: FloatArray
    applicable: bool = True
    note: str = ""
    checked: np.ndarray | None = None  # rows the detector could judge, when not all

    @property
    def flagged(self) -> np.ndarray:
        return self.level >= 1.0


def _not_applicable(name: str, n: int, note: str) -> DetectorScores:
    return DetectorScores(name, np.zeros(n), applicable=False, note=note)


def _upper_z(score: FloatArray, groups: np.ndarray | None = None) -> FloatArray:
    """Robust z of ``score`` (within each group), negative side cut at 0."""
    if groups is None:
        return np.maximum(robust_z(score[:, None])[:, 0], 0.0)
    out = np.zeros_like(score)
    for g in np.unique(groups):
        members = groups == g
        out[members] = np.maximum(robust_z(score[members][:, None])[:, 0], 0.0)
    return out


def label_consistency(data: AuditData, *, k: int = 15) -> DetectorScores:
    from sklearn.neighbors import NearestNeighbors

    if len(data.classes) < 2:
        return _not_applicable("label_consistency", data.n, "one class")
    k = min(k, data.n - 1)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(data.z).kneighbors(data.z)
    neighbours = idx[:, 1:]
    disagree = (data.y[neighbours] != data.y[:, None]).mean(axis=1)
    # Flag when at least 80 % of neighbours disagree: a boundary row has about half.
    return DetectorScores("label_consistency", disagree / 0.8)


def out_of_fold_proba(data: AuditData, *, seed: int, folds: int = 3) -> FloatArray:
    """Each row's class probabilities from a model that never saw it."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(data.y)
    folds = int(max(2, min(folds, counts.min())))
    proba = np.zeros((data.n, len(data.classes)))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed % 2**31)
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
        return _not_applicable("confident_learning", data.n, "one class")
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


def class_isolation(data: AuditData, *, seed: int) -> DetectorScores:
    from sklearn.ensemble import IsolationForest

    score = np.zeros(data.n)
    for j in range(len(data.classes)):
        members = data.y == j
        if members.sum() < 20:
            continue
        forest = IsolationForest(n_estimators=100, random_state=seed % 2**31)
        score[members] = -forest.fit(data.z[members]).score_samples(data.z[members])
    return DetectorScores("class_isolation", _upper_z(score, data.y) / Z_LIMIT)


def spectral(data: AuditData) -> DetectorScores:
    score = np.zeros(data.n)
    for j in range(len(data.classes)):
        members = np.flatnonzero(data.y == j)
        if members.size < 20:
            continue
        block = data.z[members]
        centred = block - np.median(block, axis=0)
        _, _, vt = np.linalg.svd(centred - centred.mean(axis=0), full_matrices=False)
        score[members] = (centred @ vt[0]) ** 2
    # Squared projections are chi-square-like: compare their square roots.
    return DetectorScores("spectral", _upper_z(np.sqrt(score), data.y) / Z_LIMIT)


# The next-interval reading must explain the label this much better than chance (Cohen's
# kappa, out of fold) before disagreeing with it is evidence. On the SUMO tables a label
# about the same interval reaches 0.6 through persistence alone, the next-interval label
# 1.0 clean and 0.78 with 10 % of its labels flipped. Chance agreement is taken from the
# label's own class mix.
NEXT_KAPPA = 0.7


def next_interval(data: AuditData, *, seed: int, folds: int = 3) -> DetectorScores:
    from sklearn.model_selection import StratifiedKFold
    from sklearn.tree import DecisionTreeClassifier

    name = "next_interval"
    if data.order is None or data.series is None or data.time is None:
        return _not_applicable(name, data.n, "no time column")
    s = data.series[data.order]
    t = data.time[data.order]
    gaps = np.diff(t)[s[:-1] == s[1:]]
    if gaps.size == 0:
        return _not_applicable(name, data.n, "no series with two intervals")
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
        return _not_applicable(name, data.n, "too few rows with a next interval")
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
        return _not_applicable(
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


# Piles: values of a reading's top quarter shared by PILE_RATIO times the typical count of
# a value there (the upper quartile of counts) and by PILE_MIN rows; piles within PILE_SPAN
# of each other are one.
PILE_RATIO, PILE_MIN, PILE_SPAN = 10.0, 5, 0.01
# So many separate piles are a lattice (flows come in whole vehicles per interval), not a
# ceiling.
LATTICE_PILES = 4


def ceilings(x: FloatArray) -> FloatArray:
    """Per feature, the value where it saturates (see ``bounds``), or +inf.

    The ceiling is the top of the lowest pile. Poison that adds an offset to
    saturated readings makes piles of its own above it, which is why the
    lowest counts, not the largest.
    """
    out = np.full(x.shape[1], np.inf)
    for j in range(x.shape[1]):
        column = x[:, j]
        values, counts = np.unique(column[column >= np.quantile(column, 0.75)], return_counts=True)
        # Poison adds scattered single values: the upper quartile of counts stays typical.
        typical = float(np.quantile(counts, 0.75)) if values.size > 1 else 0.0
        piles = values[counts >= max(PILE_MIN, PILE_RATIO * typical)]
        if piles.size == 0:
            continue
        # Split the piles where a gap exceeds PILE_SPAN of the value.
        gaps = np.diff(piles) > PILE_SPAN * np.maximum(np.abs(piles[1:]), 1.0)
        if gaps.sum() + 1 >= LATTICE_PILES:
            continue
        ceiling = piles[np.flatnonzero(np.r_[gaps, True])[0]]
        # Saturation: readings crowd up to the ceiling and stop; a distribution that goes
        # on through a pile (queues of whole vehicles) has as many just above it.
        span = PILE_SPAN * max(abs(float(ceiling)), 1.0)
        above = int(((column > ceiling) & (column <= ceiling + span)).sum())
        below = int(((column < ceiling) & (column >= ceiling - span)).sum())
        if above <= 0.25 * below:
            out[j] = ceiling
    return out


def bounds(data: AuditData) -> DetectorScores:
    limit = ceilings(data.x)
    if not np.isfinite(limit).any():
        return _not_applicable("bounds", data.n, "no reading saturates at a ceiling")
    tolerance = 1e-6 * np.maximum(np.abs(np.where(np.isfinite(limit), limit, 0.0)), 1.0)
    beyond = (data.x > (limit + tolerance)[None, :]).any(axis=1)
    named = ", ".join(
        f"{data.features[j]} {limit[j]:g}" for j in np.flatnonzero(np.isfinite(limit))
    )
    return DetectorScores("bounds", np.where(beyond, 2.0, 0.0), note=f"ceilings: {named}")


def temporal(data: AuditData) -> DetectorScores:
    if data.order is None or data.series is None:
        return _not_applicable("temporal", data.n, "no time column")
    order = data.order
    z = data.z[order]
    s = data.series[order]
    prev_ok = np.r_[False, s[1:] == s[:-1]]
    next_ok = np.r_[s[:-1] == s[1:], False]
    prev = np.where(prev_ok[:, None], np.roll(z, 1, axis=0), np.nan)
    nxt = np.where(next_ok[:, None], np.roll(z, -1, axis=0), np.nan)
    with np.errstate(invalid="ignore"):
        expected = np.nanmean(np.stack([prev, nxt]), axis=0)
    alone = ~(prev_ok | next_ok)
    residual = np.where(alone[:, None], 0.0, z - np.nan_to_num(expected))
    level = np.abs(robust_z(residual)).max(axis=1) / (Z_LIMIT * 1.5)
    out = np.zeros(data.n)
    out[order] = level
    return DetectorScores("temporal", out)


def physical(data: AuditData, *, seed: int, folds: int = 4) -> DetectorScores:
    d = data.z.shape[1]
    if d < 2:
        return _not_applicable("physical", data.n, "one feature")
    z = np.clip(data.z, -20, 20)
    design = np.hstack([np.ones((data.n, 1)), z, z**2])
    fold = np.random.default_rng(seed).integers(0, folds, size=data.n)
    residual = np.zeros_like(z)
    ridge = 1e-3 * data.n
    for j in range(d):
        keep = np.ones(design.shape[1], dtype=bool)
        keep[[1 + j, 1 + d + j]] = False  # the feature itself and its square
        a = design[:, keep]
        for f in range(folds):
            train = fold != f
            gram = a[train].T @ a[train] + ridge * np.eye(a.shape[1])
            coef = np.linalg.solve(gram, a[train].T @ z[train, j])
            residual[~train, j] = z[~train, j] - a[~train] @ coef
    level = np.abs(robust_z(residual)).max(axis=1) / (Z_LIMIT * 1.5)
    return DetectorScores("physical", level)


def cross_sensor(data: AuditData) -> DetectorScores:
    if data.site is None or len(data.sources) < 3:
        return _not_applicable(
            "cross_sensor", data.n, "needs a time column and at least three sources"
        )
    site = data.site
    counts = np.bincount(site)
    if counts.max() < 3:
        site = data.moment if data.moment is not None else site
        counts = np.bincount(site)
    frame_median = np.zeros_like(data.z)
    for j in range(data.z.shape[1]):
        # Median per group, vectorised by sorting on (group, value).
        order = np.lexsort((data.z[:, j], site))
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        mid = order[starts + counts // 2]
        frame_median[:, j] = data.z[mid, j][site]
    residual = np.where((counts[site] >= 3)[:, None], data.z - frame_median, 0.0)
    level = np.abs(robust_z(residual)).max(axis=1) / (Z_LIMIT * 1.5)
    return DetectorScores("cross_sensor", level)


def source_drift(data: AuditData) -> FloatArray | None:
    """Per source: robust z, across sources, of how its readings trend away from its peers.

    Each reading minus the median of all sources at the same moment (what the
    traffic did) leaves what is the sensor's own; a healthy sensor's own part
    does not trend over a run, a drifting one's does, in every feature alike.
    The score is the mean over features of the correlation between that part
    and the position in the run, pooled over the source's runs.
    """
    if data.order is None or data.series is None or data.moment is None:
        return None
    k = len(data.sources)
    if k < 5:
        return None
    counts = np.bincount(data.moment)
    med = np.zeros_like(data.z)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    for j in range(data.z.shape[1]):
        order = np.lexsort((data.z[:, j], data.moment))
        med[:, j] = data.z[order[starts + counts // 2], j][data.moment]
    own = data.z - med
    # Position in the series, 0..1.
    position = np.empty(data.n)
    ranks = np.empty(data.n)
    ranks[data.order] = np.arange(data.n)
    first = np.full(int(data.series.max()) + 1, np.inf)
    np.minimum.at(first, data.series, ranks)
    length = np.bincount(data.series).astype(np.float64)
    position = (ranks - first[data.series]) / np.maximum(length[data.series] - 1, 1)
    # Centre within each series, then correlate per source (pooled over its series).
    s_mean_p = np.bincount(data.series, weights=position) / np.maximum(length, 1)
    p = position - s_mean_p[data.series]
    corr = np.zeros((k, own.shape[1]))
    pp = np.bincount(data.source, weights=p * p, minlength=k)
    for j in range(own.shape[1]):
        s_mean = np.bincount(data.series, weights=own[:, j]) / np.maximum(length, 1)
        r = own[:, j] - s_mean[data.series]
        rp = np.bincount(data.source, weights=r * p, minlength=k)
        rr = np.bincount(data.source, weights=r * r, minlength=k)
        corr[:, j] = rp / np.sqrt(np.maximum(rr * pp, 1e-12))
    score = np.abs(corr.mean(axis=1))
    return np.asarray(robust_z(score[:, None])[:, 0], dtype=np.float64)


def static_violations(data: AuditData) -> FloatArray | None:
    """Per source: share of its series in which a *static* reading changes.

    A reading is static when it is constant within at least 75 % of all
    series (a speed limit, a lane count); a sensor whose static readings
    move during a run reports something no road does.
    """
    if data.series is None or len(data.sources) < 2:
        return None
    m = int(data.series.max()) + 1
    span = np.zeros((m, data.x.shape[1]))
    for j in range(data.x.shape[1]):
        high = np.full(m, -np.inf)
        low = np.full(m, np.inf)
        np.maximum.at(high, data.series, data.x[:, j])
        np.minimum.at(low, data.series, data.x[:, j])
        span[:, j] = high - low
    moving = span > 1e-9 * np.maximum(np.abs(data.x).max(axis=0), 1.0)
    static = (~moving).mean(axis=0) >= 0.75
    if not static.any():
        return None
    violating = moving[:, static].any(axis=1).astype(np.float64)
    series_source = np.zeros(m, dtype=np.int64)
    series_source[data.series] = data.source
    k = len(data.sources)
    total = np.bincount(series_source, minlength=k).astype(np.float64)
    return np.asarray(
        np.bincount(series_source, weights=violating, minlength=k) / np.maximum(total, 1.0),
        dtype=np.float64,
    )
