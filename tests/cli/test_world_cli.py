"""``cityx scenarios`` and ``cityx world`` through their argparse front end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cityx.cli.world import register
from cityx.core.errors import InputError

from ..worlds.traffic.conftest import needs_resco, needs_sumo


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cityx")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_scenarios_list_json_is_a_list(capsys: pytest.CaptureFixture[str]) -> None:
    needs_resco()
    assert cli(["scenarios", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list)
    assert {"name": "cologne8", "source": "resco", "signals": 8}.items() <= next(
        r for r in rows if r["name"] == "cologne8"
    ).items()
    assert all(set(r) == {"name", "source", "signals", "description"} for r in rows)


def test_scenarios_list_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["scenarios", "list"]) == 0
    assert "grid3x3" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["scenarios", "list", "--help"], ["world", "run", "--help"]])
def test_every_command_has_help_with_an_example(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli(argv)
    assert "example:\n  cityx " in capsys.readouterr().out


def test_a_folder_that_is_no_submission_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cityx\.toml"):
        cli(["world", "run", "--scenario", "grid3x3", "--controller", str(tmp_path)])


def test_a_bus_is_for_submitted_controllers(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a baseline"):
        cli(["world", "run", "--scenario", "grid3x3", "--controller", "fixed", "--bus", "memory"])


@pytest.mark.slow
def test_world_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    needs_sumo()
    needs_resco()
    code = cli(
        [
            "world",
            "run",
            "--scenario",
            "cologne1",
            "--controller",
            "max-pressure",
            "--seconds",
            "300",
            "--seed",
            "3",
            "--demand",
            "1.2",
            "--out",
            str(tmp_path / "run"),
            "--json",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
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
