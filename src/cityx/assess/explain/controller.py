"""Why this phase and not the runner-up: explaining a sandbox run's controller choices.

A world run with a controller writes one *controller choice* record
(``controller-choice/v1``, :mod:`cityx.worlds.traffic.choices`) per
intersection and decision to ``choices.jsonl``. For each record this
module splits the *score margin* (chosen row's score minus the runner-up
row's) additively across the candidate features:

- a submitted tree or linear model: the Shapley values of the margin
  (log-odds for a classifier's score, exact) with the runner-up row as the
  one reference, so ``sum(contributions) == margin`` exactly; any other
  model: the same values by enumerating all coalitions through the
  isolated model (``brute-force``, exact, 2^d model rows a decision);
- max-pressure: its rule scores each phase by its pressure, so the whole
  margin is the pressure difference;
- actuated and fixed-time control are *decided inside SUMO*: no runner-up
  is ever chosen, and there is nothing to split.

*Decided by* is ``envelope`` when the safety envelope, not the controller,
decided the step (minimum green held, in transition, forced at maximum
green), else ``model`` (or ``rule`` for max-pressure). The *counterfactual*
is the smallest change of one detector reading of the runner-up row that
would have made it win.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cityx.core import FloatArray, InputError
from cityx.submissions import open_submission
from cityx.worlds.traffic.candidates import FEATURES
from cityx.worlds.traffic.choices import (
    CHOICES_FILE,
    ControllerChoice,
    DecidedBy,
    EnvelopeOutcome,
)

from .model import ExactModel, LinearModel, TreeModel, class_names
from .predictor import describe_model
from .shapley import _pattern_table, _weights, brute_force_shap, tree_shap

# Readings a detector gives; the other candidate features describe the layout or the clock.
DETECTOR_FEATURES = (
    "queue_in",
    "queue_out",
    "pressure",
    "occupancy_in",
    "arrivals_in",
    "queue_total",
)
_UNITS = {f.name: f.unit for f in FEATURES}
_WORDS = {
    "queue_in": "halting vehicles on its served lanes",
    "queue_out": "halting vehicles on the lanes it feeds",
    "pressure": "pressure",
    "occupancy_in": "occupancy on its served lanes",
    "arrivals_in": "arrivals on its served lanes",
    "queue_total": "halting vehicles at the intersection",
}
_ENVELOPE = frozenset(
    {
        EnvelopeOutcome.MIN_GREEN_HELD,
        EnvelopeOutcome.IN_TRANSITION,
        EnvelopeOutcome.FORCED_MAX_GREEN,
    }
)


@dataclass(frozen=True, slots=True)
class ChoiceExplanation:
    t: float
    intersection: str
    chosen: int
    runner_up: int | None
    decided_by: str
    envelope: str | None
    margin: float | None  # in the unit the contributions add up to
    score_margin: float | None  # the recorded scores' difference
    contributions: dict[str, float]
    counterfactual: dict[str, Any] | None
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "chosen": self.chosen,
            "runner_up": self.runner_up,
            "decided_by": self.decided_by,
            "envelope": self.envelope,
            "margin": self.margin,
            "score_margin": self.score_margin,
            "contributions": dict(self.contributions),
            "counterfactual": self.counterfactual,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class RunExplanation:
    controller: str
    method: str
    exact: bool
    unit: str
    intersections: dict[str, tuple[ChoiceExplanation, ...]]
    additivity_max_error: float | None
    stability: float | None
    decisions: int
    wall_s: float
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "controller": self.controller,
            "method": self.method,
            "exact": self.exact,
            "unit": self.unit,
            "decisions": self.decisions,
            "intersections": {k: [c.to_json() for c in v] for k, v in self.intersections.items()},
            "fidelity": {
                "additivity_max_error": self.additivity_max_error,
                "stability": self.stability,
            },
            "note": self.note,
            "wall_s": round(self.wall_s, 3),
        }


def read_choices(run: Path) -> tuple[dict[str, Any], list[ControllerChoice]]:
    """The run's spec and its recorded choices; an InputError says how to record them."""
    run = Path(run)
    spec_file = run / "spec.json"
    if not spec_file.is_file():
        raise InputError("not a cityx world run folder (no spec.json)", where=str(run))
    spec = json.loads(spec_file.read_text())
    path = run / CHOICES_FILE
    if not path.is_file():
        controller = str(spec.get("controller"))
        if controller in ("actuated", "fixed"):
            return spec, []
        raise InputError(
            f"the world run has no recorded controller choices ({CHOICES_FILE})",
            where=str(run),
            hint="run the world again with this cityx (cityx world run ...); every run with a "
            "controller that scores phase candidates records its choices",
        )
    out = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(ControllerChoice.from_json(json.loads(line)))
                except (ValueError, InputError) as exc:
                    raise InputError(
                        f"line {number} is not a controller choice: {exc}", where=str(path)
                    ) from exc
    return spec, out


