"""``cityx scenarios`` and ``cityx world``, in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..support.cli import cityx
from ..worlds.traffic.conftest import needs_resco, needs_sumo


def test_scenarios_list_json_is_a_list() -> None:
    needs_resco()
    run = cityx("scenarios", "list", "--json")
    assert run.code == 0
    rows = run.json()
    assert isinstance(rows, list)
    assert {"name": "cologne8", "source": "resco", "signals": 8}.items() <= next(
        r for r in rows if r["name"] == "cologne8"
    ).items()
    assert all(set(r) == {"name", "source", "signals", "description"} for r in rows)


def test_scenarios_list_text() -> None:
    run = cityx("scenarios", "list")
    assert run.code == 0 and "grid3x3" in run.out


@pytest.mark.parametrize("argv", [["scenarios", "list", "--help"], ["world", "run", "--help"]])
def test_every_command_has_help_with_an_example(argv: list[str]) -> None:
    run = cityx(*argv)
    assert run.code == 0 and "example:\n  cityx " in run.out


def test_a_folder_that_is_no_submission_is_refused_clearly(tmp_path: Path) -> None:
    run = cityx("world", "run", "--scenario", "grid3x3", "--controller", tmp_path)
    assert run.code == 2 and "cityx.toml" in run.err


def test_a_bus_is_for_submitted_controllers() -> None:
    run = cityx(
        *("world", "run", "--scenario", "grid3x3", "--controller", "fixed", "--bus", "memory")
    )
    assert run.code == 2 and "not a baseline" in run.err


@pytest.mark.slow
def test_world_run_json(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    run = cityx(
        *("world", "run", "--scenario", "cologne1", "--controller", "max-pressure"),
        *("--seconds", "300", "--seed", "3", "--demand", "1.2", "--out", tmp_path / "run"),
        "--json",
    )
    assert run.code == 0, run.err
    assert run.out.count("\n") == 1  # --json: one line
    obj = run.json()
    assert {
        "scenario",
        "controller",
        "seed",
        "seconds",
        "kpis",
        "safety",
        "wall_s",
        "sim_steps_per_s",
    } <= set(obj)
    assert obj["scenario"] == "cologne1" and obj["seed"] == 3
    overall = obj["kpis"]["overall"]
    for key in (
        "mean_waiting_s",
        "mean_time_loss_s",
        "mean_travel_time_s",
        "arrived",
        "backlog",
        "teleports",
        "collisions",
        "p95_waiting_s",
    ):
        assert key in overall
    assert overall["arrived"] > 0
    assert set(obj["kpis"]["by_group"]) == {"vclass", "approach", "district"}
    assert obj["safety"]["enforced"] is True
