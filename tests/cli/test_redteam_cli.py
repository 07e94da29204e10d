"""``cityx attacks list`` and ``cityx redteam evade``, in process."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ..support.cli import cityx
from ..support.paths import SUBMISSIONS

EXAMPLE = SUBMISSIONS / "metro-congestion"


def _example_threat() -> dict[str, Any]:
    """A threat model for whatever features the example declares.

    flow_X, occupancy_X and speed_X form linked sensor X when the names allow;
    otherwise every feature is its own sensor, moving at most a tenth of its range.
    """
    manifest = tomllib.loads((EXAMPLE / "cityx.toml").read_text())
    features = manifest["inputs"]["features"]
    groups: dict[str, dict[str, str]] = {}
    for f in features:
        role, _, sensor = f["name"].partition("_")
        if role in {"flow", "occupancy", "speed"} and sensor:
            groups.setdefault(sensor, {})[role] = f["name"]
    sensors = {s: {"features": list(r.values()), **r} for s, r in groups.items() if len(r) == 3}
    if sensors:
        return {
            "controlled": [sorted(sensors)[0]],
            "sensors": sensors,
            "consistency": {"max_length_m": 40, "slack": 5},
        }
    return {
        "controlled": [features[0]["name"]],
        "sensors": {f["name"]: {"features": [f["name"]]} for f in features},
        "max_change": {f["name"]: (f.get("max", 1) - f.get("min", 0)) / 10 for f in features},
    }


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _write(path: Path, threat: dict[str, Any], extra: str = "") -> Path:
    lines = [f"controlled = {_toml(threat['controlled'])}"]
    for name, sensor in threat["sensors"].items():
        lines.append(f"[sensors.{json.dumps(name)}]")
        lines += [f"{k} = {_toml(v)}" for k, v in sensor.items()]
    for table in ("max_change", "consistency"):
        if table in threat and table not in extra:
            lines.append(f"[{table}]")
            lines += [f"{json.dumps(k)} = {_toml(v)}" for k, v in threat[table].items()]
    lines.append(extra)
    path.write_text("\n".join(lines) + "\n")
    return path


def _evade(constraints: Path, *more: str) -> list[str]:
    return [
        "redteam",
        "evade",
        "--model",
        str(EXAMPLE / "model.onnx"),
        "--data",
        str(EXAMPLE / "data" / "holdout.csv"),
        "--label",
        "congestion_next",
        "--constraints",
        str(constraints),
        *more,
    ]


def test_attacks_list_json_is_a_list_of_attacks() -> None:
    run = cityx("attacks", "list", "--json")
    rows = run.json()
    assert run.code == 0 and isinstance(rows, list)
    ids = {r["id"] for r in rows}
    assert "evasion.constrained" in ids
    for row in rows:
        assert {"id", "goal", "target", "atlas", "params"} <= set(row)
    run = cityx("attacks", "list")
    assert run.code == 0 and "evasion.constrained" in run.out and "AML.T0015" in run.out


def test_evade_json_on_the_example(tmp_path: Path) -> None:
    threat = _example_threat()
    path = _write(tmp_path / "tm.toml", threat)
    run = cityx(*_evade(path, "--budget", "32", "--samples", "20", "--seed", "2", "--json"))
    assert run.code == 0, run.err
    doc = run.json()  # exactly one JSON object
    assert set(doc) >= {
        "success_rate",
        "queries_per_sample",
        "median_change",
        "constraint_violations",
        "fragility",
        "wall_s",
    }
    assert doc["constraint_violations"] == 0 and doc["samples"] == 20
    assert doc["queries_per_sample"] <= 32
    assert {f["sensor"] for f in doc["fragility"]} == set(threat["sensors"])
    assert 0 <= doc["success_rate"] <= 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[max_change]\nflow_nowhere = 3", "unknown feature 'flow_nowhere'"),
        ("[max_change]\n{feature} = -4", "must be zero or more, got -4"),
        ("[bounds]\n{feature} = [0, 0.5]", "data rows lie outside"),
    ],
)
def test_bad_constraints_exit_2_with_one_line(tmp_path: Path, extra: str, message: str) -> None:
    threat = _example_threat()
    feature = threat["sensors"][threat["controlled"][0]]["features"][0]
    path = _write(tmp_path / "tm.toml", threat, extra.format(feature=json.dumps(feature)))
    run = cityx(*_evade(path, "--json"))
    assert run.code == 2 and run.json()["error"]["exit_code"] == 2  # --json: still one object
    assert message in run.err and run.err.count("\n") == 1 and str(path) in run.err


def test_a_model_outside_a_submission_is_refused(tmp_path: Path) -> None:
    lone = tmp_path / "model.onnx"
    shutil.copy(EXAMPLE / "model.onnx", lone)
    argv = _evade(tmp_path / "tm.toml")
    argv[argv.index("--model") + 1] = str(lone)
    run = cityx(*argv)
    assert run.code == 2 and "no cityx.toml beside the model" in run.err


def test_help_has_an_example() -> None:
    run = cityx("redteam", "evade", "--help")
    assert run.code == 0 and "example:\n  cityx redteam evade" in run.out


def test_evade_without_a_threat_model_names_the_default(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("threat-model.toml", "*.py"))
    argv = _evade(tmp_path / "unused.toml", "--budget", "16", "--samples", "5", "--no-fragility")
    at = argv.index("--constraints")
    del argv[at : at + 2]
    argv[argv.index("--model") + 1] = str(folder / "model.onnx")
    run = cityx(*argv, "--json")
    assert run.code == 0, run.err
    named = run.json()["threat_model"]
    assert named["source"] == "default: schema bounds, every sensor" and named["default"]
    text = cityx(*argv)
    assert text.code == 0 and "threat model: default: schema bounds, every sensor" in text.out
