"""``cityx poison`` and ``cityx data`` through the module's register function."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

from cityx.cli import poison
from cityx.core import CityxError
from cityx.interop.keys import generate_key, write_key_files

from ..support.paths import SUBMISSIONS
from ..support.poisoning import LABEL

EXAMPLE = SUBMISSIONS / "metro-congestion"


def cityx(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="cityx")
    poison.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        code, error = args.handler(args), ""
    except CityxError as exc:
        code, error = exc.exit_code, str(exc)
    return code, capsys.readouterr().out, error


def test_simulate_then_audit(
    tmp_path: Path, metro_base: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.parquet"
    metro_base.to_parquet(data, index=False)
    out = tmp_path / "new-folder" / "poisoned.csv"  # made if missing
    code, text, _ = cityx(
        [
            "poison",
            "simulate",
            "--data",
            str(data),
            "--label",
            LABEL,
            "--attack",
            "poisoning.compromised",
            "--rate",
            "0.1",
            "--param",
            "drift=1.0",
            "--source-col",
            "intersection,approach",
            "--seed",
            "2",
            "--out",
            str(out),
            "--json",
        ],
        capsys,
    )
    assert code == 0
    summary = json.loads(text)
    truth = json.loads(out.with_name("poisoned.csv.truth.json").read_text())
    assert summary["poisoned"] == len(truth["poisoned"]) > 0
    assert truth["attack"] == "poisoning.compromised" and truth["seed"] == 2
    code, text, _ = cityx(
        [
            "poison",
            "audit",
            "--data",
            str(out),
            "--label",
            LABEL,
            "--source-col",
            "intersection",
            "--source-col",
            "approach",
            "--json",
        ],
        capsys,
    )
    body = json.loads(text)  # exactly one JSON object
    assert set(body) >= {"rows", "flagged", "sources", "verdict", "detectors", "wall_s"}
    assert {"index", "score"} <= set(body["rows"][0])
    assert {"source", "score", "flagged"} <= set(body["sources"][0])
    assert body["verdict"] == "poisoned" and code == 3
    assert set(body["flagged"]) & set(truth["poisoned"])


def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, metro_base: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "t.csv"
    metro_base.head(300).to_csv(data, index=False)
    code, _, error = cityx(["poison", "audit", "--data", str(data), "--label", "nope"], capsys)
    assert code == 2 and "no label column 'nope'" in error and "\n" not in error
    code, _, error = cityx(
        [
            "poison",
            "simulate",
            "--data",
            str(data),
            "--label",
            LABEL,
            "--attack",
            "evasion.constrained",
            "--rate",
            "0.1",
            "--out",
            str(tmp_path / "o.csv"),
        ],
        capsys,
    )
    assert code == 2 and "not a poisoning attack" in error
    code, _, error = cityx(
        ["poison", "audit", "--data", str(tmp_path / "missing.csv"), "--label", LABEL], capsys
    )
    assert code == 2 and "file not found" in error


def test_data_sign_and_verify(
    tmp_path: Path, metro_base: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.csv"
    metro_base.head(400).to_csv(data, index=False)
    keys = write_key_files(generate_key("urn:cityx:vendor:acme:data"), tmp_path / "keys")
    code, text, _ = cityx(
        [
            "data",
            "sign",
            "--data",
            str(data),
            "--key",
            str(keys.private),
            "--source-col",
            "intersection,approach",
            "--json",
        ],
        capsys,
    )
    assert code == 0 and json.loads(text)["sources"] > 1
    manifest = tmp_path / "train.csv.manifest.jws"
    argv = [
        "data",
        "verify",
        "--data",
        str(data),
        "--manifest",
        str(manifest),
        "--trust",
        str(tmp_path / "keys"),
        "--json",
    ]
    code, text, _ = cityx(argv, capsys)
    assert code == 0 and json.loads(text)["ok"] is True
    table = pd.read_csv(data)
    table.loc[0, "delay_s"] = 999.0
    table.to_csv(data, index=False)
    code, text, _ = cityx(argv, capsys)
    body = json.loads(text)
    assert code == 3 and body["changed_sources"] == [
        f"{table.loc[0, 'intersection']}/{table.loc[0, 'approach']}"
    ]


def test_scan_runs_the_example_model_isolated(capsys: pytest.CaptureFixture[str]) -> None:
    code, text, error = cityx(
        [
            "poison",
            "scan",
            "--model",
            str(EXAMPLE),
            "--data",
            str(EXAMPLE / "data" / "holdout.csv"),
            "--json",
        ],
        capsys,
    )
    assert error == ""
    body = json.loads(text)
    assert body["rows"] == 200 and body["top_candidates"]
    assert code == (3 if body["triggers"] else 0)


def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="cityx")
    poison.register(parser.add_subparsers(dest="command"))
    for argv in (
        ["poison", "simulate"],
        ["poison", "audit"],
        ["poison", "scan"],
        ["data", "sign"],
        ["data", "verify"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "--help"])
        assert "example:\n  cityx " in capsys.readouterr().out
