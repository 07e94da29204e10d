"""Reused cells: an observation-path attack cannot reach a controller that reads no observation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityx.attacks import AttackPath, attack_path, world_attack
from cityx.runs.campaign import CampaignPlan, run_campaign
from cityx.runs.campaign.plan import Cell
from cityx.runs.campaign.run import run_cell
from cityx.worlds.traffic import controller_plugin, reads_observations

from ..support.paths import SUBMISSIONS
from .test_campaign_sumo import needs_sumo_and_resco

SENSOR = "world.stuck-at"
PHANTOM = "world.phantom-vehicles"


def test_controllers_and_attacks_declare_what_they_read_and_where_they_act() -> None:
    assert not controller_plugin("fixed").reads_observations
    assert not controller_plugin("actuated").reads_observations
    assert controller_plugin("max-pressure").reads_observations
    assert reads_observations(str(SUBMISSIONS / "acme-signals"))  # a submission always does
    assert attack_path(world_attack(SENSOR)) is AttackPath.OBSERVATION
    assert attack_path(world_attack(PHANTOM)) is AttackPath.WORLD
    assert attack_path(world_attack("message.tamper")) is AttackPath.MESSAGE


@pytest.mark.parametrize("controller", ["fixed", "actuated", "max-pressure"])
def test_only_observation_attacks_on_controllers_that_read_none_are_reused(
    controller: str,
) -> None:
    plan = CampaignPlan(controller, ("cologne1",), (SENSOR, "world.stale", PHANTOM))
    reasons = {c.attack: plan.reuse_reason(c) for c in plan.cells()}
    assert reasons["none"] is None and reasons[PHANTOM] is None
    blind = controller != "max-pressure"
    assert (reasons[SENSOR] is not None) is blind
    assert (reasons["world.stale"] is not None) is blind
    if blind:
        assert "observation path" in str(reasons[SENSOR])


@pytest.mark.slow
@pytest.mark.parametrize("controller", ["fixed", "actuated"])
def test_a_reused_cell_has_the_kpis_its_simulation_would_have(
    controller: str, tmp_path: Path
) -> None:
    needs_sumo_and_resco()
    plan = CampaignPlan(
        controller,
        ("cologne1",),
        (SENSOR, PHANTOM),
        intensities=(1.0,),
        seeds=(1,),
        seconds=60,
        share=1.0,
        start_s=10,
    )
    result = run_campaign(plan, tmp_path / "c", workers=2, record=False)
    assert result.reused == 1 and result.ran == 2  # clean and phantom simulated
    cells = {c.cell.attack: c for c in result.cells}
    assert cells[SENSOR].reused is not None and cells[PHANTOM].reused is None
    assert cells[SENSOR].detection is None  # the guard never saw the attacked observations
    written = json.loads((tmp_path / "c" / "campaign.json").read_text())
    assert written["reused"] == 1
    (row,) = [c for c in written["cells"] if c["attack"] == SENSOR]
    assert row["reused"]["from"] == Cell("cologne1", "none", 0.0, 1).key
    assert "reads no observation" in row["reused"]["reason"]
    # The same cell, simulated: the attack held the lanes, yet the controller never asked
    # for an observation (SUMO runs its signals), so no KPI moved.
    simulated = run_cell(plan, Cell("cologne1", SENSOR, 1.0, 1), tmp_path / "sim")
    assert simulated.ok, simulated.error
    report = simulated.hook("attack")
    assert report["cost"]["sensors"] > 0 and report["active_steps"] == 0
    assert dict(simulated.kpis) == dict(cells[SENSOR].kpis)


@pytest.mark.slow
def test_the_same_attack_does_reach_a_controller_that_reads_observations(
    tmp_path: Path,
) -> None:
    """What makes the test above able to fail: this attack, here, moves max-pressure."""
    needs_sumo_and_resco()
    plan = CampaignPlan(
        "max-pressure",
        ("cologne1",),
        (SENSOR,),
        intensities=(1.0,),
        seeds=(1,),
        seconds=60,
        share=1.0,
        start_s=10,
    )
    result = run_campaign(plan, tmp_path / "c", workers=2, record=False)
    assert result.reused == 0 and result.ran == 2
    (cell,) = result.cells
    assert cell.reused is None and cell.detection is not None
    assert dict(cell.kpis) != dict(result.clean[0].kpis)
