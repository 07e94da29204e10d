"""Requirement-by-requirement mapping: each framework's requirements against a trial's evidence.

A *framework* is a list of *requirements* read from a data file shipped in
the package (``frameworks/*.toml``), versioned and pinned to its source:
AI Verify's process checklist (``aiverify``), NIST AI RMF 1.0 (``nist``),
the EU AI Act's high-risk requirements (``euai``) and the MITRE ATLAS
techniques (``atlas``). Each requirement names the evidence that bears on
it: *checks* (their recorded results), *checklist* items (their answers)
and *artifacts* (sections of ``results.json`` or files of the trial folder).

Words used here:

- *evidence item*: one thing that bears on a requirement: a check's result
  (with its metrics and findings), an artifact, or a checklist answer. A
  checklist answer given by a person is an *attestation*, labelled as such
  and never a measurement; one answered from the trial's own data is
  labelled "checklist answer from the trial".
- *named attestation*: an attestation whose answer carries its author.
- *kind* of a requirement: ``technical`` (a measurement can settle it),
  ``organisational`` (only people can: most of Art. 9 and NIST's Govern) or
  ``mixed`` (both parts are needed).
- *process check*: one of AI Verify's process checks; a framework file with
  ``process_checks = true`` (AI Verify's) gives each requirement its own
  checklist item, ``aiverify.<id>`` (see :mod:`.checklist`), for the vendor's
  attestation, before the items and evidence the file names;
- *partial*: the requirement's data says our evidence can only ever cover
  part of it (``covers`` says which part, ``gap`` what is left).

Statuses, earned in this order:

- ``not assessed``: no evidence at all; coverage is never guessed;
- ``not met``: a check failed, a tested ATLAS technique produced a finding
  at the policy's conditional level or worse, or an attestation says "no";
- ``undetermined``: a check looked and could not decide;
- ``met``: for a technical requirement, a check passed (or, where it names
  no check, its artifacts are present); for an organisational one, a named
  attestation says "yes" or "n/a"; for a mixed one, both; never when the
  requirement is partial or has a gap, one of its checklist items is
  unanswered or its answer names no author, or one of its artifacts is
  absent;
- ``partly met``: some evidence, not enough for ``met``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any

from cityx.core import DataError, InputError, Severity, TrialResults

from .checklist import AIVERIFY_MAPPING, PROCESS_CHECK_PREFIX, Answer
from .report import fmt_metric

FRAMEWORKS = ("aiverify", "nist", "euai", "atlas")
_FILES = {
    "aiverify": AIVERIFY_MAPPING,
    "nist": "nist-ai-rmf.v1.toml",
    "euai": "eu-ai-act.v1.toml",
    "atlas": "atlas.v1.toml",
}
_KINDS = ("technical", "organisational", "mixed")
_MEASURED = ("passed", "failed", "undetermined")
_MAX_METRICS = 3


class Status(StrEnum):
    MET = "met"
    PARTLY_MET = "partly met"
    NOT_MET = "not met"
    UNDETERMINED = "undetermined"
    NOT_ASSESSED = "not assessed"


class Outcome(StrEnum):
    """What one evidence item says about its requirement."""

    SUPPORTS = "supports"
    CONTRADICTS = "contradicts"
    UNDECIDED = "undecided"


@dataclass(frozen=True, slots=True)
class Requirement:
    framework: str
    id: str
    group: str
    title: str
    text: str
    kind: str
    checks: tuple[str, ...] = ()
    checklist: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    partial: bool = False
    covers: str = ""
    gap: str = ""


@dataclass(frozen=True, slots=True)
class Framework:
    id: str
    version: str
    title: str
    source: str
    source_version: str
    requirements: tuple[Requirement, ...]

    @property
    def pinned(self) -> str:
        """How the report cites the mapping: ours, then its source."""
        return f"cityx mapping {self.id} v{self.version}; {self.source} ({self.source_version})"


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One piece of evidence; ``kind`` is check, artifact, attestation or trial answer."""

    kind: str
    ref: str
    detail: str
    outcome: Outcome
    author: str = ""
    threshold: str = ""

    @property
    def label(self) -> str:
        return {
            "check": "check",
            "artifact": "artifact",
            "attestation": "attestation (checklist answer)",
            "trial answer": "checklist answer from the trial",
            "finding": "finding",
            "decision log": "decision log (verified)",
        }.get(self.kind, self.kind)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "ref": self.ref,
            "detail": self.detail,
            "outcome": self.outcome.value,
            "author": self.author or None,
            "threshold": self.threshold or None,
        }


