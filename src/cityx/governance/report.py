"""The trial report: one self-contained HTML file a regulator reads before the gate.

The *report* is a pure function of a trial's ``results.json`` document
(findings, check results, the gate decision and the policy that made it):
the same document always gives byte-identical HTML. The file opens offline:
its CSS is inline, its plots are inline SVG, and it fetches nothing.

Words used here:

- *undefined*: a value recorded as ``null`` (a metric that could not be
  computed). The report prints "undefined", never 0.
- *not run*: a section whose data is absent from the document, because the
  trial stopped early or an older runner did not record it.
- *interval*: a metric's 95 % confidence interval, written ``[low, high]``
  after the value, as in ``0.871 [0.853, 0.889]``.

Everything taken from the document is escaped by the template engine, so a
finding title or a vendor name cannot inject markup.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from cityx.core import NistFunction, Principle, RunError, Severity
from cityx.core.taxonomy import ATLAS_NAMES, EU_AI_ACT_ARTICLES

RESULTS_SCHEMA_VERSION = 1
UNDEFINED = "undefined"
NOT_RUN = "not run"
MAX_EXAMPLES = 20
MAX_SUMMARY_METRICS = 6

_SEVERITY_ORDER = tuple(reversed(Severity))  # critical first
_CHECK_STATUS = {"passed": "Passed", "failed": "Failed", "error": "Error", "skipped": "Skipped"}
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
# Detail keys a chart or a dedicated table already shows.
_DRAWN = frozenset({"labels", "confusion", "residual_quantiles", "probes", "outcomes"})
_DEDICATED = frozenset(
    {
        "rejected_by_feature",
        "comparisons",
        "cells",
        "by_label",
        "counts",
        "counts_order",
        "sanitising",
        "trigger",
        "flagged_rows",
    }
)
# The before/after-sanitising table: rows (label, results key) and columns.
_SANITISING_MEASURES = (("Accuracy", "accuracy"), ("Attack success", "attack_success"))
_SANITISED = ("before", "after", "robust")
# Per-group rates shown in a fairness table, in this order.
_GROUP_RATES = ("n", "tpr", "fpr", "ppv", "selection_rate", "accuracy", "base_rate")
_JSON_CUT = 300


# -- view model -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """A data table: a caption, column headers and rows of display strings."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Plot:
    title: str
    svg: Markup
    table: Table | None = None


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str
    code: bool = False


@dataclass(frozen=True, slots=True)
class Tag:
    code: str
    name: str | None


@dataclass(frozen=True, slots=True)
class EvidenceView:
    metrics: Table | None
    files: tuple[str, ...]
    seed: str
    reproduce: str
    examples: Table | None
    examples_note: str


@dataclass(frozen=True, slots=True)
class FindingView:
    id: str
    check: str
    check_anchor: str | None
    title: str
    severity: str  # a CSS-safe severity key, or "unknown"
    severity_label: str
    severity_reason: str
    description: str
    principle: str
    nist: str
    atlas: tuple[Tag, ...]
    eu_ai_act: tuple[Tag, ...]
    evidence: EvidenceView


@dataclass(frozen=True, slots=True)
class CheckView:
    id: str
    anchor: str
    status: str  # a CSS-safe status key, or "unknown"
    status_label: str
    message: str
    wall: str
    summary_metrics: tuple[tuple[str, str], ...]  # (name, "value [low, high] unit")
    more_metrics: int
    finding_count: int
    worst: FindingView | None
    metrics: Table | None
    plots: tuple[Plot, ...]
    tables: tuple[Table, ...]


@dataclass(frozen=True, slots=True)
class Reason:
    """A gate reason; ``severity`` is set when the reason starts with one (``high: ...``)."""

    severity: str | None
    text: str


@dataclass(frozen=True, slots=True)
class GateView:
    decision: str  # pass, conditional, fail or unknown
    label: str
    headline: str
    reasons: tuple[Reason, ...]
    policy: str


@dataclass(frozen=True, slots=True)
class PrincipleView:
    title: str
    status: str
    status_label: str
    findings: str


