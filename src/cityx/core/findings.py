"""Findings: what a check tried, what happened, and how bad it is.

A *finding* is one observation worth a reader's attention, with a *severity*
(and the reason for it), *evidence* (numbers, files and the seed to
reproduce it) and taxonomy tags. A *metric* is a measured number with an
optional confidence interval. A *check result* gathers a check's metrics,
findings and typed details (:mod:`cityx.core.details`); a report is a pure
function of check results and the policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from . import lenient
from .details import Details, RawDetails
from .taxonomy import Tags


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {s: i for i, s in enumerate(Severity)}


class CheckStatus(StrEnum):
    """How a check ended: ``passed`` (no finding above low), ``failed`` (a
    medium or worse finding), ``undetermined`` (it ran, but its evidence could not rule
    out what it tests for: no pass, and no fail either; the message says what is open),
    ``error`` (the check itself could not run to the end) or ``skipped`` (it does not
    apply to this submission)."""

    PASSED = "passed"
    FAILED = "failed"
    UNDETERMINED = "undetermined"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Metric:
    """A measured value, with a confidence interval when one was estimated."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        for name in ("value", "ci_low", "ci_high"):
            v = getattr(self, name)
            if v is not None:
                v = float(v)
                # Undefined numbers are None, never NaN, so JSON stays valid.
                object.__setattr__(self, name, None if math.isnan(v) else v)

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "unit": self.unit,
        }

    @classmethod
    def from_json(cls, data: Any) -> Metric:
        """The metric a document records; leniently: a bare number is its value, and
        anything that is not a number is undefined."""
        if not isinstance(data, Mapping):
            return cls(lenient.number(data))
        return cls(
            lenient.number(data.get("value")),
            lenient.number(data.get("ci_low")),
            lenient.number(data.get("ci_high")),
            lenient.text(data.get("unit")) or "",
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    """What backs a finding: numbers, files, and how to reproduce it."""

    metrics: Mapping[str, float | int | str | None] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    seed: int | None = None
    reproduce: str | None = None
    examples: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": dict(self.metrics),
            "files": list(self.files),
            "seed": self.seed,
            "reproduce": self.reproduce,
            "examples": [dict(e) for e in self.examples],
        }

    @classmethod
    def from_json(cls, data: Any) -> Evidence:
        """The evidence a document records; leniently, like :meth:`Metric.from_json`."""
        e = lenient.obj(data)
        metrics = {
            str(k): v if v is None or isinstance(v, str | int | float) else lenient.text(v)
            for k, v in lenient.obj(e.get("metrics")).items()
        }
        return cls(
            metrics=metrics,
            files=lenient.texts(e.get("files")),
            seed=lenient.integer(e.get("seed")),
            reproduce=lenient.text(e.get("reproduce")),
            examples=tuple(x for x in lenient.items(e.get("examples")) if isinstance(x, Mapping)),
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation of a check, with its severity and why.

    ``severity`` is what the evidence supports at least (for a measured
    harm: the class of its interval's favourable end); ``severity_upper``,
    when set above it, is the worst class the evidence cannot rule out (the
    interval's other end). The gap between them is *undetermined*: the gate
    never passes it (:attr:`undetermined`).
    """

    id: str
    check: str
    title: str
    severity: Severity
    severity_reason: str
    tags: Tags
    description: str = ""
    evidence: Evidence = field(default_factory=Evidence)
    severity_upper: Severity | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))
        if self.severity_upper is not None:
            upper = Severity(self.severity_upper)
            # An upper class at or below the supported one adds nothing: keep one spelling.
            object.__setattr__(
                self, "severity_upper", upper if upper.rank > self.severity.rank else None
            )

    @property
    def undetermined(self) -> bool:
        """Whether the evidence leaves a worse class than ``severity`` open."""
        return self.severity_upper is not None

    def to_json(self) -> dict[str, Any]:
        upper = {} if self.severity_upper is None else {"severity_upper": self.severity_upper.value}
        return {
            "id": self.id,
            "check": self.check,
            "title": self.title,
            "severity": self.severity.value,
            **upper,
            "severity_reason": self.severity_reason,
            "description": self.description,
            "principle": self.tags.principle.value,
            "nist": self.tags.nist.value,
            "atlas": list(self.tags.atlas),
            "eu_ai_act": list(self.tags.eu_ai_act),
            "evidence": self.evidence.to_json(),
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Everything one check produced; ``details`` is None when it has none (skipped, error)."""

    check: str
    status: CheckStatus
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    details: Details | None = None
    wall_s: float = 0.0
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CheckStatus(self.status))
        details: Any = self.details
        if isinstance(details, Mapping):
            # A plugin written before details were typed hands over a plain mapping.
            object.__setattr__(self, "details", RawDetails.from_json(details) if details else None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.check,
            "status": self.status.value,
            "message": self.message,
            "metrics": {k: m.to_json() for k, m in self.metrics.items()},
            "findings": [f.id for f in self.findings],
            "details": self.details.to_json() if self.details is not None else {},
            "wall_s": round(self.wall_s, 4),
        }


__all__ = ["CheckResult", "CheckStatus", "Evidence", "Finding", "Metric", "Severity"]
