"""World hooks: what sits on the sensor path and the world path (attacks, guards)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityx.worlds.traffic import WorldSpec, run_world

from .conftest import needs_resco, needs_sumo


@pytest.mark.slow
def test_a_hook_on_the_sensor_path_changes_what_the_controller_sees(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()

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
    # Every detector hides every vehicle: the hook is named by its plugin kind and id.
    blind = {"intensity": 1.0, "share": 1.0}
    blinded = run("blind", (("attack:world.hidden-vehicles", blind),))
    [report] = blinded["hooks"]
    assert report["attack"] == "world.hidden-vehicles" and report["active_steps"] == 300
    assert clean["hooks"] == []
    # Max-pressure without queues never sees a reason to switch but the maximum green.
    assert blinded["safety"]["switches"] < clean["safety"]["switches"]
