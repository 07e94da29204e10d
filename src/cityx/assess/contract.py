"""The input contract: does the model answer every valid input, and what
does it do with invalid ones?

*Probes* are synthetic rows built from the declared input schema:
``valid`` rows drawn uniformly within bounds, ``boundary`` rows with one
feature at its minimum or maximum, ``out_of_range`` rows with one feature
beyond its bounds, and ``malformed`` rows with one NaN or infinity. A model
*scores* a probe when it returns an answer without complaint; a model that
scores out-of-range or malformed rows relies on its deployment to guard its
inputs, which the report says. Valid probes are sent twice to check that
the answers repeat. A probe's *outcome* is one of: scored (and then maybe
*invalid*: an answer that breaks the declared outputs), refused, or failed
(the model crashed or hung).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

import numpy as np
from markupsafe import Markup

from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    Details,
    Direction,
    Evidence,
    Fields,
    Finding,
    FloatArray,
    InputSchema,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    Prediction,
    Predictor,
    Principle,
    RunError,
    Severity,
    Tags,
    TargetCrashed,
    TargetError,
    TargetTimeout,
    Task,
    status_from,
    target_failure,
)
from cityx.governance import (
    PROBE_OUTCOMES,
    Plot,
    Section,
    Table,
    fmt_value,
    probe_chart,
    probe_count_chart,
    probe_outcomes,
)

_SAFETY = Tags(Principle.SAFETY, NistFunction.MEASURE, ("AML.T0043",), ("Art. 15",))
_DATA = Tags(Principle.DATA_GOVERNANCE, NistFunction.MAP, (), ("Art. 10",))
_REPEAT = Tags(Principle.REPEATABILITY, NistFunction.MEASURE, (), ("Art. 15",))


def probes(
    schema: InputSchema, reference: FloatArray | None, n_valid: int, rng: np.random.Generator
) -> dict[str, FloatArray]:
    """The probe batches, one per kind."""
    lower, upper = schema.lower.copy(), schema.upper.copy()
    if reference is not None and reference.size:
        lower = np.where(np.isfinite(lower), lower, reference.min(axis=0))
        upper = np.where(np.isfinite(upper), upper, reference.max(axis=0))
        centre = np.clip(np.median(reference, axis=0), lower, upper)
    else:
        lower = np.where(np.isfinite(lower), lower, np.where(np.isfinite(upper), upper - 1, 0.0))
        upper = np.where(np.isfinite(upper), upper, lower + 1.0)
        centre = (lower + upper) / 2.0
    ints = schema.integer_mask
    centre = np.where(ints, np.round(centre), centre)
    d = len(schema.features)

    valid = lower + rng.random((n_valid, d)) * (upper - lower)
    valid[:, ints] = np.clip(np.round(valid[:, ints]), np.ceil(lower[ints]), np.floor(upper[ints]))

    def one_feature_rows(values: FloatArray, mask: np.ndarray) -> FloatArray:
        rows = np.repeat(centre[None, :], int(mask.sum()), axis=0)
        cols = np.flatnonzero(mask)
        rows[np.arange(cols.size), cols] = values[cols]
        return rows

    everyone = np.ones(d, dtype=bool)
    boundary = np.vstack([one_feature_rows(lower, everyone), one_feature_rows(upper, everyone)])
    span = np.maximum(upper - lower, 1.0)
    below = one_feature_rows(schema.lower - np.maximum(0.1 * span, 1.0), np.isfinite(schema.lower))
    above = one_feature_rows(schema.upper + np.maximum(0.1 * span, 1.0), np.isfinite(schema.upper))
    malformed = np.vstack(
        [one_feature_rows(np.full(d, v), everyone) for v in (np.nan, np.inf, -np.inf)]
    )
    return {
        "valid": valid,
        "boundary": boundary,
        "out_of_range": np.vstack([below, above]),
        "malformed": malformed,
    }


def invalid_outputs(prediction: Prediction, predictor: Predictor) -> int:
    """Rows whose answer breaks the declared outputs (non-finite, out of range)."""
    spec = predictor.outputs
    bad = np.zeros(prediction.values.shape[0], dtype=bool)
    if spec.task is Task.REGRESSION:
        values = prediction.values.astype(np.float64)
        bad |= ~np.isfinite(values)
        if spec.value_min is not None:
            bad |= values < spec.value_min
        if spec.value_max is not None:
            bad |= values > spec.value_max
    if prediction.scores is not None:
        bad |= ~np.isfinite(prediction.scores).all(axis=1)
        if spec.task is Task.CLASSIFICATION:
            bad |= np.abs(prediction.scores.sum(axis=1) - 1.0) > 1e-3
    return int(bad.sum())


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What happened to the probes of one kind, in rows."""

    sent: int
    scored: int = 0
    refused: int = 0
    invalid: int = 0
    failed: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "scored": self.scored,
            "refused": self.refused,
            "invalid": self.invalid,
            "failed": self.failed,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> ProbeOutcome:
        f = Fields.of(data, where)
        return cls(*(f.integer(k) for k in ("sent", "scored", "refused", "invalid", "failed")))


