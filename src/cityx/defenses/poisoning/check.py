"""The ``poisoning.audit`` check: audit a submission's training data in a trial.

It reads the manifest's ``[data].training`` file, labelled by
``[outputs].label_column``; the *source columns* come from the policy's
option ``source_columns`` (default: ``intersection`` and ``approach``,
those of them the file has). Findings name compromised sources; the
metrics ``flagged_share`` and ``compromised_sources`` take policy limits.
"""

from __future__ import annotations

from typing import ClassVar

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

from .audit import Verdict, audit
from .provenance import read_table

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

    def _run(self, ctx: CheckContext) -> CheckResult:
        manifest = ctx.manifest
        if manifest is None or manifest.data.training is None:
            return CheckResult(
                self.meta.id, CheckStatus.SKIPPED, message="the manifest names no training data"
            )
        path = ctx.submission_dir / str(manifest.data.training)
        table = read_table(path)
        wanted = ctx.options.get("source_columns", DEFAULT_SOURCES)
        source_cols = [c for c in wanted if c in table.columns]
        report = audit(
            table,
            label=manifest.outputs.label_column,
            source_cols=source_cols,
            seed=ctx.seed,
        )
        bad = [s for s in report.sources if s.flagged]
        metrics = {
            "flagged_share": Metric(float(report.flagged.mean()) if report.flagged.size else 0.0),
            "compromised_sources": Metric(float(len(bad))),
        }
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
        if report.verdict is Verdict.UNDETERMINED:
            findings.append(
                Finding(
                    id=f"{self.meta.id}/undetermined",
                    check=self.meta.id,
                    title="The poisoning audit could not decide",
                    severity=Severity.LOW,
                    severity_reason="; ".join(report.reasons),
                    tags=_TAGS,
                    description="The training data could not be judged clean or poisoned.",
                    evidence=evidence,
                )
            )
        found = tuple(findings)
        details = {
            "verdict": report.verdict.value,
            "reasons": list(report.reasons),
            "sources": [s.source for s in bad],
            "detectors": report.detectors,
            "source_columns": source_cols,
        }  # no wall time here: details repeat exactly for the same seed (the check has its own)
        return CheckResult(self.meta.id, status_from(found), metrics, found, details)