def paired_shap(model: ExactModel, x: FloatArray, z: FloatArray, column: int) -> FloatArray:
    """Shapley values of margin(x) - margin(z) for each row pair, one reference each (rows x d)."""
    sign = 1.0
    if model.binary:
        sign, column = (1.0 if column == 1 else -1.0), 0
    if isinstance(model, LinearModel):
        return np.asarray(sign * (x - z) * model.coef[column][None, :], dtype=np.float64)
    p = model.paths
    if p.depth > 7:
        rows = [
            tree_shap(model, x[i : i + 1], z[i : i + 1])[0][0, :, column] for i in range(len(x))
        ]
        return sign * np.asarray(rows)
    return sign * _paired_patterns(model, x, z, column)


def _paired_patterns(model: TreeModel, x: FloatArray, z: FloatArray, column: int) -> FloatArray:
    p = model.paths
    n, d = x.shape
    if p.pair_leaf.size == 0:
        return np.zeros((n, d))
    depth = p.depth
    n_leaves = p.leaves.shape[0]
    slot_pair = np.full((n_leaves, depth), -1, dtype=np.int64)
    rank = np.arange(p.pair_leaf.shape[0]) - p.leaf_start[p.pair_leaf]
    slot_pair[p.pair_leaf, rank] = np.arange(p.pair_leaf.shape[0])
    bits = 1 << np.arange(depth)

    def patterns(rows: FloatArray) -> Any:
        mismatch = (model.tests(rows, p.entry_node) != p.entry_yes).astype(np.int32)
        sat = np.add.reduceat(mismatch, p.pair_start, axis=1) == 0
        padded = np.concatenate([sat, np.ones((sat.shape[0], 1), dtype=bool)], axis=1)
        return (padded[:, slot_pair].astype(np.int64) * bits).sum(axis=2)

    table = _pattern_table(depth, _weights(depth))
    coef = table[patterns(x), patterns(z)]  # rows x leaves x slot
    slot_feature = np.where(slot_pair >= 0, p.pair_feature[np.maximum(slot_pair, 0)], 0)
    onehot = np.zeros((n_leaves * depth, model.inputs))
    onehot[np.arange(n_leaves * depth), slot_feature.reshape(-1)] = 1.0
    weighted = coef * model.value[p.leaves][None, :, column, None]
    return np.asarray(weighted.reshape(n, -1) @ onehot)


