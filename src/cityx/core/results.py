"""The results document of a trial, typed and versioned.

A trial's *results document* (``results.json``) records what the trial
ran and found: the submission, the seed, software versions, the policy,
digests of the data, the plugins used, a record of each check, the
findings, the gate decision, the principle summary and the command that
repeats the trial. :class:`TrialResults` is its typed form: the trial
runner builds one and writes :meth:`TrialResults.to_json`; the report and
the exports read one back with :meth:`TrialResults.from_json`.

Words used here:

- *record*: the document's form of a value (a check's result, a finding,
  the gate decision). Unlike the value a check returns, a record keeps
  vocabulary words (a status, a severity, a decision) as the recorded
  text, so a document from an older or newer runner, or one edited by
  hand, still reads; what an unknown word means is the reader's call.
- *absent*: a section the document does not have (``None`` here), because
  the trial stopped before it or an older runner did not record it.
  :meth:`TrialResults.to_json` leaves absent sections out.
- *undefined*: a value recorded as ``null`` (``None`` inside a section).

:meth:`TrialResults.from_json` never raises on a document's content: a
section of the wrong kind is absent, a value of the wrong kind undefined,
unknown keys are ignored, and a check's details that do not fit its
declared type are kept as :class:`~cityx.core.details.RawDetails`.

Schema versions: 1 listed plugins as ``"kind:id@version"`` strings; 2 lists
them as records (kind, id, distribution, distribution_version, version).
This version reads both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from . import lenient
from .checks import Check
from .details import Details, RawDetails
from .findings import CheckResult, Evidence, Finding, Metric
from .registry import PluginKind, Registry

RESULTS_SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
_PLUGIN_TEXT = re.compile(r"^(?P<kind>[^:@]+):(?P<id>[^@]+)@(?P<version>.+)$")


@dataclass(frozen=True, slots=True)
class SubmissionRecord:
    id: str | None = None
    version: str | None = None
    vendor: str | None = None
    kind: str | None = None
    sha256: str | None = None
    intended_use: str | None = None
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "vendor": self.vendor,
            "kind": self.kind,
            "sha256": self.sha256,
            "intended_use": self.intended_use,
            "path": self.path,
        }

    @classmethod
    def from_json(cls, data: Any) -> SubmissionRecord:
        d = lenient.obj(data)
        return cls(**{f.name: lenient.text(d.get(f.name)) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """Which policy decided the gate, and its file's digest."""

    id: str | None = None
    version: str | None = None
    path: str | None = None
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "path": self.path, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Any) -> PolicyRecord:
        d = lenient.obj(data)
        return cls(**{f.name: lenient.text(d.get(f.name)) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class DataRecord:
    """A data set the trial read: where, its SHA-256, and its rows."""

    path: str | None = None
    sha256: str | None = None
    rows: int | None = None
    rejected_rows: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "rows": self.rows,
            "rejected_rows": self.rejected_rows,
        }

    @classmethod
    def from_json(cls, data: Any) -> DataRecord:
        d = lenient.obj(data)
        return cls(
            lenient.text(d.get("path")),
            lenient.text(d.get("sha256")),
            lenient.integer(d.get("rows")),
            lenient.integer(d.get("rejected_rows")),
        )


@dataclass(frozen=True, slots=True)
class PluginRecord:
    """A plugin the trial used, as :meth:`Registry.record` gives it.

    A schema-1 document gives only kind, id and version; its distribution is
    undefined. ``label`` is how people read it: ``check:admission@1``.
    """

    kind: str | None
    id: str
    distribution: str | None = None
    distribution_version: str | None = None
    version: str | None = None

    @property
    def label(self) -> str:
        text = f"{self.kind}:{self.id}" if self.kind else self.id
        return f"{text}@{self.version}" if self.version else text

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "distribution": self.distribution,
            "distribution_version": self.distribution_version,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: Any) -> PluginRecord:
        if isinstance(data, str):  # schema 1
            m = _PLUGIN_TEXT.match(data)
            return cls(m["kind"], m["id"], version=m["version"]) if m else cls(None, data)
        d = lenient.obj(data)
        return cls(
            lenient.text(d.get("kind")),
            lenient.text(d.get("id")) or "",
            lenient.text(d.get("distribution")),
            lenient.text(d.get("distribution_version")),
            lenient.text(d.get("version")),
        )


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """A finding as recorded: :meth:`cityx.core.findings.Finding.to_json`, read back."""

    id: str | None
    check: str | None
    title: str | None
    severity: str | None
    severity_reason: str | None = None
    description: str | None = None
    principle: str | None = None
    nist: str | None = None
    atlas: tuple[str, ...] = ()
    eu_ai_act: tuple[str, ...] = ()
    evidence: Evidence = field(default_factory=Evidence)
    severity_upper: str | None = None  # the worst class its evidence cannot rule out

    @classmethod
    def of(cls, finding: Finding) -> FindingRecord:
        return cls.from_json(finding.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "check": self.check,
            "title": self.title,
            "severity": self.severity,
            **({} if self.severity_upper is None else {"severity_upper": self.severity_upper}),
            "severity_reason": self.severity_reason,
            "description": self.description,
            "principle": self.principle,
            "nist": self.nist,
            "atlas": list(self.atlas),
            "eu_ai_act": list(self.eu_ai_act),
            "evidence": self.evidence.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> FindingRecord:
        d = lenient.obj(data)
        return cls(
            id=lenient.text(d.get("id")),
            check=lenient.text(d.get("check")),
            title=lenient.text(d.get("title")),
            severity=lenient.text(d.get("severity")),
            severity_reason=lenient.text(d.get("severity_reason")),
            description=lenient.text(d.get("description")),
            principle=lenient.text(d.get("principle")),
            nist=lenient.text(d.get("nist")),
            atlas=lenient.texts(d.get("atlas")),
            eu_ai_act=lenient.texts(d.get("eu_ai_act")),
            evidence=Evidence.from_json(d.get("evidence")),
            severity_upper=lenient.text(d.get("severity_upper")),
        )


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """A check's result as recorded; ``findings`` are the ids of its findings."""

    id: str | None
    status: str | None
    message: str | None = None
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    findings: tuple[str, ...] = ()
    details: Details | None = None
    wall_s: float | None = None

    @classmethod
    def of(cls, result: CheckResult) -> CheckRecord:
        return cls(
            result.check,
            result.status.value,
            result.message,
            dict(result.metrics),
            tuple(f.id for f in result.findings),
            result.details,
            round(result.wall_s, 4),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "message": self.message,
            "metrics": {k: m.to_json() for k, m in self.metrics.items()},
            "findings": list(self.findings),
            "details": self.details.to_json() if self.details is not None else {},
            "wall_s": self.wall_s,
        }

    @classmethod
    def from_json(cls, data: Any, details_type: type[Details] | None = None) -> CheckRecord:
        """``details_type`` is the check's declared type; without one, details stay raw."""
        d = lenient.obj(data)
        return cls(
            lenient.text(d.get("id")),
            lenient.text(d.get("status")),
            lenient.text(d.get("message")),
            {str(k): Metric.from_json(v) for k, v in lenient.obj(d.get("metrics")).items()},
            lenient.texts(d.get("findings")),
            _details(d.get("details"), details_type),
            lenient.number(d.get("wall_s")),
        )


def _details(raw: Any, details_type: type[Details] | None) -> Details | None:
    values = lenient.obj(raw)
    if not values:
        return None
    if details_type is not None:
        try:
            return details_type.from_json(values)
        except Exception:  # a plugin's reader may fail in any way; the document still reads
            pass  # an older runner's details, or hand-edited ones: kept as recorded
    return RawDetails.from_json(values)


@dataclass(frozen=True, slots=True)
class GateRecord:
    """The gate decision as recorded: ``pass``, ``conditional`` or ``fail``, and why."""

    decision: str | None
    reasons: tuple[str, ...] = ()
    policy: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "reasons": list(self.reasons), "policy": self.policy}

    @classmethod
    def from_json(cls, data: Any) -> GateRecord:
        d = lenient.obj(data)
        return cls(
            lenient.text(d.get("decision")),
            lenient.texts(d.get("reasons")),
            lenient.text(d.get("policy")),
        )


