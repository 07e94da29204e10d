"""A sandbox run records its controller choices, and they are explained (SUMO, short runs)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from cityx.assess.explain.controller import explain_world_run
from cityx.worlds.traffic import WorldSpec, run_world
from cityx.worlds.traffic.choices import CHOICES_FILE, ControllerChoice

pytestmark = pytest.mark.slow


def needs_sumo() -> None:
    # find_spec, not import: importing libsumo here would print on our stdout.
    for name in ("sumo", "libsumo", "sumolib"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (the cityx[sumo] extra)")


def test_max_pressure_run_records_and_explains_its_choices(tmp_path: Path) -> None:
    needs_sumo()
    result = run_world(
        WorldSpec(scenario="grid3x3", controller="max-pressure", seconds=120, seed=3, out=tmp_path)
    )
    lines = (tmp_path / CHOICES_FILE).read_text().splitlines()
    records = [ControllerChoice.from_json(json.loads(line)) for line in lines]
    assert len(records) == result.steps * 9  # every intersection, every step
    outcomes = Counter(r.envelope.value for r in records if r.envelope is not None)
    assert sum(outcomes.values()) == len(records)
    assert result.safety is not None and outcomes["switched"] == result.safety.switches
    explained = explain_world_run(tmp_path, intersection="B1")
    assert explained.method == "rule" and explained.additivity_max_error == 0.0
    assert len(explained.intersections["B1"]) == result.steps


def test_an_actuated_run_is_decided_inside_sumo(tmp_path: Path) -> None:
    needs_sumo()
    run_world(
        WorldSpec(scenario="grid3x3", controller="actuated", seconds=30, seed=3, out=tmp_path)
    )
    assert not (tmp_path / CHOICES_FILE).exists()
    explained = explain_world_run(tmp_path)
    assert explained.method == "sumo" and "inside SUMO" in explained.note
