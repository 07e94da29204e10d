"""The ``explain.fidelity`` check: are the predictor's explanations faithful, and what do
they lean on?

It explains the predictor on the holdout (exactly on the artifact where the
isolated worker can describe it) and judges the fidelity report card:
attributions must add up to the artifact's own output (``additivity_max_error``),
be stable between near rows (``stability``), and beat random features at
changing the decision (``deletion_gain``: deletion AUC of the top-k features
minus that of k random ones). It also looks for *proxies*: features whose
*correlation ratio* with a declared sensitive column (the share of the
feature's variance explained by the groups, square-rooted) is at least
``proxy_association``. ``proxy_share`` is the share of all attribution those
features carry. The sensitive column itself is not a model input, so its own
attribution is 0 and proves nothing: the proxies are what to look at.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    Evidence,
    Finding,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    Principle,
    RunError,
    Severity,
    Tags,
    status_from,
)
from cityx.data import inspect_table, read_table

from .aiverify import explain_aiverify_result
from .details import ExplainDetails, explain_section
from .predictor import explain_predictor

_TAGS = Tags(Principle.EXPLAINABILITY, NistFunction.MEASURE, (), ("Art. 13", "Art. 14"))


class ExplainFidelity(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="explain.fidelity",
        kind=PluginKind.CHECK,
        version="1",
        summary="Exact attributions on the submitted artifact (tree/linear) or a model-agnostic "
        "estimate, judged by additivity, stability and deletion against random; proxies of "
        "declared sensitive columns and their share of the attribution",
        tags=_TAGS,
        supports=frozenset({"predictor"}),
    )
    threshold_metrics = (
        "additivity_max_error",
        "stability",
        "deletion_gain",
        "proxy_share",
    )
    option_defaults: ClassVar[Mapping[str, Any]] = {
        "rows": 500,
        "examples": 3,
        "proxy_association": 0.5,
    }
    details_type = ExplainDetails
    report_section = staticmethod(explain_section)
    aiverify_result = staticmethod(explain_aiverify_result)

    def _run(self, ctx: CheckContext) -> CheckResult:
        if ctx.predictor is None or ctx.holdout is None or ctx.manifest is None:
            raise RunError("explanations need a loaded predictor and holdout data")
        batch = ctx.holdout
        names = ctx.manifest.input_schema().names
        table = pd.DataFrame(batch.features, columns=list(names))
        examples = int(ctx.options["examples"])
        result = explain_predictor(
            ctx.predictor,
            table,
            rows=list(range(min(examples, len(table)))),
            seed=ctx.seed,
            global_rows=int(ctx.options["rows"]),
            where=batch.source,
        )
        sensitive = tuple(ctx.manifest.fairness.sensitive)
        proxies = _proxies(
            ctx, batch.source, batch.features, names, sensitive, result.mean_abs,
            float(ctx.options["proxy_association"]),
        )  # fmt: skip
        f = result.fidelity
        gain = (
            None
            if f.deletion_auc is None or f.random_deletion_auc is None
            else f.deletion_auc - f.random_deletion_auc
        )
        share = sum(float(p["share"]) for p in proxies) if sensitive else None
        # Against the artifact's own output: our margins' transform vs its scores too.
        additivity = max(f.additivity_max_error, f.artifact_max_error or 0.0)
        metrics = {
            "additivity_max_error": Metric(additivity),
            "stability": Metric(f.stability),
            "deletion_gain": Metric(gain),
            "proxy_share": Metric(share),
            "method_agreement": Metric(f.method_agreement),
        }
        details = ExplainDetails(
            method=result.method,
            exact=result.exact,
            output=result.output,
            background_rows=result.background_rows,
            source=batch.source,
            features=result.features,
            mean_abs=result.mean_abs,
            fidelity=f.to_json(),
            examples=tuple(
                r.to_json() | {"values": batch.features[r.row].tolist()} for r in result.rows
            ),
            proxies=tuple(proxies),
            note=result.note,
            sensitive=sensitive,
            dependence={
                k: tuple((float(a), float(b)) for a, b in v) for k, v in result.dependence.items()
            },
            dependence_class=result.dependence_class,
        )
        findings = tuple(
            finding
            for name in self.threshold_metrics
            if (finding := _judge(ctx, self.meta.id, name, metrics[name], details)) is not None
        )
        if not result.exact and result.method == "permutation":
            findings += (
                Finding(
                    id=f"{self.meta.id}/not-exact",
                    check=self.meta.id,
                    title="No exact explanation method fits the artifact: attributions are "
                    "estimates",
                    severity=Severity.LOW,
                    severity_reason="an operator reads estimates; their run-to-run error is "
                    f"{fmt(f.run_to_run_error)} of the largest attribution",
                    tags=_TAGS,
                    description=result.note,
                    evidence=Evidence(metrics={"run_to_run_error": f.run_to_run_error}),
                ),
            )
        return CheckResult(self.meta.id, status_from(findings), metrics, findings, details)


def fmt(value: float | None) -> str:
    return "not assessed" if value is None else f"{value:.3g}"


def _proxies(
    ctx: CheckContext,
    source: str,
    features: np.ndarray[Any, Any],
    names: tuple[str, ...],
    sensitive: tuple[str, ...],
    mean_abs: Mapping[str, Mapping[str, float]],
    cut: float,
) -> list[dict[str, Any]]:
    if not sensitive or ctx.manifest is None:
        return []
    df = read_table(Path(source))
    missing = [s for s in sensitive if s not in df.columns]
    if missing:
        raise RunError(f"sensitive column {missing[0]!r} is not in the holdout", where=source)
    found = inspect_table(
        df,
        ctx.manifest.input_schema(),
        ctx.manifest.output_spec(),
        ctx.manifest.outputs.label_column,
        where=source,
    )
    keep = np.ones(len(df), dtype=bool) if found.rejected is None else ~found.rejected
    if int(keep.sum()) != features.shape[0]:
        raise RunError("the holdout file changed while the trial ran", where=source)
    weight = np.array([np.mean([float(v.get(n, 0.0)) for v in mean_abs.values()]) for n in names])
    total = float(weight.sum()) or 1.0
    out = []
    for column in sensitive:
        codes = pd.factorize(df[column].to_numpy()[keep])[0]
        eta = correlation_ratio(features, codes)
        for j in np.flatnonzero(eta >= cut):
            out.append(
                {
                    "feature": names[j],
                    "sensitive": column,
                    "association": round(float(eta[j]), 4),
                    "share": round(float(weight[j] / total), 4),
                }
            )
    return out


def correlation_ratio(x: np.ndarray[Any, Any], codes: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Per column: sqrt(between-group variance / total variance) of ``x`` by group ``codes``."""
    codes = np.asarray(codes)
    ok = codes >= 0
    x, codes = x[ok], codes[ok]
    k = int(codes.max(initial=-1)) + 1
    if k < 2:
        return np.zeros(x.shape[1])
    count = np.bincount(codes, minlength=k).astype(np.float64)
    sums = np.stack(
        [np.bincount(codes, weights=x[:, j], minlength=k) for j in range(x.shape[1])], axis=1
    ).astype(np.float64)
    means = sums / np.maximum(count, 1.0)[:, None]
    grand = x.mean(axis=0)
    between = (count[:, None] * (means - grand) ** 2).sum(axis=0)
    total = ((x - grand) ** 2).sum(axis=0)
    return np.asarray(np.sqrt(np.divide(between, total, out=np.zeros_like(total), where=total > 0)))


