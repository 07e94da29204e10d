"""Evidence that a source (a sensor or provider) as a whole is compromised.

All work per source rather than per row: :func:`source_drift` finds a
sensor whose own readings trend away from its peers over a run;
:func:`static_violations` finds one whose static readings (speed limit,
lanes) move; :func:`source_offsets` finds one whose readings relate to
each other, or to its labels, unlike its peers' do.

Words used here:

- *out of source*: judged by a model fitted on other sources' rows only
  (the sources are dealt into folds), so a compromised source cannot teach
  the model its own distortion;
- *relation offset*: per source and reading, the median of how far its
  rows' reading lies from what their other readings predict; a sensor
  whose count, occupancy or speed is scaled by a gain keeps the road's
  relations between them broken in every row, so the median moves, while
  a healthy sensor's row noise cancels out;
- *label offset*: per source, the mean of how wrong an out-of-source model
  finds its rows' labels (one minus the probability of the given class; a
  number's residual); a source whose labels were rewritten contradicts what
  its own readings imply on most of its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from ._data import AuditData, FloatArray, robust_scale, robust_z
from .feature_evidence import relation_residuals


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


# A source is named for concentration when this share of its rows is flagged, several
# times the share of a typical source, and the excess is far beyond chance.
CONCENTRATED_SHARE, CONCENTRATED_RATIO, CONCENTRATED_Z = 0.2, 4.0, 5.0
# Poison spread over more than this share of the sources is not concentrated in them.
CONCENTRATED_AT_MOST = 0.25


def concentrated(source: np.ndarray, flagged: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per source: do the flagged rows concentrate in it (a few compromised providers)?

    Compared with a typical source (the median flagged share, at least one row's
    worth, so a table that flags nothing elsewhere still needs several rows
    here), by a binomial z of its flagged rows. When many sources stand out,
    the poison is spread, not concentrated, and none is named.
    """
    k = rows.size
    if k < 5:
        return np.zeros(k, dtype=bool)
    hits = np.bincount(source, weights=flagged.astype(np.float64), minlength=k)
    present = rows > 0
    share = hits / np.maximum(rows, 1)
    base = max(float(np.median(share[present])), 1.0 / float(np.median(rows[present])))
    z = (hits - rows * base) / np.sqrt(rows * base * (1.0 - base) + 1.0)
    named = (
        present
        & (share >= CONCENTRATED_SHARE)
        & (share >= CONCENTRATED_RATIO * base)
        & (z >= CONCENTRATED_Z)
    )
    if named.sum() > CONCENTRATED_AT_MOST * present.sum():
        return np.zeros(k, dtype=bool)
    return np.asarray(named, dtype=bool)


# Sources are dealt into this many folds for the out-of-source models.
SOURCE_FOLDS = 3
# A source's offsets are read off at least this many of its rows, among at least this many
# such sources (fewer leave no peers to compare with).
OFFSET_MIN_ROWS, OFFSET_MIN_SOURCES = 20, 5
# The label model learns from at most this many rows per fold: enough for the few readings
# that carry a traffic label, and it keeps the audit of 10,000 rows x 100 features in time.
LABEL_TRAIN_ROWS, LABEL_ITER = 2000, 40


@dataclass(frozen=True, slots=True)
class SourceOffsets:
    """Per source (all sources, 0 where not judged): robust z across sources of its offsets."""

    readings: FloatArray  # mean over readings of |relation offset| in robust units of peers
    label: FloatArray  # label offset; one-sided for classes, absolute for numbers


def source_offsets(data: AuditData, n: int, *, seed: int) -> SourceOffsets | None:
    """Relation and label offsets of every source with enough rows, among the first ``n`` rows.

    ``n``: the table's rows (a trusted set appended after them is left out:
    its rows would dilute a compromised source's own). None when fewer than
    :data:`OFFSET_MIN_SOURCES` sources have :data:`OFFSET_MIN_ROWS` rows.
    """
    k = len(data.sources)
    source = data.source[:n]
    rows = np.bincount(source, minlength=k)
    judged = rows >= OFFSET_MIN_ROWS
    if judged.sum() < OFFSET_MIN_SOURCES:
        return None
    # Sources dealt into folds at random (seeded); every fold holds judged sources.
    deal = np.empty(k, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(k)
    deal[order] = np.arange(k) % SOURCE_FOLDS
    fold = deal[source]
    readings = np.zeros(k)
    if data.zc.shape[1] >= 2:
        residual = relation_residuals(data.zc[:n], fold, SOURCE_FOLDS)
        offset = pd.DataFrame(residual).groupby(source).median().reindex(range(k)).to_numpy()
        mine = offset[judged]
        # Per reading, each source's offset in robust units of its peers' offsets: sensors
        # differ by nature (a long detector, a slow approach), and that sets the scale.
        units = np.abs((mine - np.median(mine, axis=0)) / robust_scale(mine))
        readings[judged] = robust_z(units.mean(axis=1)[:, None])[:, 0]
    label = np.zeros(k)
    wrong = _label_misfit(data, n, fold, seed=seed)
    if wrong is not None:
        mean = np.bincount(source, weights=wrong, minlength=k) / np.maximum(rows, 1)
        z = robust_z(mean[judged][:, None])[:, 0]
        label[judged] = np.abs(z) if data.target is not None else z
    return SourceOffsets(readings, label)


def _label_misfit(data: AuditData, n: int, fold: np.ndarray, *, seed: int) -> FloatArray | None:
    """Per row: how wrong an out-of-source model finds its label (signed for numbers)."""
    y = data.y[:n]
    if data.target is None and np.unique(y).size < 2:
        return None
    out = np.zeros(n)
    rng = np.random.default_rng(seed)
    x = data.z[:n]
    # One OpenMP thread: see label_evidence.out_of_fold_proba.
    with threadpool_limits(limits=1, user_api="openmp"):
        for f in range(SOURCE_FOLDS):
            held = fold == f
            train = np.flatnonzero(~held)
            if not held.any() or train.size < 2:
                continue
            if train.size > LABEL_TRAIN_ROWS:
                train = np.sort(rng.choice(train, size=LABEL_TRAIN_ROWS, replace=False))
            if data.target is not None:
                target = data.target[:n]
                regressor = HistGradientBoostingRegressor(
                    max_iter=LABEL_ITER,
                    learning_rate=0.15,
                    max_leaf_nodes=15,
                    random_state=seed % 2**31,
                )
                regressor.fit(x[train], target[train])
                out[held] = target[held] - regressor.predict(x[held])
                continue
            if np.unique(y[train]).size < 2:
                continue
            model = HistGradientBoostingClassifier(
                max_iter=LABEL_ITER,
                learning_rate=0.15,
                max_leaf_nodes=15,
                random_state=seed % 2**31,
            )
            model.fit(x[train], y[train])
            proba = np.zeros((int(held.sum()), len(data.classes)))
            proba[:, model.classes_] = model.predict_proba(x[held])
            out[held] = 1.0 - proba[np.arange(proba.shape[0]), y[held]]
    if data.target is not None:
        # A number's residual in robust units, so the mean per source is comparable.
        out = out / float(robust_scale(out[:, None])[0, 0])
    return out


__all__ = [
    "SourceOffsets",
    "concentrated",
    "source_drift",
    "source_offsets",
    "static_violations",
]
