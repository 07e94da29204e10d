"""A black-box, query-budgeted search for feasible inputs that change a prediction.

The search runs on many rows at once. Each *round* proposes ``width``
candidates per unfinished row, projects them onto the threat model
(:func:`.projection.project`) and asks the predictor about all of them in
one call; a *query* is one candidate row sent to the model, and no row
spends more than its *budget*. It has two phases:

1. *Find*: a seeded random search. Each candidate perturbs a random subset
   of the controlled sensors, most coordinates pushed to the edge of their
   allowed change (in a small box the corners flip predictions first).
   When the model gives class scores, the candidate with the lowest
   *margin* (score of the original label minus the best other score)
   becomes the next centre, with a shrinking step; with labels only, the
   search stays a pure random search.
2. *Shrink*: for each row that flipped, candidates on the segment between
   the true row and the adversarial one, and candidates with one sensor's
   change undone, keep the smallest *change* that still flips it (change:
   the sum over features of ``|delta| / max_change``, so dropping a whole
   sensor counts).

Only projected points are ever queried, so every success is feasible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cityx.core import FloatArray, Predictor
from cityx.data.constraints import ThreatModel, feasible_box, project

_SHRINK_ROUNDS = 2  # rounds of each row's budget always left for the shrink phase


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """Per row: the attacked input (the true one when it failed), success and queries."""

    attacked: FloatArray
    success: NDArray[np.bool_]
    queries: NDArray[np.int64]


def _labels_and_margin(
    predictor: Predictor, batch: FloatArray, target: NDArray[np.str_]
) -> tuple[NDArray[np.bool_], FloatArray]:
    """Whether each row's label moved off ``target``, and its margin (lower is closer)."""
    prediction = predictor.predict(batch)
    flipped = prediction.values.astype(str) != target
    if prediction.scores is not None and prediction.classes:
        classes = np.asarray(prediction.classes, dtype=str)
        own = classes[None, :] == target[:, None]
        scores = prediction.scores
        own_score = np.where(own, scores, -np.inf).max(axis=1)
        other = np.where(own, -np.inf, scores).max(axis=1)
        margin = np.where(np.isfinite(own_score), own_score - other, -1.0)
    else:
        margin = np.where(flipped, -1.0, 1.0)
    return np.asarray(flipped), np.asarray(margin, dtype=np.float64)


def _change(delta: FloatArray, scale: FloatArray) -> FloatArray:
    return np.asarray(np.abs(delta / scale).sum(axis=-1), dtype=np.float64)


