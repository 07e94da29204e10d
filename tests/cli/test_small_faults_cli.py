"""Issue 14's small faults, each as a user meets it on the command line."""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd
import pytest

from cityx.interop import generate_key, write_key_files

from ..support.cli import cityx
from ..support.paths import ROOT


def _example(argv: list[str]) -> list[str]:
    """The example a command's --help shows, as arguments after ``cityx``."""
    help_text = cityx(*argv, "--help").out
    line = help_text.split("example:\n", 1)[1].strip().splitlines()[0]
    words = shlex.split(line)
    assert words[0] == "cityx"
    return words[1:]


@pytest.mark.slow
def test_the_fairness_help_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    example = _example(["fairness"])
    assert "congestion_next" in example
    run = cityx(*example)
    assert run.code in (0, 3), run.err
    assert "group fairness by district" in run.out


@pytest.mark.slow
def test_data_verify_names_the_changed_source_without_json(
    tmp_path: Path, metro_base: pd.DataFrame
) -> None:
    data = tmp_path / "train.csv"
    metro_base.head(400).to_csv(data, index=False)
    keys = write_key_files(generate_key("urn:cityx:vendor:acme:data"), tmp_path / "keys")
    run = cityx(
        *("data", "sign", "--data", data, "--key", keys.private),
        *("--source-col", "intersection,approach"),
    )
    assert run.code == 0, run.err
    table = pd.read_csv(data)
    table.loc[0, "delay_s"] = 999.0
    table.to_csv(data, index=False)
    manifest = tmp_path / "train.csv.manifest.jws"
    run = cityx(
        "data", "verify", "--data", data, "--manifest", manifest, "--trust", tmp_path / "keys"
    )
    source = f"{table.loc[0, 'intersection']}/{table.loc[0, 'approach']}"
    assert run.code == 3
    assert f"changed source(s): {source}" in run.out


def test_data_sign_with_a_trust_file_says_it_is_public(
    tmp_path: Path, metro_base: pd.DataFrame
) -> None:
    data = tmp_path / "train.csv"
    metro_base.head(50).to_csv(data, index=False)
    keys = write_key_files(generate_key("urn:cityx:vendor:acme:data"), tmp_path / "keys")
    keys.public.chmod(0o644)  # as a shared trust file is; the permission is not the problem
    run = cityx("data", "sign", "--data", data, "--key", keys.public)
    assert run.code == 2 and run.err.count("\n") == 1
    assert "trust file" in run.err and "not a private key" in run.err
    assert "accessible by others" not in run.err


@pytest.mark.parametrize("duration", ["-5", "0", "nan", "soon"])
def test_interop_serve_refuses_a_duration_that_is_not_positive(duration: str) -> None:
    run = cityx(
        *("interop", "serve", "--trust", "t", "--aud", "urn:x", "--http", "127.0.0.1:1"),
        *("--duration", duration),
    )
    assert run.code == 2
    assert "--duration" in run.err and "internal error" not in run.err


def test_the_parser_offers_upgrade_and_load() -> None:
    help_text = cityx("submission", "validate", "--help").out
    assert "--load" in help_text and "--trust-code" in help_text
    assert "upgrade" in cityx("submission", "--help").out
