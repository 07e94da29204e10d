"""Campaign plans, pairing and impact, findings: without SUMO (see test_campaign_sumo.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityx.core import InputError, Severity
from cityx.runs.campaign import (
    CLEAN,
    AttackedCell,
    CampaignPlan,
    Cell,
    CellRecord,
    Group,
    Thresholds,
    reproduce_file,
    summarise,
)


def plan(**changes: Any) -> CampaignPlan:
    values: dict[str, Any] = {
        "controller": "max-pressure",
        "scenarios": ("cologne1",),
        "attacks": ("world.phantom-queue",),
        "intensities": (0.5, 1.0),
        "seeds": (1, 2, 3),
        "seconds": 120,
    }
    values.update(changes)
    return CampaignPlan(**values)


def test_the_grid_pairs_every_attacked_cell_with_a_clean_one() -> None:
    cells = plan().cells()
    assert len(cells) == 3 + 2 * 3
    assert [c.attack for c in cells[:3]] == [CLEAN] * 3
    assert len({c.key for c in cells}) == len(cells)
    assert Cell("cologne1", "world.stale", 0.5, 2).key.endswith("/world.stale/i0.5/s2")
    assert plan().attack_start_s == 30 and plan(start_s=10).attack_start_s == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attacks": ("world.nope",)}, "unknown world attack 'world.nope'"),
        ({"intensities": (1.5,)}, "'intensity' must be a number in \\[0, 1\\]"),
        ({"attacks": ("message.tamper",)}, "only a submitted controller"),
        ({"controller": "smart"}, "unknown controller 'smart'"),
        ({"bus": "memory"}, "a bus wires a submitted controller"),
        ({"seeds": ()}, "seeds must be a non-empty list"),
        ({"seconds": 0}, "seconds must be positive"),
    ],
)
def test_bad_plans_are_one_clear_input_error(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        plan(**changes)


def test_a_plan_from_toml_with_a_seed_count_and_flag_overrides(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(
        'controller = "fixed"\nscenarios = ["cologne1"]\n'
        'attacks = ["world.phantom-vehicles", "world.stale"]\nintensities = [0.2]\n'
        'seeds = 3\nseconds = 90\n[params."world.stale"]\nmax_delay_s = 30\n'
        "[thresholds]\nsuccess_pct = 5.0\n"
    )
    p = CampaignPlan.from_toml(path, seconds=60, controller=None)
    assert p.seeds == (1, 2, 3) and p.seconds == 60 and p.controller == "fixed"
    assert p.thresholds.success_pct == 5.0
    assert p.attack_params("world.stale", 0.2)["max_delay_s"] == 30
    assert CampaignPlan.from_json(p.to_json()) == p
    path.write_text('controller = "fixed"\nscenario = ["x"]\n')
    with pytest.raises(InputError, match="unknown plan key\\(s\\) scenario"):
        CampaignPlan.from_toml(path)
    path.write_text("controller = ")
    with pytest.raises(InputError, match="not valid TOML"):
        CampaignPlan.from_toml(path)


def record(attack: str, seed: int, loss: float, **extra: Any) -> CellRecord:
    cell = Cell("cologne1", attack, 0.0 if attack == CLEAN else 1.0, seed)
    obj = {
        **cell.to_json(),
        "key": cell.key,
        "status": extra.get("status", "ok"),
        "error": extra.get("error"),
        "kpis": extra.get(
            "kpis",
            {"mean_time_loss_s": loss, "mean_waiting_s": loss / 2, "backlog": 0, "bus": None},
        ),
        "hooks": extra.get("hooks", []),
        "complete": True,
        "interop": extra.get("interop"),
        "wall_s": 1.5,
        "out": f"/campaign/cells/{cell.key}",
    }
    typed = CellRecord.from_json(obj)
    assert typed.to_json() == obj  # cell.json keeps its exact shape
    return typed


def guard(after: int) -> dict[str, Any]:
    return {
        "kind": "guard",
        "flagged_steps_after": after,
        "attack_start_s": 30.0,
        "first_flag_after_s": 42.0 if after else None,
        "checks": {},
    }


def test_impact_is_paired_by_seed_with_success_detection_and_a_finding(tmp_path: Path) -> None:
    p = plan(intensities=(1.0,), seeds=(1, 2, 3))
    attack_hook = {"kind": "attack", "cost": {"sensors": 2, "magnitude": 5.0, "unit": "veh"}}
    records = [
        record(CLEAN, 1, 20.0, hooks=[guard(1)]),
        record(CLEAN, 2, 40.0, hooks=[guard(0)]),
        record(CLEAN, 3, 10.0, hooks=[guard(0)]),
        record("world.phantom-queue", 1, 30.0, hooks=[attack_hook, guard(1)]),  # +50 %
        record("world.phantom-queue", 2, 48.0, hooks=[attack_hook, guard(9)]),  # +20 %
        record("world.phantom-queue", 3, 10.5, hooks=[attack_hook, guard(3)]),  # +5 %
    ]
    result = summarise(p, records, out=tmp_path)
    obj = result.to_json()
    cells = {c["seed"]: c for c in obj["cells"]}
    assert cells[1]["delta"]["mean_time_loss_s"] == 10.0 and cells[1]["delta"]["bus"] is None
    assert cells[2]["change_pct"]["mean_time_loss_s"] == pytest.approx(20.0)
    assert [cells[s]["success"] for s in (1, 2, 3)] == [True, True, False]
    # Guard flags are read against the clean run's false alarms.
    assert [cells[s]["detected"] for s in (1, 2, 3)] == [False, True, True]
    assert cells[2]["detection"]["guard_delay_s"] == 12.0
    (group,) = obj["groups"]
    assert group["success_rate"] == pytest.approx(2 / 3)
    # Change % is the paired mean delta over the clean mean (not the mean of +50/+20/+5 %).
    assert group["change_pct"]["value"] == pytest.approx(100 * (18.5 / 3) / (70 / 3))
    assert group["change_pct"]["ci_low"] < 0.0 < group["change_pct"]["ci_high"]
    assert group["delta"]["mean_time_loss_s"]["value"] == pytest.approx((10 + 8 + 0.5) / 3)
    assert group["detection_rate"]["guard"] == pytest.approx(2 / 3)
    assert group["cost"] == {"sensors": 2, "magnitude": 5.0, "unit": "veh"}
    (finding,) = result.findings
    # The interval runs from below 0 to above 50 %: nothing shown, critical not ruled out.
    assert (finding.severity, finding.severity_upper) == (Severity.LOW, Severity.CRITICAL)
    assert "critical not ruled out" in finding.title
    assert finding.tags.atlas == ("AML.T0043", "AML.T0015")
    # The command names the group's own plan, which the campaign writes in its folder.
    plan_file = reproduce_file(tmp_path, "cologne1", "world.phantom-queue", 1.0)
    assert finding.evidence.reproduce == f"cityx redteam run --plan {plan_file}"
    assert finding.evidence.files == (str(plan_file),)
    assert obj["schema_version"] == 1
    # Typed records round-trip through their JSON, and read like it too.
    assert [AttackedCell.from_json(c) for c in obj["cells"]] == list(result.cells)
    assert [Group.from_json(g) for g in obj["groups"]] == list(result.groups)
    assert result.groups[0].to_json() == group
    detection = result.cells[0].detection
    assert detection is not None and detection.guard is False


def test_no_finding_below_the_threshold_and_failed_cells_are_kept_apart(tmp_path: Path) -> None:
    p = plan(intensities=(1.0,), seeds=(1, 2))
    bad = record(
        "world.phantom-queue", 2, 0.0, status="failed", error="the simulation died", kpis={}
    )
    records = [
        record(CLEAN, 1, 20.0),
        record(CLEAN, 2, 20.0),
        record("world.phantom-queue", 1, 21.0),
        bad,
    ]
    result = summarise(p, records, out=tmp_path)
    assert not result.findings
    assert [f.error for f in result.failed] == ["the simulation died"]
    assert result.groups[0].n == 1
    assert {c.cell.seed: c.status for c in result.cells} == {1: "ok", 2: "failed"}
    assert result.cells[1].detection is None and result.cells[1].delta == {}


def test_interop_rejections_count_as_detection(tmp_path: Path) -> None:
    clean = record(CLEAN, 1, 20.0, interop={"observations": {"accepted": 10}})
    attacked = record(
        "world.phantom-queue",
        1,
        20.0,
        interop={"observations": {"accepted": 5, "rejected:bad_signature": 5}},
    )
    (cell,) = summarise(plan(seeds=(1,), intensities=(1.0,)), [clean, attacked], out=tmp_path).cells
    assert cell.detected and cell.detection is not None
    assert cell.detection.interop and not cell.detection.guard
    assert cell.detection.rejected_messages == 5


def test_severity_follows_the_thresholds() -> None:
    t = Thresholds(success_pct=5, high_pct=20, critical_pct=40)
    assert [t.severity(x) for x in (5, 20, 40)] == [
        Severity.MEDIUM,
        Severity.HIGH,
        Severity.CRITICAL,
    ]
    with pytest.raises(InputError, match="thresholds"):
        Thresholds(success_pct=30, high_pct=20)


def test_a_group_plan_written_as_toml_reads_back_equal(tmp_path: Path) -> None:
    full = plan(
        seeds=(4, 7),
        share=0.5,
        demand=1.5,
        params={"world.stale": {"max_delay_s": 30.0}},
        thresholds=Thresholds(success_pct=5.0, high_pct=20.0, critical_pct=40.0),
    )
    group = full.group("cologne1", "world.phantom-queue", 0.5)
    assert group.cells() == [c for c in full.cells() if c.intensity in (0.0, 0.5)]
    path = tmp_path / "g.toml"
    path.write_text(group.to_toml())
    assert CampaignPlan.from_toml(path) == group
    assert 'attacks = ["world.phantom-queue"]' in path.read_text()
    assert '[params."world.stale"]' in path.read_text()


def test_a_written_plan_names_its_folders_absolutely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme").mkdir()
    (tmp_path / "city.sumocfg").write_text("<configuration/>")
    p = plan(controller="acme", scenarios=("city.sumocfg", "cologne1")).with_absolute_paths()
    assert p.controller == str(tmp_path / "acme")
    assert p.scenarios == (str(tmp_path / "city.sumocfg"), "cologne1")
    assert plan().with_absolute_paths() == plan()  # plugins and scenario names stay names


@given(st.text(max_size=40))
def test_any_scenario_name_survives_the_toml_form(text: str) -> None:
    import tomllib

    p = plan(scenarios=(text,))
    assert CampaignPlan.from_json(tomllib.loads(p.to_toml())) == p