def explain_run(
    run: Path,
    *,
    model: ExactModel | None = None,
    score_column: int = 0,
    scorer: Callable[[FloatArray], FloatArray] | None = None,
    intersection: str | None = None,
    at: float | None = None,
    controller: str | None = None,
) -> RunExplanation:
    """Explain every recorded choice of a run (or those of one intersection / time).

    ``model`` (with ``score_column``, the margin column of the score label) explains a
    submitted model exactly; without it, ``scorer`` (the isolated model's score) is used
    by brute force. A rule's choices need neither.
    """
    start = time.perf_counter()
    spec, choices = read_choices(run)
    name = controller or str(spec.get("controller"))
    if not choices:
        return RunExplanation(
            controller=name,
            method="sumo",
            exact=False,
            unit="",
            intersections={},
            additivity_max_error=None,
            stability=None,
            decisions=0,
            wall_s=time.perf_counter() - start,
            note=f"{name} is decided inside SUMO: it extends or ends greens by its own rule "
            "and never picks a runner-up, so there is no choice to explain",
        )
    picked = _filter(choices, intersection, at)
    if intersection is not None and not picked:
        known = sorted({c.intersection for c in choices})
        raise InputError(
            f"no recorded choice at intersection {intersection!r}",
            where="--intersection",
            hint=f"intersections: {', '.join(known)}",
        )
    with_runner = [c for c in picked if c.runner_up_phase is not None]
    rule = bool(picked) and picked[0].decided_by is DecidedBy.RULE
    columns = picked[0].columns if picked else ()
    chosen = np.array([c.row(c.chosen_phase) for c in with_runner]).reshape(-1, len(columns))
    runner = np.array(
        [c.row(c.runner_up_phase) for c in with_runner if c.runner_up_phase is not None]
    ).reshape(-1, len(columns))
    if rule:
        method, exact, unit = "rule", True, "veh (pressure)"
        pk = columns.index("pressure")
        phi = np.zeros_like(chosen)
        phi[:, pk] = chosen[:, pk] - runner[:, pk]
        target = np.array([c.margin or 0.0 for c in with_runner])

        def score(rows: FloatArray) -> FloatArray:
            return rows[:, pk]

    elif model is not None:
        method = "tree-exact" if isinstance(model, TreeModel) else "linear-exact"
        exact, unit = True, "log-odds" if model.post_transform == "LOGISTIC" else "margin"
        phi = paired_shap(model, chosen, runner, score_column)

        def score(rows: FloatArray) -> FloatArray:
            m = model.margin(rows)
            if model.binary:
                return m[:, 0] if score_column == 1 else -m[:, 0]
            return m[:, score_column]

        target = score(chosen) - score(runner)
    elif scorer is not None:
        method, exact, unit = "brute-force", True, "score"
        score = scorer  # type: ignore[assignment]  # same signature, another function
        rows = [
            brute_force_shap(lambda r: scorer(r)[:, None], chosen[i : i + 1], runner[i : i + 1])[0][
                0, :, 0
            ]
            for i in range(len(chosen))
        ]
        phi = np.asarray(rows).reshape(-1, len(columns))
        target = np.array([c.margin or 0.0 for c in with_runner])
    else:
        raise InputError("a model's choices need its model or scorer to be explained")
    additivity = float(np.abs(phi.sum(axis=1) - target).max()) if len(target) else None
    if rule:
        qk = columns.index("queue_in")
        cfs = [_rule_counterfactual(c, float(runner[i, qk])) for i, c in enumerate(with_runner)]
    elif isinstance(model, TreeModel) and model._leq_only and model.pre.is_identity:
        cfs = _tree_counterfactuals(model, with_runner, chosen, runner, score, columns)
    else:
        cfs = _counterfactuals(with_runner, chosen, runner, score, columns)

    by_id: dict[str, list[ChoiceExplanation]] = {}
    k = 0
    for c in picked:
        if c.runner_up_phase is None:
            contrib: dict[str, float] = {}
            margin = None
            cf = None
        else:
            contrib = dict(zip(columns, phi[k].tolist(), strict=True))
            margin = float(target[k])
            cf = cfs[k]
            k += 1
        decided = (
            "envelope"
            if c.envelope in _ENVELOPE
            else ("rule" if c.decided_by is DecidedBy.RULE else "model")
        )
        by_id.setdefault(c.intersection, []).append(
            ChoiceExplanation(
                t=c.time_s,
                intersection=c.intersection,
                chosen=c.chosen_phase,
                runner_up=c.runner_up_phase,
                decided_by=decided,
                envelope=None if c.envelope is None else c.envelope.value,
                margin=margin,
                score_margin=c.margin,
                contributions=contrib,
                counterfactual=cf,
                reasons=_reasons(c, contrib, decided),
            )
        )
    return RunExplanation(
        controller=name,
        method=method,
        exact=exact,
        unit=unit,
        intersections={i: tuple(v) for i, v in by_id.items()},
        additivity_max_error=additivity,
        stability=_consecutive_stability(by_id),
        decisions=len(picked),
        wall_s=time.perf_counter() - start,
    )


