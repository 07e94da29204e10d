"""Verdicts of controller trials: severities from intervals, attacks judged against the
best baseline under the same attack, merged identical attacks, one "change %", the
report's side-by-side table, decision latency. Without SUMO: made-up cell records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cityx.assess.sandbox import paired, percent_of
from cityx.core import (
    CheckResult,
    CheckStatus,
    Direction,
    Finding,
    Metric,
    NistFunction,
    Principle,
    Severity,
    Tags,
    Threshold,
    status_from,
)
from cityx.governance.gate import Decision, decide, principle_status
from cityx.governance.policy import load_policy
from cityx.runs.campaign import CLEAN, CampaignPlan, Cell, CellRecord, summarise
from cityx.runs.campaign.details import CampaignDetails, campaign_section
from cityx.runs.campaign.summary import group_findings, versus
from cityx.runs.submitted import latency_summary

TAGS = Tags(Principle.SAFETY, NistFunction.MEASURE, (), ())


def plan(**changes: Any) -> CampaignPlan:
    values: dict[str, Any] = {
        "controller": "max-pressure",
        "scenarios": ("cologne1",),
        "attacks": ("world.phantom-queue", "world.cv-spoof"),
        "intensities": (1.0,),
        "seeds": (1, 2, 3, 4),
        "seconds": 120,
    }
    return CampaignPlan(**(values | changes))


def record(attack: str, seed: int, loss: float) -> CellRecord:
    cell = Cell("cologne1", attack, 0.0 if attack == CLEAN else 1.0, seed)
    kpis = {"mean_time_loss_s": loss, "mean_waiting_s": loss / 2}
    return CellRecord(cell, "ok", None, kpis, (), complete=True, interop=None, out="/x")


def campaign(clean: list[float], **attacked: list[float]) -> list[CellRecord]:
    records = [record(CLEAN, s, v) for s, v in enumerate(clean, 1)]
    for attack, values in attacked.items():
        records += [record(f"world.{attack}", s, v) for s, v in enumerate(values, 1)]
    return records


@pytest.mark.parametrize(
    ("direction", "metric", "expected"),
    [
        # Lower is better (a harm): the lower end decides, the upper end is what stays open.
        (Direction.MAX, Metric(30.0, 25.0, 35.0), (Severity.HIGH, None)),
        (Direction.MAX, Metric(12.0, -5.0, 29.0), (Severity.LOW, Severity.HIGH)),
        (Direction.MAX, Metric(15.0, 12.0, 22.0), (Severity.MEDIUM, Severity.HIGH)),
        (Direction.MAX, Metric(5.0, 1.0, 9.0), None),
        (Direction.MAX, Metric(15.0), (Severity.MEDIUM, None)),  # no interval: its value
        # Higher is better: mirrored.
        (Direction.MIN, Metric(0.6, 0.4, 0.9), (Severity.LOW, Severity.HIGH)),
        (Direction.MIN, Metric(0.4, 0.3, 0.45), (Severity.HIGH, None)),
    ],
)
def test_a_threshold_judges_the_interval_not_the_mean(
    direction: Direction, metric: Metric, expected: tuple[Severity, Severity | None] | None
) -> None:
    limits = (20.0, 10.0) if direction is Direction.MAX else (0.5, 0.8)
    verdict = Threshold("m", direction, *limits).judge_interval(metric)
    assert (verdict[:2] if verdict else None) == expected
    if verdict and verdict[1] is not None:
        assert "not ruled out" in verdict[2] or "undetermined" in verdict[2]


def test_an_open_gap_is_undetermined_and_never_passes_the_gate() -> None:
    policy = load_policy(None)
    gap = Finding("c/x", "c", "x may be bad", Severity.LOW, "why", TAGS, severity_upper="high")
    assert gap.undetermined and gap.to_json()["severity_upper"] == "high"
    # An upper class no worse than the supported one adds nothing.
    assert (
        Finding("c/y", "c", "y", Severity.HIGH, "", TAGS, severity_upper="medium").undetermined
        is False
    )
    assert status_from((gap,)) is CheckStatus.UNDETERMINED
    result = CheckResult("c", status_from((gap,)), findings=(gap,))
    gate = decide([result], policy)
    assert gate.decision is Decision.CONDITIONAL
    assert any(r.startswith("undetermined (low to high)") for r in gate.reasons)


def test_change_percent_is_the_paired_mean_difference_over_the_baseline_mean() -> None:
    # 11.07 s against 9.20 s: +20.3 %, whatever the per-pair percentages average to.
    mine, base = [12.0, 10.14], [8.0, 10.4]
    pct = percent_of(paired([a - b for a, b in zip(mine, base, strict=True)]), sum(base) / 2)
    assert pct.value == pytest.approx(100 * (11.07 - 9.2) / 9.2)
    assert pct.ci_low is not None and pct.ci_low < pct.value < (pct.ci_high or 0)
    assert percent_of(Metric(1.0), 0.0).value is None


def test_a_tight_interval_decides_the_severity(tmp_path: Path) -> None:
    p = plan(attacks=("world.phantom-queue",))
    result = summarise(
        p, campaign([20, 22, 18, 20], **{"phantom-queue": [26, 28.4, 23.3, 26]}), out=tmp_path
    )
    (finding,) = result.findings
    change = result.groups[0].change_pct
    assert change.ci_low is not None and change.ci_low >= 25 and (change.ci_high or 99) < 50
    assert (finding.severity, finding.severity_upper) == (Severity.HIGH, None)


def test_attacks_with_identical_effects_make_one_finding(tmp_path: Path) -> None:
    same = [40.0, 44.0, 41.0, 43.0]
    result = summarise(
        plan(),
        campaign([20, 22, 21, 20], **{"phantom-queue": same, "cv-spoof": same}),
        out=tmp_path,
    )
    assert len(result.groups) == 2
    (finding,) = result.findings
    assert "world.phantom-queue, world.cv-spoof" in finding.title
    assert finding.evidence.metrics["attacks"] == "world.phantom-queue, world.cv-spoof"
    assert finding.severity is Severity.CRITICAL


def test_a_harm_the_best_baseline_shares_is_no_finding(tmp_path: Path) -> None:
    p = plan(attacks=("world.phantom-queue",))
    mine = summarise(
        p, campaign([20, 22, 21, 20], **{"phantom-queue": [40, 44, 41, 43]}), out=tmp_path
    )
    # Max-pressure suffers the same attack just as much; fixed time (blind to sensors) less.
    mp = summarise(
        p, campaign([20, 21, 22, 20], **{"phantom-queue": [40.5, 43.5, 41, 42.5]}), out=tmp_path
    )
    fixed = summarise(
        p, campaign([45, 47, 44, 46], **{"phantom-queue": [45, 47, 44, 46]}), out=tmp_path
    )
    assert mine.findings and mine.findings[0].severity is Severity.CRITICAL  # alone, absolute
    against = versus(p, mine.cells, mine.groups, {"fixed": fixed.cells, "max-pressure": mp.cells})
    (vs,) = against.values()
    assert vs.best == "max-pressure" and vs.n == 4
    assert vs.excess_pct.ci_low is not None and vs.excess_pct.ci_low < 0 < (
        vs.excess_pct.ci_high or 0
    )
    assert group_findings(p, mine.groups, mine.cells, tmp_path, against) == ()
    # Worse than every baseline under the same attack: a finding that names the best one.
    worse = summarise(
        p, campaign([20, 22, 21, 20], **{"phantom-queue": [60, 66, 62, 64]}), out=tmp_path
    )
    against = versus(p, worse.cells, worse.groups, {"fixed": fixed.cells, "max-pressure": mp.cells})
    (finding,) = group_findings(p, worse.groups, worse.cells, tmp_path, against)
    assert finding.severity.rank >= Severity.MEDIUM.rank
    assert "against max-pressure under the same attack" in finding.title
    assert finding.evidence.metrics["best_baseline"] == "max-pressure"

    details = CampaignDetails(
        "campaign.json",
        worse.groups,
        (),
        baselines={"fixed": fixed.groups, "max-pressure": mp.groups},
        versus=tuple(against.values()),
    )
    assert CampaignDetails.from_json(details.to_json()) == details
    section = campaign_section(details, {}, "redteam")
    # One intensity: a table, no sweep plot; every baseline's column beside the submission's.
    assert section.plots == ()
    (table,) = section.tables
    assert table.headers[3:6] == ("Submission change %", "fixed change %", "max-pressure change %")
    assert "vs max-pressure" in table.rows[0][6]
    # Details written before baselines faced the campaign still read.
    old = {k: v for k, v in details.to_json().items() if k not in ("baselines", "versus")}
    assert CampaignDetails.from_json(old).baselines == {}


def test_one_seed_rules_nothing_out(tmp_path: Path) -> None:
    p = plan(attacks=("world.phantom-queue",), seeds=(1,))
    (finding,) = summarise(p, campaign([20], **{"phantom-queue": [30]}), out=tmp_path).findings
    assert (finding.severity, finding.severity_upper) == (Severity.LOW, Severity.CRITICAL)
    assert "one seed: no interval" in finding.severity_reason


def test_a_check_that_also_tests_safety_and_fairness_marks_them_tested() -> None:
    from cityx.assess.sandbox import SandboxNominal

    tested = SandboxNominal.tested_principles()
    assert set(tested) == {Principle.SAFETY, Principle.FAIRNESS}
    measured = CheckResult(
        "sandbox.nominal",
        CheckStatus.PASSED,
        metrics={"collisions": Metric(0.0), "group_waiting_increase_s[fixed]": Metric(1.5)},
    )
    table = principle_status([measured], {"sandbox.nominal": tested}, load_policy(None))
    assert {p: table[p.value]["status"] for p in tested} == dict.fromkeys(tested, "ok")
    # Without the metrics that carry the evidence, the run alone proves neither.
    bare = CheckResult("sandbox.nominal", CheckStatus.PASSED)
    table = principle_status([bare], {"sandbox.nominal": tested}, load_policy(None))
    assert {p: table[p.value]["status"] for p in tested} == dict.fromkeys(tested, "not_tested")


def test_decision_latency_summary_and_the_default_policy_limits() -> None:
    summary = latency_summary([0.001] * 90 + [0.2] * 10)
    assert summary == {"steps": 100, "p50_ms": 1.0, "p95_ms": 200.0, "max_ms": 200.0}
    assert latency_summary([])["p95_ms"] is None
    policy = load_policy(None)
    sandbox = policy.checks["sandbox.nominal"]
    assert sandbox.thresholds["decision_latency_p95_ms"].fail == 100.0
    # The red-team check runs on the scenario and seeds the controller is judged on, and
    # every sandbox baseline faces it.
    redteam = policy.checks["redteam.campaign"].options
    assert redteam["scenario"] == sandbox.options["scenario"]
    assert redteam["seeds"] == sandbox.options["seeds"]
    assert redteam["baselines"] == sandbox.options["baselines"]
