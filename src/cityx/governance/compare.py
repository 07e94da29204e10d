"""Comparing two trials of a system: a vendor's resubmission against the earlier one.

A *comparison* lists:

- findings *fixed* (in the old trial, not the new), *new* (the other way)
  and *unchanged* (in both; a change of severity is shown), matched by the
  finding's id, which names its check and what it measured; an old finding
  whose check did not measure in the new trial is *not re-tested*, never
  fixed;
- each metric (a check's metric, including a controller's KPIs) in either
  trial, with both values, their intervals and a *verdict*: ``changed``
  when the two 95 % intervals do not overlap, ``within noise`` when they
  do, ``undetermined`` when either has no interval, ``added`` or
  ``removed`` when only one trial measured it;
- changes of check status, of the gate decision, of the policy (id,
  version, file digest) and of the checklist answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cityx.core import Metric, TrialResults

from .checklist import Answer
from .report import fmt_metric


@dataclass(frozen=True, slots=True)
class FindingChange:
    id: str
    change: str  # fixed, new, unchanged
    title: str
    severity_old: str | None
    severity_new: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "change": self.change,
            "title": self.title,
            "severity_old": self.severity_old,
            "severity_new": self.severity_new,
        }


@dataclass(frozen=True, slots=True)
class MetricChange:
    check: str
    metric: str
    old: Metric | None
    new: Metric | None
    verdict: str

    @property
    def delta(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        if self.old.value is None or self.new.value is None:
            return None
        return self.new.value - self.old.value

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "metric": self.metric,
            "old": None if self.old is None else self.old.to_json(),
            "new": None if self.new is None else self.new.to_json(),
            "delta": self.delta,
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """A change of one named thing (a check's status, the gate, the policy, an answer)."""

    what: str
    old: str | None
    new: str | None

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class Comparison:
    old_trial: str
    new_trial: str
    findings: tuple[FindingChange, ...]
    metrics: tuple[MetricChange, ...]
    checks: tuple[Change, ...]
    gate: Change | None
    policy: tuple[Change, ...]
    checklist: tuple[Change, ...]

    def count(self, change: str) -> int:
        return sum(1 for f in self.findings if f.change == change)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "kind": "cityx.trial-comparison",
            "old_trial": self.old_trial,
            "new_trial": self.new_trial,
            "finding_counts": {
                c: self.count(c) for c in ("fixed", "new", "unchanged", "not re-tested")
            },
            "findings": [f.to_json() for f in self.findings],
            "metrics": [m.to_json() for m in self.metrics],
            "checks": [c.to_json() for c in self.checks],
            "gate": None if self.gate is None else self.gate.to_json(),
            "policy": [c.to_json() for c in self.policy],
            "checklist": [c.to_json() for c in self.checklist],
        }

    def text(self) -> str:
        lines = [f"{self.old_trial} -> {self.new_trial}"]
        if self.gate is not None:
            lines.append(f"gate: {self.gate.old} -> {self.gate.new}")
        lines.append(
            f"findings: {self.count('fixed')} fixed, {self.count('new')} new, "
            f"{self.count('unchanged')} unchanged, {self.count('not re-tested')} not re-tested"
        )
        lines += [
            f"  {f.change}: {f.id} ({f.severity_old or '-'} -> {f.severity_new or '-'})"
            for f in self.findings
            if f.change != "unchanged" or f.severity_old != f.severity_new
        ]
        lines.append("metrics:")
        lines += [
            f"  {m.check}:{m.metric}: {_fmt(m.old)} -> {_fmt(m.new)} ({m.verdict})"
            for m in self.metrics
        ]
        lines += [f"check {c.what}: {c.old} -> {c.new}" for c in self.checks]
        lines += [f"policy {c.what}: {c.old} -> {c.new}" for c in self.policy]
        lines += [
            f"checklist {c.what}: {c.old or 'open'} -> {c.new or 'open'}" for c in self.checklist
        ]
        return "\n".join(lines)


def _fmt(m: Metric | None) -> str:
    return "absent" if m is None else fmt_metric(m)


def compare_trials(
    old: TrialResults,
    new: TrialResults,
    *,
    old_answers: Sequence[Answer] = (),
    new_answers: Sequence[Answer] = (),
) -> Comparison:
    """What changed from ``old`` to ``new``; a pure function of the two results and answers."""
    old_f = {f.id or "?": f for f in old.findings or ()}
    new_f = {f.id or "?": f for f in new.findings or ()}
    measured_new = {
        c.id for c in new.checks or () if c.status in ("passed", "failed", "undetermined")
    }
    # A finding is fixed only where its check measured again; else it was not re-tested.
    findings = [
        FindingChange(
            i,
            "fixed" if f.check in measured_new else "not re-tested",
            f.title or "",
            f.severity,
            None,
        )
        for i, f in old_f.items()
        if i not in new_f
    ]
    findings += [
        FindingChange(i, "new", f.title or "", None, f.severity)
        for i, f in new_f.items()
        if i not in old_f
    ]
    findings += [
        FindingChange(i, "unchanged", f.title or "", old_f[i].severity, f.severity)
        for i, f in new_f.items()
        if i in old_f
    ]
    metrics = []
    old_checks = {c.id or "?": c for c in old.checks or ()}
    new_checks = {c.id or "?": c for c in new.checks or ()}
    for check_id in dict.fromkeys([*old_checks, *new_checks]):
        a = old_checks.get(check_id)
        b = new_checks.get(check_id)
        names = dict.fromkeys([*(a.metrics if a else {}), *(b.metrics if b else {})])
        for name in names:
            m_old = a.metrics.get(name) if a else None
            m_new = b.metrics.get(name) if b else None
            metrics.append(MetricChange(check_id, name, m_old, m_new, _verdict(m_old, m_new)))
    checks = [
        Change(i, old_checks[i].status if i in old_checks else None, c.status if c else None)
        for i, c in {**{k: None for k in old_checks}, **new_checks}.items()
        if (old_checks[i].status if i in old_checks else None) != (c.status if c else None)
    ]
    gate_old = old.gate.decision if old.gate else None
    gate_new = new.gate.decision if new.gate else None
    policy = [
        Change(field, getattr(old.policy, field, None), getattr(new.policy, field, None))
        for field in ("id", "version", "sha256")
        if getattr(old.policy, field, None) != getattr(new.policy, field, None)
    ]
    a_old = {a.id: a.answer for a in old_answers}
    a_new = {a.id: a.answer for a in new_answers}
    checklist = [
        Change(i, a_old.get(i), a_new.get(i))
        for i in dict.fromkeys([*a_old, *a_new])
        if (a_old.get(i) or "") != (a_new.get(i) or "")
    ]
    return Comparison(
        old.trial_id or "old",
        new.trial_id or "new",
        tuple(findings),
        tuple(metrics),
        tuple(checks),
        Change("decision", gate_old, gate_new),
        tuple(policy),
        tuple(checklist),
    )


def _verdict(old: Metric | None, new: Metric | None) -> str:
    if old is None:
        return "added"
    if new is None:
        return "removed"
    if old.value is None or new.value is None:
        return "undetermined"
    if old.ci_low is None or old.ci_high is None or new.ci_low is None or new.ci_high is None:
        return "unchanged" if old.value == new.value else "undetermined"
    if new.ci_low > old.ci_high or new.ci_high < old.ci_low:
        return "changed"
    return "within noise"


__all__ = ["Change", "Comparison", "FindingChange", "MetricChange", "compare_trials"]
