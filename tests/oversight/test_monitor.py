"""The independent conflict monitor on real SUMO runs (cologne1: one junction, 20 links)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cityx.oversight import MonitorReport
from cityx.oversight.baseline_check import monitor_baseline
from cityx.worlds.traffic import SignalMode

from ..worlds.traffic.conftest import needs_resco, needs_sumo


def _run(folder: Path, mode: SignalMode, seconds: int = 120, inject: Any = None) -> MonitorReport:
    needs_sumo()
    needs_resco()
    return monitor_baseline("cologne1", folder, mode, seed=3, seconds=seconds, inject=inject)


@pytest.mark.parametrize("mode", list(SignalMode), ids=lambda m: m.value)
def test_the_baselines_pass_the_monitor(tmp_path: Path, mode: SignalMode) -> None:
    report = _run(tmp_path, mode)
    assert report.ok, report.to_json()["first"]
    assert report.steps == 120
    refs = next(iter(report.references.values()))
    # The city's own references, read from SUMO: 5 s yellows, 5 s minimum green.
    assert (refs.yellow_s, refs.min_green_s) == (5.0, 5.0) and refs.conflicting_pairs > 0


def test_an_all_green_state_injected_into_sumo_is_caught(tmp_path: Path) -> None:
    def all_green(sim: Any, elapsed: float, tls: str) -> None:
        if 60 <= elapsed < 63:
            sim.trafficlight.setRedYellowGreenState(tls, "G" * 20)

    report = _run(tmp_path, SignalMode.ENVELOPE, seconds=80, inject=all_green)
    # One per step it showed (the envelope may overwrite it in the same step).
    assert 2 <= report.conflict <= 3
    assert report.intergreen >= 1  # and leaving it skipped the yellow
    assert not report.ok
    first = report.violations[0]
    assert first.kind == "conflict" and "both green" in first.detail


def test_a_shortened_yellow_and_a_cut_green_are_counted(tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    def short_yellow(sim: Any, elapsed: float, tls: str) -> None:
        # At 70 s: the program's first green for 2 s (cut), 1 s of yellow, then red.
        if elapsed == 70:
            seen["green"] = "rrrrrGGGggrrrrrGGGgg"
            sim.trafficlight.setRedYellowGreenState(tls, seen["green"])
        elif elapsed == 72:
            sim.trafficlight.setRedYellowGreenState(tls, "rrrrryyyyyrrrrryyyyy")
        elif elapsed == 73:
            sim.trafficlight.setRedYellowGreenState(tls, "r" * 20)

    report = _run(tmp_path, SignalMode.PROGRAM, seconds=80, inject=short_yellow)
    kinds = {v.kind for v in report.violations}
    assert {"intergreen", "min_green"} <= kinds, report.to_json()["first"]