def _filter(
    choices: Iterable[ControllerChoice], intersection: str | None, at: float | None
) -> list[ControllerChoice]:
    out = [c for c in choices if intersection is None or c.intersection == intersection]
    if at is None or not out:
        return out
    # The decision in force at ``at``: each intersection's last record at or before it.
    last: dict[str, ControllerChoice] = {}
    for c in out:
        if c.time_s <= at:
            last[c.intersection] = c
    return list(last.values())


def _counterfactuals(
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
    whole = np.array([_UNITS.get(m) == "veh" for m in names])
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


def _tree_counterfactuals(
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
    mismatch = (model.tests(runner, p.entry_node) != p.entry_yes).astype(np.int32)
    unsat = np.add.reduceat(mismatch, p.pair_start, axis=1) > 0  # rows x pairs
    unsat_leaf = np.add.reduceat(unsat.astype(np.int32), p.leaf_start, axis=1)  # rows x leaves
    target = score(chosen)
    here = score(runner)
    out: list[dict[str, Any] | None] = []
    for i, c in enumerate(choices):
        best: tuple[float, str, float] | None = None
        for name in names:
            j = columns.index(name)
            on_j = p.pair_feature == j
            # Leaves the row reaches when only feature j varies: all other pairs pass.
            other = unsat_leaf[i].copy()
            np.subtract.at(other, p.pair_leaf[on_j], unsat[i, on_j].astype(np.int32))
            reach = other == 0
            a = np.full(reach.shape[0], -np.inf)
            b = np.full(reach.shape[0], np.inf)
            a[p.pair_leaf[on_j]] = lo[on_j]
            b[p.pair_leaf[on_j]] = hi[on_j]
            a, b, v = a[reach], b[reach], leaf_value[reach]
            x0 = runner[i, j]
            x0_32 = float(np.float32(x0)) if model.float32 else x0
            now = ((a < x0_32) & (x0_32 <= b)) @ v
            edges = np.unique(np.r_[a, b][np.isfinite(np.r_[a, b])])
            if edges.size == 0:
                continue
            # One probe inside each piece: just above each edge, and below the first.
            probes = np.r_[edges[0] - 1.0, np.nextafter(edges, np.inf)]
            lowest = next((f.min for f in FEATURES if f.name == name), -np.inf)
            if _UNITS.get(name) == "veh":
                probes = np.ceil(probes)
            probes = probes[probes >= lowest]
            p32 = probes.astype(np.float32).astype(np.float64) if model.float32 else probes
            inside = (a[None, :] < p32[:, None]) & (p32[:, None] <= b[None, :])
            values = here[i] + inside @ v - now
            # Summed in another order than the model's: a tie must not count as a win.
            ok = np.flatnonzero(values > target[i] + 1e-9 * (1.0 + abs(target[i])))
            if ok.size == 0:
                continue
            k = ok[np.argmin(np.abs(probes[ok] - x0))]
            change = float(probes[k] - x0)
            span = max(20.0, 3.0 * abs(x0))
            if best is None or abs(change) / span < abs(best[2]) / best[0]:
                best = (span, name, change)
        out.append(
            None
            if best is None
            else _sentence(c, best[1], float(runner[i, columns.index(best[1])]), best[2])
        )
    return out


def _score_column(
    model: TreeModel, score: Callable[[FloatArray], FloatArray], row: FloatArray
) -> int:
    if model.binary:
        return 0
    m = model.margin(row)[0]
    return int(np.argmin(np.abs(m - float(score(row)[0]))))


def _sentence(c: ControllerChoice, name: str, was: float, change: float) -> dict[str, Any]:
    unit = _UNITS.get(name, "")
    sentence = (
        f"phase {c.runner_up_phase} would have won with {abs(change):.3g}"
        f"{' ' + unit if unit else ''} {'more' if change > 0 else 'fewer'} "
        f"{_WORDS.get(name, name)} ({name} {was:.4g} -> {was + change:.4g})"
    )
    return {"changes": {name: was + change}, "winner": c.runner_up_phase, "sentence": sentence}


def _rule_counterfactual(c: ControllerChoice, was: float) -> dict[str, Any] | None:
    """Max-pressure: the runner-up wins with more pressure; ties go to the current phase."""
    margin = c.margin or 0.0
    need = max(margin, 1.0) if c.runner_up_phase == c.current_phase else np.floor(margin) + 1.0
    return _sentence(c, "queue_in", was, float(need))


def _reasons(c: ControllerChoice, contrib: dict[str, float], decided: str) -> tuple[str, ...]:
    if decided == "envelope" and c.envelope is not None:
        what = {
            EnvelopeOutcome.MIN_GREEN_HELD: "the envelope held the minimum green",
            EnvelopeOutcome.IN_TRANSITION: "a clearance was running",
            EnvelopeOutcome.FORCED_MAX_GREEN: "the envelope ended the green at its maximum",
        }[c.envelope]
        return (what,)
    if not contrib:
        return ("the intersection has one green phase",)
    top = sorted(contrib.items(), key=lambda kv: -abs(kv[1]))[:3]
    return tuple(
        f"{name} {'for' if v > 0 else 'against'} phase {c.chosen_phase} ({v:+.3g})"
        for name, v in top
        if v != 0
    )


def _consecutive_stability(by_id: dict[str, list[ChoiceExplanation]]) -> float | None:
    """Mean Spearman correlation of |contributions| between consecutive decisions."""
    values = []
    for items in by_id.values():
        rows = [list(e.contributions.values()) for e in items if e.contributions]
        if len(rows) < 2 or len(rows[0]) < 2:
            continue
        a = np.abs(np.asarray(rows))
        r = np.argsort(np.argsort(a, axis=1), axis=1).astype(np.float64)
        r -= r.mean(axis=1, keepdims=True)
        num = (r[1:] * r[:-1]).sum(axis=1)
        den = np.sqrt((r[1:] ** 2).sum(axis=1) * (r[:-1] ** 2).sum(axis=1))
        ok = den > 0
        values.extend((num[ok] / den[ok]).tolist())
    return float(np.mean(values)) if values else None


def timeline(explanation: RunExplanation, *, limit: int = 12) -> dict[str, list[str]]:
    """Per intersection, the decisions that changed something, as lines with their top reasons."""
    out: dict[str, list[str]] = {}
    for tls, items in explanation.intersections.items():
        lines = []
        for e in items:
            if (
                e.envelope in ("kept", None)
                and e.decided_by != "envelope"
                and len(items) > 1
                and e is not items[0]
            ):
                continue
            what = e.envelope or "chosen"
            head = f"t={e.t:g} s: phase {e.chosen}" + (
                f" over {e.runner_up}" if e.runner_up is not None else ""
            )
            lines.append(f"{head} [{e.decided_by}, {what}] " + "; ".join(e.reasons))
        out[tls] = lines[:limit]
    return out


def choice_columns(choices: Sequence[ControllerChoice]) -> tuple[str, ...]:
    return choices[0].columns if choices else ()


__all__ = [
    "DETECTOR_FEATURES",
    "ChoiceExplanation",
    "RunExplanation",
    "explain_run",
    "paired_shap",
    "read_choices",
    "timeline",
]


def explain_world_run(
    run: Path, *, intersection: str | None = None, at: float | None = None
) -> RunExplanation:
    """Explain a world run's choices, opening a submitted controller's model in isolation."""
    spec, choices = read_choices(run)
    if not choices or choices[0].decided_by is DecidedBy.RULE or not spec.get("controller_factory"):
        return explain_run(run, intersection=intersection, at=at)
    folder = Path(str(spec["controller"]))
    submission = open_submission(folder)
    scorer = submission.scorer()
    label = submission.manifest.controller.score_label if submission.manifest.controller else None
    with scorer:
        model, why = describe_model(scorer.predictor, len(scorer.columns))
        if model is not None and tuple(scorer.columns) == choices[0].columns:
            names = class_names(model, submission.manifest.outputs.labels)
            column = names.index(label) if label in names else 0
            return explain_run(
                run,
                model=model,
                score_column=column,
                intersection=intersection,
                at=at,
                controller=submission.manifest.system.id,
            )
        result = explain_run(
            run,
            scorer=scorer.score,
            intersection=intersection,
            at=at,
            controller=submission.manifest.system.id,
        )
    return replace(result, note=f"no exact description ({why}): brute force through the model")
