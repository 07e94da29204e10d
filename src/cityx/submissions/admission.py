"""The admission check: the record of how the submission was admitted.

By the time checks run, the submission passed validation (errors stop a
trial before it starts). This check reports the warnings validation left,
and flags artifacts that run the vendor's code (pickles and Python entry
points). A manifest with completeness *gaps* (:mod:`.completeness`:
scaffold placeholders, an unfilled datasheet, an undeclared fairness
position) makes the check ``undetermined``: what the system is for, who
answers for it and what its data is cannot be established, so the gate
cannot pass under any policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    CheckStatus,
    Details,
    Evidence,
    Fields,
    Finding,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    Principle,
    Registry,
    Severity,
    Tags,
    status_from,
)

from .completeness import GAP, manifest_gaps

_TAGS = Tags(Principle.ACCOUNTABILITY, NistFunction.GOVERN, (), ("Art. 11",))
_TRUSTED_CODE = Tags(
    Principle.SECURITY, NistFunction.MANAGE, ("AML.T0010", "AML.T0011"), ("Art. 15",)
)


@dataclass(frozen=True, slots=True)
class AdmissionDetails(Details):
    """The artifact as admitted: its format and SHA-256 (None without a manifest)."""

    format: str | None
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, "admission details")
        return cls(f.text_or_null("format"), f.text_or_null("sha256"))


class Admission(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="admission",
        kind=PluginKind.CHECK,
        version="1",
        summary="Manifest, file layout, artifact digest, data against the input schema, "
        "and loading in an isolated worker",
        tags=_TAGS,
        supports=frozenset({"predictor", "controller"}),
    )
    threshold_metrics = ("warnings",)
    details_type = AdmissionDetails

    def _run(self, ctx: CheckContext) -> CheckResult:
        cid = self.meta.id
        gaps = manifest_gaps(ctx.submission_dir, ctx.manifest) if ctx.manifest else ()
        warnings = [p for p in ctx.problems if not p.message.startswith(f"{GAP}:")]
        findings = [
            Finding(
                id=f"{cid}/warning-{i}",
                check=cid,
                title=p.message,
                severity=Severity.LOW,
                severity_reason="admitted, but a reviewer should know",
                tags=_TAGS,
                evidence=Evidence(metrics={"where": p.where}),
            )
            for i, p in enumerate(warnings, start=1)
        ]
        findings += [
            Finding(
                id=f"{cid}/incomplete-{i}",
                check=cid,
                title=f"The submission is incomplete: {p}",
                severity=Severity.MEDIUM,
                severity_reason="a reviewer cannot tell what the system is for, who answers "
                "for it or what its data is; no pass until it is filled in",
                tags=_TAGS,
                evidence=Evidence(metrics={"where": p.where}),
            )
            for i, p in enumerate(gaps, start=1)
        ]
        fmt = ctx.manifest.artifact.format if ctx.manifest else None
        target = Registry().load(PluginKind.TARGET, fmt) if fmt else None
        if fmt and getattr(target, "runs_vendor_code", False):
            flag = "--trust-pickle" if fmt == "pickle" else "--trust-code"
            who = ctx.trusted_by.get(flag)
            findings.append(
                Finding(
                    id=f"{cid}/trusted-code",
                    check=cid,
                    title=f"The artifact ({fmt}) runs the vendor's own code",
                    severity=Severity.MEDIUM,
                    severity_reason=(
                        f"it was loaded, in the isolated worker, because {who} passed {flag}"
                        if who is not None
                        else f"it was loaded without {flag} being recorded for this run"
                    )
                    + "; prefer ONNX, skops or LightGBM files, which load without running code",
                    tags=_TRUSTED_CODE,
                    evidence=Evidence(metrics={"opt_in": flag, "given_by": who}),
                )
            )
        found = tuple(findings)
        metrics = {
            "warnings": Metric(len(warnings)),
            "gaps": Metric(len(gaps)),
            "load_s": Metric(ctx.load_s, unit="s"),
        }
        details = AdmissionDetails(fmt, ctx.manifest.artifact.sha256 if ctx.manifest else None)
        if gaps:
            return CheckResult(
                cid,
                CheckStatus.UNDETERMINED,
                metrics,
                found,
                details,
                message=f"the manifest has {len(gaps)} gap(s), first {gaps[0]}",
            )
        return CheckResult(cid, status_from(found), metrics, found, details)