def search(
    predictor: Predictor,
    rows: FloatArray,
    target: NDArray[np.str_],
    model: ThreatModel,
    *,
    budget: int,
    rng: np.random.Generator,
    previous: FloatArray | None = None,
    width: int = 8,
) -> SearchOutcome:
    """Move each row's prediction off ``target`` within ``model``, ``budget`` queries a row."""
    n, d = rows.shape
    controlled = model.controlled_mask()
    lo, hi = feasible_box(model, rows, previous, controlled)
    # The reach of each feature: how far it may move in the worse direction.
    reach = np.maximum(hi - rows, rows - lo)
    scale = np.where(reach > 0, reach, 1.0)
    sensors = [
        np.array([f in s.features for f in model.features])
        for s in model.sensors
        if s.name in model.controlled
    ]
    groups = np.stack(sensors) if sensors else np.zeros((0, d), dtype=bool)
    queries = np.zeros(n, dtype=np.int64)
    best = rows.copy()
    success = np.zeros(n, dtype=bool)
    if groups.shape[0] == 0 or not (reach > 0).any() or budget < 1:
        return SearchOutcome(best, success, queries)
    width = max(1, min(width, budget))
    centre = rows.copy()
    centre_margin = np.full(n, np.inf)
    step = np.ones(n)
    find_budget = max(width, budget - _SHRINK_ROUNDS * width)
    while True:
        active = np.flatnonzero(~success & (queries + width <= find_budget))
        if active.size == 0:
            break
        k = active.size
        # A random non-empty subset of the controlled sensors per candidate.
        density = rng.uniform(0.3, 1.0, (k, width, 1))
        pick = rng.random((k, width, groups.shape[0])) < density
        none = ~pick.any(axis=-1)
        pick[none, rng.integers(0, groups.shape[0], int(none.sum()))] = True
        mask = (pick[..., :, None] & groups[None, None]).any(axis=-2)
        u = rng.uniform(-1.0, 1.0, (k, width, d))
        u = np.where(rng.random((k, width, d)) < 0.6, np.sign(u), u)
        # Half the candidates explore from the true row at full reach, so a row
        # whose local search is stuck in a flat or misleading margin still
        # samples the whole box; the rest refine around the centre.
        explore = (np.arange(width) < width // 2)[None, :, None]
        base = np.where(explore, rows[active, None, :], centre[active, None, :])
        size = np.where(explore, 1.0, step[active, None, None])
        proposal = base + size * reach[active, None, :] * u * mask
        cand = project(
            model,
            proposal,
            rows[active, None, :],
            None if previous is None else previous[active, None, :],
        )
        flat = cand.reshape(k * width, d)
        flipped, margin = _labels_and_margin(predictor, flat, np.repeat(target[active], width))
        queries[active] += width
        flipped = flipped.reshape(k, width)
        margin = margin.reshape(k, width)
        cost = np.where(
            flipped, _change(cand - rows[active, None, :], scale[active, None, :]), np.inf
        )
        hit = flipped.any(axis=1)
        first = np.argmin(cost, axis=1)
        best[active[hit]] = cand[hit, first[hit]]
        success[active[hit]] = True
        j = np.argmin(margin, axis=1)
        low = margin[np.arange(k), j]
        better = low < centre_margin[active]
        centre[active[better]] = cand[better, j[better]]
        centre_margin[active[better]] = low[better]
        # Shrink the step where no candidate helped: search nearer the centre.
        step[active[~better]] = np.maximum(step[active[~better]] * 0.7, 0.15)
    _shrink(
        predictor,
        rows,
        target,
        model,
        best,
        success,
        queries,
        scale,
        groups,
        budget,
        width,
        previous,
    )
    return SearchOutcome(best, success, queries)


def _shrink(
    predictor: Predictor,
    rows: FloatArray,
    target: NDArray[np.str_],
    model: ThreatModel,
    best: FloatArray,
    success: NDArray[np.bool_],
    queries: NDArray[np.int64],
    scale: FloatArray,
    groups: NDArray[np.bool_],
    budget: int,
    width: int,
    previous: FloatArray | None,
) -> None:
    """Reduce the change of each successful row in place, within its remaining budget."""
    d = rows.shape[1]
    low = np.zeros(rows.shape[0])  # largest segment fraction known to fail, as a share
    groups_n = groups.shape[0]
    for round_ in range(64):
        active = np.flatnonzero(success & (queries + width <= budget))
        if active.size == 0:
            break
        k = active.size
        delta = best[active] - rows[active]
        if round_ % 2 == 0 or groups_n < 2:
            # Points on the segment between the true row and the best one so far.
            fractions = low[active, None] + (1.0 - low[active, None]) * (
                np.arange(1, width + 1) / (width + 1)
            )
            proposal = rows[active, None, :] + fractions[..., None] * delta[:, None, :]
        else:
            # Undo one sensor's change (the rest stay as they are).
            which = np.arange(width) % groups_n
            keep = ~groups[which]
            proposal = rows[active, None, :] + keep[None] * delta[:, None, :]
            fractions = None
        cand = project(
            model,
            proposal,
            rows[active, None, :],
            None if previous is None else previous[active, None, :],
        )
        flipped, _ = _labels_and_margin(
            predictor, cand.reshape(k * width, d), np.repeat(target[active], width)
        )
        queries[active] += width
        flipped = flipped.reshape(k, width)
        cost = np.where(
            flipped, _change(cand - rows[active, None, :], scale[active, None, :]), np.inf
        )
        j = np.argmin(cost, axis=1)
        current = _change(delta, scale[active])
        improve = cost[np.arange(k), j] < current - 1e-12
        best[active[improve]] = cand[improve, j[improve]]
        if fractions is not None:
            # Below the smallest flipping fraction every tried point failed.
            failed = np.where(~flipped, fractions, -np.inf).max(axis=1)
            first_ok = np.where(flipped, fractions, np.inf).min(axis=1)
            ok_below = failed < first_ok
            rel = np.where(
                improve & ok_below, np.maximum(failed, 0.0) / np.maximum(first_ok, 1e-9), 0.0
            )
            low[active] = np.where(improve, rel, low[active])
            # Nothing on the segment flipped: look only above what was tried.
            missed = ~flipped.any(axis=1)
            low[active[missed]] = fractions[missed, -1]


__all__ = ["SearchOutcome", "search"]
