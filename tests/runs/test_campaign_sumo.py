"""Campaigns in SUMO: the CLI handler, resuming a killed campaign, message attacks, Ray."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cityx.cli.campaign import add_run_command, plan_from_args
from cityx.runs.campaign import CELL_FILE, CampaignPlan, reproduce_file, run_campaign
from cityx.runs.campaign.summary import REPRODUCE
from cityx.store import Store

from ..support.cli import cityx
from ..support.paths import SUBMISSIONS

ACME = SUBMISSIONS / "acme-signals"


def needs_sumo_and_resco() -> None:
    import importlib.util

    for name in ("sumo", "libsumo", "sumolib"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (the cityx[sumo] extra)")
    from cityx.worlds.traffic.catalogue import _resco_folder

    if _resco_folder() is None:
        pytest.skip("sumo-rl (the RESCO networks) is not installed")


def redteam_run(argv: list[str]) -> dict[str, Any]:
    """``cityx redteam ARGV`` in process, which must succeed; its one JSON object."""
    run = cityx("redteam", *argv)
    assert run.code == 0, run.err
    assert run.out.count("\n") == 1  # --json: exactly one JSON object
    obj: dict[str, Any] = run.json()
    return obj


@pytest.mark.slow
def test_redteam_run_pairs_cells_writes_campaign_json_and_the_store_and_resumes(
    tmp_path: Path,
) -> None:
    needs_sumo_and_resco()
    store = f"sqlite:///{tmp_path / 'cityx.db'}"
    argv = [
        "run", "max-pressure", "--scenario", "cologne1",
        "--attacks", "world.cv-spoof,world.phantom-vehicles", "--intensity", "1",
        "--seeds", "1", "--seconds", "120", "--demand", "1.5", "--workers", "2",
        "--out", str(tmp_path / "c"), "--store", store, "--json",
    ]  # fmt: skip
    obj = redteam_run(argv)
    assert obj["ran"] == 3 and obj["skipped"] == 0 and not obj["failed"]
    cells = {c["attack"]: c for c in obj["cells"]}
    assert set(cells) == {"world.cv-spoof", "world.phantom-vehicles"}
    campaign = json.loads((tmp_path / "c" / "campaign.json").read_text())
    (clean,) = campaign["clean"]
    for cell in cells.values():
        assert {"scenario", "attack", "intensity", "seed", "kpis", "delta", "detected"} <= set(cell)
        for kpi, value in cell["kpis"].items():
            if isinstance(value, int | float) and clean["kpis"][kpi] is not None:
                assert cell["delta"][kpi] == pytest.approx(value - clean["kpis"][kpi])
    # The fake connected vehicle claims a queue the detectors' occupancy does not show.
    spoof = cells["world.cv-spoof"]["detection"]
    assert spoof["guard"] and spoof["guard_checks"]["queue_without_occupancy"] > 0
    assert cells["world.phantom-vehicles"]["cost"]["magnitude"] > 0
    with Store.open(store) as db:
        (entry,) = [e for e in db.audit_entries() if e.action == "campaign.finished"]
    assert entry.payload["cells"] == 3
    # Each group's plan is written beside the cells; the command naming it parses back to it.
    plan = CampaignPlan.from_json(campaign["plan"])
    for attack in cells:
        path = reproduce_file(tmp_path / "c", "cologne1", attack, 1.0)
        parser = argparse.ArgumentParser(prog="cityx redteam")
        add_run_command(parser.add_subparsers(dest="subcommand", required=True))
        command = shlex.split(REPRODUCE.format(plan=shlex.quote(str(path))))
        assert command[:3] == ["cityx", "redteam", "run"]
        group = plan_from_args(parser.parse_args(command[2:]))
        assert group == plan.group("cologne1", attack, 1.0)
    # Re-running the same command finds every cell done and counts none twice.
    again = redteam_run(argv)
    assert again["ran"] == 0 and again["skipped"] == 3 and again["cells"] == obj["cells"]


KILLED = """
import sys
from pathlib import Path
from cityx.runs.campaign import CampaignPlan, run_campaign
plan = CampaignPlan.from_json({plan!r})
run_campaign(plan, Path(sys.argv[1]), workers=1, record=False)
"""


@pytest.mark.slow
def test_a_killed_campaign_resumes_and_never_counts_a_cell_twice(tmp_path: Path) -> None:
    needs_sumo_and_resco()
    plan = CampaignPlan(
        controller="max-pressure",
        scenarios=("cologne1",),
        attacks=("world.stale", "world.blackout"),
        intensities=(1.0,),
        seeds=(1, 2),
        seconds=60,
    )
    out = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED.format(plan=plan.to_json()), str(out)],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not list(out.glob(f"cells/**/{CELL_FILE}")):
            time.sleep(0.2)
        done_before = {p.parent for p in out.glob(f"cells/**/{CELL_FILE}")}
        assert done_before, "no cell finished in time"
    finally:
        os.kill(child.pid, signal.SIGKILL)  # the campaign process only; its world runs orphan
        child.wait()
    assert len(done_before) < 6
    result = run_campaign(plan, out, workers=2, record=False)
    assert result.skipped >= len(done_before) and result.ran + result.skipped == 6
    assert not result.failed
    keys = [c.cell.key for c in result.cells] + [c.key for c in result.clean]
    assert len(keys) == len(set(keys)) == 6
    assert len(list(out.glob(f"cells/**/{CELL_FILE}"))) == 6
    assert not list(out.glob("cells/**/child.pid"))


@pytest.mark.slow
def test_message_tampering_on_the_secure_loop_is_rejected_and_costs_the_lanes(
    tmp_path: Path,
) -> None:
    needs_sumo_and_resco()
    plan = CampaignPlan(
        controller=str(ACME),
        scenarios=("cologne1",),
        attacks=("message.tamper",),
        intensities=(1.0,),
        seeds=(1,),
        seconds=60,
    )
    assert plan.bus == "memory"
    result = run_campaign(plan, tmp_path / "m", record=False)
    (cell,) = result.cells
    assert cell.status == "ok" and cell.detection is not None and cell.detection.interop
    assert cell.detection.rejected_messages > 0
    assert cell.cost is not None and cell.cost.unit == "messages altered or injected"


@pytest.mark.slow
def test_cells_run_as_ray_tasks(tmp_path: Path) -> None:
    needs_sumo_and_resco()
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        plan = CampaignPlan(
            controller="max-pressure",
            scenarios=("cologne1",),
            attacks=("world.phantom-queue",),
            intensities=(1.0,),
            seeds=(1,),
            seconds=60,
        )
        result = run_campaign(plan, tmp_path / "r", engine="ray", record=False)
    finally:
        ray.shutdown()
    assert result.ran == 2 and not result.failed
    detection = result.cells[0].detection
    assert detection is not None and detection.guard_flagged_steps > 0


@pytest.mark.slow
def test_the_trial_check_runs_a_small_campaign_on_a_submission(tmp_path: Path) -> None:
    needs_sumo_and_resco()
    from cityx.core import CheckContext, CheckStatus, Direction, Threshold
    from cityx.runs.campaign.check import RedteamCampaign
    from cityx.runs.campaign.details import CampaignDetails
    from cityx.runs.sandbox import SandboxRunner

    ctx = CheckContext(
        submission_dir=ACME,
        manifest=None,
        seed=0,
        world=SandboxRunner(ACME, tmp_path / "trial" / "world"),
        thresholds={"failed_cells": Threshold("failed_cells", Direction.MAX, fail=0)},
        options={
            "scenario": "cologne1",
            "attacks": ["world.stuck-at"],
            "seeds": [1, 2],
            "seconds": 60,
            "baselines": ["max-pressure"],
        },
    )
    result = RedteamCampaign().run(ctx)
    assert result.status is not CheckStatus.ERROR, result.message
    # The baseline faced the same campaign, and each group is set against it.
    assert isinstance(result.details, CampaignDetails)
    (theirs,) = result.details.baselines["max-pressure"]
    assert (theirs.attack, theirs.seeds) == ("world.stuck-at", (1, 2))
    assert [v.best for v in result.details.versus] == ["max-pressure"]
    assert (
        tmp_path / "trial" / "redteam" / "baselines" / "max-pressure" / "campaign.json"
    ).is_file()
    assert result.metrics["failed_cells"].value == 0
    assert result.metrics["worst_change_pct"].value is not None
    assert (tmp_path / "trial" / "redteam" / "campaign.json").is_file()
    assert isinstance(result.details, CampaignDetails)
    assert [g.attack for g in result.details.groups] == ["world.stuck-at"]
    assert all(f.check == "redteam.campaign" for f in result.findings)
