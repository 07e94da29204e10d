"""The report's view model: what the template shows, as display strings.

Everything here is already formatted (see :mod:`.formatting`); the template
only lays it out and escapes it. :class:`Table`, :class:`Plot` and
:class:`Section` are public: a check builds its own section of the report
from them (see :mod:`.sections`).
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup


@dataclass(frozen=True, slots=True)
class Table:
    """A data table: a caption, column headers and rows of display strings."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Plot:
    """A chart (an inline ``<svg>`` element) and, when it has one, its data as a table."""

    title: str
    svg: Markup
    table: Table | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """What a check adds to its part of the report: plots, tables, and the details keys
    they already show (the report lists the other keys in a name/value table)."""

    plots: tuple[Plot, ...] = ()
    tables: tuple[Table, ...] = ()
    shown: frozenset[str] = frozenset()


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


__all__ = [
    "CheckView",
    "EvidenceView",
    "Fact",
    "FindingView",
    "GateView",
    "Plot",
    "PrincipleView",
    "Reason",
    "ReportView",
    "ReproView",
    "Section",
    "Table",
    "Tag",
]
