"""The trial check ``redteam.evasion``: constrained evasion of a predictor in a trial.

It attacks a seeded sample of the holdout rows the predictor gets right
with :class:`~.attack.ConstrainedEvasion`, through the predictor the trial
opened (the isolated worker, after the artifact's digest was checked),
under the submission's ``threat-model.toml`` or, when it declares none,
the *default threat model*: the schema's bounds, every feature its own
sensor, every sensor controlled (:data:`DEFAULT_THREAT_MODEL`). A row is
*evaded* when its prediction moves off the true label with an input that
breaks no constraint of that threat model, re-checked from scratch.

Metrics: ``evasion_success`` (evaded rows over attacked rows, with a 95 %
Wilson interval), ``violations`` (attacked rows whose final input breaks a
constraint; the projection should make it 0, so any is a bug in the
attack, and its success figure cannot be trusted) and ``queries_per_row``.
The message and the details always name the threat model used. Under the
default threat model (any in-bounds value of any feature) a success finding
is medium at most: that success rate is an upper bound, not a demonstrated
attack, so it makes the gate conditional, never failed on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    CheckStatus,
    Evidence,
    Finding,
    FloatArray,
    LabelledBatch,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    PolicyError,
    Principle,
    RunError,
    Severity,
    Tags,
    Task,
    status_from,
)
from cityx.data import inspect_table, read_table
from cityx.data.constraints import (
    DEFAULT_THREAT_MODEL,
    ThreatModel,
    check_against_data,
    load_threat_model,
    previous_rows,
    schema_threat_model,
    violations,
)

from .attack import ConstrainedEvasion
from .details import EvasionDetails, evasion_section
from .evade import THREAT_MODEL_FILE

_TAGS = Tags(Principle.SECURITY, NistFunction.MEASURE, ("AML.T0015", "AML.T0043"), ("Art. 15",))
# How many of the most often changed features the details keep: enough to see which
# sensors an attacker leans on, few enough to read at a glance.
_TOP_FEATURES = 5
_Z95 = 1.959963984540054
# Under the default threat model any feature may take any in-bounds value, so flipping a
# prediction proves little about a real attacker: its success finding is at most this
# severe (a conditional gate), never a fail on its own.
_DEFAULT_CAP = Severity.MEDIUM


class EvasionCheck(Check):
    """Constrained evasion of a submitted classifier on its holdout rows, in a trial."""

    meta: ClassVar[PluginMeta] = PluginMeta(
        id="redteam.evasion",
        kind=PluginKind.CHECK,
        version="1",
        summary="Constrained evasion on correctly predicted holdout rows under the "
        "submission's threat model (or the default: schema bounds, every sensor): "
        "share of rows flipped by feasible sensor readings",
        tags=_TAGS,
        supports=frozenset({"predictor"}),
    )
    threshold_metrics = ("evasion_success", "violations", "queries_per_row")
    principles: ClassVar[Mapping[Principle, tuple[str, ...]] | None] = {
        Principle.SECURITY: ("evasion_success",),
        Principle.ROBUSTNESS: ("evasion_success",),
    }
    # 100 rows x 200 queries: about 0.2 s on metro-congestion (docs/redteam.md).
    option_defaults: ClassVar[Mapping[str, Any]] = {"rows": 100, "budget": 200}
    details_type = EvasionDetails
    report_section = staticmethod(evasion_section)
    # cityx.testing.check_plugin runs it small.
    conformance_options: ClassVar[Mapping[str, Any]] = {"rows": 20, "budget": 32}

    def _run(self, ctx: CheckContext) -> CheckResult:
        if ctx.holdout is None:
            return _skipped(self.meta.id, "no labelled holdout data to attack")
        if ctx.predictor is None:
            raise RunError("the evasion check needs the loaded predictor")
        if ctx.predictor.outputs.task is not Task.CLASSIFICATION:
            return _skipped(self.meta.id, "constrained evasion attacks classifiers, not regressors")
        rows, budget = _sizes(ctx.options, self.meta.id)
        batch = ctx.holdout
        threat = _threat_model(ctx)
        check_against_data(threat, batch.features, where=batch.source)
        previous = _previous(threat, batch, ctx)
        report = ConstrainedEvasion().run(
            ctx.predictor,
            batch.features,
            batch.truth,
            threat,
            seed=ctx.seed,
            previous=previous,
            fragility=False,  # per-sensor repeats multiply the cost; the CLI has them
            budget=budget,
            samples=rows,
        )
        origin = batch.features[report.rows]
        prev = None if previous is None else previous[report.rows]
        broken = violations(threat, report.attacked, origin, prev) > 0
        evaded = report.success & ~broken
        used = threat_model_name(threat)
        n, k = report.samples, int(evaded.sum())
        low, high = _wilson(k, n)
        metrics = {
            "evasion_success": Metric(k / n, low, high),
            "violations": Metric(float(broken.sum()), unit="rows"),
            "queries_per_row": Metric(report.queries_per_sample, unit="queries"),
        }
        changed, median = _changed(threat, origin, report.attacked, evaded)
        details = EvasionDetails(
            threat_model=used,
            controlled=threat.controlled,
            rows=n,
            budget=budget,
            seed=ctx.seed,
            evaded=k,
            source=batch.source,
            changed=changed,
            median_change=median,
        )
        label = ctx.manifest.outputs.label_column if ctx.manifest else None
        # The CLI runs the same attack on the same rows: same seed, sample and search.
        reproduce = (
            f"cityx redteam evade --model {ctx.submission_dir} --data {batch.source} "
            f"--label {label} --budget {budget} --samples {rows} --seed {ctx.seed} "
            "--no-fragility"
            if label
            else None
        )
        findings = tuple(
            f
            for name, metric in metrics.items()
            if (f := _judge(ctx, self.meta.id, name, metric, details, reproduce)) is not None
        )
        message = (
            f"threat model: {used}; {k} of {n} correctly predicted holdout rows evaded "
            f"({k / n:.0%}), {int(broken.sum())} constraint violation(s), "
            f"{report.queries_per_sample:.0f} queries per row"
        )
        return CheckResult(
            self.meta.id, status_from(findings), metrics, findings, details, message=message
        )


def threat_model_name(threat: ThreatModel) -> str:
    """How a report names a threat model: ``<path> (sha256 <hex>)``, or the default's name."""
    if threat.is_default:
        return DEFAULT_THREAT_MODEL
    return f"{threat.source} (sha256 {threat.sha256})" if threat.sha256 else threat.source


