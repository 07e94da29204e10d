"""The ``fairness.groups`` check: group fairness of a predictor in a trial.

The submission's manifest names its *sensitive columns* in ``[fairness]
sensitive``; they are read from the holdout file beside the model's
inputs. A classifier is judged one-vs-rest for every declared label (the
policy's ``disparate_impact[heavy]`` is the disparate impact of the label
``heavy``); a regressor by the spread of MAE across groups. Without
sensitive columns the check is skipped: fairness cannot be judged without
knowing whom to compare. The skip's message quotes the vendor's written
reason (``[fairness] not_applicable``) when there is one; the gate accepts
that reason as a declaration, and without one the skip keeps it from ``pass``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    CheckStatus,
    Evidence,
    Finding,
    Manifest,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    Principle,
    RunError,
    Severity,
    Tags,
    Task,
    status_from,
)
from cityx.data import inspect_table, read_table

from .aiverify import fairness_aiverify_result
from .details import COUNTS_ORDER, FairnessDetails, fairness_section
from .groups import encode_groups
from .rates import cell_codes, confusion_by_group
from .summary import MIN_GROUP, GroupFairness, classification_fairness, regression_fairness
from .table import require_columns

_TAGS = Tags(Principle.FAIRNESS, NistFunction.MEASURE, (), ("Art. 10", "Art. 15"))
_JUDGED = (
    "disparate_impact",
    "demographic_parity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
)


class GroupFairnessCheck(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="fairness.groups",
        kind=PluginKind.CHECK,
        version="1",
        summary="Per-group confusion rates (one-vs-rest per label) or errors by the declared "
        "sensitive columns of the holdout data, their ratios and differences, with seeded "
        "bootstrap intervals",
        tags=_TAGS,
        supports=frozenset({"predictor"}),
    )
    threshold_metrics = (
        *(f"{name}[*]" for name in _JUDGED),
        "mae_ratio",
        "mae_difference",
    )
    option_defaults: ClassVar[Mapping[str, Any]] = {"bootstrap": 1000, "min_group": MIN_GROUP}
    details_type = FairnessDetails
    report_section = staticmethod(fairness_section)
    aiverify_result = staticmethod(fairness_aiverify_result)

    def waiver(self, manifest: Manifest) -> str | None:
        if manifest.fairness.sensitive:
            return None
        return manifest.fairness.not_applicable

    def _run(self, ctx: CheckContext) -> CheckResult:
        if ctx.predictor is None or ctx.holdout is None or ctx.manifest is None:
            raise RunError("group fairness needs a loaded predictor and holdout data")
        sensitive = list(ctx.manifest.fairness.sensitive)
        if not sensitive:
            why = ctx.manifest.fairness.not_applicable
            return CheckResult(
                self.meta.id,
                CheckStatus.SKIPPED,
                message="the manifest names no sensitive columns ([fairness] sensitive)"
                if why is None
                else f"not applicable, as the vendor states in [fairness] not_applicable: {why}",
            )
        batch = ctx.holdout
        df = read_table(Path(batch.source))
        require_columns(df, sensitive, what="sensitive", where=batch.source)
        found = inspect_table(
            df,
            ctx.manifest.input_schema(),
            ctx.manifest.output_spec(),
            ctx.manifest.outputs.label_column,
            where=batch.source,
        )
        if found.rejected is None or int((~found.rejected).sum()) != batch.features.shape[0]:
            raise RunError("the holdout file changed while the trial ran", where=batch.source)
        keep = ~found.rejected
        groups = encode_groups(
            {name: df[name].to_numpy()[keep] for name in sensitive},
            rows=int(keep.sum()),
            where=batch.source,
        )
        b = int(ctx.options["bootstrap"])
        min_group = int(ctx.options["min_group"])
        prediction = ctx.predictor.predict(batch.features)
        metrics: dict[str, Metric] = {}
        if ctx.predictor.outputs.task is Task.CLASSIFICATION:
            labels = ctx.predictor.outputs.labels
            by_label: dict[str, Any] = {}
            counts: dict[str, tuple[tuple[int, ...], ...]] = {}
            for label in labels:  # one pass per declared label (a handful), not per row
                result = classification_fairness(
                    batch.truth,
                    prediction.values,
                    groups,
                    positive=label,
                    scores=_scores(prediction, label),
                    bootstrap_n=b,
                    rng=ctx.rng(self.meta.id, "bootstrap", label),
                    seed=ctx.seed,
                    min_group=min_group,
                )
                by_label[label] = result.to_json()
                codes = cell_codes(
                    groups.codes,
                    np.asarray(batch.truth).astype(str) == label,
                    np.asarray(prediction.values).astype(str) == label,
                )
                table = confusion_by_group(codes[None, :], groups.count)[0].tolist()
                counts[label] = tuple(tuple(row) for row in table)
                for name in _JUDGED:
                    metrics[f"{name}[{label}]"] = _metric(result, name)
            details = FairnessDetails(
                sensitive=tuple(sensitive),
                label_column=ctx.manifest.outputs.label_column,
                bootstrap=b,
                source=batch.source,
                task=Task.CLASSIFICATION.value,
                groups=tuple(groups.names),
                labels=tuple(labels),
                by_label=by_label,
                counts=counts,
                counts_order=COUNTS_ORDER,
            )
        else:
            result = regression_fairness(
                batch.truth,
                prediction.values,
                groups,
                bootstrap_n=b,
                rng=ctx.rng(self.meta.id, "bootstrap"),
                seed=ctx.seed,
                min_group=min_group,
            )
            metrics["mae_ratio"] = _metric(result, "ratio/mae")
            metrics["mae_difference"] = _metric(result, "difference/mae")
            details = FairnessDetails(
                sensitive=tuple(sensitive),
                label_column=ctx.manifest.outputs.label_column,
                bootstrap=b,
                source=batch.source,
                task=Task.REGRESSION.value,
                groups=tuple(groups.names),
                result=result.to_json(),
            )
        findings = [
            f for name, m in metrics.items() if (f := _judge(ctx, self.meta.id, name, m, details))
        ]
        findings += _small_group_notes(self.meta.id, groups.names, groups.sizes(), min_group)
        found_all = tuple(findings)
        return CheckResult(self.meta.id, status_from(found_all), metrics, found_all, details)


def _scores(prediction: Any, label: str) -> Any:
    if prediction.scores is not None and label in prediction.classes:
        return prediction.scores[:, prediction.classes.index(label)]
    return None


def _metric(result: GroupFairness, key: str) -> Metric:
    if "/" in key:
        kind, name = key.split("/")
        value = (result.ratios if kind == "ratio" else result.differences)[name]
    else:
        value = result.summary[key]
    low, high = result.intervals.get(key, (None, None))
    return Metric(value, low, high)


def _judge(
    ctx: CheckContext, check_id: str, name: str, metric: Metric, details: FairnessDetails
) -> Finding | None:
    threshold = ctx.threshold_for(name)
    # Judged on the interval: the severity its favourable end supports, and a worse one
    # its other end cannot rule out (the gate never passes that gap).
    verdict = threshold.judge_interval(metric) if threshold else None
    if verdict is None:
        return None
    severity, upper, reason = verdict
    ci = "" if metric.ci_low is None else f" (95% CI {metric.ci_low:.3f} to {metric.ci_high:.3f})"
    ci += "" if upper is None else f"; {upper.value} not ruled out"
    by = " x ".join(details.sensitive)
    value = "undefined" if metric.value is None else f"{metric.value:.3f}"
    return Finding(
        id=f"{check_id}/{name}",
        check=check_id,
        title=f"Across {by} groups, {name} is {value}{ci}",
        severity=severity,
        severity_upper=upper,
        severity_reason=reason,
        tags=_TAGS,
        description="Measured on the declared holdout data, grouped by the declared sensitive "
        "columns (never given to the model unless it declares them); a ratio is the smallest "
        "group's value over the largest, 1 meaning parity.",
        evidence=Evidence(
            metrics={name: metric.value, "ci_low": metric.ci_low, "ci_high": metric.ci_high},
            files=(details.source,),
            seed=ctx.seed,
        ),
    )


def _small_group_notes(
    check_id: str, names: tuple[str, ...], sizes: Any, min_group: int
) -> list[Finding]:
    small = [(n, int(s)) for n, s in zip(names, sizes, strict=True) if s < min_group]
    if not small:
        return []
    listed = ", ".join(f"{n} ({s} rows)" for n, s in small)
    return [
        Finding(
            id=f"{check_id}/small-groups",
            check=check_id,
            title=f"{len(small)} group(s) are too small to judge: {listed}",
            severity=Severity.LOW,
            severity_reason=f"fewer than {min_group} rows give rates too noisy to compare",
            tags=_TAGS,
            description="Collect more holdout rows for these groups before relying on their "
            "numbers.",
            evidence=Evidence(metrics={n: s for n, s in small}),
        )
    ]


__all__ = ["GroupFairnessCheck"]