@dataclass(frozen=True, slots=True)
class RequirementRow:
    requirement: Requirement
    status: Status
    evidence: tuple[EvidenceItem, ...]
    covers: str
    threshold: str
    missing: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        r = self.requirement
        return {
            "id": r.id,
            "group": r.group,
            "title": r.title,
            "text": r.text,
            "kind": r.kind,
            "status": self.status.value,
            "evidence": [e.to_json() for e in self.evidence],
            "covers": self.covers or None,
            "threshold": self.threshold or None,
            "missing": list(self.missing),
        }


@dataclass(frozen=True, slots=True)
class FrameworkAssessment:
    framework: Framework
    rows: tuple[RequirementRow, ...]

    def counts(self) -> dict[str, int]:
        found = {s.value: 0 for s in Status}
        for row in self.rows:
            found[row.status.value] += 1
        return found

    def groups(self) -> list[tuple[str, Status, int]]:
        """Each group (principle, function, article) with its worst status and row count."""
        worst_first = (
            Status.NOT_MET,
            Status.UNDETERMINED,
            Status.PARTLY_MET,
            Status.NOT_ASSESSED,
            Status.MET,
        )
        out: dict[str, list[Status]] = {}
        for row in self.rows:
            out.setdefault(row.requirement.group, []).append(row.status)
        return [
            (group, next(s for s in worst_first if s in statuses), len(statuses))
            for group, statuses in out.items()
        ]

    def to_json(self) -> dict[str, Any]:
        f = self.framework
        return {
            "framework": f.id,
            "mapping_version": f.version,
            "title": f.title,
            "source": f.source,
            "source_version": f.source_version,
            "status_counts": self.counts(),
            "requirements": [row.to_json() for row in self.rows],
        }


@dataclass(frozen=True, slots=True)
class ExternalCheck:
    """Evidence measured outside the trial folder, named like a check (``oversight.drill``).

    ``kind`` is ``check`` or ``decision log``; ``status`` is a check's status
    (passed, failed, undetermined, or skipped when the run did not exercise
    what it names); ``ref`` says where it comes from (an oversight run).
    """

    id: str
    kind: str
    ref: str
    status: str
    detail: str
    threshold: str = ""


