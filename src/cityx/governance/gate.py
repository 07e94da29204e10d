"""The deployment gate and the AI Verify principle summary.

The *gate decision* is ``pass``, ``conditional`` (deploy only once the
reasons are addressed) or ``fail``. It is a pure function of the trial's
check results and the policy: the most severe finding decides. A finding
whose interval leaves a gate-relevant severity open (``severity_upper``) makes
the decision at best conditional, and so does a check
that could not run, was skipped or never reported (``error``, ``skipped``,
missing from the results), or whose evidence could not decide
(``undetermined``), makes the decision at best conditional, since an untested
property is not a passed one. ``pass`` needs every check the policy names for
the system's kind to have run; the only skip that does not count against it
is a *waived* one: the submission states in writing why the check does not
apply (a fairness check without sensitive columns), and the reasons quote it.

A principle of the summary table is ``ok`` only when a check that *tests* it
(:meth:`cityx.core.Check.tested_principles`) ran and measured the metrics
that carry that evidence; findings tagged with it can only make it worse
(``attention``, ``fail``), never ``ok``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cityx.core import CheckResult, CheckStatus, Principle, Severity

from .policy import Policy


class Decision(StrEnum):
    PASS = "pass"
    CONDITIONAL = "conditional"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class GateDecision:
    decision: Decision
    reasons: tuple[str, ...]
    policy: str

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "reasons": list(self.reasons),
            "policy": self.policy,
        }


def decide(
    results: Iterable[CheckResult],
    policy: Policy,
    *,
    planned: Sequence[str] = (),
    waived: Mapping[str, str] | None = None,
) -> GateDecision:
    """The gate for ``results`` under ``policy``.

    ``planned`` are the checks the policy names for the system's kind (each must
    report); ``waived`` maps a check to the submission's written reason why it does
    not apply.
    """
    fails: list[str] = []
    conditions: list[str] = []
    notes: list[str] = []
    waived = waived or {}
    results = list(results)
    reported = {r.check for r in results}
    for missing in [c for c in planned if c not in reported]:
        conditions.append(f"check {missing} did not report: pass needs every check to run")
    for result in results:
        if result.status is CheckStatus.ERROR:
            conditions.append(f"check {result.check} could not run: {result.message}")
        elif result.status is CheckStatus.UNDETERMINED and (
            result.message or not any(f.undetermined for f in result.findings)
        ):
            # (When its findings' open intervals made it undetermined, they say why below.)
            conditions.append(f"check {result.check} is undetermined: {result.message}")
        elif result.status is CheckStatus.SKIPPED:
            if result.check in waived:
                notes.append(
                    f"check {result.check} did not run: the submission declares it not "
                    f"applicable: {waived[result.check]}"
                )
            else:
                conditions.append(
                    f"check {result.check} did not run ({result.message}): pass needs every "
                    "check the policy names to run"
                )
        for f in result.findings:
            line = f"{f.severity.value}: {f.title} ({f.severity_reason})"
            if f.severity.rank >= policy.fail_at.rank:
                fails.append(line)
            elif f.severity.rank >= policy.conditional_at.rank:
                conditions.append(line)
            elif (
                f.severity_upper is not None and f.severity_upper.rank >= policy.conditional_at.rank
            ):
                # Its interval reaches a gate-relevant class: undetermined, so never pass.
                conditions.append(
                    f"undetermined ({f.severity.value} to {f.severity_upper.value}): {f.title} "
                    f"({f.severity_reason})"
                )
    if fails:
        return GateDecision(Decision.FAIL, tuple(fails + conditions + notes), policy.id)
    if conditions:
        return GateDecision(Decision.CONDITIONAL, tuple(conditions + notes), policy.id)
    return GateDecision(
        Decision.PASS,
        ("every check ran and no finding reached the policy's limits", *notes),
        policy.id,
    )


Tested = Mapping[str, Principle | Mapping[Principle, tuple[str, ...]]]


def principle_status(
    results: Iterable[CheckResult], tested: Tested, policy: Policy
) -> dict[str, dict[str, Any]]:
    """Per AI Verify principle: ``not_tested``, ``ok``, ``attention`` or ``fail``.

    ``tested`` maps each check that ran to the principles it tests, each with the
    metrics that carry the evidence (empty: the run itself; a bare principle is one
    with no metrics named).
    """
    table: dict[str, dict[str, Any]] = {
        p.value: {"status": "not_tested", "findings": 0} for p in Principle
    }
    order = ["not_tested", "ok", "attention", "fail"]

    def raise_to(principle: Principle, status: str) -> None:
        row = table[principle.value]
        if order.index(status) > order.index(row["status"]):
            row["status"] = status

    for result in results:
        declared = tested.get(result.check)
        claims = {declared: ()} if isinstance(declared, Principle) else dict(declared or {})
        for principle, metrics in claims.items():
            if result.status in (CheckStatus.PASSED, CheckStatus.FAILED):
                if _measured(result, metrics):
                    raise_to(principle, "ok")
            elif result.status is CheckStatus.UNDETERMINED:
                # Tested, but not ruled out: never "OK" on what the check could not decide.
                raise_to(principle, "attention")
        for f in result.findings:
            table[f.tags.principle.value]["findings"] += 1
            if f.severity.rank >= policy.fail_at.rank:
                raise_to(f.tags.principle, "fail")
            elif f.severity.rank > Severity.INFO.rank:
                raise_to(f.tags.principle, "attention")
    return table


def _measured(result: CheckResult, metrics: tuple[str, ...]) -> bool:
    """Whether the check measured any of ``metrics`` (``name[*]`` is a family); none named
    means the run itself is the evidence."""
    if not metrics:
        return True
    for name, metric in result.metrics.items():
        if metric.value is None:
            continue
        for wanted in metrics:
            family = wanted.endswith("[*]") and name.startswith(wanted[:-2]) and name.endswith("]")
            if name == wanted or family:
                return True
    return False
