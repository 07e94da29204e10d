"""The cityx() helper answers the same in process and in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from .cli import cityx


@pytest.mark.parametrize("inprocess", [True, False], ids=["inprocess", "subprocess"])
def test_exit_codes_and_streams(inprocess: bool) -> None:
    version = cityx("--version", inprocess=inprocess)
    assert (version.code, version.err) == (0, "") and version.out.startswith("cityx ")
    usage = cityx("no-such-command", inprocess=inprocess)  # argparse exits 2
    assert usage.code == 2 and usage.out == "" and "invalid choice" in usage.err


@pytest.mark.parametrize("inprocess", [True, False], ids=["inprocess", "subprocess"])
def test_cwd_is_where_relative_paths_resolve(tmp_path: Path, inprocess: bool) -> None:
    before = Path.cwd()
    run = cityx("submission", "init", "s", "--kind", "predictor", cwd=tmp_path, inprocess=inprocess)
    assert run.code == 0, run.err
    assert (tmp_path / "s" / "cityx.toml").is_file()
    assert Path.cwd() == before
