"""The ``poisoning.audit`` check: audit a submission's training data in a trial.

It reads the manifest's ``[data].training`` file, labelled by
``[outputs].label_column``; the *source columns* come from the policy's
option ``source_columns`` (default: ``intersection`` and ``approach``,
those of them the file has). Findings name compromised sources and a
trigger candidate; the metrics ``flagged_share`` and
``compromised_sources`` take policy limits.

Unless the data is judged clean, a reference model (gradient boosting,
trained by cityx on the audited features) is trained before and after
sanitising and scored on the holdout: accuracy, and attack success (the
share of holdout rows of other labels that the trigger candidate turns
into its target label).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    CheckStatus,
    Evidence,
    Finding,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    Principle,
    Severity,
    Tags,
    status_from,
)
from cityx.data import read_table
from cityx.data.training import feature_columns

from .audit import AuditReport, audit
from .details import PoisoningDetails, Sanitising, poisoning_section
from .sanitise import RetrainComparison, retrain_and_compare
from .triggers import DataTrigger, find_data_trigger
from .verdict import MIN_FLAGGED, AuditVerdict

_TAGS = Tags(Principle.SECURITY, NistFunction.MEASURE, ("AML.T0020",), ("Art. 10", "Art. 15"))
DEFAULT_SOURCES = ("intersection", "approach")


class PoisoningAudit(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="poisoning.audit",
        kind=PluginKind.CHECK,
        version="1",
        summary="Audit the submission's training data for poisoning: rows and sources flagged "
        "by an ensemble of detectors, with a clean/poisoned/undetermined verdict",
        tags=_TAGS,
        supports=frozenset({"predictor"}),
    )
    threshold_metrics = ("flagged_share", "compromised_sources")
    principles: ClassVar[Mapping[Principle, tuple[str, ...]] | None] = {
        Principle.SECURITY: (),
        Principle.DATA_GOVERNANCE: (),
    }
    option_defaults: ClassVar[Mapping[str, Any]] = {"source_columns": list(DEFAULT_SOURCES)}
    details_type = PoisoningDetails
    report_section = staticmethod(poisoning_section)

    def _run(self, ctx: CheckContext) -> CheckResult:
        manifest = ctx.manifest
        if manifest is None or manifest.data.training is None:
            return CheckResult(
                self.meta.id, CheckStatus.SKIPPED, message="the manifest names no training data"
            )
        path = ctx.submission_dir / str(manifest.data.training)
        table = read_table(path)
        wanted = ctx.options["source_columns"]
        source_cols = [c for c in wanted if c in table.columns]
        report = audit(
            table,
            label=manifest.outputs.label_column,
            source_cols=source_cols,
            seed=ctx.seed,
            # What the vendor itself declares physically possible.
            bounds={f.name: (f.min, f.max) for f in manifest.inputs.features},
            readings={
                f.name: (f.reading.value, f.group) for f in manifest.inputs.features if f.reading
            },
        )
        bad = [s for s in report.sources if s.flagged]
        metrics = {
            "flagged_share": Metric(float(report.flagged.mean()) if report.flagged.size else 0.0),
            "compromised_sources": Metric(float(len(bad))),
        }
        label = manifest.outputs.label_column
        trigger = (
            find_data_trigger(table, report.flagged, label=label, source_cols=source_cols)
            if report.verdict is not AuditVerdict.CLEAN
            else None
        )
        sanitising = self._sanitising(ctx, table, report, label, source_cols, trigger)
        findings: list[Finding] = []
        evidence = Evidence(
            metrics={
                "verdict": report.verdict.value,
                "flagged_rows": int(report.flagged.sum()),
                "rows": int(report.flagged.size),
            },
            files=(str(path),),
            seed=ctx.seed,
        )
        if bad:
            findings.append(
                Finding(
                    id=f"{self.meta.id}/compromised-sources",
                    check=self.meta.id,
                    title=f"{len(bad)} training-data source(s) look compromised: "
                    + ", ".join(s.source for s in bad[:10]),
                    severity=Severity.HIGH,
                    severity_reason="a model trained on a compromised sensor's rows learns "
                    "the attacker's relation between readings and congestion",
                    tags=_TAGS,
                    description="; ".join(report.reasons),
                    evidence=evidence,
                )
            )
        for name, metric in metrics.items():
            threshold = ctx.threshold_for(name)
            verdict = threshold.judge(metric.value) if threshold else None
            if verdict is not None and not (name == "compromised_sources" and bad):
                findings.append(
                    Finding(
                        id=f"{self.meta.id}/{name}",
                        check=self.meta.id,
                        title=f"Training data {name} is {metric.value:.3g}",
                        severity=verdict[0],
                        severity_reason=verdict[1],
                        tags=_TAGS,
                        description="; ".join(report.reasons),
                        evidence=evidence,
                    )
                )
        if trigger is not None:
            shifted = ", ".join(f"{k} {v:+.3g}" for k, v in trigger.offsets.items())
            findings.append(
                Finding(
                    id=f"{self.meta.id}/trigger-candidate",
                    check=self.meta.id,
                    title=f"A backdoor trigger candidate in the training data: {shifted} "
                    f"-> {trigger.target!r}",
                    severity=Severity.HIGH,
                    severity_reason="flagged rows jump together in these readings and carry "
                    "one label: a model trained on them may answer that label to the pattern",
                    tags=_TAGS,
                    description=f"median jump at {trigger.rows} flagged rows that follow an "
                    "unflagged one, in robust spreads of ordinary jumps: "
                    + ", ".join(f"{k} {v:.1f}" for k, v in trigger.effects.items()),
                    evidence=evidence,
                )
            )
        if report.verdict is AuditVerdict.POISONED and not bad and trigger is None:
            findings.append(
                Finding(
                    id=f"{self.meta.id}/poisoned",
                    check=self.meta.id,
                    title=f"The training data looks poisoned: {int(report.flagged.sum())} rows "
                    "flagged",
                    severity=Severity.HIGH,
                    severity_reason="; ".join(report.reasons),
                    tags=_TAGS,
                    description="More rows are flagged than a clean table of this kind "
                    "shows; the details name the detectors that flagged them.",
                    evidence=evidence,
                )
            )
        found = tuple(findings)
        # No wall time in the details: they repeat exactly for the same seed (the check has its
        # own). The trigger is kept as recorded (rounded), so every reader sees the same numbers.
        details = PoisoningDetails(
            verdict=report.verdict.value,
            reasons=tuple(report.reasons),
            sources=tuple(s.source for s in bad),
            detectors=report.detectors,
            source_columns=tuple(source_cols),
            flagged_rows=tuple(np.flatnonzero(report.flagged).tolist()),
            trigger=DataTrigger.from_json(trigger.to_json()) if trigger is not None else None,
            sanitising=sanitising,
            coverage={c.kind.value: c.to_json() for c in report.coverage},
        )
        status = status_from(found)
        if status is CheckStatus.PASSED and report.verdict is AuditVerdict.UNDETERMINED:
            # Nothing found is not "clean" where the detectors could not reach: its own state,
            # which the gate treats as conditional, never as a pass.
            return CheckResult(
                self.meta.id,
                CheckStatus.UNDETERMINED,
                metrics,
                found,
                details,
                message="; ".join(report.reasons),
            )
        return CheckResult(self.meta.id, status, metrics, found, details)

    @staticmethod
    def _sanitising(
        ctx: CheckContext,
        table: pd.DataFrame,
        report: AuditReport,
        label: str,
        source_cols: list[str],
        trigger: DataTrigger | None,
    ) -> Sanitising | None:
        """Before and after dropping the flagged rows; None when there is nothing to drop.

        Nothing to drop: judged clean, too few rows flagged in a table not judged
        poisoned, or no holdout to compare on.
        """
        manifest = ctx.manifest
        # A few flagged rows in a table not judged poisoned are noise: nothing to compare.
        if (
            report.verdict is AuditVerdict.CLEAN
            or (report.verdict is not AuditVerdict.POISONED and report.flagged.sum() < MIN_FLAGGED)
            or not report.flagged.any()
            or manifest is None
            or manifest.data.holdout is None
        ):
            return None
        holdout = read_table(ctx.submission_dir / str(manifest.data.holdout))
        features = feature_columns(table, label, source_cols)
        missing = [c for c in (*features, label) if c not in holdout.columns]
        if missing:
            return Sanitising(note=f"the holdout lacks {', '.join(missing)}: no comparison")
        triggered = (
            trigger.apply(holdout[holdout[label].astype(str) != trigger.target])
            if trigger is not None
            else None
        )
        compared = retrain_and_compare(
            table,
            report.flagged,
            label=label,
            features=features,
            test=holdout,
            triggered=triggered,
            target=trigger.target if trigger is not None else None,
            scores=report.scores,
            seed=ctx.seed,
        )
        return Sanitising(
            RetrainComparison.from_json(compared.to_json()),  # as recorded: rounded
            model="gradient boosting trained by cityx on the audited features",
            holdout_rows=len(holdout),
        )
