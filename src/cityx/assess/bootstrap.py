"""Seeded bootstrap confidence intervals, computed in vectorised chunks.

A *bootstrap* resamples the n scored rows with replacement B times; the
2.5th and 97.5th percentiles of a metric over the resamples give its 95 %
*confidence interval*. Resamples are drawn as index matrices a chunk of
rows at a time, so memory stays bounded for large n.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import NDArray

_CELLS_PER_CHUNK = 20_000_000  # ~160 MB of int64 indices at most


def resamples(n: int, b: int, rng: np.random.Generator) -> Iterator[NDArray[np.int64]]:
    """Yield (chunk, n) index matrices whose rows are bootstrap resamples."""
    per_chunk = max(1, _CELLS_PER_CHUNK // max(n, 1))
    for start in range(0, b, per_chunk):
        yield rng.integers(0, n, size=(min(per_chunk, b - start), n))


def bootstrap(
    statistic: Callable[[NDArray[np.int64]], NDArray[np.float64]],
    n: int,
    b: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Stack ``statistic(indices)`` over all chunks: shape (b, ...)."""
    return np.concatenate([statistic(idx) for idx in resamples(n, b, rng)], axis=0)


def percentile_ci(
    samples: NDArray[np.float64], level: float = 0.95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Percentile interval along axis 0, ignoring resamples where it is undefined."""
    tail = (1.0 - level) / 2.0 * 100.0
    defined = ~np.isnan(samples)
    low = np.full(samples.shape[1:], np.nan)
    high = np.full(samples.shape[1:], np.nan)
    ok = defined.any(axis=0)
    if ok.any():
        kept = samples[:, ok]
        low[ok] = np.nanpercentile(kept, tail, axis=0)
        high[ok] = np.nanpercentile(kept, 100.0 - tail, axis=0)
    return low, high
