"""Controllers in the SUMO sandbox: one world run with any controller, failures, trials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cityx.core import InputError, WorldCell
from cityx.runs import TrialPlan, run_controller_world, run_trial
from cityx.runs.sandbox import OUTCOME_FILE, SandboxRunner
from cityx.worlds import ControllerFailed
from cityx.worlds.traffic import TRIPS_FILE, WorldResult, read_trips

from ..support.paths import SUBMISSIONS
from ..worlds.traffic.conftest import needs_resco, needs_sumo
from .test_world_trust import controller

ACME = SUBMISSIONS / "acme-signals"


def controller_submission(folder: Path, body: str = "pass") -> Path:
    """A controller entry point scoring candidates by pressure, running ``body`` each call."""
    return controller(folder, "entrypoint", body)


@pytest.fixture(autouse=True)
def _sumo() -> None:
    needs_sumo()
    needs_resco()


# The entry-point controllers here run test code: the user's opt-in, as --trust-code gives it.
TRUSTED = {"--trust-code": "tests"}


def run(controller: Path | str, out: Path, seconds: int = 120, **kw: Any) -> WorldResult:
    kw.setdefault("trusted_by", TRUSTED)
    return run_controller_world("cologne1", controller, seconds=seconds, seed=1, out=out, **kw)


def test_a_submitted_controller_drives_the_world_the_same_way_twice(tmp_path: Path) -> None:
    first = run(ACME, tmp_path / "a")
    second = run(ACME, tmp_path / "b")
    assert first.complete and first.kpis.overall["vehicles"] > 0
    assert first.safety is not None and first.safety.switches > 0
    assert first.kpis.to_json() == second.kpis.to_json()
    assert first.safety.to_json() == second.safety.to_json()
    assert first.spec.controller == str(ACME.resolve())
    # The trip table comes back with the result and is the one in the run's file.
    assert first.trips is not None and len(first.trips) == first.kpis.overall["vehicles"]
    assert read_trips(tmp_path / "a" / TRIPS_FILE).equals(first.trips)


def test_a_controller_plugin_runs_by_its_id_with_hooks(tmp_path: Path) -> None:
    result = run(
        "max-pressure",
        tmp_path / "mp",
        seconds=60,
        hooks=[("attack:world.stale", {"intensity": 1.0}), ("guard:runtime", {})],
    )
    assert result.complete and result.spec.controller == "max-pressure"
    assert result.spec.controller_factory is None
    assert [h["kind"] for h in result.hooks] == ["attack", "guard"]
    assert result.trips is not None and result.trips.finished.any()


@pytest.mark.parametrize(
    ("controller", "options", "message"),
    [
        ("fixed", {"bus": "memory"}, "not a baseline"),
        ("smart", {}, "unknown controller 'smart'"),
        (ACME, {"bus": "carrier-pigeon"}, "unknown bus 'carrier-pigeon'"),
        (ACME, {"message_attack": {"attack": "message.tamper"}}, "needs the secure loop"),
    ],
)
def test_bad_controller_options_fail_before_sumo_starts(
    tmp_path: Path, controller: str | Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        run(controller, tmp_path / "x", **options)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("return np.full(len(batch), np.nan)", "non-finite"),
        ("return batch[:1, 0]", r"shape \(1,\) for \d+ rows"),
        ("if os.environ.get('X') is None: os._exit(3)", "exit"),
    ],
    ids=["nan-scores", "wrong-length", "crash"],
)
def test_a_failing_controller_ends_the_run_and_keeps_partial_outputs(
    tmp_path: Path, body: str, expected: str
) -> None:
    folder = controller_submission(tmp_path / "bad", body)
    with pytest.raises(ControllerFailed, match=expected) as caught:
        run(folder, tmp_path / "run")
    partial = caught.value.partial
    assert partial is not None and not partial.complete
    assert (tmp_path / "run" / "tripinfo.xml").is_file()
    assert caught.value.where == str(tmp_path / "run")


@pytest.mark.slow
def test_a_hanging_controller_is_stopped_by_the_step_timeout(tmp_path: Path) -> None:
    folder = controller_submission(tmp_path / "slow", "time.sleep(60)")
    with pytest.raises(ControllerFailed, match=r"longer than 5 s"):
        run(folder, tmp_path / "run")


@pytest.mark.slow
def test_a_failing_controller_is_a_finding_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cityx.cli.main import main

    folder = controller_submission(tmp_path / "bad", "return np.full(len(batch), np.nan)")
    args = ["world", "run", "--scenario", "cologne1", "--controller", str(folder)]
    args += ["--trust-code"]
    code = main([*args, "--seconds", "60", "--seed", "1", "--out", str(tmp_path / "r"), "--json"])
    out = json.loads(capsys.readouterr().out)["controller_failed"]
    # Exit 3 (a verdict on the controller), never "internal error"; the run's wall time,
    # the partial KPIs and the decision times of the steps it took.
    assert code == 3 and "non-finite" in out["message"]
    assert out["wall_s"] > 0 and out["kpis"]["vehicles"] >= 0
    assert out["decision_latency"]["steps"] >= 1


@pytest.mark.slow
def test_a_submitted_controller_records_its_decision_time_per_step(tmp_path: Path) -> None:
    from cityx.runs.submitted import read_latency

    run(controller_submission(tmp_path / "ok"), tmp_path / "run", seconds=30)
    latency = read_latency(tmp_path / "run")
    assert latency is not None and latency["steps"] >= 25
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["max_ms"]


def test_a_predictor_is_not_a_controller(tmp_path: Path) -> None:
    metro = ACME.parent / "metro-congestion"
    with pytest.raises(InputError, match="not a controller"):
        run(metro, tmp_path / "run")


def test_the_sandbox_runner_gives_outcomes_with_trips_and_errors(tmp_path: Path) -> None:
    bad = controller_submission(tmp_path / "bad", "return np.full(len(batch), np.nan)")
    cells = [WorldCell("cologne1", c, 1, 1.0, 60) for c in ("submission", "fixed")]
    good, fixed = SandboxRunner(ACME, tmp_path / "w").run(cells)
    assert good.complete and good.trips is not None and fixed.trips is not None
    assert good.out == str((tmp_path / "w" / "cologne1" / "submission-s1-d1").resolve())
    assert (Path(good.out) / OUTCOME_FILE).is_file()
    (failed,) = SandboxRunner(bad, tmp_path / "b", trusted_by=TRUSTED).run(cells[:1])
    assert not failed.complete and failed.error is not None and "non-finite" in failed.error


@pytest.mark.slow
def test_a_controller_trial_compares_with_the_baselines(tmp_path: Path, store_url: str) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        """schema_version = 1
id = "test.sandbox"
version = "1"
title = "A short sandbox trial"
[gate]
fail_at = "high"
conditional_at = "medium"
[checks."admission"]
[checks."sandbox.nominal"]
options = { scenario = "cologne1", seeds = [1, 2], demands = [1.0], seconds = 300, \
baselines = ["fixed", "max-pressure"] }
"time_loss_change_pct[fixed]" = { fail_above = 10.0 }
failed_runs = { fail_above = 0 }
"""
    )
    good = run_trial(
        TrialPlan(submission=ACME, out=tmp_path / "good", policy=policy, store=store_url)
    )
    check = next(c for c in good.results["checks"] if c["id"] == "sandbox.nominal")
    fixed = check["details"]["comparisons"]["fixed"]
    assert fixed["pairs"] == 2 and len(check["details"]["cells"]) == 6
    # Imitating max-pressure beats the fixed-time plan on time loss.
    assert fixed["mean_time_loss_s"]["change"] < 0
    assert check["metrics"]["failed_runs"]["value"] == 0
    # Fairness: the waiting of the least and most served districts, and who pays.
    assert 0 <= check["metrics"]["district_waiting_ratio"]["value"] <= 1
    assert check["metrics"]["group_waiting_increase_s[fixed]"]["value"] >= 0
    assert set(check["details"]["fairness"]["who_pays"]) == {"fixed", "max-pressure"}
    # Only groups of min_group trips or more count, and each worst case shows its n.
    fairness = check["details"]["fairness"]
    assert fairness["min_group"] == 30
    assert all(min(c["n"], c["n_baseline"]) >= 30 for cs in fairness["worst"].values() for c in cs)
    assert 0 < check["metrics"]["decision_latency_p95_ms"]["value"] < 1000
    # Two seeds leave wide intervals: what they cannot rule out makes it conditional, never
    # a fail on a mean alone.
    assert good.gate.decision.value in ("pass", "conditional"), good.gate.reasons
    if good.gate.decision.value == "conditional":
        assert all(r.startswith("undetermined") for r in good.gate.reasons), good.gate.reasons
    assert "Submission against fixed" in good.report_path.read_text()

    bad = controller_submission(tmp_path / "bad", "return np.full(len(batch), np.nan)")
    failed = run_trial(
        TrialPlan(
            submission=bad,
            out=tmp_path / "failed",
            policy=policy,
            store=store_url,
            trust_code=True,
        )
    )
    ids = {f["id"] for f in failed.results["findings"]}
    assert "sandbox.nominal/failed_runs" in ids
    assert failed.gate.decision.value == "fail"
    saved = json.loads((tmp_path / "failed" / "results.json").read_text())
    assert saved["status"] == "complete" and saved["data"] == {}