def _skipped(check_id: str, reason: str) -> CheckResult:
    return CheckResult(check_id, CheckStatus.SKIPPED, message=reason)


def _sizes(options: Mapping[str, Any], check_id: str) -> tuple[int, int]:
    rows, budget = int(options["rows"]), int(options["budget"])
    where = f'checks."{check_id}".options'
    # The attack's own floors: fewer queries cannot finish one round of its search.
    for name, value, floor in (("rows", rows, 1), ("budget", budget, 8)):
        if value < floor:
            raise PolicyError(f"option {name!r} must be at least {floor}, got {value}", where=where)
    return rows, budget


def _threat_model(ctx: CheckContext) -> ThreatModel:
    assert ctx.predictor is not None
    schema = ctx.manifest.input_schema() if ctx.manifest else ctx.predictor.schema
    declared = ctx.submission_dir / THREAT_MODEL_FILE
    if declared.is_file():
        # Named as the submission holds it, with its digest: the same results on every
        # machine, and the file is identified whatever folder the trial ran from.
        return replace(load_threat_model(declared, schema), source=THREAT_MODEL_FILE)
    return schema_threat_model(schema)


def _previous(threat: ThreatModel, batch: LabelledBatch, ctx: CheckContext) -> FloatArray | None:
    """Each holdout row's previous interval, for temporal smoothness (None if undeclared).

    The batch holds the model's features only; the grouping and ordering columns
    the threat model names are in the table, so it is read again here.
    """
    if threat.temporal is None:
        return None
    if ctx.manifest is None:
        raise RunError("temporal constraints need the manifest to read the holdout table")
    table = read_table(Path(batch.source))
    found = inspect_table(
        table,
        ctx.manifest.input_schema(),
        ctx.manifest.output_spec(),
        ctx.manifest.outputs.label_column,
        where=batch.source,
    )
    if found.rejected is None or int((~found.rejected).sum()) != batch.features.shape[0]:
        raise RunError("the holdout table changed while the trial ran", where=batch.source)
    return previous_rows(threat, table, ~found.rejected, where=batch.source)


