"""Controller submissions in the SUMO sandbox: runs, failures and controller trials."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from cityx.core import InputError
from cityx.runs import TrialPlan, run_trial
from cityx.runs.sandbox import run_submitted_world
from cityx.worlds import ControllerFailed
from cityx.worlds.traffic import WorldSpec

from ..support.paths import SUBMISSIONS
from ..worlds.traffic.conftest import needs_resco, needs_sumo

ACME = SUBMISSIONS / "acme-signals"

# A regression "model" that scores each candidate by its pressure (so: max-pressure),
# after running ``body`` at each call.
MODEL = """\
import os
import time

import numpy as np


class Model:
    def predict(self, batch):
{body}
        return batch[:, 0] + 0.1 * batch[:, 1]


def load():
    return Model()
"""


def controller_submission(folder: Path, body: str = "pass") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    code = MODEL.format(body=textwrap.indent(textwrap.dedent(body).strip(), " " * 8))
    (folder / "model.py").write_text(code)
    (folder / "datasheet.md").write_text("# Test controller\nNo data: it computes pressure.\n")
    digest = hashlib.sha256(code.encode()).hexdigest()
    (folder / "cityx.toml").write_text(
        f"""schema_version = 1
[system]
id = "pressure-test"
vendor = "Tests"
version = "1"
kind = "controller"
intended_use = "Tests of controller submissions in the sandbox."
contact = "tests@example.com"
[artifact]
path = "model.py"
format = "entrypoint"
entrypoint = "model:load"
sha256 = "{digest}"
[controller]
observation = "phase-candidates/v1"
[[inputs.features]]
name = "pressure"
[[inputs.features]]
name = "is_current"
[outputs]
task = "regression"
label_column = "score"
[data]
datasheet = "datasheet.md"
"""
    )
    return folder


@pytest.fixture(autouse=True)
def _sumo() -> None:
    needs_sumo()
    needs_resco()


def spec(controller: Path, out: Path, seconds: int = 120) -> WorldSpec:
    return WorldSpec(
        scenario="cologne1", controller=str(controller), seconds=seconds, seed=1, out=out
    )


def test_a_submitted_controller_drives_the_world_the_same_way_twice(tmp_path: Path) -> None:
    first = run_submitted_world(spec(ACME, tmp_path / "a"))
    second = run_submitted_world(spec(ACME, tmp_path / "b"))
    assert first.complete and first.kpis.overall["vehicles"] > 0
    assert first.safety is not None and first.safety.switches > 0
    assert first.kpis.to_json() == second.kpis.to_json()
    assert first.safety.to_json() == second.safety.to_json()


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
        run_submitted_world(spec(folder, tmp_path / "run"))
    partial = caught.value.partial
    assert partial is not None and not partial.complete
    assert (tmp_path / "run" / "tripinfo.xml").is_file()
    assert caught.value.where == str(tmp_path / "run")


@pytest.mark.slow
def test_a_hanging_controller_is_stopped_by_the_step_timeout(tmp_path: Path) -> None:
    folder = controller_submission(tmp_path / "slow", "time.sleep(60)")
    with pytest.raises(ControllerFailed, match=r"longer than 5 s"):
        run_submitted_world(spec(folder, tmp_path / "run"))


def test_a_predictor_is_not_a_controller(tmp_path: Path) -> None:
    metro = ACME.parent / "metro-congestion"
    with pytest.raises(InputError, match="not a controller"):
        run_submitted_world(spec(metro, tmp_path / "run"))


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
    assert good.gate.decision.value == "pass"
    assert "Submission against fixed" in good.report_path.read_text()

    bad = controller_submission(tmp_path / "bad", "return np.full(len(batch), np.nan)")
    failed = run_trial(
        TrialPlan(submission=bad, out=tmp_path / "failed", policy=policy, store=store_url)
    )
    ids = {f["id"] for f in failed.results["findings"]}
    assert "sandbox.nominal/failed_runs" in ids
    assert failed.gate.decision.value == "fail"
    saved = json.loads((tmp_path / "failed" / "results.json").read_text())
    assert saved["status"] == "complete" and saved["data"] == {}
