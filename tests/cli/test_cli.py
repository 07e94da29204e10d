"""The root ``cityx`` command: help everywhere, and trial, submission, audit and demo.

Help runs in process; the rest runs ``python -m cityx.cli.main`` in a subprocess,
end to end, as a user would.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cityx.cli.main import _parser

from ..support.cli import cityx


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[list[str]]:
    """The root and every command that runs something (groups only list theirs)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found = [list(path)] if not groups or not path else []
    for action in groups:
        for name, sub in action.choices.items():
            found += _commands(sub, (*path, name))
    return found


@pytest.mark.parametrize("argv", _commands(_parser()), ids=lambda a: " ".join(a) or "cityx")
def test_every_command_has_help_with_an_example(argv: list[str]) -> None:
    run = cityx(*argv, "--help")
    assert run.code == 0
    assert "example" in run.out and "cityx" in run.out


def test_version() -> None:
    run = cityx("--version")
    assert run.code == 0 and run.out.startswith("cityx ")


def test_trial_json_is_one_object_and_fail_on_sets_the_exit(
    tiny_submission: Path, tmp_path: Path, store_url: str
) -> None:
    run = cityx(
        "trial",
        str(tiny_submission),
        "--out",
        str(tmp_path / "o"),
        "--store",
        store_url,
        "--json",
        "--fail-on",
        "conditional",
        inprocess=False,
    )
    doc = run.json()
    assert set(doc) == {"trial_id", "decision", "reasons", "results", "report"}
    assert run.code == (3 if doc["decision"] != "pass" else 0)
    assert Path(doc["report"]).is_file()


@pytest.fixture
def trialled_store(tiny_submission: Path, tmp_path: Path, store_url: str) -> str:
    """A store holding one complete trial, run through the CLI."""
    run = cityx(
        "trial",
        str(tiny_submission),
        "--out",
        str(tmp_path / "o"),
        "--store",
        store_url,
        inprocess=False,
    )
    assert run.code == 0, run.err
    return store_url


def test_bad_input_is_one_line_and_exit_2(tiny_submission: Path, store_url: str) -> None:
    (tiny_submission / "model.onnx").write_bytes(b"tampered")
    run = cityx("trial", str(tiny_submission), "--store", store_url, inprocess=False)
    assert run.code == 2
    assert run.err.count("\n") == 1 and "digest mismatch" in run.err
    assert "Traceback" not in run.err


def test_validate_lists_problems(tmp_path: Path) -> None:
    made = cityx("submission", "init", tmp_path / "s", "--kind", "predictor", inprocess=False)
    assert made.code == 0
    run = cityx("submission", "validate", str(tmp_path / "s"), "--json", inprocess=False)
    doc = run.json()
    assert run.code == 2 and not doc["ok"]
    assert all({"where", "message", "level"} == set(p) for p in doc["problems"])


def test_audit_verify_json_contract(trialled_store: str) -> None:
    run = cityx("audit", "verify", "--store", trialled_store, "--json", inprocess=False)
    doc = run.json()
    assert run.code == 0
    assert set(doc) == {"ok", "entries", "first_bad", "reason"} and doc["ok"]
    assert doc["entries"] >= 4


def test_audit_verify_catches_an_edited_entry(
    trialled_store: str,
) -> None:
    import sqlite3

    store_url = trialled_store
    db = sqlite3.connect(store_url.removeprefix("sqlite:///"))
    with db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    db.close()
    run = cityx("audit", "verify", "--store", store_url, "--json", inprocess=False)
    doc = run.json()
    assert run.code == 3 and doc["ok"] is False and doc["first_bad"] == 2


def test_an_unreachable_store_is_bad_input(tiny_submission: Path) -> None:
    run = cityx(
        "audit", "verify", "--store", "postgresql://postgres@127.0.0.1:1/nope", inprocess=False
    )
    assert run.code == 2 and run.err.startswith("cityx: error:")


@pytest.mark.slow
def test_demo_runs_and_prints_the_report(tmp_path: Path, store_url: str) -> None:
    run = cityx(
        "demo", "--out", str(tmp_path / "demo"), "--store", store_url, "--json", inprocess=False
    )
    assert run.code == 0, run.err
    doc = run.json()
    assert [t["submission"] for t in doc["trials"]] == ["metro-congestion", "acme-signals"]
    for trial in doc["trials"]:
        assert Path(trial["report"]).is_file()
    assert doc["trials"][0]["decision"] in {"pass", "conditional"}
    assert Path(doc["trials"][0]["aiverify"][0]).is_file()
    # The controller beats the baselines, but its red-team campaign may fail the gate.
    controller = json.loads(Path(doc["trials"][1]["results"]).read_text())
    ran = {c["id"]: c["status"] for c in controller["checks"]}
    assert ran["sandbox.nominal"] == "passed" and "redteam.campaign" in ran
    # The poisoning drill: a backdoor in metro-congestion's training data is found, and
    # sanitising takes the trigger's success down.
    drill = doc["poisoning_drill"]
    assert drill["verdict"] == "poisoned" and drill["decision"] == "fail"
    assert drill["f1"] >= 0.9 and "Before and after sanitising" in Path(drill["report"]).read_text()
    before_after = drill["sanitising"]
    assert before_after["attack_success_after"] < before_after["attack_success_before"] - 0.5


def test_an_anchor_reveals_a_truncated_log(
    trialled_store: str,
) -> None:
    import sqlite3

    store_url = trialled_store
    anchor = cityx("audit", "head", "--store", store_url, inprocess=False).out.strip()
    db = sqlite3.connect(store_url.removeprefix("sqlite:///"))
    with db:
        last = db.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
        prev = db.execute("SELECT hash FROM audit_log WHERE seq = ?", (last - 1,)).fetchone()[0]
        db.execute("DELETE FROM audit_log WHERE seq = ?", (last,))
        db.execute("UPDATE audit_head SET entries = ?, hash = ?", (last - 1, prev))
    db.close()
    chain_only = cityx("audit", "verify", "--store", store_url, inprocess=False)
    assert chain_only.code == 0  # the chain alone is fine
    run = cityx(
        "audit", "verify", "--store", store_url, "--anchor", anchor, "--json", inprocess=False
    )
    assert run.code == 3 and run.json()["ok"] is False
