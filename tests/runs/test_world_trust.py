"""Vendor code in a world needs the user's opt-in, in the parent and in the world's child.

A controller submission whose artifact runs the vendor's code (an entry point, a pickle)
opens in a world only with ``--trust-code`` / ``--trust-pickle``, whichever way into the
world is taken: ``cityx world run``, a red-team campaign, ``cityx oversee run``. The run
folder records which opt-in allowed it and who gave it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import textwrap
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from cityx.cli.main import main
from cityx.core import ManifestError
from cityx.runs import run_controller_world
from cityx.runs.campaign import CampaignPlan, run_campaign
from cityx.runs.submitted import (
    TRUST_FILE,
    open_submitted_controller,
    opt_ins,
    os_user,
    read_trust,
)

from ..worlds.traffic.conftest import needs_sumo

# Scores each candidate by its pressure: max-pressure, as vendor code, after running
# ``body`` at each call (os and time are there for bodies that misbehave on purpose).
CODE = """\
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

MANIFEST = """\
schema_version = 2
[system]
id = "trust-test"
vendor = "Tests"
version = "1"
kind = "controller"
intended_use = "Tests of the vendor-code opt-in in the sandbox."
contact = "tests@example.com"
[artifact]
path = "{path}"
format = "{fmt}"
sha256 = "{digest}"
{entrypoint}
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


def pressure_model() -> bytes:
    """A pickled linear model with the entry point's scores (a class the worker can import)."""
    from sklearn.linear_model import LinearRegression

    x = np.random.default_rng(0).uniform(0, 50, (64, 2))
    return pickle.dumps(LinearRegression().fit(x, x[:, 0] + 0.1 * x[:, 1]))


def controller(folder: Path, fmt: str = "entrypoint", body: str = "pass") -> Path:
    """A controller submission whose artifact runs vendor code: an entry point or a pickle."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "entrypoint":
        name, entry = "model.py", 'entrypoint = "model:load"'
        data = CODE.format(body=textwrap.indent(textwrap.dedent(body).strip(), " " * 8)).encode()
    else:
        name, entry = "model.pkl", ""
        data = pressure_model()
    (folder / name).write_bytes(data)
    (folder / "datasheet.md").write_text("# Test controller\nNo data: it computes pressure.\n")
    digest = hashlib.sha256(data).hexdigest()
    (folder / "cityx.toml").write_text(
        MANIFEST.format(path=name, fmt=fmt, digest=digest, entrypoint=entry)
    )
    return folder


def test_the_opt_ins_name_who_gave_them() -> None:
    assert opt_ins() == {}
    assert opt_ins(trust_code=True, operator="ops") == {"--trust-code": "ops"}
    assert opt_ins(trust_pickle=True) == {"--trust-pickle": os_user()}


@pytest.mark.parametrize(
    ("fmt", "flag"), [("entrypoint", "--trust-code"), ("pickle", "--trust-pickle")]
)
def test_the_world_child_refuses_vendor_code_without_its_opt_in(
    tmp_path: Path, fmt: str, flag: str
) -> None:
    folder = controller(tmp_path / fmt, fmt)
    run = tmp_path / "run"
    run.mkdir()
    # The factory the child calls refuses before it starts a worker or reads the network.
    network = cast(Any, None)
    with pytest.raises(ManifestError, match=f"pass {flag}"):
        open_submitted_controller(str(folder), network, run)
    # The other flag does not stand in for it.
    other = "--trust-pickle" if flag == "--trust-code" else "--trust-code"
    with pytest.raises(ManifestError, match=f"pass {flag}"):
        open_submitted_controller(str(folder), network, run, trusted_by={other: "tests"})
    assert not (run / TRUST_FILE).exists()


def test_a_world_run_refuses_vendor_code_before_sumo_starts(tmp_path: Path) -> None:
    folder = controller(tmp_path / "entry")
    with pytest.raises(ManifestError, match="pass --trust-code") as caught:
        run_controller_world("grid3x3", folder, seconds=10, out=tmp_path / "run")
    assert caught.value.where is not None and "[artifact].format" in caught.value.where
    assert not (tmp_path / "run").exists()


def test_a_campaign_refuses_vendor_code_before_any_cell(tmp_path: Path) -> None:
    folder = controller(tmp_path / "entry")
    plan = CampaignPlan.from_json(
        {"controller": str(folder), "scenarios": ["grid3x3"], "attacks": ["world.stale"]}
    )
    with pytest.raises(ManifestError, match="pass --trust-code"):
        run_campaign(plan, tmp_path / "c", record=False)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["world", "run", "--scenario", "grid3x3", "--seconds", "10"],
        ["redteam", "run", "--scenario", "grid3x3", "--attacks", "world.stale"],
        ["oversee", "run", "--in-process", "--scenario", "grid3x3", "--seconds", "10"],
    ],
    ids=["world-run", "redteam-run", "oversee-run"],
)
def test_each_way_into_a_world_refuses_without_trust_code_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    folder = controller(tmp_path / "entry")
    if argv[0] == "redteam":
        argv = [*argv, "--out", str(tmp_path / "c"), str(folder)]
    else:
        argv = [*argv, "--controller", str(folder), "--out", str(tmp_path / "o")]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "pass --trust-code" in err and "[artifact].format" in err
    assert "internal error" not in err and "Traceback" not in err


@pytest.mark.slow
def test_a_trusted_run_records_who_trusted_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    needs_sumo()
    folder = controller(tmp_path / "entry")
    out = tmp_path / "run"
    argv = ["world", "run", "--scenario", "grid3x3", "--controller", str(folder)]
    code = main([*argv, "--seconds", "10", "--out", str(out), "--trust-code", "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert code == 0 and obj["complete"]
    expected = {"format": "entrypoint", "opt_in": "--trust-code", "given_by": os_user()}
    assert obj["trusted"] == expected == read_trust(out)


@pytest.mark.slow
def test_a_trusted_pickle_runs_in_the_world(tmp_path: Path) -> None:
    needs_sumo()
    folder = controller(tmp_path / "pkl", "pickle")
    out = tmp_path / "run"
    result = run_controller_world(
        "grid3x3", folder, seconds=10, out=out, trusted_by={"--trust-pickle": "ops"}
    )
    assert result.complete and np.isfinite(result.kpis.overall["vehicles"])
    assert read_trust(out) == {"format": "pickle", "opt_in": "--trust-pickle", "given_by": "ops"}


@pytest.mark.slow
def test_a_trusted_run_under_oversight_records_who_trusted_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    needs_sumo()
    folder = controller(tmp_path / "entry")
    out = tmp_path / "ov"
    argv = ["oversee", "run", "--in-process", "--scenario", "grid3x3", "--seconds", "10"]
    code = main([*argv, "--controller", str(folder), "--out", str(out), "--trust-code", "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert code == 0
    assert obj["trusted"] == {
        "format": "entrypoint",
        "opt_in": "--trust-code",
        "given_by": os_user(),
    }
    assert read_trust(out) == obj["trusted"]
