"""The report a regulator signs: the trial report, claims, and every framework's requirements.

The *governance report* of a trial is the trial report (:mod:`.report`)
extended with the vendor's claims against the measurements (:mod:`.claims`)
and, per framework, each requirement with its evidence and status
(:mod:`.requirements`). It is written as HTML, as PDF (WeasyPrint: the
same page laid out for A4, with contents, page numbers and the figures) or
as JSON; the *summary* is one page for decision makers: the gate, the
worst findings, claims that failed and each framework's counts.

Evidence from outside the trial folder (:mod:`.external`) joins it when
the caller gathered it: the regulator's *ruling* from the store, with its
signature check, shown beside the gate decision; *runs under oversight*,
whose decision logs, drills and Art. 14(4) tables become evidence rows; and
checklist answers stored by the console, which are *attestations* with
their author and time.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from cityx.core import InputError, Registry, RunError, Severity

from .checklist import Answer
from .claims import ClaimCheck, compare_claims
from .external import ExternalEvidence
from .report import render_html as render_trial_html
from .report.write import environment, write_atomic
from .requirements import FrameworkAssessment, Status, assess, frameworks
from .trial_folder import (
    TrialFolder,
    datasheet_text,
    evidence_of,
    policy_limits,
    read_claims,
)

FORMATS = ("html", "pdf", "json")
GOVERNANCE_SCHEMA_VERSION = 1
_GROUP_WORD = {"aiverify": "principle", "nist": "function", "euai": "article", "atlas": "tactic"}
_SHORT = {"aiverify": "AI Verify", "nist": "NIST AI RMF", "euai": "EU AI Act", "atlas": "ATLAS"}
_COLOURS = {
    Status.MET: "#15803d",
    Status.PARTLY_MET: "#1d4ed8",
    Status.NOT_MET: "#b91c1c",
    Status.UNDETERMINED: "#b45309",
    Status.NOT_ASSESSED: "#6b7280",
}


@dataclass(frozen=True, slots=True)
class GovernanceReport:
    """Everything the governance report shows, computed once."""

    trial: TrialFolder
    assessments: tuple[FrameworkAssessment, ...]
    claims: tuple[ClaimCheck, ...] | None
    claims_note: str
    datasheet: str | None
    limits_note: str
    answers_source: str
    external: ExternalEvidence = field(default_factory=ExternalEvidence)

    def to_json(self) -> dict[str, Any]:
        r = self.trial.results
        return {
            "schema_version": GOVERNANCE_SCHEMA_VERSION,
            "kind": "cityx.governance-report",
            "trial_id": r.trial_id,
            "system": r.submission.id if r.submission else None,
            "version": r.submission.version if r.submission else None,
            "vendor": r.submission.vendor if r.submission else None,
            "gate": r.gate.to_json() if r.gate else None,
            "answers": self.answers_source,
            "limits": self.limits_note,
            "claims": None if self.claims is None else [c.to_json() for c in self.claims],
            "claims_note": self.claims_note,
            "frameworks": [a.to_json() for a in self.assessments],
            "ruling": None if self.external.ruling is None else self.external.ruling.to_json(),
            "ruling_note": self.external.ruling_note,
            "oversight": [run.to_json() for run in self.external.oversight],
        }


def build_governance(
    trial: TrialFolder,
    *,
    framework: str = "all",
    checklist: Path | None = None,
    answers: Sequence[Answer] | None = None,
    answers_source: str = "",
    external: ExternalEvidence | None = None,
) -> GovernanceReport:
    """The governance report of a trial folder.

    ``checklist`` is a filled-in answers file; ``answers`` (with
    ``answers_source`` saying where they came from) replaces both, e.g. the
    answers stored by the console; ``external`` is the evidence from outside
    the trial folder.
    """
    selected = frameworks(framework)
    outside = external or ExternalEvidence()
    evidence = evidence_of(trial, checklist=checklist)
    if answers is not None:
        evidence = replace(evidence, answers=tuple(answers))
    evidence = replace(evidence, external=outside.checks())
    _, _, limits_note = policy_limits(trial.results)
    claims = read_claims(trial.results)
    note = (
        "the submission's manifest has no [claims] table, or is no longer where the trial found it"
        if claims is None
        else ""
    )
    return GovernanceReport(
        trial=trial,
        assessments=tuple(assess(fw, evidence) for fw in selected),
        claims=None if claims is None else compare_claims(claims, trial.results),
        claims_note=note,
        datasheet=datasheet_text(trial.results),
        limits_note=limits_note,
        answers_source=answers_source
        or (f"the file {checklist}" if checklist else "answered from the trial's results only"),
        external=outside,
    )


# -- views -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    title: str
    text: str
    kind: str
    status: str
    key: str
    evidence: tuple[Any, ...]
    covers: str
    threshold: str
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Group:
    name: str
    status: str
    key: str
    rows: int


@dataclass(frozen=True, slots=True)
class _Framework:
    id: str
    title: str
    short: str
    pinned: str
    group_word: str
    chart: Markup
    counts_text: str
    groups: tuple[_Group, ...]
    rows: tuple[_Row, ...]


@dataclass(frozen=True, slots=True)
class _Claim:
    claim: str
    claimed: str
    measured: str
    status: str
    status_key: str
    note: str


@dataclass(frozen=True, slots=True)
class GovernanceView:
    frameworks: tuple[_Framework, ...]
    claims: tuple[_Claim, ...] | None
    claims_note: str
    datasheet: str | None
    answers_source: str
    limits_note: str
    external: ExternalEvidence = field(default_factory=ExternalEvidence)


def _key(status: str) -> str:
    return status.replace(" ", "-").split(",")[0]


def governance_view(report: GovernanceReport) -> GovernanceView:
    fws = []
    for a in report.assessments:
        counts = a.counts()
        fws.append(
            _Framework(
                id=a.framework.id,
                title=a.framework.title,
                short=_SHORT.get(a.framework.id, a.framework.id),
                pinned=a.framework.pinned,
                group_word=_GROUP_WORD.get(a.framework.id, "group"),
                chart=status_chart(counts),
                counts_text=", ".join(f"{n} {s}" for s, n in counts.items()),
                groups=tuple(_Group(g, s.value, _key(s.value), n) for g, s, n in a.groups()),
                rows=tuple(
                    _Row(
                        r.requirement.id,
                        r.requirement.title,
                        r.requirement.text,
                        r.requirement.kind,
                        r.status.value,
                        _key(r.status.value),
                        r.evidence,
                        r.covers,
                        r.threshold,
                        r.missing,
                    )
                    for r in a.rows
                ),
            )
        )
    claims = (
        None
        if report.claims is None
        else tuple(
            _Claim(c.claim, c.claimed, c.measured, c.status, _key(c.status), c.note)
            for c in report.claims
        )
    )
    return GovernanceView(
        tuple(fws),
        claims,
        report.claims_note,
        report.datasheet,
        report.answers_source,
        report.limits_note,
        report.external,
    )


def status_chart(counts: dict[str, int]) -> Markup:
    """A stacked bar of requirement statuses, as inline SVG (no plotting library needed)."""
    total = sum(counts.values()) or 1
    width, x, parts = 600.0, 0.0, []
    for status in Status:
        n = counts.get(status.value, 0)
        if not n:
            continue
        w = width * n / total
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="22" fill="{_COLOURS[status]}">'
            f"<title>{escape(status.value)}: {n}</title></rect>"
        )
        if w > 24:
            parts.append(
                f'<text x="{x + w / 2:.1f}" y="15" fill="#fff" font-size="11" '
                f'text-anchor="middle">{n}</text>'
            )
        x += w
    legend = "".join(
        f'<rect x="{i * 120}" y="30" width="10" height="10" fill="{_COLOURS[s]}"/>'
        f'<text x="{i * 120 + 14}" y="39" font-size="10" fill="#1f2937">{escape(s.value)}</text>'
        for i, s in enumerate(Status)
    )
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 600 44" role="img" '
        'preserveAspectRatio="xMinYMid meet" '
        f'aria-label="requirements by status">{"".join(parts)}{legend}</svg>'
    )


# -- rendering ---------------------------------------------------------------------------


def render_governance_html(report: GovernanceReport, *, registry: Registry | None = None) -> str:
    """The trial report with the claims and framework sections, as one self-contained page."""
    return render_trial_html(
        report.trial.results, registry=registry, governance=governance_view(report)
    )


def render_summary_html(report: GovernanceReport) -> str:
    """The one-page summary for decision makers."""
    return environment().get_template("summary.html.j2").render(s=summary(report))


def summary(report: GovernanceReport) -> dict[str, Any]:
    r = report.trial.results
    order = {s.value: s.rank for s in Severity}
    worst = sorted(r.findings or (), key=lambda f: -order.get(f.severity or "", -1))[:5]
    return {
        "system": r.submission.id if r.submission else "undefined",
        "version": r.submission.version if r.submission else "",
        "vendor": r.submission.vendor if r.submission else "undefined",
        "trial_id": r.trial_id or "undefined",
        "created_at": r.created_at or "undefined",
        "decision": (r.gate.decision if r.gate else None) or "undefined",
        "reasons": list(r.gate.reasons[:5]) if r.gate else [],
        "more_reasons": max(0, len(r.gate.reasons) - 5) if r.gate else 0,
        "findings": [
            {"severity": f.severity or "unknown", "title": f.title or "", "id": f.id or ""}
            for f in worst
        ],
        "finding_count": len(r.findings or ()),
        "claims_failed": [c.to_json() for c in report.claims or () if c.status == "finding"],
        "claims_unassessed": sum(1 for c in report.claims or () if c.status == "not assessed"),
        "claims_note": report.claims_note,
        "frameworks": [
            {
                "id": a.framework.id,
                "title": _SHORT.get(a.framework.id, a.framework.title),
                "pinned": a.framework.pinned,
                "status_counts": a.counts(),
                "chart": status_chart(a.counts()),
            }
            for a in report.assessments
        ],
        "answers": report.answers_source,
        "ruling": None if report.external.ruling is None else report.external.ruling.to_json(),
        "ruling_note": report.external.ruling_note,
    }


def html_to_pdf(html: str) -> bytes:
    """Lay out an HTML page as PDF with WeasyPrint (fonts from the system: DejaVu offline).

    Closed ``<details>`` blocks are opened first: on paper they would print empty.
    """
    with warnings.catch_warnings():
        # WeasyPrint warns at import that a future version will need HarfBuzz-Subset;
        # fonts are still embedded and subset today, so the warning is not ours to act on.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="weasyprint")
        warnings.filterwarnings("ignore", message=".*HarfBuzz.*")
        try:
            from weasyprint import CSS, HTML  # type: ignore[import-untyped]  # heavy: PDFs only
        except (ImportError, OSError) as exc:
            raise RunError(
                f"PDF output needs WeasyPrint and Pango: {exc}",
                hint="pip install weasyprint; apt-get install libpango-1.0-0",
            ) from exc
        html = html.replace("<details>", "<details open>")
        pdf: bytes = HTML(string=html, base_url=None).write_pdf(stylesheets=[CSS(string=_PDF_CSS)])
    return pdf


# DejaVu ships with the system (offline). Fixed table layout spares the engine measuring
# every word of every cell twice; the report's data tables ("table.data { width: auto }")
# keep the automatic layout, since equal fixed columns let their long metrics overflow.
# Status labels and badges are plain inline boxes in print: an inline-block is measured
# (shrink-to-fit) before it is laid out, which was 15 % of a long report's CPU time.
_PDF_CSS = """
* { font-family: "DejaVu Sans", sans-serif !important; }
code, pre, code * { font-family: "DejaVu Sans Mono", monospace !important; }
table { table-layout: fixed; width: 100%; }
.st, .badge { display: inline !important; }
.table-wrap { overflow: visible; }
"""


def render(report: GovernanceReport, fmt: str, *, summary_only: bool = False) -> bytes:
    """The report (or its one-page summary) as bytes in ``fmt`` (html, pdf or json)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    if fmt == "json":
        doc = summary_json(report) if summary_only else report.to_json()
        return (json.dumps(doc, indent=2, allow_nan=False) + "\n").encode("utf-8")
    html = render_summary_html(report) if summary_only else render_governance_html(report)
    return html_to_pdf(html) if fmt == "pdf" else html.encode("utf-8")


def summary_json(report: GovernanceReport) -> dict[str, Any]:
    doc = summary(report)
    for fw in doc["frameworks"]:
        del fw["chart"]
    return {"schema_version": GOVERNANCE_SCHEMA_VERSION, "kind": "cityx.governance-summary", **doc}


__all__ = [
    "FORMATS",
    "GOVERNANCE_SCHEMA_VERSION",
    "GovernanceReport",
    "GovernanceView",
    "build_governance",
    "governance_view",
    "html_to_pdf",
    "render",
    "render_governance_html",
    "render_summary_html",
    "status_chart",
    "summary",
    "summary_json",
    "write_atomic",
]
