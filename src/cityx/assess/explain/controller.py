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
from cityx.worlds.traffic.choices import (
    CHOICES_FILE,
    ControllerChoice,
    DecidedBy,
    EnvelopeOutcome,
)

from .choice_counterfactuals import (
    DETECTOR_FEATURES,
    grid_counterfactuals,
    rule_counterfactual,
    tree_counterfactuals,
)
from .model import ExactModel, TreeModel, class_names
from .predictor import describe_model
from .shapley import brute_force_shap, paired_shap

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


def explain_run(
    run: Path,
    *,
    model: ExactModel | None = None,
    score_column: int = 0,
    scorer: Callable[[FloatArray], FloatArray] | None = None,
    intersection: str | None = None,
    at: float | None = None,
    controller: str | None = None,
    recorded: tuple[dict[str, Any], list[ControllerChoice]] | None = None,
) -> RunExplanation:
    """Explain every recorded choice of a run (or those of one intersection / time).

    ``model`` (with ``score_column``, the margin column of the score label) explains a
    submitted model exactly; without it, ``scorer`` (the isolated model's score) is used
    by brute force. A rule's choices need neither.
    """
    start = time.perf_counter()
    spec, choices = recorded if recorded is not None else read_choices(run)
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
        cfs = [rule_counterfactual(c, float(runner[i, qk])) for i, c in enumerate(with_runner)]
    elif isinstance(model, TreeModel) and model._leq_only and model.pre.is_identity:
        cfs = tree_counterfactuals(model, with_runner, chosen, runner, score, columns)
    else:
        cfs = grid_counterfactuals(with_runner, chosen, runner, score, columns)

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
        return explain_run(run, intersection=intersection, at=at, recorded=(spec, choices))
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
                recorded=(spec, choices),
            )
        result = explain_run(
            run,
            scorer=scorer.score,
            intersection=intersection,
            at=at,
            controller=submission.manifest.system.id,
            recorded=(spec, choices),
        )
    return replace(result, note=f"no exact description ({why}): brute force through the model")