@dataclass(frozen=True, slots=True)
class TrialEvidence:
    """What a trial offers as evidence, gathered once for every framework.

    ``files`` maps a file of the trial folder to its SHA-256; ``limits`` maps
    a check id to the policy's thresholds for it, as text; ``external``
    holds evidence gathered outside the trial folder (runs under oversight).
    """

    results: TrialResults
    answers: tuple[Answer, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    conditional_at: Severity = Severity.MEDIUM
    external: tuple[ExternalCheck, ...] = ()


def load_framework(name: str) -> Framework:
    """The shipped mapping ``name`` (one of :data:`FRAMEWORKS`)."""
    if name not in _FILES:
        raise InputError(
            f"unknown framework {name!r}",
            hint=f"use one of {', '.join(FRAMEWORKS)} or all",
        )
    where = f"cityx/governance/frameworks/{_FILES[name]}"
    text = (resources.files("cityx.governance") / "frameworks" / _FILES[name]).read_text("utf-8")
    data = tomllib.loads(text)
    rows = []
    for i, raw in enumerate(data.get("requirements", [])):
        kind = str(raw.get("kind", ""))
        if kind not in _KINDS:
            raise DataError(f"kind {kind!r} is not one of {_KINDS}", where=f"{where}: [{i}]")
        rows.append(
            Requirement(
                framework=name,
                id=str(raw["id"]),
                group=str(raw["group"]),
                title=str(raw["title"]),
                text=str(raw["text"]),
                kind=kind,
                checks=tuple(raw.get("checks", ())),
                checklist=(
                    (f"{PROCESS_CHECK_PREFIX}{raw['id']}",) if data.get("process_checks") else ()
                )
                + tuple(raw.get("checklist", ())),
                artifacts=tuple(raw.get("artifacts", ())),
                partial=bool(raw.get("partial", False)),
                covers=str(raw.get("covers", "")),
                gap=str(raw.get("gap", "")),
            )
        )
    return Framework(
        id=str(data["id"]),
        version=str(data["version"]),
        title=str(data["title"]),
        source=str(data["source"]),
        source_version=str(data["source_version"]),
        requirements=tuple(rows),
    )


def frameworks(selection: str = "all") -> tuple[Framework, ...]:
    """``all`` or one framework's name; an unknown name is an InputError."""
    names = FRAMEWORKS if selection == "all" else (selection,)
    return tuple(load_framework(n) for n in names)


def assess(framework: Framework, evidence: TrialEvidence) -> FrameworkAssessment:
    """Every requirement of ``framework`` with its evidence, status and what is missing."""
    return FrameworkAssessment(
        framework, tuple(assess_requirement(r, evidence) for r in framework.requirements)
    )


def assess_requirement(req: Requirement, ev: TrialEvidence) -> RequirementRow:
    items: list[EvidenceItem] = []
    missing: list[str] = []
    thresholds: list[str] = []
    ran: list[str] = []
    for check_id in req.checks:
        outside = [e for e in ev.external if e.id == check_id]
        if outside:
            _external_items(check_id, outside, items, missing, ran)
            continue
        record = ev.results.check(check_id)
        if record is None:
            continue
        if record.status not in _MEASURED:
            missing.append(f"check {check_id} did not measure ({record.status or 'no status'})")
            continue
        ran.append(check_id)
        limit = ev.limits.get(check_id, "")
        if limit:
            thresholds.append(f"{check_id}: {limit}")
        outcome = {
            "passed": Outcome.SUPPORTS,
            "failed": Outcome.CONTRADICTS,
        }.get(record.status or "", Outcome.UNDECIDED)
        metrics = "; ".join(
            f"{name} {fmt_metric(m)}" for name, m in list(record.metrics.items())[:_MAX_METRICS]
        )
        found = f"; {len(record.findings)} finding(s)" if record.findings else ""
        items.append(
            EvidenceItem(
                "check",
                check_id,
                f"{record.status}{found}" + (f"; {metrics}" if metrics else ""),
                outcome,
                threshold=limit,
            )
        )
    if req.checks and not ran and not missing:
        missing.append(f"none of the checks {', '.join(req.checks)} ran in this trial")
    if req.framework == "atlas":
        items += _technique_findings(req.id, ev)
    for name in req.artifacts:
        item = _artifact(name, ev)
        if item is None:
            missing.append(f"artifact {name} is absent")
        else:
            items.append(item)
    answers = {a.id: a for a in ev.answers}
    for item_id in req.checklist:
        answer = answers.get(item_id)
        if answer is None or not answer.answer:
            missing.append(f"checklist item {item_id} is unanswered")
            continue
        outcome = Outcome.CONTRADICTS if answer.answer == "no" else Outcome.SUPPORTS
        if answer.source == "trial":
            detail = f"{answer.answer}: {answer.evidence}".strip(": ")
            items.append(EvidenceItem("trial answer", item_id, detail, outcome))
            continue
        if not answer.author:
            missing.append(f"checklist item {item_id}: the answer names no author")
        detail = answer.answer + (f": {answer.comment}" if answer.comment else "")
        items.append(EvidenceItem("attestation", item_id, detail, outcome, author=answer.author))
    # An open or unsigned checklist item, or an artifact the trial lacks, leaves the row
    # short of what it names as its evidence.
    incomplete = any(m.startswith(("checklist item", "artifact ")) for m in missing)
    status = _status(req, items, complete=not incomplete)
    if req.gap:
        missing.append(req.gap)
    if status is Status.PARTLY_MET and req.partial and req.covers:
        missing.append(f"the evidence covers only: {req.covers}")
    return RequirementRow(
        req,
        status,
        tuple(items),
        req.covers if items else "",
        "; ".join(thresholds),
        tuple(dict.fromkeys(missing)),
    )


def _status(req: Requirement, items: Sequence[EvidenceItem], *, complete: bool) -> Status:
    if not items:
        return Status.NOT_ASSESSED
    if any(i.outcome is Outcome.CONTRADICTS for i in items):
        return Status.NOT_MET
    if any(i.outcome is Outcome.UNDECIDED for i in items):
        return Status.UNDETERMINED
    measured = any(i.kind in ("check", "decision log") for i in items)
    recorded = any(i.kind in ("artifact", "trial answer") for i in items)
    named = any(i.kind == "attestation" and i.author for i in items)
    if req.kind == "technical":
        enough = measured or (not req.checks and recorded)
    elif req.kind == "organisational":
        enough = named
    else:
        enough = named and (measured or recorded)
    # A requirement with a known gap, or a checklist item still open or unsigned, is not
    # wholly covered by what we hold, however good that is.
    whole = complete and not req.partial and not req.gap
    return Status.MET if enough and whole else Status.PARTLY_MET


def _external_items(
    check_id: str,
    found: Sequence[ExternalCheck],
    items: list[EvidenceItem],
    missing: list[str],
    ran: list[str],
) -> None:
    for e in found:
        if e.status not in _MEASURED:
            missing.append(f"{check_id}: {e.ref} {e.detail or 'is not evidence for it'}")
            continue
        ran.append(check_id)
        outcome = {"passed": Outcome.SUPPORTS, "failed": Outcome.CONTRADICTS}.get(
            e.status, Outcome.UNDECIDED
        )
        items.append(
            EvidenceItem(e.kind, f"{check_id} ({e.ref})", e.detail, outcome, "", e.threshold)
        )


def _technique_findings(technique: str, ev: TrialEvidence) -> list[EvidenceItem]:
    """Findings tagged with the technique (or one of its sub-techniques)."""
    items = []
    for f in ev.results.findings or ():
        if not any(t == technique or t.startswith(technique + ".") for t in f.atlas):
            continue
        try:
            rank = Severity(f.severity or "").rank
        except ValueError:
            rank = None
        if rank is None:
            outcome = Outcome.UNDECIDED
        elif rank >= ev.conditional_at.rank:
            outcome = Outcome.CONTRADICTS
        else:
            outcome = Outcome.SUPPORTS
        items.append(
            EvidenceItem(
                "finding", f.id or "?", f"{f.severity or 'unknown'}: {f.title or ''}", outcome
            )
        )
    return items


def _artifact(name: str, ev: TrialEvidence) -> EvidenceItem | None:
    if name in ev.files:
        return EvidenceItem("artifact", name, f"sha256 {ev.files[name]}", Outcome.SUPPORTS)
    if "." in name:
        return None  # a file the trial folder does not have
    value = getattr(ev.results, name, None)
    if value in (None, "", (), {}):
        return None
    detail = {
        "policy": lambda v: f"{v.id} v{v.version}, sha256 {v.sha256}",
        "gate": lambda v: f"decision {v.decision}",
        "findings": lambda v: f"{len(v)} finding(s)",
        "checks": lambda v: f"{len(v)} check(s)",
        "submission": lambda v: f"{v.id} {v.version} by {v.vendor}, sha256 {v.sha256}",
        "data": lambda v: ", ".join(f"{k} sha256 {d.sha256}" for k, d in v.items()),
        "plugins": lambda v: f"{len(v)} plugin(s) recorded",
        "versions": lambda v: ", ".join(f"{k} {x}" for k, x in list(v.items())[:4]),
    }.get(name, lambda v: str(v))(value)
    return EvidenceItem("artifact", f"results.json: {name}", detail, Outcome.SUPPORTS)


__all__ = [
    "FRAMEWORKS",
    "EvidenceItem",
    "ExternalCheck",
    "Framework",
    "FrameworkAssessment",
    "Outcome",
    "Requirement",
    "RequirementRow",
    "Status",
    "TrialEvidence",
    "assess",
    "assess_requirement",
    "frameworks",
    "load_framework",
]
