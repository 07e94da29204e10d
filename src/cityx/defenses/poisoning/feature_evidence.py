"""Evidence that a row's readings are not what a road produces.

- ``class_isolation``: an isolation forest per class (a triggered row is
  an outlier among the rows of its new class);
- ``spectral``: per class, the squared projection of the robustly centred
  features on their top singular vector (Tran et al., 2018): a poisoned
  sub-population pulls that vector towards itself;
- ``bounds``: readings beyond a physical ceiling of the data: a value in
  the top of a reading's range that many rows share exactly (a jam as long
  as the detector, an occupancy of 100 %, a delay as long as the
  interval) is where the reading saturates, and nothing real lies above it;
- ``declared_bounds``: readings outside the range the submission's own
  manifest declares for a feature (applicable only when it declares one);
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

import numpy as np
from sklearn.ensemble import IsolationForest

from ._data import AuditData, FloatArray, robust_scale, robust_z
from .scores import Z_LIMIT, DetectorScores, not_applicable, upper_z


def class_isolation(data: AuditData, *, seed: int) -> DetectorScores:
    if not data.zc.shape[1]:
        return not_applicable("class_isolation", data.n, "no continuous reading")
    score = np.zeros(data.n)
    for j in range(len(data.classes)):
        members = data.y == j
        if members.sum() < 20:
            continue
        forest = IsolationForest(n_estimators=100, random_state=seed % 2**31)
        score[members] = -forest.fit(data.zc[members]).score_samples(data.zc[members])
    return DetectorScores("class_isolation", upper_z(score, data.y) / Z_LIMIT)


def spectral(data: AuditData) -> DetectorScores:
    if not data.zc.shape[1]:
        return not_applicable("spectral", data.n, "no continuous reading")
    score = np.zeros(data.n)
    for j in range(len(data.classes)):
        members = np.flatnonzero(data.y == j)
        if members.size < 20:
            continue
        block = data.zc[members]
        centred = block - np.median(block, axis=0)
        _, _, vt = np.linalg.svd(centred - centred.mean(axis=0), full_matrices=False)
        score[members] = (centred @ vt[0]) ** 2
    # Squared projections are chi-square-like: compare their square roots.
    return DetectorScores("spectral", upper_z(np.sqrt(score), data.y) / Z_LIMIT)


# Piles: values of a reading's top quarter shared by PILE_RATIO times the typical count of
# a value there (the upper quartile of counts) and by PILE_MIN rows; piles within PILE_SPAN
# of each other are one.
PILE_RATIO, PILE_MIN, PILE_SPAN = 10.0, 5, 0.01
# So many separate piles are a lattice (flows come in whole vehicles per interval), not a
# ceiling.
LATTICE_PILES = 4
# Readings beyond a ceiling are detached from it: nothing lies within this many typical
# spacings of distinct values, or this share of the reading's 5-95 % range, above it.
GAP_SPACINGS, GAP_SHARE = 3.0, 0.1


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
        # Saturation: readings crowd up to the ceiling and stop. Natural readings past a
        # pile (speeds above a limit, pixels above 0, whole vehicles above a queue) go on
        # just above it; only readings detached from it by a gap are beyond a ceiling.
        distinct = np.unique(column)
        spacing = float(np.median(np.diff(distinct))) if distinct.size > 2 else 0.0
        p5, p95 = np.percentile(column, [5, 95])
        gap = max(GAP_SPACINGS * spacing, GAP_SHARE * float(p95 - p5), 1e-9)
        if not ((column > ceiling) & (column <= ceiling + gap)).any():
            out[j] = ceiling
    return out


def bounds(data: AuditData) -> DetectorScores:
    limit = ceilings(data.x)
    if not np.isfinite(limit).any():
        return not_applicable("bounds", data.n, "no reading saturates at a ceiling")
    tolerance = 1e-6 * np.maximum(np.abs(np.where(np.isfinite(limit), limit, 0.0)), 1.0)
    beyond = (data.x > (limit + tolerance)[None, :]).any(axis=1)
    named = ", ".join(
        f"{data.features[j]} {limit[j]:g}" for j in np.flatnonzero(np.isfinite(limit))
    )
    return DetectorScores("bounds", np.where(beyond, 2.0, 0.0), note=f"ceilings: {named}")


def declared_bounds(data: AuditData) -> DetectorScores:
    if data.low is None or data.high is None:
        return not_applicable("declared_bounds", data.n, "no declared bounds")
    outside = (data.x < data.low[None, :]) | (data.x > data.high[None, :])
    named = [data.features[j] for j in np.flatnonzero(outside.any(axis=0))]
    note = f"outside the declared range: {', '.join(named[:8])}" if named else ""
    return DetectorScores("declared_bounds", np.where(outside.any(axis=1), 2.0, 0.0), note=note)


def temporal(data: AuditData) -> DetectorScores:
    if data.order is None or data.series is None:
        return not_applicable("temporal", data.n, "no time column")
    if not data.zc.shape[1]:
        return not_applicable("temporal", data.n, "no continuous reading")
    order = data.order
    z = data.zc[order]
    s = data.series[order]
    prev_ok = np.r_[False, s[1:] == s[:-1]]
    next_ok = np.r_[s[:-1] == s[1:], False]
    prev = np.where(prev_ok[:, None], np.roll(z, 1, axis=0), np.nan)
    nxt = np.where(next_ok[:, None], np.roll(z, -1, axis=0), np.nan)
    with np.errstate(invalid="ignore"):
        expected = np.nanmean(np.stack([prev, nxt]), axis=0)
    alone = ~(prev_ok | next_ok)
    residual = np.where(alone[:, None], 0.0, z - np.nan_to_num(expected))
    # A busy approach's readings jump more than a quiet one's from interval to interval: each
    # series' jumps are measured against its sensor's own spread, never below the table's.
    scale = np.broadcast_to(robust_scale(residual), residual.shape).copy()
    sensors = data.source[order]
    for k in np.unique(sensors):
        mine = sensors == k
        if mine.sum() >= 20:
            scale[mine] = np.maximum(scale[mine], robust_scale(residual[mine]))
    centred = residual - np.median(residual, axis=0, keepdims=True)
    level = np.abs(centred / scale).max(axis=1) / (Z_LIMIT * 1.5)
    out = np.zeros(data.n)
    out[order] = level
    return DetectorScores("temporal", out)


# The smallest spread of a residual, in robust spreads of the reading itself.
RESIDUAL_FLOOR = 0.1


def _scaled(residual: FloatArray, floor: float) -> FloatArray:
    """Residuals from their median over their robust spread, the spread never below ``floor``."""
    med = np.median(residual, axis=0, keepdims=True)
    return np.asarray((residual - med) / np.maximum(robust_scale(residual), floor))


def relation_residuals(zc: FloatArray, fold: np.ndarray, folds: int) -> FloatArray:
    """Each reading minus what the row's other readings predict, by a model of other folds.

    A quadratic ridge regression of every column on the others, fitted without
    the rows of the held fold (``fold``: each row's fold, ``0..folds-1``).
    """
    n, d = zc.shape
    z = np.clip(zc, -20, 20)
    design = np.hstack([np.ones((n, 1)), z, z**2])
    residual = np.zeros_like(z)
    ridge = 1e-3 * n * np.eye(design.shape[1])
    own, square = 1 + np.arange(d), 1 + d + np.arange(d)
    total = design.T @ design
    for f in range(folds):
        train = fold != f
        held = design[~train]
        # Every feature's ridge regression on the other columns (all but itself and its
        # square) from one inverse Gram matrix: leaving out the square is a rank-one
        # downdate, and a column's regression on the rest is its column of the inverse
        # scaled (the block-inverse identity). One matrix product then gives every residual.
        inverse = np.linalg.inv(total - held.T @ held + ridge)
        pivot = inverse[square, own] / inverse[square, square]
        columns = inverse[:, own] - inverse[:, square] * pivot[None, :]
        weights = columns / columns[own, np.arange(d)][None, :]
        residual[~train] = held @ weights
    return residual


def physical(data: AuditData, *, seed: int, folds: int = 4) -> DetectorScores:
    d = data.zc.shape[1]
    if d < 2:
        return not_applicable("physical", data.n, "one feature")
    fold = np.random.default_rng(seed).integers(0, folds, size=data.n)
    residual = relation_residuals(data.zc, fold, folds)
    # Readings that others determine almost exactly (a flow per hour beside its count) leave
    # residuals of nearly nothing; a departure counts only once it is a visible part of the
    # reading's own spread.
    level = np.abs(_scaled(residual, RESIDUAL_FLOOR)).max(axis=1) / (Z_LIMIT * 1.5)
    return DetectorScores("physical", level)


def cross_sensor(data: AuditData) -> DetectorScores:
    if data.site is None or len(data.sources) < 3 or not data.zc.shape[1]:
        return not_applicable(
            "cross_sensor",
            data.n,
            "needs a time column and at least three sources",
        )
    site = data.site
    counts = np.bincount(site)
    if counts.max() < 3:
        site = data.moment if data.moment is not None else site
        counts = np.bincount(site)
    frame_median = np.zeros_like(data.zc)
    for j in range(data.zc.shape[1]):
        # Median per group, vectorised by sorting on (group, value).
        order = np.lexsort((data.zc[:, j], site))
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        mid = order[starts + counts // 2]
        frame_median[:, j] = data.zc[mid, j][site]
    residual = np.where((counts[site] >= 3)[:, None], data.zc - frame_median, 0.0)
    level = np.abs(robust_z(residual)).max(axis=1) / (Z_LIMIT * 1.5)
    return DetectorScores("cross_sensor", level)


__all__ = [
    "LATTICE_PILES",
    "bounds",
    "ceilings",
    "class_isolation",
    "cross_sensor",
    "declared_bounds",
    "physical",
    "relation_residuals",
    "spectral",
    "temporal",
]