@dataclass(frozen=True, slots=True)
class ContractDetails(Details):
    """Probes sent and their outcomes by kind; holdout rows rejected by feature.

    ``outcomes`` is None in documents of runners that recorded only the
    probes sent; ``rejected_by_feature`` is None when there was no holdout.
    """

    probes: Mapping[str, int]
    outcomes: Mapping[str, ProbeOutcome] | None = None
    rejected_by_feature: Mapping[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"probes": dict(self.probes)}
        if self.outcomes is not None:
            out["outcomes"] = {k: o.to_json() for k, o in self.outcomes.items()}
        if self.rejected_by_feature is not None:
            out["rejected_by_feature"] = dict(self.rejected_by_feature)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, "input.contract details")
        outcomes = f.obj("outcomes") if f.has("outcomes") else None
        return cls(
            f.integer_map("probes"),
            None
            if outcomes is None
            else {
                str(k): ProbeOutcome.from_json(v, f"{f.where}.outcomes.{k}")
                for k, v in outcomes.items()
            },
            f.integer_map("rejected_by_feature") if f.has("rejected_by_feature") else None,
        )


class InputContract(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="input.contract",
        kind=PluginKind.CHECK,
        version="1",
        summary="Probes the model with valid, boundary, out-of-range and malformed inputs "
        "built from its declared schema; checks answers are valid and repeatable",
        tags=_SAFETY,
        supports=frozenset({"predictor"}),
    )
    threshold_metrics = (
        "valid_inputs_answered",
        "invalid_outputs",
        "out_of_range_scored",
        "malformed_scored",
        "repeatable_outputs",
        "holdout_rejected_rows",
    )
    principles: ClassVar[Mapping[Principle, tuple[str, ...]] | None] = {
        Principle.SAFETY: ("valid_inputs_answered", "invalid_outputs"),
        Principle.ROBUSTNESS: ("out_of_range_scored", "malformed_scored"),
        Principle.REPEATABILITY: ("repeatable_outputs",),
    }
    option_defaults: ClassVar[Mapping[str, Any]] = {"probes": 1000}
    details_type = ContractDetails

    def _run(self, ctx: CheckContext) -> CheckResult:
        predictor = ctx.predictor
        if predictor is None:
            raise RunError("the input contract needs a loaded predictor")
        n_valid = int(ctx.options["probes"])
        reference = ctx.holdout.features if ctx.holdout is not None else None
        batches = probes(predictor.schema, reference, n_valid, ctx.rng(self.meta.id, "probes"))
        findings: list[Finding] = []
        outcome: dict[str, dict[str, int]] = {}
        answers: dict[str, Prediction] = {}
        for kind, batch in batches.items():
            outcome[kind] = {
                "sent": int(batch.shape[0]),
                "scored": 0,
                "refused": 0,
                "invalid": 0,
                "failed": 0,
            }
            try:
                answers[kind] = predictor.predict(batch)
            except (TargetTimeout, TargetCrashed) as exc:
                outcome[kind]["failed"] = batch.shape[0]
                findings.append(_with_id(target_failure(self.meta.id, exc), kind))
                continue
            except TargetError:
                outcome[kind]["refused"] = batch.shape[0]
                continue
            outcome[kind]["scored"] = batch.shape[0]
            outcome[kind]["invalid"] = invalid_outputs(answers[kind], predictor)

        sound = ("valid", "boundary")
        sent = sum(outcome[k]["sent"] for k in sound)
        answered = sum(outcome[k]["scored"] - outcome[k]["invalid"] for k in sound)
        metrics = {
            "valid_inputs_answered": Metric(answered / sent),
            "invalid_outputs": Metric(sum(outcome[k]["invalid"] for k in sound) / sent),
            "out_of_range_scored": _rate(outcome["out_of_range"]),
            "malformed_scored": _rate(outcome["malformed"]),
            "repeatable_outputs": Metric(
                self._repeatable(predictor, batches["valid"], answers.get("valid"))
            ),
        }
        if ctx.holdout is not None:
            metrics["holdout_rejected_rows"] = Metric(ctx.holdout.rejected_rows, unit="rows")
        findings.extend(self._judge(ctx, metrics))
        details = ContractDetails(
            probes={k: v["sent"] for k, v in outcome.items()},
            outcomes={k: ProbeOutcome(**v) for k, v in outcome.items()},
            rejected_by_feature=None
            if ctx.holdout is None
            else dict(ctx.holdout.rejected_by_feature),
        )
        found = tuple(findings)
        return CheckResult(self.meta.id, status_from(found), metrics, found, details)

    @staticmethod
    def report_section(
        details: ContractDetails, metrics: Mapping[str, Metric], key: str
    ) -> Section:
        """The probes' outcomes (or, from older runners, the probes sent) and rejected rows."""
        plots: list[Plot] = []
        if details.outcomes:
            table = probe_outcomes({k: o.to_json() for k, o in details.outcomes.items()})
            plots.append(
                Plot(
                    "Probe outcomes",
                    Markup(probe_chart(f"{key}-probes", table)),
                    Table(
                        "Probe outcomes by kind (counts)",
                        ("Probe kind", "Sent", *(label for _, label, _ in PROBE_OUTCOMES)),
                        tuple(
                            (
                                kind.replace("_", " "),
                                str(row["sent"]),
                                *(str(row[name]) for name, _, _ in PROBE_OUTCOMES),
                            )
                            for kind, row in table.items()
                        ),
                        frozenset({1, 2, 3, 4, 5}),
                    ),
                )
            )
        elif details.probes:
            plots.append(
                Plot(
                    "Probes sent",
                    Markup(probe_count_chart(f"{key}-probes", details.probes)),
                    Table(
                        "Probes sent by kind",
                        ("Probe kind", "Sent"),
                        tuple((k.replace("_", " "), str(v)) for k, v in details.probes.items()),
                        frozenset({1}),
                    ),
                )
            )
        rejected = details.rejected_by_feature
        tables = (
            (
                Table(
                    "Holdout rows rejected, by feature",
                    ("Feature", "Rows rejected"),
                    tuple((k, fmt_value(v)) for k, v in rejected.items()),
                    frozenset({1}),
                ),
            )
            if rejected
            else ()
        )
        return Section(
            tuple(plots), tables, frozenset({"probes", "outcomes", "rejected_by_feature"})
        )

    @staticmethod
    def _repeatable(predictor: Predictor, batch: FloatArray, first: Prediction | None) -> float:
        if first is None:
            return float("nan")
        again = predictor.predict(batch)
        same = first.values == again.values
        if first.scores is not None and again.scores is not None:
            same &= (first.scores == again.scores).all(axis=1)
        return float(np.mean(same))

    def _judge(self, ctx: CheckContext, metrics: dict[str, Metric]) -> list[Finding]:
        cid = self.meta.id
        found: list[Finding] = []
        texts = {
            "valid_inputs_answered": (_SAFETY, "The model does not answer every valid input"),
            "invalid_outputs": (_SAFETY, "The model gives invalid answers to valid inputs"),
            "out_of_range_scored": (
                _SAFETY,
                "The model silently scores inputs outside its declared bounds",
            ),
            "malformed_scored": (_SAFETY, "The model silently scores NaN or infinite inputs"),
            "repeatable_outputs": (_REPEAT, "The model's answers change between identical calls"),
            "holdout_rejected_rows": (_DATA, "Holdout rows break the declared input schema"),
        }
        for name, metric in metrics.items():
            threshold = ctx.threshold_for(name)
            verdict = threshold.judge(metric.value) if threshold else None
            if verdict is None and _advisory(name, metric.value):
                verdict = (
                    Severity.LOW,
                    _ADVISORY_REASON if "scored" in name else "no policy limit is set for it",
                )
            if verdict is None:
                continue
            tags, title = texts[name]
            evidence_metrics: dict[str, float | int | str | None] = {name: metric.value}
            examples: tuple[dict[str, Any], ...] = ()
            if name == "holdout_rejected_rows" and ctx.holdout is not None:
                evidence_metrics.update(ctx.holdout.rejected_by_feature)
                examples = tuple(dict(e) for e in ctx.holdout.rejected_examples)
            found.append(
                Finding(
                    id=f"{cid}/{name}",
                    check=cid,
                    title=title,
                    severity=verdict[0],
                    severity_reason=verdict[1],
                    tags=tags,
                    evidence=Evidence(metrics=evidence_metrics, seed=ctx.seed, examples=examples),
                )
            )
        return found


# Metrics worth a low finding even where the policy sets no limit: (direction, limit).
_ADVISORY = {
    "out_of_range_scored": (Direction.MAX, 0.0),
    "malformed_scored": (Direction.MAX, 0.0),
    "holdout_rejected_rows": (Direction.MAX, 0.0),
    "repeatable_outputs": (Direction.MIN, 1.0),
}
_ADVISORY_REASON = (
    "no policy limit; the deployment must reject such inputs before they reach the model "
    "(the cityx sandbox does)"
)


def _advisory(name: str, value: float | None) -> bool:
    if name not in _ADVISORY or value is None:
        return False
    direction, limit = _ADVISORY[name]
    return value < limit if direction is Direction.MIN else value > limit


def _rate(outcome: dict[str, int]) -> Metric:
    return Metric(outcome["scored"] / outcome["sent"] if outcome["sent"] else None)


def _with_id(finding: Finding, kind: str) -> Finding:
    return replace(
        finding,
        id=f"{finding.id}/{kind}",
        title=f"{finding.title} ({kind.replace('_', '-')} probes)",
    )
