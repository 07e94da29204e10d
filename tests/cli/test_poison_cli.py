"""``cityx poison`` and ``cityx data``, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cityx.interop import generate_key, write_key_files

from ..support.cli import cityx
from ..support.paths import SUBMISSIONS
from ..support.poisoning import LABEL

EXAMPLE = SUBMISSIONS / "metro-congestion"


def test_simulate_then_audit(tmp_path: Path, metro_base: pd.DataFrame) -> None:
    data = tmp_path / "train.parquet"
    metro_base.to_parquet(data, index=False)
    out = tmp_path / "new-folder" / "poisoned.csv"  # made if missing
    run = cityx(
        *("poison", "simulate", "--data", data, "--label", LABEL),
        *("--attack", "poisoning.compromised", "--rate", "0.1", "--param", "drift=1.0"),
        *("--source-col", "intersection,approach", "--seed", "2", "--out", out, "--json"),
    )
    assert run.code == 0, run.err
    summary = run.json()
    truth = json.loads(out.with_name("poisoned.csv.truth.json").read_text())
    assert summary["poisoned"] == len(truth["poisoned"]) > 0
    assert truth["attack"] == "poisoning.compromised" and truth["seed"] == 2
    run = cityx(
        *("poison", "audit", "--data", out, "--label", LABEL),
        *("--source-col", "intersection", "--source-col", "approach", "--json"),
    )
    body = run.json()  # exactly one JSON object
    assert set(body) >= {"rows", "flagged", "sources", "verdict", "detectors", "wall_s"}
    assert {"index", "score"} <= set(body["rows"][0])
    assert {"source", "score", "flagged"} <= set(body["sources"][0])
    assert body["verdict"] == "poisoned" and run.code == 3
    assert set(body["flagged"]) & set(truth["poisoned"])


def test_bad_input_exits_2_with_one_line(tmp_path: Path, metro_base: pd.DataFrame) -> None:
    data = tmp_path / "t.csv"
    metro_base.head(300).to_csv(data, index=False)
    run = cityx("poison", "audit", "--data", data, "--label", "nope")
    assert run.code == 2 and "no label column 'nope'" in run.err and run.err.count("\n") == 1
    run = cityx(
        *("poison", "simulate", "--data", data, "--label", LABEL),
        *("--attack", "evasion.constrained", "--rate", "0.1", "--out", tmp_path / "o.csv"),
    )
    assert run.code == 2 and "not a poisoning attack" in run.err
    run = cityx("poison", "audit", "--data", tmp_path / "missing.csv", "--label", LABEL)
    assert run.code == 2 and "file not found" in run.err


def test_data_sign_and_verify(tmp_path: Path, metro_base: pd.DataFrame) -> None:
    data = tmp_path / "train.csv"
    metro_base.head(400).to_csv(data, index=False)
    keys = write_key_files(generate_key("urn:cityx:vendor:acme:data"), tmp_path / "keys")
    run = cityx(
        *("data", "sign", "--data", data, "--key", keys.private),
        *("--source-col", "intersection,approach", "--json"),
    )
    assert run.code == 0 and run.json()["sources"] > 1
    manifest = tmp_path / "train.csv.manifest.jws"
    argv = ("data", "verify", "--data", data, "--manifest", manifest, "--trust", tmp_path / "keys")
    run = cityx(*argv, "--json")
    assert run.code == 0 and run.json()["ok"] is True
    table = pd.read_csv(data)
    table.loc[0, "delay_s"] = 999.0
    table.to_csv(data, index=False)
    run = cityx(*argv, "--json")
    assert run.code == 3 and run.json()["changed_sources"] == [
        f"{table.loc[0, 'intersection']}/{table.loc[0, 'approach']}"
    ]


def test_scan_runs_the_example_model_isolated() -> None:
    run = cityx(
        *("poison", "scan", "--model", EXAMPLE),
        *("--data", EXAMPLE / "data" / "holdout.csv", "--json"),
    )
    assert run.err == ""
    body = run.json()
    assert body["rows"] == 200 and body["top_candidates"]
    assert run.code == (3 if body["triggers"] else 0)


@pytest.mark.parametrize(
    "command",
    [
        ["poison", "simulate"],
        ["poison", "audit"],
        ["poison", "scan"],
        ["data", "sign"],
        ["data", "verify"],
    ],
)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    run = cityx(*command, "--help")
    assert run.code == 0 and "example:\n  cityx " in run.out
