"""Backdoor scan of a trained model, black-box and batched.

A *trigger candidate* is a small input pattern: one feature (or a pair)
shifted by a few robust spreads (IQR / 1.349). Its *flip rate* is the
share of scanned rows not already predicted as the *target* class whose
prediction changes to it
when the pattern is added. A legitimately predictive feature also flips
predictions, so a candidate is only *suspicious* when its flip rate is a
robust outlier (robust z >= 3.5) among all candidates of the same size and
at least 60 % of the rows flip: a backdoor makes a small pattern unusually
powerful (the idea of Neural Cleanse, Wang et al., 2019, without gradients),
and its features barely drive the target on unshifted rows (*natural
effect*: the largest absolute correlation between a feature of the pattern
and predicting the target, below 0.2): a feature that legitimately predicts
the class is not a trigger, so a trigger hidden in such a feature is missed.
Every candidate x row is sent to the model in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import DataError

from ._data import FloatArray, robust_z

AMPLITUDES = (1.0, 2.0, 3.0)
SUSPICIOUS_Z, SUSPICIOUS_FLIP, NATURAL_LIMIT = 3.5, 0.6, 0.2

Predict = Callable[[FloatArray], NDArray[Any]]


@dataclass(frozen=True, slots=True)
class TriggerCandidate:
    pattern: dict[str, float]  # feature -> added value, in the feature's units
    amplitude: float  # in robust spreads
    target: str
    flip_rate: float
    anomaly_z: float
    natural_effect: float
    suspicious: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "pattern": {k: round(v, 6) for k, v in self.pattern.items()},
            "amplitude": self.amplitude,
            "target": self.target,
            "flip_rate": round(self.flip_rate, 4),
            "anomaly_z": round(self.anomaly_z, 3),
            "natural_effect": round(self.natural_effect, 3),
            "suspicious": self.suspicious,
        }


@dataclass(frozen=True, slots=True)
class ScanReport:
    rows: int
    candidates: tuple[TriggerCandidate, ...]  # best first

    @property
    def suspicious(self) -> tuple[TriggerCandidate, ...]:
        return tuple(c for c in self.candidates if c.suspicious)

    def to_json(self, *, top: int = 10) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "rows": self.rows,
            "verdict": "backdoor-suspected" if self.suspicious else "no-trigger-found",
            "triggers": [c.to_json() for c in self.suspicious],
            "top_candidates": [c.to_json() for c in self.candidates[:top]],
        }


def scan_model(
    predict: Predict,
    x: FloatArray,
    features: Sequence[str],
    *,
    seed: int = 0,
    max_rows: int = 200,
    pairs: int = 6,
) -> ScanReport:
    """Search single-feature and pair shifts that flip many predictions to one class."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(features) or x.shape[0] < 10:
        raise DataError(
            f"the scan needs at least 10 rows of {len(features)} features, got {x.shape}",
            where="--data",
        )
    if not np.isfinite(x).all():
        raise DataError("the scan data has NaN or infinite values", where="--data")
    rng = np.random.default_rng(seed)
    rows = x[rng.choice(x.shape[0], size=min(max_rows, x.shape[0]), replace=False)]
    q75, q25 = np.percentile(x, [75, 25], axis=0)
    spread = np.where(q75 > q25, (q75 - q25) / 1.349, np.maximum(x.std(axis=0), 1e-6))
    nonneg: NDArray[np.bool_] = np.asarray((x >= 0).all(axis=0))
    d = len(features)
    singles: list[tuple[float, tuple[int, ...]]] = [
        (amp * sign, (j,)) for amp in AMPLITUDES for sign in (1.0, -1.0) for j in range(d)
    ]
    base = np.asarray(predict(rows)).astype(str)
    flips, targets = _flip_rates(predict, rows, base, singles, spread, nonneg)
    # Pairs and triples of the strongest single features: triggers spread over a few readings.
    best = [singles[i][1][0] for i in np.argsort(-flips)[: pairs * 2]]
    top = list(dict.fromkeys(best))[:pairs]
    pair_list = [
        (amp, combo)
        for amp in (AMPLITUDES[0], AMPLITUDES[-1])
        for size in (2, 3)
        for combo in combinations(top[: 6 if size == 2 else 4], size)
    ]
    if pair_list:
        pf, pt = _flip_rates(predict, rows, base, pair_list, spread, nonneg)
        flips, targets = np.r_[flips, pf], np.r_[targets, pt]
    candidates_list = singles + pair_list
    amp = np.array([abs(a) * 10 + len(js) for a, js in candidates_list])
    anomaly = np.zeros(flips.size)
    for a in np.unique(amp):
        same = amp == a
        anomaly[same] = robust_z(flips[same][:, None])[:, 0] if same.sum() >= 5 else 0.0
    natural = _natural_effect(rows, base, targets, candidates_list)
    out = []
    for i in np.argsort(-anomaly, kind="stable"):
        a, js = candidates_list[i]
        out.append(
            TriggerCandidate(
                pattern={features[j]: float(a * spread[j]) for j in js},
                amplitude=float(abs(a)),
                target=str(targets[i]),
                flip_rate=float(flips[i]),
                anomaly_z=float(anomaly[i]),
                natural_effect=float(natural[i]),
                suspicious=bool(
                    anomaly[i] >= SUSPICIOUS_Z
                    and flips[i] >= SUSPICIOUS_FLIP
                    and natural[i] < NATURAL_LIMIT
                ),
            )
        )
    return ScanReport(rows=rows.shape[0], candidates=tuple(out))


def _natural_effect(
    rows: FloatArray,
    base: NDArray[np.str_],
    targets: NDArray[np.str_],
    candidates: list[tuple[float, tuple[int, ...]]],
) -> FloatArray:
    """Per candidate: how strongly its features already drive the target on unshifted rows."""
    z = (rows - rows.mean(axis=0)) / np.maximum(rows.std(axis=0), 1e-12)
    out = np.zeros(len(candidates))
    for c, (_, js) in enumerate(candidates):
        hit = (base == targets[c]).astype(np.float64)
        if hit.std() == 0:
            continue
        h = (hit - hit.mean()) / hit.std()
        out[c] = float(np.abs(z[:, list(js)].T @ h / len(h)).max())
    return out


def _flip_rates(
    predict: Predict,
    rows: FloatArray,
    base: NDArray[np.str_],
    candidates: list[tuple[float, tuple[int, ...]]],
    spread: FloatArray,
    nonneg: NDArray[np.bool_],
) -> tuple[FloatArray, NDArray[np.str_]]:
    n, d = rows.shape
    shift = np.zeros((len(candidates), d))
    for c, (a, js) in enumerate(candidates):
        shift[c, list(js)] = a * spread[list(js)]
    batch = rows[None, :, :] + shift[:, None, :]
    batch = np.where(nonneg[None, None, :], np.maximum(batch, 0.0), batch)
    predicted = np.asarray(predict(batch.reshape(-1, d))).astype(str).reshape(len(candidates), n)
    changed = predicted != base[None, :]
    labels = np.unique(np.r_[predicted.ravel(), base])
    # Flip rate towards each class; keep the class each candidate flips to most.
    # Rows already predicted as a class cannot flip to it: rates are over the others.
    per_class = np.stack(
        [
            (changed & (predicted == lab)).sum(axis=1) / max(int((base != lab).sum()), 1)
            for lab in labels
        ],
        axis=1,
    )
    best = per_class.argmax(axis=1)
    return per_class.max(axis=1), labels[best]