def _judge(
    ctx: CheckContext, check_id: str, name: str, metric: Metric, details: ExplainDetails
) -> Finding | None:
    threshold = ctx.threshold_for(name)
    verdict = threshold.judge(metric.value) if threshold else None
    if verdict is None:
        return None
    severity, reason = verdict
    titles = {
        "additivity_max_error": "Attributions do not add up to the artifact's own output",
        "stability": "Attributions are unstable between near rows",
        "deletion_gain": "The top-attributed features change decisions no more than random ones",
        "proxy_share": "The model leans on proxies of a sensitive column",
    }
    proxies = ", ".join(f"{p['feature']} ({p['sensitive']})" for p in details.proxies)
    return Finding(
        id=f"{check_id}/{name}",
        check=check_id,
        title=f"{titles[name]}: {name} = {fmt(metric.value)}",
        severity=severity,
        severity_reason=reason,
        tags=_TAGS,
        description=(
            f"Method {details.method} on the {details.output}, background "
            f"{details.background_rows} holdout rows."
            + (f" Proxies: {proxies}." if name == "proxy_share" and proxies else "")
        ),
        evidence=Evidence(metrics={name: metric.value}, files=(details.source,), seed=ctx.seed),
    )


__all__ = ["ExplainFidelity", "correlation_ratio"]
