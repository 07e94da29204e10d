"""``cityx explain``: the --help example runs, the JSON contracts, and one-line input errors."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from cityx.worlds.traffic.candidates import FEATURE_NAMES
from cityx.worlds.traffic.choices import CHOICES_FILE, ControllerChoice, DecidedBy, EnvelopeOutcome

from ..support.cli import cityx

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "submissions" / "metro-congestion"
DATA = EXAMPLE / "data" / "holdout.csv"


def _help_example() -> list[str]:
    run = cityx("explain", "--help")
    assert run.code == 0 and "example:\n  cityx explain" in run.out
    return shlex.split(run.out.split("example:\n  cityx ", 1)[1].strip())


@pytest.mark.slow
def test_the_help_example_runs_and_keeps_the_json_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    run = cityx(*_help_example())
    assert run.code == 0, run.err
    doc = run.json()
    assert set(doc) >= {"method", "exact", "output", "background_rows", "global", "rows",
                        "fidelity", "wall_s"}  # fmt: skip
    assert doc["method"] == "tree-exact" and doc["output"] == "margin"
    assert [r["row"] for r in doc["rows"]] == [0, 5]
    for row in doc["rows"]:
        assert abs(row["base_value"] + sum(row["contributions"].values()) - row["output"]) < 1e-5
    card = {"additivity_max_error", "deletion_auc", "random_deletion_auc", "stability"}
    assert set(doc["fidelity"]) >= card | {"method_agreement"}
    dependence = doc["global"]["dependence"]
    assert dependence["class"] in ("free", "moderate", "heavy")
    assert len(dependence["points"]) == 3
    assert all(len(p) == 2 for points in dependence["points"].values() for p in points)


def test_input_errors_are_one_line(tmp_path: Path) -> None:
    run = cityx("explain", "--data", str(DATA))
    assert run.code == 2 and "missing --model" in run.err and run.err.count("\n") == 1
    run = cityx("explain", "--model", str(EXAMPLE), "--data", str(DATA), "--where", "nosuch=1")
    assert run.code == 2 and "--where" in run.err
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "spec.json").write_text(json.dumps({"controller": "my-controller"}))
    run = cityx("explain", "--world-run", str(folder))
    assert run.code == 2 and "no recorded controller choices" in run.err
    assert "cityx world run" in run.err


def test_world_run_json_contract(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "spec.json").write_text(json.dumps({"controller": "max-pressure"}))
    rows = (tuple([4.0, 1.0, 3.0] + [0.0] * 7), tuple([1.0, 0.0, 1.0] + [0.0] * 7))
    records = [
        ControllerChoice(
            time_s=float(t),
            intersection=tls,
            decided_by=DecidedBy.RULE,
            current_phase=0,
            chosen_phase=0,
            runner_up_phase=2,
            phases=(0, 2),
            scores=(3.0, 1.0),
            columns=FEATURE_NAMES,
            rows=rows,
            envelope=EnvelopeOutcome.KEPT,
        )
        for t in range(3)
        for tls in ("A", "B")
    ]
    (folder / CHOICES_FILE).write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    run = cityx("explain", "--world-run", str(folder), "--intersection", "B", "--at", "1", "--json")
    assert run.code == 0, run.err
    doc = run.json()
    (item,) = doc["intersections"]["B"]
    assert item["t"] == 1.0 and item["chosen"] == 0 and item["runner_up"] == 2
    assert item["decided_by"] == "rule" and item["margin"] == 2.0
    assert item["contributions"]["pressure"] == 2.0
    sentence = item["counterfactual"]["sentence"]
    assert "phase 2 would have won with 3 more halting vehicles on its served lanes" in sentence
    text = cityx("explain", "--world-run", str(folder), "--html", str(tmp_path / "run.html"))
    assert text.code == 0 and "A:" in text.out and "t=0 s: phase 0 over 2" in text.out
    page = (tmp_path / "run.html").read_text()
    assert page.count("<svg") == 2 and "Intersection A" in page and "runner-up" in page
    bad = cityx("explain", "--world-run", str(folder), "--html", str(tmp_path / "no" / "x.html"))
    assert bad.code == 2 and "--html" in bad.err