@dataclass(frozen=True, slots=True)
class PrincipleRecord:
    """One AI Verify principle's status in the trial, and how many findings touch it."""

    status: str | None
    findings: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "findings": self.findings}

    @classmethod
    def from_json(cls, data: Any) -> PrincipleRecord:
        d = lenient.obj(data)
        return cls(lenient.text(d.get("status")), lenient.integer(d.get("findings")))


@dataclass(frozen=True, slots=True)
class TrialResults:
    """A trial's results document; every section may be absent (None)."""

    schema_version: int | None = RESULTS_SCHEMA_VERSION
    trial_id: str | None = None
    created_at: str | None = None
    status: str | None = None
    wall_s: float | None = None
    submission: SubmissionRecord | None = None
    seed: int | None = None
    versions: Mapping[str, str | None] | None = None
    policy: PolicyRecord | None = None
    data: Mapping[str, DataRecord] | None = None
    plugins: tuple[PluginRecord, ...] | None = None
    checks: tuple[CheckRecord, ...] | None = None
    findings: tuple[FindingRecord, ...] | None = None
    gate: GateRecord | None = None
    principles: Mapping[str, PrincipleRecord] | None = None
    command: str | None = None

    def check(self, check_id: str) -> CheckRecord | None:
        """The first record of the check ``check_id``, or None."""
        return next((c for c in self.checks or () if c.id == check_id), None)

    def to_json(self) -> dict[str, Any]:
        """The document, sections in their fixed order; absent ones are left out."""
        sections: dict[str, Any] = {
            "schema_version": self.schema_version,
            "trial_id": self.trial_id,
            "created_at": self.created_at,
            "status": self.status,
            "wall_s": self.wall_s,
            "submission": _json(self.submission),
            "seed": self.seed,
            "versions": None if self.versions is None else dict(self.versions),
            "policy": _json(self.policy),
            "data": _json_map(self.data),
            "plugins": _json_list(self.plugins),
            "checks": _json_list(self.checks),
            "findings": _json_list(self.findings),
            "gate": _json(self.gate),
            "principles": _json_map(self.principles),
            "command": self.command,
        }
        return {k: v for k, v in sections.items() if v is not None}

    @classmethod
    def from_json(cls, data: Any, *, registry: Registry | None = None) -> TrialResults:
        """The typed form of a results document; never raises on its content.

        With a ``registry``, each check's details are read as the type its
        check class declares; without one, or for a check not installed
        here, they stay raw.
        """
        d = lenient.obj(data)

        def section(key: str, kind: Any) -> Any:
            value = d.get(key)
            return value if isinstance(value, kind) else None

        versions = section("versions", Mapping)
        data_sets = section("data", Mapping)
        plugins = section("plugins", list | tuple)
        checks = section("checks", list | tuple)
        findings = section("findings", list | tuple)
        gate = section("gate", Mapping)
        principles = section("principles", Mapping)
        submission = section("submission", Mapping)
        policy = section("policy", Mapping)
        return cls(
            schema_version=lenient.integer(d.get("schema_version")),
            trial_id=lenient.text(d.get("trial_id")),
            created_at=lenient.text(d.get("created_at")),
            status=lenient.text(d.get("status")),
            wall_s=lenient.number(d.get("wall_s")),
            submission=None if submission is None else SubmissionRecord.from_json(submission),
            seed=lenient.integer(d.get("seed")),
            versions=None
            if versions is None
            else {str(k): lenient.text(v) for k, v in versions.items()},
            policy=PolicyRecord.from_json(policy) if policy else None,
            data=None
            if data_sets is None
            else {str(k): DataRecord.from_json(v) for k, v in data_sets.items()},
            plugins=None if plugins is None else tuple(map(PluginRecord.from_json, plugins)),
            checks=None if checks is None else _checks(checks, registry),
            findings=None if findings is None else tuple(map(FindingRecord.from_json, findings)),
            gate=None if gate is None else GateRecord.from_json(gate),
            principles=None
            if principles is None
            else {str(k): PrincipleRecord.from_json(v) for k, v in principles.items()},
            command=lenient.text(d.get("command")),
        )


