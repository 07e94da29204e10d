"""``cityx submission validate --load`` gives a controller a smoke run on the generated grid.

The load check calls the model on 8 schema-valid rows; these controllers pass it and then
misbehave on the sandbox's own observations (more than 8 candidate rows on grid3x3), which
only the smoke run can show.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityx.cli.main import main
from cityx.runs.smoke import SMOKE_SCENARIO, SMOKE_SECONDS, smoke_run

from ..worlds.traffic.conftest import needs_sumo
from .test_world_trust import controller


@pytest.fixture(autouse=True)
def _sumo() -> None:
    needs_sumo()


def test_the_smoke_run_is_a_minute_on_the_generated_grid() -> None:
    assert (SMOKE_SCENARIO, SMOKE_SECONDS) == ("grid3x3", 60)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("if len(batch) > 8: return batch[:1, 0]", "shape (1,) for"),
        ("if len(batch) > 8: raise RuntimeError('boom on the street')", "boom on the street"),
    ],
    ids=["wrong-count", "crash"],  # NaN: test_validate_load_adds_the_smoke_problem...
)
@pytest.mark.slow
def test_a_controller_that_fails_in_the_world_is_a_validation_problem(
    tmp_path: Path, body: str, named: str
) -> None:
    folder = controller(tmp_path / "bad", body=body)
    smoke = smoke_run(folder, trust_code=True, seconds=10)
    assert smoke.problem is not None and not smoke.complete
    assert "smoke run on grid3x3 failed" in smoke.problem.message
    assert named in smoke.problem.message
    assert smoke.problem.where.endswith("cityx.toml: [artifact]")


def test_a_smoke_run_past_its_wall_time_is_a_problem(tmp_path: Path) -> None:
    folder = controller(tmp_path / "slow")
    smoke = smoke_run(folder, trust_code=True, seconds=10, timeout_s=0.5)
    assert smoke.problem is not None
    assert "smoke run on grid3x3 failed" in smoke.problem.message
    assert "no result after 0.5 s" in smoke.problem.message
    assert smoke.wall_s < 30


@pytest.mark.slow
def test_validate_load_adds_the_smoke_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nan = "if len(batch) > 8: return np.full(len(batch), np.nan)"
    folder = controller(tmp_path / "bad", body=nan)
    code = main(["submission", "validate", str(folder), "--load", "--trust-code", "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert code == 2 and not obj["ok"]
    last = obj["problems"][-1]
    assert last["level"] == "error" and last["where"].endswith("cityx.toml: [artifact]")
    assert "the 60 s smoke run on grid3x3 failed" in last["message"]
    assert "non-finite" in last["message"]
    assert obj["smoke"]["problem"] == last and not obj["smoke"]["complete"]


@pytest.mark.slow
def test_validate_load_reports_the_smoke_runs_decision_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = controller(tmp_path / "good")
    code = main(["submission", "validate", str(folder), "--load", "--trust-code", "--json"])
    smoke = json.loads(capsys.readouterr().out)["smoke"]
    assert code == 0 and smoke["complete"] and smoke["problem"] is None
    assert 0 < smoke["decision_latency"]["p95_ms"] < 1000
    assert smoke["decision_latency"]["steps"] >= 55


def test_validate_load_without_trust_code_stops_before_the_smoke_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = controller(tmp_path / "entry")
    code = main(["submission", "validate", str(folder), "--load", "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert code == 2 and "smoke" not in obj
    assert "--trust-code" in obj["problems"][-1]["message"]
