"""``cityx report render|compare`` and ``cityx evidence pack|verify`` from the command line."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
from pathlib import Path

import pytest

from cityx.cli.main import _parser

from ..support.cli import cityx

GOLDEN = Path(__file__).parents[1] / "governance" / "golden" / "results-example.json"


def _trial(folder: Path, trial_id: str) -> Path:
    folder.mkdir(parents=True)
    doc = json.loads(GOLDEN.read_text("utf-8"))
    doc["trial_id"] = trial_id
    # Two checks of the golden trial: a short report keeps the PDF examples quick.
    keep = {"admission", "performance.nominal"}
    doc["checks"] = [c for c in doc["checks"] if c["id"] in keep]
    doc["findings"] = [f for f in doc["findings"] if f["check"] in keep]
    (folder / "results.json").write_text(json.dumps(doc), "utf-8")
    (folder / "events.jsonl").write_text('{"event": "start"}\n', "utf-8")
    return folder


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A folder laid out like 'cityx demo' output, with the city's key from keygen."""
    for name in ("acme-signals", "metro-congestion", "poisoning-drill/trial"):
        _trial(tmp_path / "cityx-demo" / name, f"t-{name.split('/')[0]}")
    run = cityx(
        "interop", "keygen", "--issuer", "urn:cityx:city:cologne", "--out", "city-key", cwd=tmp_path
    )
    assert run.code == 0, run.err
    return tmp_path


def _example(*path: str) -> list[str]:
    parser = _parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    assert parser.epilog is not None
    return shlex.split(parser.epilog.split("example:\n", 1)[1])[1:]


@pytest.mark.slow
def test_every_help_example_runs(demo: Path) -> None:
    for path in (
        ("report", "render"),
        ("report", "compare"),
        ("evidence", "pack"),
        ("evidence", "verify"),
    ):
        run = cityx(*_example(*path), cwd=demo)
        assert run.code == 0, (path, run.err)
    assert (demo / "acme-summary.pdf").read_bytes().startswith(b"%PDF")
    assert (demo / "evidence-acme" / "report.pdf").read_bytes().startswith(b"%PDF")


def test_render_html_json_and_bad_input(demo: Path) -> None:
    trial = demo / "cityx-demo" / "acme-signals"
    run = cityx(
        "report",
        "render",
        trial,
        "--format",
        "json",
        "--framework",
        "euai",
        "--out",
        demo / "r.json",
        "--json",
    )
    assert run.code == 0, run.err
    doc = run.json()
    assert set(doc["frameworks"]) == {"euai"}
    report = json.loads((demo / "r.json").read_text())
    assert report["frameworks"][0]["source"].startswith("Regulation (EU) 2024/1689")
    html = cityx("report", "render", trial, "--out", demo / "r.html")
    assert html.code == 0
    page = (demo / "r.html").read_text()
    assert 'id="fw-nist"' in page and 'id="claims"' in page and "Art. 14(4)(e)" in page
    summary = cityx("report", "render", trial, "--summary", "--out", demo / "s.html")
    assert summary.code == 0 and "Requirements by framework" in (demo / "s.html").read_text()
    bad = cityx("report", "render", trial, "--framework", "iso", "--out", demo / "x.html")
    assert bad.code == 2 and "unknown framework 'iso'" in bad.err
    missing = cityx("report", "render", demo, "--out", demo / "x.html")
    assert missing.code == 2 and "results.json is missing" in missing.err
    assert not (demo / "x.html").exists()


def test_a_checklist_in_the_wrong_format_names_the_row(demo: Path) -> None:
    trial = demo / "cityx-demo" / "acme-signals"
    sheet = demo / "answers.csv"
    sheet.write_text("id,principle,answer,author\ntransparency.intended-use,transparency,maybe,A\n")
    run = cityx("report", "render", trial, "--checklist", sheet, "--out", demo / "x.html")
    assert run.code == 2
    assert "answers.csv:2" in run.err and "'maybe'" in run.err


def test_compare_prints_changes(demo: Path) -> None:
    run = cityx(
        "report",
        "compare",
        demo / "cityx-demo" / "acme-signals",
        demo / "cityx-demo" / "metro-congestion",
        "--json",
    )
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["old_trial"] == "t-acme-signals" and doc["finding_counts"]["unchanged"] > 0


def test_pack_and_verify_exit_codes(demo: Path) -> None:
    trial = demo / "cityx-demo" / "acme-signals"
    run = cityx(
        "evidence",
        "pack",
        trial,
        "--key",
        "city-key",
        "--out",
        "pkg",
        "--no-pdf",
        "--trust",
        "city-key",
        cwd=demo,
    )
    assert run.code == 0, run.err
    ok = cityx("evidence", "verify", "pkg", "--trust", "city-key", "--json", cwd=demo)
    assert ok.code == 0 and ok.json()["ok"]
    headed = cityx(
        "evidence",
        "pack",
        trial,
        "--key",
        "city-key",
        "--out",
        "pkg-h",
        "--no-pdf",
        "--store",
        f"sqlite:///{demo / 'cityx.db'}",
        cwd=demo,
    )
    assert headed.code == 0, headed.err
    head = json.loads((demo / "pkg-h" / "audit-head.json").read_text())
    assert set(head) == {"entries", "hash"}
    (demo / "pkg" / "ledgers" / "events.jsonl").write_text("{}\n")
    bad = cityx("evidence", "verify", "pkg", "--trust", "city-key", "--json", cwd=demo)
    assert bad.code == 3
    assert bad.json()["problems"][0]["subject"] == "ledgers/events.jsonl"
    other = cityx(
        "interop", "keygen", "--issuer", "urn:cityx:city:bonn", "--out", "other", cwd=demo
    )
    assert other.code == 0
    refused = cityx(
        "evidence",
        "pack",
        trial,
        "--key",
        "other",
        "--out",
        "pkg2",
        "--no-pdf",
        "--trust",
        "city-key",
        cwd=demo,
    )
    assert refused.code == 2 and "not in the trust store" in refused.err
    assert not (demo / "pkg2").exists()
    unknown = cityx("evidence", "verify", "pkg", "--trust", "other", cwd=demo)
    assert unknown.code == 3 and "unknown to the trust store" in unknown.out
    no_trust = cityx("evidence", "verify", "pkg", "--trust", "nowhere", cwd=demo)
    assert no_trust.code == 2
    shutil.rmtree(demo / "pkg")