@dataclass(frozen=True, slots=True)
class ReproView:
    facts: tuple[Fact, ...]
    command: str
    policy: Table | None
    data: Table | None
    versions: Table | None
    plugins: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class ReportView:
    title: str
    system: str
    vendor: str
    header: tuple[Fact, ...]
    intended_use: str
    status: str
    incomplete: bool
    notes: tuple[str, ...]
    gate: GateView | None
    checks: tuple[CheckView, ...] | None
    findings: tuple[FindingView, ...] | None
    severity_counts: tuple[tuple[str, str, int], ...]
    principles: tuple[PrincipleView, ...] | None
    repro: ReproView


# -- public API -----------------------------------------------------------------------------


def render_html(results: Mapping[str, Any]) -> str:
    """The report for a trial's ``results.json`` document, as one HTML page.

    Unknown keys are ignored, absent sections are shown as "not run" and
    ``null`` values as "undefined"; the same document gives the same bytes.
    """
    view = build_view(results)
    return _environment().get_template("report.html.j2").render(report=view)


def write_report(results: Mapping[str, Any], path: Path) -> Path:
    """Render the report and write it to ``path`` atomically; return ``path``.

    The page goes to a temporary file in the same folder first and then
    replaces ``path`` in one step, so a reader never sees half a report.
    """
    path = Path(path)
    html = render_html(results).encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as out:
            out.write(html)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunError(
            f"cannot write the report: {exc.strerror or exc}",
            where=str(path),
            hint="check that the folder exists and is writable",
        ) from exc
    return path


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("cityx.governance", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# -- formatting -----------------------------------------------------------------------------


def _number(v: float, decimals: int) -> str:
    if math.isnan(v):
        return UNDEFINED
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v != 0 and abs(v) < 0.5 * 10.0**-decimals:
        return f"{v:.2g}"  # too small for the fixed decimals; never print it as 0
    return f"{v:.{decimals}f}"


def _decimals(values: Sequence[Any], *, interval: bool) -> int:
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    finite = [v for v in nums if math.isfinite(v)]
    if not finite:
        return 3
    if not interval and all(v.is_integer() for v in finite):
        return 0
    return 1 if max(abs(v) for v in finite) >= 100 else 3


def fmt_value(v: Any) -> str:
    """One value for display: ``None`` is "undefined", floats get up to 3 decimals."""
    if v is None:
        return UNDEFINED
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = _number(v, _decimals([v], interval=False))
        # A lone number has no column to align with: drop trailing zeros (81.4, not 81.400).
        return text.rstrip("0").rstrip(".") if re.fullmatch(r"-?\d+\.\d+", text) else text
    if isinstance(v, str):
        return v
    return _compact_json(v)


def _compact_json(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= _JSON_CUT else text[: _JSON_CUT - 1] + "…"


def _as_float(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _metric_parts(m: Mapping[str, Any]) -> tuple[str, str | None]:
    """A metric's value and interval (``None`` when none was estimated), same decimals."""
    value, low, high = m.get("value"), m.get("ci_low"), m.get("ci_high")
    has_ci = low is not None or high is not None
    d = _decimals([value, low, high], interval=has_ci)

    def one(v: Any) -> str:
        f = _as_float(v)
        return _number(f, d) if f is not None else fmt_value(v)

    return one(value), (f"[{one(low)}, {one(high)}]" if has_ci else None)


def fmt_metric(metric: Any) -> str:
    """A metric as ``value [low, high] unit``; no interval when none was estimated."""
    if not isinstance(metric, Mapping):
        return fmt_value(metric)  # a bare number where a metric object was expected
    value, interval = _metric_parts(metric)
    text = f"{value} {interval}" if interval else value
    unit = _text(metric.get("unit"))
    return f"{text} {unit}" if unit and metric.get("value") is not None else text


def _seconds(v: Any) -> str:
    f = _as_float(v)
    if f is None:
        return UNDEFINED
    return f"{f:.2f} s" if f < 100 else f"{f:.0f} s"


def _date(v: Any) -> str:
    text = _text(v)
    if not text:
        return UNDEFINED
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    if when.utcoffset() == timedelta(0):
        return f"{when:%Y-%m-%d %H:%M:%S} UTC"
    return when.isoformat(sep=" ")


def _mapping(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _sequence(v: Any) -> Sequence[Any]:
    return v if isinstance(v, list | tuple) else ()


def _text(v: Any) -> str:
    if v is None:
        return ""
    return v if isinstance(v, str) else fmt_value(v)


def _or_undefined(v: Any) -> str:
    return _text(v) or UNDEFINED


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "check"


# -- building the view ----------------------------------------------------------------------


def build_view(results: Mapping[str, Any]) -> ReportView:
    """The display model of the report (public for tests and other renderers)."""
    r = _mapping(results)
    sub = _mapping(r.get("submission"))
    notes: list[str] = []
    version = r.get("schema_version")
    if version != RESULTS_SCHEMA_VERSION:
        notes.append(
            f"This document has schema version {fmt_value(version)}; this report knows "
            f"version {RESULTS_SCHEMA_VERSION}, so some sections may be missing or incomplete."
        )
    status = _or_undefined(r.get("status"))
    system = _or_undefined(sub.get("id"))
    version_text = _text(sub.get("version"))
    title = f"{system} {version_text}".strip()
    header = (
        Fact("System", system),
        Fact("Version", _or_undefined(sub.get("version"))),
        Fact("Vendor", _or_undefined(sub.get("vendor"))),
        Fact("Kind", _or_undefined(sub.get("kind"))),
        Fact("Trial", _or_undefined(r.get("trial_id")), code=True),
        Fact("Date", _date(r.get("created_at"))),
        Fact("Status", status),
        Fact("Trial wall time", _seconds(r.get("wall_s"))),
    )
    raw_findings = r.get("findings")
    findings = (
        _findings(_sequence(raw_findings), r) if isinstance(raw_findings, list | tuple) else None
    )
    raw_checks = r.get("checks")
    checks = (
        _checks(_sequence(raw_checks), findings or ())
        if isinstance(raw_checks, list | tuple)
        else None
    )
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
        vendor=_or_undefined(sub.get("vendor")),
        header=header,
        intended_use=_text(sub.get("intended_use")),
        status=status,
        incomplete=status != "complete",
        notes=tuple(notes),
        gate=_gate(r.get("gate")),
        checks=checks,
        findings=findings,
        severity_counts=counts,
        principles=_principles(r.get("principles")),
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


def _gate(raw: Any) -> GateView | None:
    if not isinstance(raw, Mapping):
        return None
    decision = _text(raw.get("decision"))
    label, headline = _GATE.get(
        decision,
        (decision.upper() or UNDEFINED.upper(), "The decision is not one this report knows."),
    )
    return GateView(
        decision=decision if decision in _GATE else "unknown",
        label=label,
        headline=headline,
        reasons=tuple(_reason(_text(x)) for x in _sequence(raw.get("reasons"))),
        policy=_or_undefined(raw.get("policy")),
    )


def _reason(text: str) -> Reason:
    head, sep, rest = text.partition(": ")
    if sep and head in {s.value for s in Severity}:
        return Reason(head, rest)
    return Reason(None, text)


def _severity(raw: Any) -> tuple[str, str, int]:
    """CSS key, label and rank (-1 when unknown) of a severity."""
    text = _text(raw)
    try:
        s = Severity(text)
    except ValueError:
        return "unknown", (text.upper() or UNDEFINED.upper()), -1
    return s.value, s.value.upper(), s.rank


def _principle_title(raw: Any) -> str:
    text = _text(raw)
    try:
        return Principle(text).display_name
    except ValueError:
        return text or UNDEFINED


def _nist_title(raw: Any) -> str:
    text = _text(raw)
    try:
        return NistFunction(text).value.capitalize()
    except ValueError:
        return text or UNDEFINED


def _findings(raw: Sequence[Any], results: Mapping[str, Any]) -> tuple[FindingView, ...]:
    trial_command = _command(results)
    ranked: list[tuple[int, int, FindingView]] = []
    for i, item in enumerate(raw):
        f = _mapping(item)
        key, label, rank = _severity(f.get("severity"))
        ranked.append(
            (
                -rank,
                i,
                FindingView(
                    id=_or_undefined(f.get("id")),
                    check=_or_undefined(f.get("check")),
                    check_anchor=None,
                    title=_or_undefined(f.get("title")),
                    severity=key,
                    severity_label=label,
                    severity_reason=_text(f.get("severity_reason")),
                    description=_text(f.get("description")),
                    principle=_principle_title(f.get("principle")),
                    nist=_nist_title(f.get("nist")),
                    atlas=tuple(
                        Tag(t, ATLAS_NAMES.get(t)) for t in map(_text, _sequence(f.get("atlas")))
                    ),
                    eu_ai_act=tuple(
                        Tag(a, EU_AI_ACT_ARTICLES.get(a))
                        for a in map(_text, _sequence(f.get("eu_ai_act")))
                    ),
                    evidence=_evidence(f.get("evidence"), trial_command),
                ),
            )
        )
    ranked.sort(key=lambda t: (t[0], t[1]))
    return tuple(v for _, _, v in ranked)


def _evidence(raw: Any, trial_command: str) -> EvidenceView:
    e = _mapping(raw)
    metrics = _mapping(e.get("metrics"))
    metric_table = (
        Table(
            "Evidence metrics",
            ("Name", "Value"),
            tuple((str(k), fmt_value(v)) for k, v in metrics.items()),
            frozenset({1}),
        )
        if metrics
        else None
    )
    examples = [_mapping(x) for x in _sequence(e.get("examples"))]
    shown = examples[:MAX_EXAMPLES]
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
    note = (
        f"Showing {len(shown)} of {len(examples)} examples." if len(examples) > len(shown) else ""
    )
    return EvidenceView(
        metrics=metric_table,
        files=tuple(_text(x) for x in _sequence(e.get("files"))),
        seed=fmt_value(e.get("seed")),
        reproduce=_text(e.get("reproduce")) or trial_command,
        examples=example_table,
        examples_note=note,
    )


def _checks(raw: Sequence[Any], findings: Sequence[FindingView]) -> tuple[CheckView, ...]:
    views: list[CheckView] = []
    used: set[str] = set()
    for i, item in enumerate(raw):
        c = _mapping(item)
        cid = _or_undefined(c.get("id"))
        anchor = f"check-{_slug(cid)}"
        if anchor in used:
            anchor = f"{anchor}-{i + 1}"
        used.add(anchor)
        status = _text(c.get("status"))
        metrics = _mapping(c.get("metrics"))
        ids = {_text(x) for x in _sequence(c.get("findings"))}
        # ``findings`` is sorted worst first, so the first of a check's own is its worst.
        own = [f for f in findings if f.id in ids] or [f for f in findings if f.check == cid]
        summary = tuple((str(name), fmt_metric(m)) for name, m in metrics.items())
        details = _mapping(c.get("details"))
        key = f"c{i + 1}"
        views.append(
            CheckView(
                id=cid,
                anchor=anchor,
                status=status if status in _CHECK_STATUS else "unknown",
                status_label=_CHECK_STATUS.get(status, status or UNDEFINED),
                message=_text(c.get("message")),
                wall=_seconds(c.get("wall_s")),
                summary_metrics=summary[:MAX_SUMMARY_METRICS],
                more_metrics=max(len(summary) - MAX_SUMMARY_METRICS, 0),
                finding_count=max(len(ids), len(own)),
                worst=own[0] if own else None,
                metrics=_metric_table(cid, metrics),
                plots=_plots(key, metrics, details),
                tables=_detail_tables(cid, details),
            )
        )
    return tuple(views)


def _metric_table(cid: str, metrics: Mapping[str, Any]) -> Table | None:
    if not metrics:
        return None
    rows = []
    for name, raw in metrics.items():
        if isinstance(raw, Mapping):
            value, interval = _metric_parts(raw)
            rows.append((str(name), value, interval or "not estimated", _text(raw.get("unit"))))
        else:
            rows.append((str(name), fmt_value(raw), "not estimated", ""))
    return Table(
        f"Metrics of {cid}",
        ("Metric", "Value", "95 % interval", "Unit"),
        tuple(rows),
        frozenset({1, 2}),
    )


def _plots(key: str, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> tuple[Plot, ...]:
    from . import plots  # matplotlib loads only when a report is drawn, not on every import

    found: list[Plot] = []
    task = details.get("task")
    labels = [_text(x) for x in _sequence(details.get("labels"))]
    if task == "classification" and labels:
        found.extend(_classification_plots(key, labels, metrics, details))
    quantiles = _mapping(details.get("residual_quantiles"))
    if quantiles:
        q = {str(k): _as_float(v) for k, v in quantiles.items()}
        unit = _text(_mapping(metrics.get("mae")).get("unit"))
        found.append(
            Plot(
                "Residual quantiles",
                Markup(plots.residual_chart(f"{key}-residuals", q, unit)),
                Table(
                    "Residual quantiles (predicted minus true)",
                    ("Quantile", "Residual"),
                    tuple((k, fmt_value(v)) for k, v in quantiles.items()),
                    frozenset({1}),
                ),
            )
        )
    attacks = _campaign_groups(details)
    if attacks:
        series: dict[str, list[tuple[float, float | None, float | None, float | None]]] = {}
        for g in attacks:
            change = _mapping(g.get("change_pct"))
            series.setdefault(_text(g.get("attack")), []).append(
                (
                    _as_float(g.get("intensity")) or 0.0,
                    _as_float(change.get("value")),
                    _as_float(change.get("ci_low")),
                    _as_float(change.get("ci_high")),
                )
            )
        found.append(
            Plot("Impact against intensity", Markup(plots.impact_chart(f"{key}-impact", series)))
        )
    outcomes = _mapping(details.get("outcomes"))
    probes = _mapping(details.get("probes"))
    if outcomes and all(isinstance(v, Mapping) for v in outcomes.values()):
        table = plots.probe_outcomes(outcomes)
        found.append(
            Plot(
                "Probe outcomes",
                Markup(plots.probe_chart(f"{key}-probes", table)),
                Table(
                    "Probe outcomes by kind (counts)",
                    ("Probe kind", "Sent", *(label for _, label, _ in plots.PROBE_OUTCOMES)),
                    tuple(
                        (
                            kind.replace("_", " "),
                            str(row["sent"]),
                            *(str(row[name]) for name, _, _ in plots.PROBE_OUTCOMES),
                        )
                        for kind, row in table.items()
                    ),
                    frozenset({1, 2, 3, 4, 5}),
                ),
            )
        )
    elif probes and all(_as_float(v) is not None for v in probes.values()):
        sent = {str(k): int(v) for k, v in probes.items()}
        found.append(
            Plot(
                "Probes sent",
                Markup(plots.probe_count_chart(f"{key}-probes", sent)),
                Table(
                    "Probes sent by kind",
                    ("Probe kind", "Sent"),
                    tuple((k.replace("_", " "), str(v)) for k, v in sent.items()),
                    frozenset({1}),
                ),
            )
        )
    return tuple(found)


def _classification_plots(
    key: str, labels: list[str], metrics: Mapping[str, Any], details: Mapping[str, Any]
) -> list[Plot]:
    from . import plots

    found: list[Plot] = []
    recall = [_mapping(metrics.get(f"recall[{label}]")) for label in labels]
    if any(recall):
        found.append(
            Plot(
                "Recall per class",
                Markup(
                    plots.recall_chart(
                        f"{key}-recall",
                        labels,
                        [_as_float(m.get("value")) for m in recall],
                        [_as_float(m.get("ci_low")) for m in recall],
                        [_as_float(m.get("ci_high")) for m in recall],
                    )
                ),
            )
        )
    matrix = [_sequence(row) for row in _sequence(details.get("confusion"))]
    k = len(labels)
    if len(matrix) == k and all(
        len(row) == k and all(_as_float(c) is not None for c in row) for row in matrix
    ):
        counts = [[int(c) for c in row] for row in matrix]
        found.append(
            Plot(
                "Confusion matrix",
                Markup(plots.confusion_heatmap(f"{key}-confusion", labels, counts)),
                Table(
                    "Confusion matrix: rows are the true class, columns the predicted class",
                    ("True \\ predicted", *labels),
                    tuple(
                        (label, *(str(c) for c in row))
                        for label, row in zip(labels, counts, strict=True)
                    ),
                    frozenset(range(1, k + 1)),
                ),
            )
        )
    return found


def _campaign_groups(details: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A red-team campaign's per-attack groups, when ``details`` holds them."""
    groups = [_mapping(g) for g in _sequence(details.get("groups")) if isinstance(g, Mapping)]
    return groups if groups and all("change_pct" in g for g in groups) else []


def _detail_tables(cid: str, details: Mapping[str, Any]) -> tuple[Table, ...]:
    tables: list[Table] = []
    attacks = _campaign_groups(details)
    shown = _DRAWN | _DEDICATED | ({"groups"} if attacks else set())
    rest = [(k, v) for k, v in details.items() if k not in shown]
    if rest:
        tables.append(
            Table(
                f"Details of {cid}",
                ("Name", "Value"),
                tuple((str(k), fmt_value(v)) for k, v in rest),
            )
        )
    for base, raw in _mapping(details.get("comparisons")).items():
        table = _mapping(raw)
        rows: list[tuple[str, ...]] = []
        for kpi, row in table.items():
            if not isinstance(row, Mapping):
                continue
            change = fmt_value(row.get("change"))
            low, high = row.get("ci_low"), row.get("ci_high")
            interval = f"[{fmt_value(low)}, {fmt_value(high)}]" if low is not None else ""
            pct = row.get("change_pct")
            rows.append(
                (
                    str(kpi),
                    fmt_value(row.get("submission")),
                    fmt_value(row.get(base)),
                    f"{change} {interval}".strip(),
                    "" if pct is None else f"{fmt_value(pct)} %",
                )
            )
        tables.append(
            Table(
                f"Submission against {base}: means over {fmt_value(table.get('pairs'))} paired "
                "runs; change = submission minus baseline [95 % interval]; negative waiting "
                "and time loss are gains",
                ("KPI", "Submission", base, "Change", "Change %"),
                tuple(rows),
                frozenset({1, 2, 3, 4}),
            )
        )
    if attacks:
        rows = []
        for g in attacks:
            impact = _mapping(g.get("change_pct"))
            detected = _mapping(g.get("detection_rate"))
            cost = _mapping(g.get("cost"))
            rows.append(
                (
                    f"{_text(g.get('attack'))} on {_text(g.get('scenario'))}",
                    fmt_value(g.get("intensity")),
                    f"{fmt_value(impact.get('value'))} [{fmt_value(impact.get('ci_low'))}, "
                    f"{fmt_value(impact.get('ci_high'))}]",
                    fmt_value(g.get("success_rate")),
                    fmt_value(detected.get("guard")),
                    fmt_value(detected.get("interop")),
                    f"{fmt_value(cost.get('sensors'))} sensors, "
                    f"{fmt_value(cost.get('magnitude'))} {_text(cost.get('unit'))}",
                )
            )
        tables.append(
            Table(
                "Red-team campaign: each attack against the same seeds unattacked; change of "
                "mean time loss in % [95 % interval over seeds]",
                ("Attack", "Intensity", "Change %", "Success", "Guard", "Interop", "Cost"),
                tuple(rows),
                frozenset({1, 2, 3, 4, 5}),
            )
        )
    for label, raw in _mapping(details.get("by_label")).items():
        one = _mapping(raw)
        groups = _mapping(one.get("groups"))
        ratios = _mapping(one.get("ratios"))
        rows = [
            (str(g), *(fmt_value(_mapping(v).get(r)) for r in _GROUP_RATES))
            for g, v in groups.items()
        ]
        rows.append(("ratio min/max", "", *(fmt_value(ratios.get(r)) for r in _GROUP_RATES[1:])))
        tables.append(
            Table(
                f"Fairness for {label!r} (one against the rest) by "
                f"{' x '.join(map(str, _sequence(one.get('sensitive'))))}: rates per group; "
                "undefined where a group has no case to rate",
                ("Group", *_GROUP_RATES),
                tuple(rows),
                frozenset(range(1, len(_GROUP_RATES) + 1)),
            )
        )
        warnings = tuple((_text(w),) for w in _sequence(one.get("warnings")))
        if warnings:
            tables.append(Table(f"Fairness warnings for {label!r}", ("Warning",), warnings))
    trigger = _mapping(details.get("trigger"))
    if trigger:
        effects = _mapping(trigger.get("effects"))
        tables.append(
            Table(
                f"Trigger candidate towards {_text(trigger.get('target'))!r}: median jump of the "
                f"readings at {fmt_value(trigger.get('rows'))} flagged rows after an unflagged "
                "one",
                ("Reading", "Jump", "Robust spreads"),
                tuple(
                    (str(k), fmt_value(v), fmt_value(effects.get(k)))
                    for k, v in _mapping(trigger.get("offsets")).items()
                ),
                frozenset({1, 2}),
            )
        )
    sanitising = _mapping(details.get("sanitising"))
    if "accuracy_before" in sanitising:
        tables.append(
            Table(
                f"Before and after sanitising ({fmt_value(sanitising.get('rows_dropped'))} "
                f"flagged rows dropped): {_text(sanitising.get('model'))}, scored on "
                f"{fmt_value(sanitising.get('holdout_rows'))} holdout rows; attack success = "
                "share of other-label holdout rows the trigger candidate turns into its target",
                ("Measure", "Before", "After (flagged dropped)", "Robust (down-weighted)"),
                tuple(
                    (name, *(fmt_value(sanitising.get(f"{key}_{when}")) for when in _SANITISED))
                    for name, key in _SANITISING_MEASURES
                ),
                frozenset({1, 2, 3}),
            )
        )
    elif sanitising:
        tables.append(Table("Sanitising", ("Note",), ((_text(sanitising.get("note")),),)))
    rejected = _mapping(details.get("rejected_by_feature"))
    if rejected:
        tables.append(
            Table(
                "Holdout rows rejected, by feature",
                ("Feature", "Rows rejected"),
                tuple((str(k), fmt_value(v)) for k, v in rejected.items()),
                frozenset({1}),
            )
        )
    return tuple(tables)


def _principles(raw: Any) -> tuple[PrincipleView, ...] | None:
    if not isinstance(raw, Mapping):
        return None
    rows: list[PrincipleView] = []
    known = [p.value for p in Principle]
    for key in [*known, *(k for k in raw if k not in known)]:
        entry = _mapping(raw.get(key))
        status = _text(entry.get("status")) or "not_tested"
        rows.append(
            PrincipleView(
                title=_principle_title(key),
                status=status if status in _PRINCIPLE_STATUS else "unknown",
                status_label=_PRINCIPLE_STATUS.get(status, status),
                findings=fmt_value(entry.get("findings")),
            )
        )
    return tuple(rows)


def _command(r: Mapping[str, Any]) -> str:
    """The command that reruns the trial: as recorded, else rebuilt from its parts."""
    recorded = r.get("command")
    if isinstance(recorded, str) and recorded:
        return recorded
    path = _text(_mapping(r.get("submission")).get("path")) or "<submission>"
    parts = ["cityx", "trial", path, "--seed", _text(r.get("seed")) or "<seed>"]
    policy_path = _text(_mapping(r.get("policy")).get("path"))
    if policy_path:
        parts += ["--policy", policy_path]
    return shlex.join(parts)


def _repro(r: Mapping[str, Any]) -> ReproView:
    sub = _mapping(r.get("submission"))
    facts = (
        Fact("Seed", fmt_value(r.get("seed"))),
        Fact("Submission SHA-256", _or_undefined(sub.get("sha256")), code=True),
        Fact("Submission path", _or_undefined(sub.get("path")), code=True),
        Fact("Results schema version", fmt_value(r.get("schema_version"))),
    )
    policy = _mapping(r.get("policy"))
    policy_table = (
        Table(
            "Policy",
            ("Field", "Value"),
            tuple((str(k), fmt_value(v)) for k, v in policy.items()),
        )
        if policy
        else None
    )
    data = _mapping(r.get("data"))
    data_rows = []
    for name, raw in data.items():
        d = _mapping(raw)
        data_rows.append(
            (
                str(name),
                _or_undefined(d.get("path")),
                _or_undefined(d.get("sha256")),
                fmt_value(d.get("rows")),
                fmt_value(d.get("rejected_rows")),
            )
        )
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
    versions = _mapping(r.get("versions"))
    version_table = (
        Table(
            "Software versions",
            ("Component", "Version"),
            tuple((str(k), fmt_value(v)) for k, v in versions.items()),
        )
        if versions
        else None
    )
    raw_plugins = r.get("plugins")
    plugins = (
        tuple(_text(p) for p in raw_plugins) if isinstance(raw_plugins, list | tuple) else None
    )
    return ReproView(facts, _command(r), policy_table, data_table, version_table, plugins)


__all__ = ["RESULTS_SCHEMA_VERSION", "build_view", "fmt_metric", "render_html", "write_report"]
