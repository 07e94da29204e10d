"""The gate passes only on evidence: every planned check ran, and principles are OK only
when a check that tests them measured them."""

from __future__ import annotations

from cityx.core import (
    CheckResult,
    CheckStatus,
    Finding,
    Metric,
    NistFunction,
    PluginKind,
    Principle,
    Registry,
    Severity,
    SystemKind,
    Tags,
)
from cityx.governance.gate import Decision, decide, principle_status
from cityx.governance.policy import load_policy
from cityx.runs.trial import plan_checks


def _ok(check: str, **metrics: float | None) -> CheckResult:
    return CheckResult(check, CheckStatus.PASSED, {k: Metric(v) for k, v in metrics.items()})


def test_a_skipped_check_keeps_the_gate_from_pass() -> None:
    skipped = CheckResult("fairness.groups", CheckStatus.SKIPPED, message="no sensitive columns")
    gate = decide([_ok("admission"), skipped], load_policy())
    assert gate.decision is Decision.CONDITIONAL
    assert any("fairness.groups did not run" in r for r in gate.reasons)


def test_a_waived_skip_passes_and_quotes_the_reason() -> None:
    skipped = CheckResult("fairness.groups", CheckStatus.SKIPPED, message="not applicable")
    why = "Counts vehicles on one motorway gantry: no groups of people or places."
    gate = decide([_ok("admission"), skipped], load_policy(), waived={"fairness.groups": why})
    assert gate.decision is Decision.PASS
    assert any(why in r for r in gate.reasons)


def test_a_planned_check_that_never_reported_keeps_the_gate_from_pass() -> None:
    gate = decide([_ok("admission")], load_policy(), planned=["admission", "redteam.evasion"])
    assert gate.decision is Decision.CONDITIONAL
    assert any("redteam.evasion did not report" in r for r in gate.reasons)


def test_the_default_policy_attacks_predictors_and_a_fully_evadable_one_fails() -> None:
    policy = load_policy()
    planned = [c.meta.id for c in plan_checks(policy, SystemKind.PREDICTOR, Registry())]
    assert "redteam.evasion" in planned
    limit = policy.checks["redteam.evasion"].thresholds["evasion_success"]
    judged = limit.judge(1.0)
    assert judged is not None and judged[0] is Severity.HIGH
    finding = Finding(
        id="redteam.evasion/evasion_success",
        check="redteam.evasion",
        title="evaded",
        severity=judged[0],
        severity_reason=judged[1],
        tags=Tags(Principle.SECURITY, NistFunction.MEASURE, (), ()),
    )
    evaded = CheckResult("redteam.evasion", CheckStatus.FAILED, findings=(finding,))
    others = [_ok(c) for c in planned if c != "redteam.evasion"]
    assert decide([*others, evaded], policy, planned=planned).decision is Decision.FAIL


def test_accuracy_alone_is_no_robustness_and_measured_repeatability_counts() -> None:
    registry = Registry()
    tested = {
        cid: registry.load(PluginKind.CHECK, cid).tested_principles()
        for cid in ("performance.nominal", "input.contract")
    }
    table = principle_status(
        [
            _ok("performance.nominal", accuracy=0.9),
            _ok("input.contract", repeatable_outputs=1.0, valid_inputs_answered=1.0),
        ],
        tested,
        load_policy(),
    )
    assert table["robustness"]["status"] == "not_tested"
    assert table["repeatability"]["status"] == "ok"
    assert table["safety"]["status"] == "ok"
    # Not measured (undefined), not evidence.
    table = principle_status(
        [_ok("input.contract", repeatable_outputs=None)], tested, load_policy()
    )
    assert table["repeatability"]["status"] == "not_tested"


def test_an_info_finding_is_no_evidence_for_its_principle() -> None:
    note = Finding(
        id="x/note",
        check="x",
        title="a note",
        severity=Severity.INFO,
        severity_reason="for the record",
        tags=Tags(Principle.TRANSPARENCY, NistFunction.MAP, (), ()),
    )
    result = CheckResult("x", CheckStatus.PASSED, findings=(note,))
    table = principle_status([result], {}, load_policy())
    assert table["transparency"] == {"status": "not_tested", "findings": 1}
