"""Claims against measurements, and the comparison of two trials."""

from __future__ import annotations

from pathlib import Path

from cityx.core import TrialResults
from cityx.governance.claims import compare_claims, scenarios_run
from cityx.governance.compare import compare_trials
from cityx.governance.trial_folder import read_claims


def results(**metrics: dict[str, float | None]) -> TrialResults:
    return TrialResults.from_json(
        {
            "trial_id": "t",
            "checks": [
                {
                    "id": "performance.nominal",
                    "status": "passed",
                    "metrics": metrics,
                },
                {
                    "id": "sandbox.nominal",
                    "status": "passed",
                    "details": {"scenario": "cologne3"},
                },
            ],
        }
    )


def test_numeric_claims_are_judged_by_the_measured_interval() -> None:
    r = results(
        macro_f1={"value": 0.70, "ci_low": 0.66, "ci_high": 0.74},
        accuracy={"value": 0.81},
    )
    checks = {
        c.claim: c
        for c in compare_claims(
            {"macro_f1": 0.80, "performance.nominal:macro_f1": 0.72, "accuracy": 0.81, "auc": 0.9},
            r,
        )
    }
    assert checks["macro_f1"].status == "finding"
    assert "above the measured 95 % interval" in checks["macro_f1"].note
    assert checks["performance.nominal:macro_f1"].status == "consistent"
    assert checks["accuracy"].status == "undetermined"  # a point value decides nothing
    assert checks["auc"].status == "not assessed"


def test_scenarios_not_run_are_not_assessed() -> None:
    r = results()
    assert scenarios_run(r) == {"cologne3"}
    out = {c.claim: c.status for c in compare_claims({"scenarios": ["cologne3", "ingolstadt7"]}, r)}
    assert out == {"scenarios: cologne3": "consistent", "scenarios: ingolstadt7": "not assessed"}
    (other,) = compare_claims({"cities": ["Cologne"]}, r)
    assert other.status == "shown, not judged"


def test_claims_are_read_raw_from_the_manifest_and_absence_is_tolerated(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    doc = {"submission": {"path": str(sub)}}
    assert read_claims(TrialResults.from_json(doc)) is None  # no manifest
    (sub / "cityx.toml").write_text('[system]\nid = "x"\n', "utf-8")
    assert read_claims(TrialResults.from_json(doc)) is None  # no [claims]
    (sub / "cityx.toml").write_text(
        '[claims]\nmacro_f1 = 0.8\nscenarios = ["cologne3"]\nflag = true\nnote = "x"\n', "utf-8"
    )
    assert read_claims(TrialResults.from_json(doc)) == {
        "macro_f1": 0.8,
        "scenarios": ["cologne3"],
    }
    assert read_claims(TrialResults()) is None


def _trial(
    trial_id: str, findings: list[str], checks: dict[str, str], metric: dict[str, float]
) -> TrialResults:
    return TrialResults.from_json(
        {
            "trial_id": trial_id,
            "policy": {"id": "p", "version": trial_id, "sha256": trial_id * 8},
            "gate": {"decision": "fail" if findings else "pass"},
            "checks": [
                {"id": c, "status": s, "metrics": {"m": metric} if c == "a" else {}}
                for c, s in checks.items()
            ],
            "findings": [{"id": f, "check": f.split("/")[0], "severity": "high"} for f in findings],
        }
    )


def test_compare_lists_fixed_new_unchanged_and_not_retested() -> None:
    old = _trial(
        "v1",
        ["a/x", "a/y", "b/z"],
        {"a": "failed", "b": "failed"},
        {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6},
    )
    new = _trial(
        "v2",
        ["a/y", "a/w"],
        {"a": "failed", "b": "error"},
        {"value": 0.8, "ci_low": 0.7, "ci_high": 0.9},
    )
    c = compare_trials(old, new)
    by = {f.id: f.change for f in c.findings}
    assert by == {"a/x": "fixed", "b/z": "not re-tested", "a/w": "new", "a/y": "unchanged"}
    (m,) = c.metrics
    assert m.verdict == "changed" and m.delta is not None and round(m.delta, 6) == 0.3
    assert [(x.what, x.old, x.new) for x in c.checks] == [("b", "failed", "error")]
    assert c.gate is not None and (c.gate.old, c.gate.new) == ("fail", "fail")
    assert {x.what for x in c.policy} == {"version", "sha256"}
    assert c.to_json()["finding_counts"] == {
        "fixed": 1,
        "new": 1,
        "unchanged": 1,
        "not re-tested": 1,
    }
    overlapping = _trial(
        "v3", [], {"a": "passed"}, {"value": 0.55, "ci_low": 0.45, "ci_high": 0.65}
    )
    assert compare_trials(old, overlapping).metrics[0].verdict == "within noise"
