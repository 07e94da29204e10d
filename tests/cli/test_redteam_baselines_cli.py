"""``cityx redteam run --baselines``: baselines face the same campaign, side by side."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from ..runs.test_campaign_sumo import needs_sumo_and_resco
from ..support.cli import cityx


def _example() -> list[str]:
    """The example ``cityx redteam run --help`` shows, as arguments after ``cityx``."""
    help_text = cityx("redteam", "run", "--help").out
    words = shlex.split(help_text.split("example:\n", 1)[1].strip().splitlines()[0])
    assert words[0] == "cityx"
    return words[1:]


@pytest.mark.slow
def test_the_help_example_runs_the_baselines_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_sumo_and_resco()
    monkeypatch.chdir(tmp_path)
    example = _example()
    assert "--baselines" in example
    store = ("--store", f"sqlite:///{tmp_path / 'cityx.db'}")
    run = cityx(*example, *store)
    assert run.code == 0, run.err
    obj = run.json()
    assert set(obj["baselines"]) == {"fixed", "actuated"}
    for name, baseline in obj["baselines"].items():
        # world.stuck-at only rewrites observations, which neither baseline reads.
        assert baseline["reused"] == 2 and baseline["ran"] == 2, name
        (group,) = baseline["groups"]
        assert group["change_pct"]["value"] == 0.0
        assert group["detection_rate"]["guard"] is None  # not assessed, not "0 %"
    assert obj["reused"] == 0 and obj["ran"] == 4  # max-pressure reads observations
    (versus,) = obj["versus"]
    assert versus["best"] in {"fixed", "actuated"} and versus["attack"] == "world.stuck-at"
    written = json.loads((tmp_path / "out" / "redteam" / "campaign.json").read_text())
    assert written["versus"] == obj["versus"]
    # The text form: one row per controller, and what was reused.
    text = cityx(*[a for a in example if a != "--json"], *store)  # resumes: nothing re-run
    assert text.code == 0, text.err
    rows = [line.split()[0] for line in text.out.splitlines()[1:4]]
    assert rows == ["max-pressure", "fixed", "actuated"]
    assert "baseline fixed: 2 cell(s) reused" in text.out


def test_an_unknown_baseline_is_refused_before_anything_runs(tmp_path: Path) -> None:
    run = cityx(
        *("redteam", "run", "fixed", "--scenario", "cologne1", "--attacks", "world.stale"),
        *("--baselines", "fixed,nope", "--out", str(tmp_path / "c")),
    )
    assert run.code == 2 and "unknown baseline 'nope'" in run.err
    assert not (tmp_path / "c").exists()
