"""World hooks: what sits on the sensor path and the world path (attacks, guards)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityx.worlds.traffic import WorldSpec, run_world

from .conftest import needs_resco, needs_sumo

HOOK = '''
from dataclasses import replace


class Blind:
    """Hides every queue from the controller and counts the seconds it did."""

    def __init__(self, network, folder, *, seed, share=1.0):
        self.calls = 0
        self.steps = 0
        self.share = share

    def observe(self, observation):
        self.calls += 1
        return replace(observation, halting=observation.halting * (1.0 - self.share))

    def before_step(self, simulation, time_s):
        self.steps += int(simulation.simulation.getTime() == time_s)

    def report(self):
        return {"calls": self.calls, "steps": self.steps, "share": self.share}


def blind(network, folder, **options):
    return Blind(network, folder, **options)
'''


@pytest.mark.slow
def test_a_hook_on_the_sensor_path_changes_what_the_controller_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_sumo()
    needs_resco()
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "blindness.py").write_text(HOOK)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "hooks"))

    def run(name: str, hooks: tuple[tuple[str, dict[str, float]], ...]) -> dict:
        spec = WorldSpec(
            scenario="cologne1",
            controller="max-pressure",
            seconds=300,
            seed=3,
            demand=1.5,
            out=tmp_path / name,
            hooks=hooks,
        )
        return run_world(spec).to_json()

    clean = run("clean", ())
    blinded = run("blind", (("blindness:blind", {"share": 1.0}),))
    assert blinded["hooks"] == [{"calls": 300, "steps": 300, "share": 1.0}]
    assert clean["hooks"] == []
    # Max-pressure without queues never sees a reason to switch but the maximum green.
    assert blinded["safety"]["switches"] < clean["safety"]["switches"]
