"""Evidence that a source (a sensor or provider) as a whole is compromised.

Both work per source rather than per row: :func:`source_drift` finds a
sensor whose own readings trend away from its peers over a run;
:func:`static_violations` finds one whose static readings (speed limit,
lanes) move.
"""

from __future__ import annotations

import numpy as np

from ._data import AuditData, FloatArray, robust_z


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


__all__ = ["concentrated", "source_drift", "static_violations"]
