"""Building the report's view from a trial's results.

The view (:mod:`.view`) is computed from the typed results document
(:class:`~cityx.core.TrialResults`): absent sections become "not run",
undefined values "undefined", and each check's section is drawn by the
check itself (:mod:`.sections`).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from cityx.core import (
    BUILTIN_DISTRIBUTION,
    READABLE_SCHEMA_VERSIONS,
    RESULTS_SCHEMA_VERSION,
    CheckRecord,
    Evidence,
    FindingRecord,
    GateRecord,
    Metric,
    NistFunction,
    PluginRecord,
    Principle,
    PrincipleRecord,
    Registry,
    Severity,
    TrialResults,
)
from cityx.core.taxonomy import ATLAS_NAMES, EU_AI_ACT_ARTICLES

from .formatting import (
    UNDEFINED,
    date,
    fmt_metric,
    fmt_value,
    metric_parts,
    or_undefined,
    seconds,
    slug,
)
from .sections import check_section, details_table
from .view import (
    CheckView,
    EvidenceView,
    Fact,
    FindingView,
    GateView,
    PrincipleView,
    Reason,
    ReportView,
    ReproView,
    Table,
    Tag,
)

MAX_EXAMPLES = 20
MAX_SUMMARY_METRICS = 6

_SEVERITY_ORDER = tuple(reversed(Severity))  # critical first
_CHECK_STATUS = {
    "passed": "Passed",
    "failed": "Failed",
    "undetermined": "Undetermined",
    "error": "Error",
    "skipped": "Skipped",
}
_PRINCIPLE_STATUS = {
    "not_tested": "Not tested",
    "ok": "OK",
    "attention": "Attention",
    "fail": "Fail",
}
_GATE = {
    "pass": ("PASS", "The system may be deployed under the policy."),
    "conditional": ("CONDITIONAL", "Deploy only once every reason below is addressed."),
    "fail": ("FAIL", "The system must not be deployed."),
}


def build_view(
    results: TrialResults | Mapping[str, Any], *, registry: Registry | None = None
) -> ReportView:
    """The display model of the report (public for tests and other renderers).

    A mapping is read with :meth:`TrialResults.from_json`; ``registry``
    (by default the installed plugins) finds each check's details type and
    section.
    """
    registry = registry or Registry()
    r = (
        results
        if isinstance(results, TrialResults)
        else TrialResults.from_json(results, registry=registry)
    )
    sub = r.submission
    notes: list[str] = []
    if r.schema_version not in READABLE_SCHEMA_VERSIONS:
        notes.append(
            f"This document has schema version {fmt_value(r.schema_version)}; this report knows "
            f"version {RESULTS_SCHEMA_VERSION}, so some sections may be missing or incomplete."
        )
    status = or_undefined(r.status)
    system = or_undefined(sub.id if sub else None)
    version = sub.version if sub else None
    title = f"{system} {version or ''}".strip()
    vendor = or_undefined(sub.vendor if sub else None)
    header = (
        Fact("System", system),
        Fact("Version", or_undefined(version)),
        Fact("Vendor", vendor),
        Fact("Kind", or_undefined(sub.kind if sub else None)),
        Fact("Trial", or_undefined(r.trial_id), code=True),
        Fact("Date", date(r.created_at)),
        Fact("Status", status),
        Fact("Trial wall time", seconds(r.wall_s)),
    )
    findings = None if r.findings is None else _findings(r.findings, _command(r))
    checks = None
    if r.checks is not None:
        checks = _checks(r.checks, findings or (), registry, notes)
    if checks is not None and findings is not None:
        anchors = {c.id: c.anchor for c in checks}
        findings = tuple(_with_anchor(f, anchors.get(f.check)) for f in findings)
    counts = tuple(
        (s.value, s.value.upper(), n)
        for s in _SEVERITY_ORDER
        if (n := sum(1 for f in findings or () if f.severity == s.value))
    )
    return ReportView(
        title=f"Trial report: {title}",
        system=title,
        vendor=vendor,
        header=header,
        intended_use=(sub.intended_use if sub else None) or "",
        status=status,
        incomplete=status != "complete",
        notes=tuple(notes),
        gate=_gate(r.gate),
        checks=checks,
        findings=findings,
        severity_counts=counts,
        principles=_principles(r.principles),
        repro=_repro(r),
    )


def _with_anchor(f: FindingView, anchor: str | None) -> FindingView:
    return FindingView(
        f.id,
        f.check,
        anchor,
        f.title,
        f.severity,
        f.severity_label,
        f.severity_reason,
        f.description,
        f.principle,
        f.nist,
        f.atlas,
        f.eu_ai_act,
        f.evidence,
    )


def _gate(gate: GateRecord | None) -> GateView | None:
    if gate is None:
        return None
    decision = gate.decision or ""
    label, headline = _GATE.get(
        decision,
        (decision.upper() or UNDEFINED.upper(), "The decision is not one this report knows."),
    )
    return GateView(
        decision=decision if decision in _GATE else "unknown",
        label=label,
        headline=headline,
        reasons=tuple(_reason(x) for x in gate.reasons),
        policy=or_undefined(gate.policy),
    )


def _reason(text: str) -> Reason:
    head, sep, rest = text.partition(": ")
    if sep and head in {s.value for s in Severity}:
        return Reason(head, rest)
    return Reason(None, text)


def _severity(text: str | None) -> tuple[str, str, int]:
    """CSS key, label and rank (-1 when unknown) of a severity."""
    try:
        s = Severity(text or "")
    except ValueError:
        return "unknown", ((text or "").upper() or UNDEFINED.upper()), -1
    return s.value, s.value.upper(), s.rank


def _principle_title(text: str | None) -> str:
    try:
        return Principle(text or "").display_name
    except ValueError:
        return text or UNDEFINED


def _nist_title(text: str | None) -> str:
    try:
        return NistFunction(text or "").value.capitalize()
    except ValueError:
        return text or UNDEFINED


def _findings(records: Sequence[FindingRecord], trial_command: str) -> tuple[FindingView, ...]:
    ranked: list[tuple[int, int, FindingView]] = []
    for i, f in enumerate(records):
        key, label, rank = _severity(f.severity)
        ranked.append(
            (
                -rank,
                i,
                FindingView(
                    id=or_undefined(f.id),
                    check=or_undefined(f.check),
                    check_anchor=None,
                    title=or_undefined(f.title),
                    severity=key,
                    severity_label=label,
                    severity_reason=f.severity_reason or "",
                    description=f.description or "",
                    principle=_principle_title(f.principle),
                    nist=_nist_title(f.nist),
                    atlas=tuple(Tag(t, ATLAS_NAMES.get(t)) for t in f.atlas),
                    eu_ai_act=tuple(Tag(a, EU_AI_ACT_ARTICLES.get(a)) for a in f.eu_ai_act),
                    evidence=_evidence(f.evidence, trial_command),
                ),
            )
        )
    ranked.sort(key=lambda t: (t[0], t[1]))
    return tuple(v for _, _, v in ranked)


def _evidence(e: Evidence, trial_command: str) -> EvidenceView:
    metric_table = (
        Table(
            "Evidence metrics",
            ("Name", "Value"),
            tuple((str(k), fmt_value(v)) for k, v in e.metrics.items()),
            frozenset({1}),
        )
        if e.metrics
        else None
    )
    shown = e.examples[:MAX_EXAMPLES]
    columns: list[str] = []
    for ex in shown:
        columns.extend(str(k) for k in ex if str(k) not in columns)
    example_table = (
        Table(
            "Examples",
            tuple(columns),
            tuple(tuple(fmt_value(ex.get(c)) for c in columns) for ex in shown),
        )
        if shown and columns
        else None
    )
    total = len(e.examples)
    note = f"Showing {len(shown)} of {total} examples." if total > len(shown) else ""
    return EvidenceView(
        metrics=metric_table,
        files=e.files,
        seed=fmt_value(e.seed),
        reproduce=e.reproduce or trial_command,
        examples=example_table,
        examples_note=note,
    )


def _checks(
    records: Sequence[CheckRecord],
    findings: Sequence[FindingView],
    registry: Registry,
    notes: list[str],
) -> tuple[CheckView, ...]:
    views: list[CheckView] = []
    used: set[str] = set()
    for i, c in enumerate(records):
        cid = or_undefined(c.id)
        anchor = f"check-{slug(cid)}"
        if anchor in used:
            anchor = f"{anchor}-{i + 1}"
        used.add(anchor)
        status = c.status or ""
        ids = set(c.findings)
        # ``findings`` is sorted worst first, so the first of a check's own is its worst.
        own = [f for f in findings if f.id in ids] or [f for f in findings if f.check == cid]
        summary = tuple((name, fmt_metric(m)) for name, m in c.metrics.items())
        section, failed = check_section(c, f"c{i + 1}", registry)
        if failed:
            notes.append(failed)
        rest = details_table(
            cid, c.details.to_json() if c.details is not None else {}, section.shown
        )
        views.append(
            CheckView(
                id=cid,
                anchor=anchor,
                status=status if status in _CHECK_STATUS else "unknown",
                status_label=_CHECK_STATUS.get(status, status or UNDEFINED),
                message=c.message or "",
                wall=seconds(c.wall_s),
                summary_metrics=summary[:MAX_SUMMARY_METRICS],
                more_metrics=max(len(summary) - MAX_SUMMARY_METRICS, 0),
                finding_count=max(len(ids), len(own)),
                worst=own[0] if own else None,
                metrics=_metric_table(cid, c.metrics),
                plots=section.plots,
                tables=((rest,) if rest else ()) + section.tables,
            )
        )
    return tuple(views)


def _metric_table(cid: str, metrics: Mapping[str, Metric]) -> Table | None:
    if not metrics:
        return None
    rows = []
    for name, m in metrics.items():
        value, interval = metric_parts(m)
        rows.append((name, value, interval or "not estimated", m.unit))
    return Table(
        f"Metrics of {cid}",
        ("Metric", "Value", "95 % interval", "Unit"),
        tuple(rows),
        frozenset({1, 2}),
    )


def _principles(
    principles: Mapping[str, PrincipleRecord] | None,
) -> tuple[PrincipleView, ...] | None:
    if principles is None:
        return None
    rows: list[PrincipleView] = []
    known = [p.value for p in Principle]
    for key in [*known, *(k for k in principles if k not in known)]:
        entry = principles.get(key)
        status = (entry.status if entry else None) or "not_tested"
        rows.append(
            PrincipleView(
                title=_principle_title(key),
                status=status if status in _PRINCIPLE_STATUS else "unknown",
                status_label=_PRINCIPLE_STATUS.get(status, status),
                findings=fmt_value(entry.findings if entry else None),
            )
        )
    return tuple(rows)


def _command(r: TrialResults) -> str:
    """The command that reruns the trial: as recorded, else rebuilt from its parts."""
    if r.command:
        return r.command
    path = (r.submission.path if r.submission else None) or "<submission>"
    parts = ["cityx", "trial", path, "--seed", "<seed>" if r.seed is None else str(r.seed)]
    policy_path = r.policy.path if r.policy else None
    if policy_path:
        parts += ["--policy", policy_path]
    return shlex.join(parts)


def _plugin(p: PluginRecord) -> str:
    """``kind:id@version``, with the distribution when it is not cityx itself."""
    if p.distribution and p.distribution != BUILTIN_DISTRIBUTION:
        return f"{p.label} ({p.distribution} {p.distribution_version or UNDEFINED})"
    return p.label


def _repro(r: TrialResults) -> ReproView:
    sub = r.submission
    facts = (
        Fact("Seed", fmt_value(r.seed)),
        Fact("Submission SHA-256", or_undefined(sub.sha256 if sub else None), code=True),
        Fact("Submission path", or_undefined(sub.path if sub else None), code=True),
        Fact("Results schema version", fmt_value(r.schema_version)),
    )
    policy_table = (
        Table(
            "Policy",
            ("Field", "Value"),
            tuple((k, fmt_value(v)) for k, v in r.policy.to_json().items()),
        )
        if r.policy
        else None
    )
    data_rows = [
        (
            name,
            or_undefined(d.path),
            or_undefined(d.sha256),
            fmt_value(d.rows),
            fmt_value(d.rejected_rows),
        )
        for name, d in (r.data or {}).items()
    ]
    data_table = (
        Table(
            "Data sets and their digests",
            ("Data set", "Path", "SHA-256", "Rows", "Rejected rows"),
            tuple(data_rows),
            frozenset({3, 4}),
        )
        if data_rows
        else None
    )
    version_table = (
        Table(
            "Software versions",
            ("Component", "Version"),
            tuple((k, fmt_value(v)) for k, v in r.versions.items()),
        )
        if r.versions
        else None
    )
    plugins = None if r.plugins is None else tuple(map(_plugin, r.plugins))
    return ReproView(facts, _command(r), policy_table, data_table, version_table, plugins)


__all__ = ["build_view"]
