"""Counterfactuals for a predictor's decision: the smallest feasible change that changes it.

Candidates move one feature along a grid of its schema range, then pairs of
the four most attributed features on a coarser grid; each candidate is
projected onto the physical constraints (:func:`cityx.data.constraints.project`)
and the cheapest one that changes the decision wins (fewest features changed,
then the change as a share of each range). Each move is then bisected toward
the row, and moves the decision does not need are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import FloatArray, Predictor
from cityx.data.constraints import ThreatModel, project


@dataclass(frozen=True, slots=True)
class Counterfactual:
    changes: dict[str, float]
    prediction: str
    sentence: str

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": dict(self.changes),
            "prediction": self.prediction,
            "sentence": self.sentence,
        }


def counterfactual(
    row: FloatArray,
    label: str,
    phi: FloatArray,
    decide: Callable[[FloatArray], NDArray[np.str_]],
    predictor: Predictor,
    limits: ThreatModel | None,
    features: Sequence[str],
    steps: int = 24,
) -> Counterfactual | None:
    """The smallest feasible change that changes the decision: one feature, then two."""
    schema = predictor.schema
    lo, hi = schema.lower.copy(), schema.upper.copy()
    span = np.where(np.isfinite(hi - lo), hi - lo, np.maximum(np.abs(row), 1.0) * 2)
    lo = np.where(np.isfinite(lo), lo, row - span)
    hi = np.where(np.isfinite(hi), hi, row + span)
    d = row.shape[0]
    grid = np.linspace(0.0, 1.0, steps)
    candidates = []
    for j in range(d):
        values = lo[j] + grid * (hi[j] - lo[j])
        c = np.repeat(row[None, :], steps, axis=0)
        c[:, j] = values
        candidates.append(c)
    top = np.argsort(-np.abs(phi))[:4]
    coarse = np.linspace(0.0, 1.0, 9)
    for a in range(len(top)):
        for b in range(a + 1, len(top)):
            i, j = top[a], top[b]
            va, vb = np.meshgrid(
                np.r_[row[i], lo[i] + coarse * (hi[i] - lo[i])],
                np.r_[row[j], lo[j] + coarse * (hi[j] - lo[j])],
            )
            c = np.repeat(row[None, :], va.size, axis=0)
            c[:, i], c[:, j] = va.reshape(-1), vb.reshape(-1)
            candidates.append(c)
    points = np.vstack(candidates)
    if limits is not None:
        points = project(limits, points, row[None, :])
    changed = np.abs(points - row) > 1e-9 * np.maximum(1.0, np.abs(row))
    new = decide(points)
    flips = np.flatnonzero((new != label) & changed.any(axis=1))
    if flips.size == 0:
        return None
    cost = changed[flips].sum(axis=1) * 10.0 + (np.abs(points[flips] - row) / span).sum(axis=1)
    best = int(flips[int(np.argmin(cost))])
    target = points[best].copy()
    # Bisect each move toward the row: the grid step overshoots the boundary.
    for j in np.flatnonzero(changed[best]).tolist():
        near, far = row[j], target[j]
        for _ in range(12):
            mid = target.copy()
            mid[j] = (near + far) / 2.0
            if limits is not None:
                mid = project(limits, mid[None, :], row[None, :])[0]
            if decide(mid[None, :])[0] != label:
                far, target = mid[j], mid
            else:
                near = mid[j]
    # Drop moves the decision does not need (a projection may nudge a linked feature).
    for j in np.flatnonzero(np.abs(target - row) > 0).tolist():
        back = target.copy()
        back[j] = row[j]
        if limits is not None:
            back = project(limits, back[None, :], row[None, :])[0]
        if decide(back[None, :])[0] != label:
            target = back
    points = np.vstack([points, target[None, :]])
    best = points.shape[0] - 1
    changed = np.abs(points - row) > 1e-9 * np.maximum(1.0, np.abs(row))
    new = np.r_[new, decide(target[None, :])]
    moved = np.flatnonzero(changed[best]).tolist()
    changes = {features[j]: float(points[best, j]) for j in moved}
    parts = []
    for j in moved:
        f = schema.features[j]
        delta = float(points[best, j] - row[j])
        unit = f" {f.unit}" if f.unit else ""
        parts.append(
            f"{abs(delta):.3g}{unit} {'more' if delta > 0 else 'less'} {f.name} "
            f"({row[j]:.4g} -> {points[best, j]:.4g})"
        )
    sentence = f"with {' and '.join(parts)} this would be {new[best]!s}, not {label}"
    return Counterfactual(changes, str(new[best]), sentence)


__all__ = ["Counterfactual", "counterfactual"]