def _wilson(k: int, n: int) -> tuple[float | None, float | None]:
    """95 % Wilson score interval of a share: honest at 0 and 1, where a normal one is not."""
    if n == 0:
        return None, None
    p, z2 = k / n, _Z95 * _Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _changed(
    threat: ThreatModel, origin: FloatArray, attacked: FloatArray, evaded: NDArray[np.bool_]
) -> tuple[dict[str, int], dict[str, float]]:
    """Evading rows per changed feature (most first, top few), and each one's median change."""
    if not evaded.any():
        return {}, {}
    delta = np.abs(attacked[evaded] - origin[evaded])
    tol = 1e-9 * np.maximum(1.0, np.abs(origin[evaded]))
    moved = delta > tol
    counts = moved.sum(axis=0)
    order = sorted(
        (j for j in range(len(threat.features)) if counts[j] > 0),
        key=lambda j: (-int(counts[j]), threat.features[j]),
    )[:_TOP_FEATURES]
    changed = {threat.features[j]: int(counts[j]) for j in order}
    median = {threat.features[j]: round(float(np.median(delta[moved[:, j], j])), 4) for j in order}
    return changed, median


def _is_default(details: EvasionDetails) -> bool:
    return details.threat_model == DEFAULT_THREAT_MODEL


def _judge(
    ctx: CheckContext,
    check_id: str,
    name: str,
    metric: Metric,
    details: EvasionDetails,
    reproduce: str | None,
) -> Finding | None:
    threshold = ctx.threshold_for(name)
    verdict = threshold.judge(metric.value) if threshold else None
    if verdict is None:
        return None
    severity, reason = verdict
    if name == "evasion_success" and _is_default(details) and severity.rank > _DEFAULT_CAP.rank:
        severity = _DEFAULT_CAP
        reason += (
            f"; {_DEFAULT_CAP.value} at most under the default threat model, where every "
            "feature may take any value in its schema bounds: an upper bound, not a "
            "demonstrated attack (declare threat-model.toml to measure a real attacker)"
        )
    if name == "evasion_success" and metric.value is not None:
        title = (
            f"Feasible sensor readings flip {metric.value:.0%} of correctly predicted holdout "
            f"rows ({details.evaded} of {details.rows})"
        )
    elif name == "violations":
        title = (
            f"The evasion attack broke its threat model on {metric.value:.0f} of "
            f"{details.rows} rows, so its success rate cannot be trusted"
        )
    else:
        title = f"Constrained evasion: {name} is out of the policy's limits"
    files = (
        (details.source,)
        if _is_default(details)
        else (
            details.source,
            str(ctx.submission_dir.resolve() / THREAT_MODEL_FILE),
        )
    )
    return Finding(
        id=f"{check_id}/{name}",
        check=check_id,
        title=title,
        severity=severity,
        severity_reason=reason,
        tags=_TAGS,
        description=f"Under the threat model {details.threat_model}: constrained black-box "
        f"evasion of {details.rows} correctly predicted holdout rows, {details.budget} "
        f"queries per row, attacker controlling {', '.join(details.controlled) or 'nothing'}. "
        "A row counts as evaded only if its final input breaks no constraint.",
        evidence=Evidence(
            metrics={
                name: metric.value,
                "ci_low": metric.ci_low,
                "ci_high": metric.ci_high,
                "rows": details.rows,
                "budget": details.budget,
            },
            files=files,
            seed=ctx.seed,
            reproduce=reproduce,
        ),
    )


__all__ = ["EvasionCheck", "threat_model_name"]
