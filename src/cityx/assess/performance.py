"""Nominal performance of a predictor on its declared holdout data.

*Nominal* means on the data the vendor declared as representative, with no
attack or shift. For a classifier: accuracy, macro-F1 (the unweighted mean
of per-class F1, so a rare class counts as much as a common one) and each
class's recall; for a regressor: MAE, RMSE and bias (mean residual). Every
metric carries a seeded bootstrap 95 % confidence interval. The details
(:class:`PerformanceDetails`) add a classifier's confusion matrix, or a
regressor's *residual quantiles* (predicted minus true, at 5, 25, 50, 75
and 95 %).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
from markupsafe import Markup
from numpy.typing import NDArray

from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    Details,
    Evidence,
    Fields,
    Finding,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    Principle,
    RunError,
    Tags,
    Task,
    status_from,
)
from cityx.governance import (
    Plot,
    Section,
    Table,
    confusion_heatmap,
    fmt_value,
    recall_chart,
    residual_chart,
)

from .bootstrap import bootstrap, percentile_ci

_TAGS = Tags(Principle.ROBUSTNESS, NistFunction.MEASURE, (), ("Art. 15",))


def confusion_counts(codes: NDArray[np.int64], k: int) -> NDArray[np.int64]:
    """Confusion matrices for rows of ``codes`` (truth * k + predicted): (..., k, k)."""
    flat = codes.reshape(-1, codes.shape[-1])
    offset = np.arange(flat.shape[0])[:, None] * (k * k)
    counts = np.bincount((flat + offset).ravel(), minlength=flat.shape[0] * k * k)
    return counts.reshape((*codes.shape[:-1], k, k))


def classification_metrics(confusion: NDArray[np.int64]) -> dict[str, NDArray[np.float64]]:
    """Accuracy, macro-F1 and per-class recall from (..., k, k) confusion counts."""
    diag = np.diagonal(confusion, axis1=-2, axis2=-1).astype(np.float64)
    truth_totals = confusion.sum(axis=-1).astype(np.float64)
    pred_totals = confusion.sum(axis=-2).astype(np.float64)
    n = truth_totals.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = diag / truth_totals
        f1 = 2.0 * diag / (truth_totals + pred_totals)
    # A class absent from both truth and predictions has no F1; leave it out.
    present = (truth_totals + pred_totals) > 0
    macro_f1 = np.where(present, f1, 0.0).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
    return {"accuracy": diag.sum(axis=-1) / n, "macro_f1": macro_f1, "recall": recall}


@dataclass(frozen=True, slots=True)
class PerformanceDetails(Details):
    """What nominal performance adds to its metrics; ``task`` says which fields apply.

    A classifier's: ``labels`` and ``confusion`` (rows: true class,
    columns: predicted, in label order). A regressor's: ``bias`` and
    ``residual_quantiles`` (``p5`` ... ``p95``). Both: the rows scored
    (``n``), the bootstrap resamples and the holdout ``source``.
    """

    task: str
    n: int
    bootstrap: int
    source: str
    labels: tuple[str, ...] = ()
    confusion: tuple[tuple[int, ...], ...] = ()
    bias: float | None = None
    residual_quantiles: Mapping[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        if self.task == Task.CLASSIFICATION.value:
            head: dict[str, Any] = {
                "task": self.task,
                "labels": list(self.labels),
                "confusion": [list(row) for row in self.confusion],
            }
        else:
            head = {
                "task": self.task,
                "bias": self.bias,
                "residual_quantiles": dict(self.residual_quantiles),
            }
        return head | {"n": self.n, "bootstrap": self.bootstrap, "source": self.source}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, "performance.nominal details")
        task = f.text("task")
        classifier = task == Task.CLASSIFICATION.value
        return cls(
            task,
            n=f.integer("n"),
            bootstrap=f.integer("bootstrap"),
            source=f.text("source"),
            labels=f.texts("labels") if classifier else (),
            confusion=f.integer_rows("confusion") if classifier else (),
            bias=None if classifier else f.number_or_null("bias"),
            residual_quantiles={} if classifier else f.nullable_number_map("residual_quantiles"),
        )


class NominalPerformance(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="performance.nominal",
        kind=PluginKind.CHECK,
        version="1",
        summary="Accuracy, macro-F1 and per-class recall (or MAE, RMSE, bias) on the "
        "holdout data, with seeded bootstrap confidence intervals",
        tags=_TAGS,
        supports=frozenset({"predictor"}),
    )
    threshold_metrics = ("accuracy", "macro_f1", "recall[*]", "mae", "rmse", "abs_bias")
    # Accuracy on holdout data is no evidence for any principle by itself: robustness is
    # what the input contract and evasion show, under inputs the holdout never held.
    principles: ClassVar[Mapping[Principle, tuple[str, ...]] | None] = {}
    option_defaults: ClassVar[Mapping[str, Any]] = {"bootstrap": 1000}
    details_type = PerformanceDetails

    def _run(self, ctx: CheckContext) -> CheckResult:
        if ctx.predictor is None or ctx.holdout is None:
            raise RunError("nominal performance needs a loaded predictor and holdout data")
        batch = ctx.holdout
        if batch.features.shape[0] == 0:
            raise RunError("no holdout row is left to score", where=batch.source)
        b = int(ctx.options["bootstrap"])
        prediction = ctx.predictor.predict(batch.features)
        rng = ctx.rng(self.meta.id, "bootstrap")
        if ctx.predictor.outputs.task is Task.CLASSIFICATION:
            metrics, measured = _classification(
                batch.truth, prediction.values, ctx.predictor.outputs.labels, b, rng
            )
        else:
            metrics, measured = _regression(batch.truth, prediction.values, b, rng)
        details = PerformanceDetails(
            n=int(batch.features.shape[0]), bootstrap=b, source=batch.source, **measured
        )
        findings = tuple(
            _judge(ctx, self.meta.id, name, m, batch.source) for name, m in metrics.items()
        )
        found = tuple(f for f in findings if f is not None)
        return CheckResult(self.meta.id, status_from(found), metrics, found, details)

    @staticmethod
    def report_section(
        details: PerformanceDetails, metrics: Mapping[str, Metric], key: str
    ) -> Section:
        """Recall per class and the confusion matrix, or the residual quantiles."""
        plots: list[Plot] = []
        if details.task == Task.CLASSIFICATION.value and details.labels:
            plots += _classification_plots(key, details.labels, metrics, details.confusion)
        if details.residual_quantiles:
            mae = metrics.get("mae")
            plots.append(
                Plot(
                    "Residual quantiles",
                    Markup(
                        residual_chart(
                            f"{key}-residuals", details.residual_quantiles, mae.unit if mae else ""
                        )
                    ),
                    Table(
                        "Residual quantiles (predicted minus true)",
                        ("Quantile", "Residual"),
                        tuple((k, fmt_value(v)) for k, v in details.residual_quantiles.items()),
                        frozenset({1}),
                    ),
                )
            )
        return Section(
            plots=tuple(plots), shown=frozenset({"labels", "confusion", "residual_quantiles"})
        )


def _classification_plots(
    key: str,
    labels: tuple[str, ...],
    metrics: Mapping[str, Metric],
    confusion: tuple[tuple[int, ...], ...],
) -> list[Plot]:
    plots: list[Plot] = []
    recall = [metrics.get(f"recall[{label}]") for label in labels]
    if any(recall):
        plots.append(
            Plot(
                "Recall per class",
                Markup(
                    recall_chart(
                        f"{key}-recall",
                        labels,
                        [m.value if m else None for m in recall],
                        [m.ci_low if m else None for m in recall],
                        [m.ci_high if m else None for m in recall],
                    )
                ),
            )
        )
    k = len(labels)
    if len(confusion) == k and all(len(row) == k for row in confusion):
        plots.append(
            Plot(
                "Confusion matrix",
                Markup(confusion_heatmap(f"{key}-confusion", labels, confusion)),
                Table(
                    "Confusion matrix: rows are the true class, columns the predicted class",
                    ("True \\ predicted", *labels),
                    tuple(
                        (label, *(str(c) for c in row))
                        for label, row in zip(labels, confusion, strict=True)
                    ),
                    frozenset(range(1, k + 1)),
                ),
            )
        )
    return plots


def _classification(
    truth: NDArray[Any],
    predicted: NDArray[Any],
    labels: tuple[str, ...],
    b: int,
    rng: np.random.Generator,
) -> tuple[dict[str, Metric], dict[str, Any]]:
    k = len(labels)
    index = {label: i for i, label in enumerate(labels)}
    lookup = np.vectorize(index.__getitem__, otypes=[np.int64])
    codes = lookup(truth) * k + lookup(predicted.astype(str))

    def stats(idx: NDArray[np.int64]) -> NDArray[np.float64]:
        m = classification_metrics(confusion_counts(codes[idx], k))
        return np.concatenate([m["accuracy"][:, None], m["macro_f1"][:, None], m["recall"]], axis=1)

    values = stats(np.arange(codes.size)[None, :])[0]
    low, high = percentile_ci(bootstrap(stats, codes.size, b, rng))
    names = ["accuracy", "macro_f1", *(f"recall[{label}]" for label in labels)]
    metrics = {name: Metric(values[i], low[i], high[i]) for i, name in enumerate(names)}
    confusion = confusion_counts(codes, k)
    return metrics, {
        "task": Task.CLASSIFICATION.value,
        "labels": tuple(labels),
        "confusion": tuple(tuple(int(c) for c in row) for row in confusion),
    }


def _regression(
    truth: NDArray[Any], predicted: NDArray[Any], b: int, rng: np.random.Generator
) -> tuple[dict[str, Metric], dict[str, Any]]:
    residual = predicted.astype(np.float64) - truth.astype(np.float64)

    def stats(r: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.stack(
            [np.abs(r).mean(axis=-1), np.sqrt((r * r).mean(axis=-1)), np.abs(r.mean(axis=-1))],
            axis=-1,
        )

    point = stats(residual)
    low, high = percentile_ci(bootstrap(lambda idx: stats(residual[idx]), residual.size, b, rng))
    metrics = {
        name: Metric(point[i], low[i], high[i])
        for i, name in enumerate(("mae", "rmse", "abs_bias"))
    }
    quantiles = np.percentile(residual, [5, 25, 50, 75, 95])
    return metrics, {
        "task": Task.REGRESSION.value,
        "bias": float(residual.mean()),
        "residual_quantiles": {
            f"p{q}": float(v) for q, v in zip((5, 25, 50, 75, 95), quantiles, strict=True)
        },
    }


def _judge(
    ctx: CheckContext, check_id: str, name: str, metric: Metric, source: str
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
    return Finding(
        id=f"{check_id}/{name}",
        check=check_id,
        title=f"Holdout {name} is {metric.value:.3f}{ci}"
        if metric.value is not None
        else f"Holdout {name} is undefined",
        severity=severity,
        severity_upper=upper,
        severity_reason=reason,
        tags=_TAGS,
        description="Measured on the submission's declared holdout data; the interval is a "
        "seeded bootstrap over holdout rows.",
        evidence=Evidence(
            metrics={name: metric.value, "ci_low": metric.ci_low, "ci_high": metric.ci_high},
            files=(source,),
            seed=ctx.seed,
        ),
    )