def _checks(raw: Sequence[Any], registry: Registry | None) -> tuple[CheckRecord, ...]:
    records = []
    for item in raw:
        check_id = lenient.text(lenient.obj(item).get("id"))
        details_type = declared_details(registry, check_id) if registry and check_id else None
        records.append(CheckRecord.from_json(item, details_type))
    return tuple(records)


def declared_details(registry: Registry, check_id: str) -> type[Details] | None:
    """The details type the check ``check_id`` declares, or None when it is not installed."""
    try:
        cls = registry.load(PluginKind.CHECK, check_id)
    except Exception:  # an unknown id, or a broken plugin: its details stay raw
        return None
    if isinstance(cls, type) and issubclass(cls, Check):
        return cls.details_type
    return None


def _json(value: Any) -> Any:
    return None if value is None else value.to_json()


def _json_list(values: Sequence[Any] | None) -> list[Any] | None:
    return None if values is None else [v.to_json() for v in values]


def _json_map(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if values is None else {k: v.to_json() for k, v in values.items()}


__all__ = [
    "READABLE_SCHEMA_VERSIONS",
    "RESULTS_SCHEMA_VERSION",
    "CheckRecord",
    "DataRecord",
    "FindingRecord",
    "GateRecord",
    "PluginRecord",
    "PolicyRecord",
    "PrincipleRecord",
    "SubmissionRecord",
    "TrialResults",
]
