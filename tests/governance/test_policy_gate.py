from __future__ import annotations

from pathlib import Path

import pytest

from cityx.core import (
    CheckResult,
    CheckStatus,
    Direction,
    Finding,
    PolicyError,
    Principle,
    Severity,
    Tags,
)
from cityx.governance import Decision, decide, load_policy, principle_status


def finding(severity: Severity, principle: Principle = Principle.ROBUSTNESS) -> Finding:
    return Finding(
        id=f"x/{severity}",
        check="x",
        title=f"a {severity} thing",
        severity=severity,
        severity_reason="because",
        tags=Tags(principle),
    )


def test_default_policy_loads_with_thresholds() -> None:
    policy = load_policy()
    assert policy.id == "cityx.default" and len(policy.sha256) == 64
    macro = policy.checks["performance.nominal"].thresholds["macro_f1"]
    assert (macro.direction, macro.fail, macro.conditional) == (Direction.MIN, 0.6, 0.75)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "schema_version = 1\nid = 'p'\nversion = '1'\n[checks.x]\nm = { fail_below = 1, "
            "fail_above = 2 }",
            'checks."x".m',
        ),
        (
            "schema_version = 1\nid = 'p'\nversion = '1'\n[gate]\nfail_at = 'low'\n"
            "conditional_at = 'high'",
            "conditional_at",
        ),
        ("schema_version = 2\nid = 'p'\nversion = '1'", "schema_version"),
        ("schema_version = 1\nid = 'p'\nversion = '1'\ntypo = 1", "typo"),
        (
            "schema_version = 1\nid = 'p'\nversion = '1'\n[checks.x]\nm = { fail_below = 0.9, "
            "conditional_below = 0.5 }",
            "must not exceed",
        ),
        ("[[[", "not valid TOML"),
    ],
)
def test_bad_policies_are_one_line_errors(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=match) as info:
        load_policy(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.toml")


def result(*findings: Finding, status: CheckStatus = CheckStatus.FAILED) -> CheckResult:
    return CheckResult("x", status, findings=findings, message="it broke")


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        ((), Decision.PASS),
        ((Severity.LOW, Severity.INFO), Decision.PASS),
        ((Severity.MEDIUM, Severity.LOW), Decision.CONDITIONAL),
        ((Severity.MEDIUM, Severity.HIGH), Decision.FAIL),
        ((Severity.CRITICAL,), Decision.FAIL),
    ],
)
def test_the_most_severe_finding_decides(
    severities: tuple[Severity, ...], expected: Decision
) -> None:
    gate = decide([result(*(finding(s) for s in severities))], load_policy())
    assert gate.decision is expected and gate.reasons


def test_a_check_that_could_not_run_is_never_a_pass() -> None:
    gate = decide([result(status=CheckStatus.ERROR)], load_policy())
    assert gate.decision is Decision.CONDITIONAL
    assert "could not run: it broke" in gate.reasons[0]


def test_an_undetermined_check_is_conditional_and_its_principle_needs_attention() -> None:
    undetermined = CheckResult(
        "x", CheckStatus.UNDETERMINED, message="label flips cannot be ruled out"
    )
    gate = decide([undetermined], load_policy())
    assert gate.decision is Decision.CONDITIONAL
    assert gate.reasons == ("check x is undetermined: label flips cannot be ruled out",)
    table = principle_status([undetermined], {"x": Principle.DATA_GOVERNANCE}, load_policy())
    assert table["data_governance"]["status"] == "attention"


def test_principle_status_covers_all_eleven() -> None:
    table = principle_status(
        [result(finding(Severity.HIGH, Principle.SAFETY), finding(Severity.LOW))],
        {"x": Principle.ROBUSTNESS},
        load_policy(),
    )
    assert len(table) == 11
    assert table["safety"]["status"] == "fail"
    assert table["robustness"]["status"] == "attention"
    assert table["fairness"]["status"] == "not_tested"
