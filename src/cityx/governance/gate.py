"""The deployment gate and the AI Verify principle summary.

The *gate decision* is ``pass``, ``conditional`` (deploy only once the
reasons are addressed) or ``fail``. It is a pure function of the trial's
check results and the policy: the most severe finding decides. A finding
whose interval leaves a gate-relevant severity open (``severity_upper``),
a check that could not run, or one whose evidence could not decide
(``undetermined``) makes the decision at best conditional, since an
untested property is not a passed one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def decide(results: Iterable[CheckResult], policy: Policy) -> GateDecision:
    fails: list[str] = []
    conditions: list[str] = []
    for result in results:
        if result.status is CheckStatus.ERROR:
            conditions.append(f"check {result.check} could not run: {result.message}")
        elif result.status is CheckStatus.UNDETERMINED and (
            result.message or not any(f.undetermined for f in result.findings)
        ):
            # (When its findings' open intervals made it undetermined, they say why below.)
            conditions.append(f"check {result.check} is undetermined: {result.message}")
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
        return GateDecision(Decision.FAIL, tuple(fails + conditions), policy.id)
    if conditions:
        return GateDecision(Decision.CONDITIONAL, tuple(conditions), policy.id)
    return GateDecision(Decision.PASS, ("no finding reached the policy's limits",), policy.id)


def principle_status(
    results: Iterable[CheckResult],
    tested: Mapping[str, Principle | tuple[Principle, ...]],
    policy: Policy,
) -> dict[str, dict[str, Any]]:
    """Per AI Verify principle: ``not_tested``, ``ok``, ``attention`` or ``fail``.

    ``tested`` maps each check that ran to the principle (or principles) it tests.
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
        named = tested.get(result.check, ())
        principles = (named,) if isinstance(named, Principle) else named
        for principle in principles:
            if result.status in (CheckStatus.PASSED, CheckStatus.FAILED):
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
            else:
                raise_to(f.tags.principle, "ok")
    return table
