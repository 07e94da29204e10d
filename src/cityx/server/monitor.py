"""The extraction monitor: per-caller statistics of query patterns, in the spirit of PRADA.

PRADA (Juuti et al., 2019) watches the stream of queries one caller sends to
one model and asks whether it still looks like ordinary use. Words:

- rows are *scaled* to [0, 1] per feature by the declared bounds;
- the *reference* of a model is its submission's training data, scaled; a
  row is *out of distribution* (OOD) when its distance to the nearest
  reference row is above the 99th percentile of the reference rows' own
  nearest-neighbour distances (so about 1 % of ordinary rows are OOD);
- extraction attacks synthesise their queries: uniform random samples over
  the feature box (retraining attacks), one-feature line searches along a
  tree's splits (path-finding), noisy copies of a few seed rows (adaptive
  augmentation); all of them land far from real data in most rows (on
  metro-congestion: 100 %, 74 % and 95 % of rows, against 1.2 % for holdout
  rows);
- the *OOD test* alerts when a caller's count of OOD rows is too high to be
  chance: its binomial tail probability under the ordinary rate falls below
  ``alpha``, once the caller has sent ``min_queries`` rows to the model;
- PRADA's own statistic is also kept: the Shapiro-Wilk W of each row's
  minimum distance to the caller's earlier rows with the same label (its
  *growing set*). It is reported with every alert; it raises one only below
  ``w_threshold`` after 100 rows, because on skewed real traffic data
  ordinary streams score W near 0.75 too.

An alert is raised once per caller and model. Extraction with natural,
in-distribution queries looks like ordinary use and passes this monitor by
design: budgets are the control there (docs/server.md). State is in memory:
a restart forgets it (the budgets, kept in the store, do not).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

_W_WINDOW = 5000  # Shapiro-Wilk is defined for 3..5000 samples
_W_MIN = 100  # PRADA's own minimum before W is trusted
_ORDINARY_OOD = 0.02  # the ordinary OOD rate the test assumes (1 % by construction, x2 margin)
_REFERENCE_ROWS = 4000  # enough for the 99th percentile; keeps a query's cost bounded


@dataclass(frozen=True, slots=True)
class Alert:
    """A caller's query pattern on one model no longer looks like ordinary use."""

    caller: str
    model: str
    queries: int
    ood_rows: int
    p_value: float | None
    w: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class Reference:
    """A model's reference rows (scaled) and the OOD distance cut-off learnt from them."""

    rows: np.ndarray
    cutoff: float
    norms: np.ndarray  # |row|^2 of every reference row, computed once

    @classmethod
    def from_rows(cls, scaled: np.ndarray, *, seed: int = 0) -> Reference:
        rng = np.random.default_rng(seed)
        if len(scaled) > _REFERENCE_ROWS:
            scaled = scaled[rng.choice(len(scaled), _REFERENCE_ROWS, replace=False)]
        norms = (scaled * scaled).sum(axis=1)
        probe = rng.choice(len(scaled), min(len(scaled), 1000), replace=False)
        d = _squared(scaled[probe], scaled, norms)
        d[np.arange(len(probe)), probe] = np.inf  # a row is not its own neighbour
        cutoff = float(np.sqrt(np.quantile(d.min(axis=1), 0.99)))
        return cls(scaled, cutoff, norms)

    def ood(self, scaled: np.ndarray) -> np.ndarray:
        far: np.ndarray = _squared(scaled, self.rows, self.norms).min(axis=1) > self.cutoff**2
        return far


def _squared(a: np.ndarray, b: np.ndarray, b_norms: np.ndarray) -> np.ndarray:
    # |a-b|^2 = |a|^2 + |b|^2 - 2ab: one matrix product, no (n, m, d) temporary.
    sq: np.ndarray = np.maximum((a * a).sum(1)[:, None] + b_norms[None, :] - 2.0 * a @ b.T, 0.0)
    return sq


@dataclass(slots=True)
class _Stream:
    growing: dict[str, np.ndarray] = field(default_factory=dict)
    # Per label: count, sum and sum of squares of the distances kept (the set's mean and sd).
    kept: dict[str, list[float]] = field(default_factory=dict)
    distances: list[float] = field(default_factory=list)
    queries: int = 0
    ood: int = 0
    alerted: bool = False


class ExtractionMonitor:
    """Watches every (caller, model) stream; :meth:`observe` answers an Alert once per stream."""

    def __init__(
        self, *, min_queries: int = 10, alpha: float = 1e-6, w_threshold: float = 0.5
    ) -> None:
        if min_queries < 3:
            raise ValueError(f"min_queries must be >= 3, got {min_queries}")
        if not 0 < alpha < 1 or not 0 < w_threshold < 1:
            raise ValueError("alpha and w_threshold must be in (0, 1)")
        self.min_queries = min_queries
        self.alpha = alpha
        self.w_threshold = w_threshold
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._lock = threading.Lock()

    def observe(
        self,
        caller: str,
        model: str,
        scaled: np.ndarray,
        labels: list[str],
        reference: Reference | None,
    ) -> Alert | None:
        """Add a batch of scaled rows with the labels the model gave; an Alert the first
        time the stream stops looking ordinary."""
        ood = 0 if reference is None or not len(scaled) else int(reference.ood(scaled).sum())
        with self._lock:
            stream = self._streams.setdefault((caller, model), _Stream())
            for row, label in zip(scaled, labels, strict=True):
                _grow(stream, row, label)
            stream.queries += len(labels)
            stream.ood += ood
            if stream.alerted or stream.queries < self.min_queries:
                return None
            p = (
                float(stats.binom.sf(stream.ood - 1, stream.queries, _ORDINARY_OOD))
                if reference is not None
                else None
            )
            # W is computed only where it decides or is reported: it is the costly part.
            w = (
                _shapiro(stream)
                if len(stream.distances) >= _W_MIN or (p is not None and p < self.alpha)
                else None
            )
            if p is not None and p < self.alpha:
                reason = (
                    f"{stream.ood} of {stream.queries} rows lie outside the model's data "
                    f"(chance p = {p:.1e})"
                )
            elif w is not None and len(stream.distances) >= _W_MIN and w < self.w_threshold:
                reason = f"query spacing far from ordinary use (PRADA W = {w:.3f})"
            else:
                return None
            stream.alerted = True
            return Alert(caller, model, stream.queries, stream.ood, p, w, reason)


def _grow(stream: _Stream, row: np.ndarray, label: str) -> None:
    group = stream.growing.get(label)
    if group is None:
        stream.growing[label] = row[None, :].copy()
        stream.kept[label] = [0.0, 0.0, 0.0]
        return
    diff = group - row
    d = float(np.sqrt(np.einsum("ij,ij->i", diff, diff).min()))
    stream.distances.append(d)
    n, total, squares = stream.kept[label]
    floor = 0.0
    if n:
        mean = total / n
        floor = max(mean - float(np.sqrt(max(squares / n - mean * mean, 0.0))), 0.0)
    if d > floor:
        stream.growing[label] = np.vstack([group, row])
        stream.kept[label] = [n + 1, total + d, squares + d * d]


def _shapiro(stream: _Stream) -> float | None:
    window = np.asarray(stream.distances[-_W_WINDOW:])
    if window.size < 3:
        return None
    if np.ptp(window) == 0.0:
        return 0.0  # the same distance over and over: nothing ordinary does that
    return float(stats.shapiro(window).statistic)


__all__ = ["Alert", "ExtractionMonitor", "Reference"]
