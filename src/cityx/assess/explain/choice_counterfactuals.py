"""Controller counterfactuals: the one detector reading that would have made the runner-up win.

For a tree ensemble with "<=" tests the answer is exact, from the step
functions of its score in one reading (:func:`tree_counterfactuals`); for
other models a batched grid search (:func:`grid_counterfactuals`); for
max-pressure, from its rule (:func:`rule_counterfactual`). Vehicle counts
move in whole vehicles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cityx.core import FloatArray
from cityx.worlds.traffic.candidates import FEATURES
from cityx.worlds.traffic.choices import ControllerChoice

from .model import TreeModel
from .shapley import satisfied_pairs

# Readings a detector gives; the other candidate features describe the layout or the clock.
DETECTOR_FEATURES = (
    "queue_in",
    "queue_out",
    "pressure",
    "occupancy_in",
    "arrivals_in",
    "queue_total",
)
UNITS = {f.name: f.unit for f in FEATURES}
_CHUNK = 2048  # decisions per batch: bounds the (decisions x leaves) working arrays
_WORDS = {
    "queue_in": "halting vehicles on its served lanes",
    "queue_out": "halting vehicles on the lanes it feeds",
    "pressure": "pressure",
    "occupancy_in": "occupancy on its served lanes",
    "arrivals_in": "arrivals on its served lanes",
    "queue_total": "halting vehicles at the intersection",
}


def grid_counterfactuals(
    choices: Sequence[ControllerChoice],
    chosen: FloatArray,
    runner: FloatArray,
    score: Callable[[FloatArray], FloatArray],
    columns: Sequence[str],
    *,
    steps: int = 60,
    chunk: int = 200,
) -> list[dict[str, Any] | None]:
    """Per decision, the smallest single detector reading on the runner-up's row that wins.

    All decisions' candidate rows are scored in a few batched calls; vehicle counts move
    in whole vehicles, other readings in 1/``steps`` of their span.
    """
    names = [n for n in DETECTOR_FEATURES if n in columns]
    n = len(choices)
    if not names or n == 0:
        return [None] * n
    cols = np.array([columns.index(m) for m in names])
    span = np.maximum(20.0, 3.0 * np.maximum(np.abs(chosen[:, cols]), np.abs(runner[:, cols])))
    whole = np.array([UNITS.get(m) == "veh" for m in names])
    k = np.arange(1, steps + 1, dtype=np.float64)
    # decisions x features x 2*steps: increases, then decreases.
    up = np.where(whole[None, :, None], k[None, None, :], span[:, :, None] * k / steps)
    delta = np.concatenate([up, -up], axis=2)
    lows = np.array([next((f.min for f in FEATURES if f.name == m), -np.inf) for m in names])
    value = runner[:, cols][:, :, None] + delta
    valid = value >= lows[None, :, None]
    target = score(chosen)
    wins = np.zeros(delta.shape, dtype=bool)
    g = delta.shape[1] * delta.shape[2]
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        rows = np.repeat(runner[lo:hi, None, :], g, axis=1).reshape(
            hi - lo, len(names), -1, runner.shape[1]
        )
        for f, j in enumerate(cols):
            rows[:, f, :, j] = value[lo:hi, f, :]
        got = score(rows.reshape(-1, runner.shape[1])).reshape(hi - lo, len(names), -1)
        wins[lo:hi] = got > target[lo:hi, None, None]
    wins &= valid
    cost = np.where(wins, np.abs(delta) / span[:, :, None], np.inf).reshape(n, -1)
    best = np.argmin(cost, axis=1)
    out: list[dict[str, Any] | None] = []
    for i, c in enumerate(choices):
        if not np.isfinite(cost[i, best[i]]):
            out.append(None)
            continue
        f, s = divmod(int(best[i]), delta.shape[2])
        out.append(_sentence(c, names[f], float(runner[i, cols[f]]), float(delta[i, f, s])))
    return out


def tree_counterfactuals(
    model: TreeModel,
    choices: Sequence[ControllerChoice],
    chosen: FloatArray,
    runner: FloatArray,
    score: Callable[[FloatArray], FloatArray],
    columns: Sequence[str],
) -> list[dict[str, Any] | None]:
    """Exact counterfactuals for a tree ensemble with "<=" tests, from its step functions.

    Changing one reading of the runner-up row moves it only between the leaves whose
    other tests it passes; each such leaf covers an interval of that reading, so its score
    is a step function of the reading, known exactly without querying a grid.
    """
    p = model.paths
    names = [n for n in DETECTOR_FEATURES if n in columns]
    sign = 1.0
    if model.binary:
        sign = 1.0 if float(score(runner[:1])[0]) == float(model.margin(runner[:1])[0, 0]) else -1.0
    column = _score_column(model, score, runner[:1])
    leaf_value = sign * model.value[p.leaves][:, column]
    n_pairs = p.pair_leaf.shape[0]
    # Each pair's interval (lo, hi] of its feature, from the yes (<=) and no (>) tests.
    thr = model.threshold[p.entry_node]
    lo = np.full(n_pairs, -np.inf)
    hi = np.full(n_pairs, np.inf)
    entry_pair = np.repeat(np.arange(n_pairs), np.diff(np.r_[p.pair_start, p.entry_node.size]))
    np.minimum.at(hi, entry_pair[p.entry_yes], thr[p.entry_yes])
    np.maximum.at(lo, entry_pair[~p.entry_yes], thr[~p.entry_yes])
    target = score(chosen)
    here = score(runner)
    n, n_leaves = runner.shape[0], p.leaves.shape[0]
    # Per decision: the best (share of span, feature index, change) found so far.
    best_cost = np.full(n, np.inf)
    best_feature = np.zeros(n, dtype=np.int64)
    best_change = np.zeros(n)
    steps = []  # per feature: its column, pairs, leaf intervals, probes and piece table
    for f, name in enumerate(names):
        j = columns.index(name)
        on_j = np.flatnonzero(p.pair_feature == j)
        # Each leaf's interval of feature j (the whole line where j is not on its path).
        a = np.full(n_leaves, -np.inf)
        b = np.full(n_leaves, np.inf)
        a[p.pair_leaf[on_j]] = lo[on_j]
        b[p.pair_leaf[on_j]] = hi[on_j]
        edges = np.unique(np.r_[a, b][np.isfinite(np.r_[a, b])])
        if edges.size == 0:
            continue
        # One probe inside each piece of the reading's line: below the first edge, and
        # just above every edge (a finer partition than any one row's reachable leaves).
        probes = np.r_[edges[0] - 1.0, np.nextafter(edges, np.inf)]
        lowest = next((x.min for x in FEATURES if x.name == name), -np.inf)
        if UNITS.get(name) == "veh":
            probes = np.unique(np.ceil(probes))
        probes = probes[probes >= lowest]
        if probes.size == 0:
            continue
        p32 = probes.astype(np.float32).astype(np.float64) if model.float32 else probes
        inside = ((a[None, :] < p32[:, None]) & (p32[:, None] <= b[None, :])).astype(np.float64)
        on_leaf = np.zeros((on_j.size, n_leaves))
        on_leaf[np.arange(on_j.size), p.pair_leaf[on_j]] = 1.0
        steps.append((f, j, on_j, a, b, probes, inside, on_leaf))
    for c0 in range(0, n, _CHUNK):
        c1 = min(n, c0 + _CHUNK)
        rows = runner[c0:c1]
        unsat = (~satisfied_pairs(model, rows)).astype(np.float64)
        unsat_leaf = np.add.reduceat(unsat, p.leaf_start, axis=1)
        t = target[c0:c1, None]
        for f, j, on_j, a, b, probes, inside, on_leaf in steps:
            # Leaves reached when only feature j varies: every other pair passes.
            reach = (unsat_leaf - unsat[:, on_j] @ on_leaf) < 0.5
            weight = reach * leaf_value[None, :]
            x0 = rows[:, j]
            x32 = x0.astype(np.float32).astype(np.float64) if model.float32 else x0
            now = (((a[None, :] < x32[:, None]) & (x32[:, None] <= b[None, :])) * weight).sum(1)
            values = here[c0:c1, None] + weight @ inside.T - now[:, None]
            # Summed in another order than the model's: a tie must not count as a win.
            wins = values > t + 1e-9 * (1.0 + np.abs(t))
            dist = np.where(wins, np.abs(probes[None, :] - x0[:, None]), np.inf)
            k = np.argmin(dist, axis=1)
            change = probes[k] - x0
            span = np.maximum(20.0, 3.0 * np.abs(x0))
            found = np.isfinite(dist[np.arange(c1 - c0), k])
            cost = np.where(found, np.abs(change) / span, np.inf)
            better = cost < best_cost[c0:c1]
            best_cost[c0:c1] = np.where(better, cost, best_cost[c0:c1])
            best_feature[c0:c1] = np.where(better, f, best_feature[c0:c1])
            best_change[c0:c1] = np.where(better, change, best_change[c0:c1])
    out: list[dict[str, Any] | None] = []
    for i, c in enumerate(choices):
        if not np.isfinite(best_cost[i]):
            out.append(None)
            continue
        name = names[int(best_feature[i])]
        out.append(_sentence(c, name, float(runner[i, columns.index(name)]), float(best_change[i])))
    return out


def _score_column(
    model: TreeModel, score: Callable[[FloatArray], FloatArray], row: FloatArray
) -> int:
    if model.binary:
        return 0
    m = model.margin(row)[0]
    return int(np.argmin(np.abs(m - float(score(row)[0]))))


def _sentence(c: ControllerChoice, name: str, was: float, change: float) -> dict[str, Any]:
    unit = UNITS.get(name, "")
    # The words name the vehicles already ("3 more halting vehicles"); other units stay.
    amount = f"{abs(change):.3g}" + (f" {unit}" if unit and unit != "veh" else "")
    words = _WORDS.get(name, name)
    if unit == "veh" and abs(change) == 1.0:
        words = words.replace("vehicles", "vehicle", 1)
    sentence = (
        f"phase {c.runner_up_phase} would have won with {amount} "
        f"{'more' if change > 0 else 'fewer'} {words} ({name} {was:.4g} -> {was + change:.4g})"
    )
    return {"changes": {name: was + change}, "winner": c.runner_up_phase, "sentence": sentence}


def rule_counterfactual(c: ControllerChoice, was: float) -> dict[str, Any] | None:
    """Max-pressure: the runner-up wins with more pressure; ties go to the current phase."""
    margin = c.margin or 0.0
    need = max(margin, 1.0) if c.runner_up_phase == c.current_phase else np.floor(margin) + 1.0
    return _sentence(c, "queue_in", was, float(need))


__all__ = [
    "DETECTOR_FEATURES",
    "UNITS",
    "grid_counterfactuals",
    "rule_counterfactual",
    "tree_counterfactuals",
]
