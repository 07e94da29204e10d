"""A campaign's impact: pure functions from cell records to groups and findings.

Each attacked cell is paired with the clean cell of its scenario and seed
(see :mod:`.records` for delta, change, success, detection and cost). Per
group the paired deltas get 95 % t intervals over seeds
(:func:`cityx.assess.sandbox.paired`), with the success rate, detection
rates and cost. A group whose mean change reaches the plan's
``success_pct`` becomes a *finding*, with a severity from the thresholds,
the attack's ATLAS tags and a command that reproduces it: it names the
group's *reproduction plan*, the campaign's plan cut down to that group,
which the campaign writes to ``reproduce/GROUP.toml`` in its folder.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cityx.assess.sandbox import paired
from cityx.attacks import AttackTarget, world_attack
from cityx.core import Evidence, Finding, NistFunction, Principle, Tags

from .plan import CLEAN, CampaignPlan, group_key
from .records import (
    AttackCost,
    AttackedCell,
    CampaignResult,
    CellRecord,
    CleanCell,
    Detection,
    DetectionRates,
    FailedCell,
    Group,
    PairedDelta,
)

# The overall KPIs whose paired differences a group summarises.
SUMMARISED = (
    "mean_waiting_s",
    "mean_time_loss_s",
    "p95_waiting_s",
    "arrived",
    "backlog",
    "teleports",
    "collisions",
    "bus_mean_delay_s",
    "emergency_mean_delay_s",
)
REPRODUCE_DIR = "reproduce"
# The one command spelling runs needs: a plan file is the whole recipe of a re-run.
REPRODUCE = "cityx redteam run --plan {plan}"


def reproduce_file(out: Path, scenario: str, attack: str, intensity: float) -> Path:
    """Where a campaign in ``out`` keeps the reproduction plan of one group."""
    return out / REPRODUCE_DIR / f"{group_key(scenario, attack, intensity)}.toml"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _delta(attacked: Mapping[str, Any], clean: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in clean:
        a, c = _number(attacked.get(key)), _number(clean.get(key))
        out[key] = round(a - c, 6) if a is not None and c is not None else None
    return out


def detection(attacked: CellRecord, clean: CellRecord) -> Detection:
    """Whether the guard or the interop verification noticed, against the clean run."""
    guard_a, guard_c = attacked.hook("guard"), clean.hook("guard")
    flags = int(guard_a.get("flagged_steps_after", 0))
    false_alarms = int(guard_c.get("flagged_steps_after", 0))
    guard = bool(guard_a) and flags > false_alarms
    start = guard_a.get("attack_start_s")
    first = guard_a.get("first_flag_after_s")
    return Detection(
        guard=guard,
        interop=attacked.rejections() > clean.rejections(),
        guard_flagged_steps=flags,
        guard_false_alarm_steps=false_alarms,
        guard_delay_s=first - start if guard and first is not None and start is not None else None,
        guard_checks=dict(guard_a.get("checks", {})),
        rejected_messages=attacked.rejections(),
    )


def change_pct(delta: float | None, clean: float | None) -> float | None:
    """``delta`` as a percent of the clean value (None when the clean value is 0 or unknown)."""
    if delta is None or clean is None or clean == 0:
        return None
    return 100.0 * delta / abs(clean)


def pair(plan: CampaignPlan, record: CellRecord, clean: CellRecord | None) -> AttackedCell:
    """An attacked cell's record against its clean run's (None when that never ran)."""
    kpi = plan.thresholds.kpi
    base = clean if record.ok and clean is not None and clean.ok else None
    delta = _delta(record.kpis, base.kpis) if base is not None else {}
    pct = change_pct(delta.get(kpi), _number(base.kpis.get(kpi))) if base is not None else None
    attack = record.hook("attack") or (record.interop or {}).get("attack") or {}
    return AttackedCell(
        cell=record.cell,
        status=record.status if base is not None else "failed",
        kpis=record.kpis,
        delta=delta,
        kpi=kpi,
        change_pct=None if pct is None else round(pct, 3),
        success=pct is not None and pct >= plan.thresholds.success_pct,
        detection=detection(record, base) if base is not None else None,
        cost=AttackCost.from_json(attack.get("cost")),
    )


def summarise(
    plan: CampaignPlan,
    records: Sequence[CellRecord],
    *,
    out: Path,
    ran: int = 0,
    skipped: int = 0,
) -> CampaignResult:
    """Pair each attacked cell with its clean run; group by attack and intensity; findings."""
    clean = {(r.cell.scenario, r.cell.seed): r for r in records if r.cell.attack == CLEAN}
    cells = [
        pair(plan, r, clean.get((r.cell.scenario, r.cell.seed)))
        for r in records
        if r.cell.attack != CLEAN
    ]
    groups: list[Group] = []
    findings: list[Finding] = []
    keys = dict.fromkeys((c.cell.scenario, c.cell.attack, c.cell.intensity) for c in cells)
    for scenario, attack, intensity in keys:
        members = [
            c
            for c in cells
            if (c.cell.scenario, c.cell.attack, c.cell.intensity) == (scenario, attack, intensity)
            and c.status == "ok"
        ]
        group = _group(plan, scenario, attack, intensity, members, clean)
        groups.append(group)
        finding = _finding(plan, group, out)
        if finding is not None:
            findings.append(finding)
    return CampaignResult(
        plan=plan,
        cells=tuple(cells),
        clean=tuple(
            CleanCell(r.cell.scenario, r.cell.seed, r.status, r.kpis)
            for r in records
            if r.cell.attack == CLEAN
        ),
        groups=tuple(groups),
        findings=tuple(findings),
        failed=tuple(FailedCell(r.cell, r.error) for r in records if not r.ok),
        ran=ran,
        skipped=skipped,
        out=out,
    )


def _group(
    plan: CampaignPlan,
    scenario: str,
    attack: str,
    intensity: float,
    members: Sequence[AttackedCell],
    clean: Mapping[tuple[str, int], CellRecord],
) -> Group:
    kpi = plan.thresholds.kpi
    deltas = {}
    for name in SUMMARISED:
        values = [c.delta.get(name) for c in members]
        known = [v for v in values if v is not None]
        deltas[name] = PairedDelta(paired(known), len(known))
    pcts = [c.change_pct for c in members if c.change_pct is not None]
    clean_kpi = [_number(clean[(c.cell.scenario, c.cell.seed)].kpis.get(kpi)) for c in members]
    costs = [c.cost for c in members if c.cost is not None]
    n = len(members)
    return Group(
        scenario=scenario,
        attack=attack,
        intensity=intensity,
        seeds=tuple(c.cell.seed for c in members),
        delta=deltas,
        kpi=kpi,
        change_pct=paired(pcts),
        clean_mean=(
            sum(v for v in clean_kpi if v is not None)
            / max(1, sum(v is not None for v in clean_kpi))
        ),
        success_rate=sum(c.success for c in members) / n if n else None,
        detection_rate=DetectionRates(
            *(
                sum(bool(c.detection and getattr(c.detection, src)) for c in members) / n
                if n
                else None
                for src in ("guard", "interop", "any")
            )
        ),
        cost=AttackCost(
            sensors=max((c.sensors for c in costs), default=0),
            magnitude=sum(float(c.magnitude or 0.0) for c in costs) / len(costs) if costs else None,
            unit=costs[0].unit if costs else None,
        ),
    )


def _finding(plan: CampaignPlan, group: Group, out: Path) -> Finding | None:
    thresholds = plan.thresholds
    change = group.change_pct.value
    if change is None or change < thresholds.success_pct:
        return None
    spec = world_attack(group.attack).spec
    severity = thresholds.severity(change)
    detected = group.detection_rate
    noticed = (
        "the runtime guard noticed it"
        if detected.guard
        else "interop verification noticed it"
        if detected.interop
        else "neither the guard nor interop verification noticed it"
    )
    kpi = thresholds.kpi
    principle = Principle.SECURITY if spec.target is AttackTarget.MESSAGE else spec.principle
    plan_file = reproduce_file(out, group.scenario, group.attack, group.intensity)
    return Finding(
        id=f"redteam.campaign/{group.scenario}/{group.attack}/i{group.intensity:g}",
        check="redteam.campaign",
        title=f"{spec.id} at intensity {group.intensity:g} worsens {kpi} by {change:.0f} % "
        f"on {group.scenario}",
        severity=severity,
        severity_reason=f"mean {kpi} change {change:+.1f} % over {group.n} seed(s) "
        f"(thresholds: medium {thresholds.success_pct:g} %, high {thresholds.high_pct:g} %, "
        f"critical {thresholds.critical_pct:g} %); {noticed}",
        tags=Tags(principle, NistFunction.MEASURE, spec.atlas, ("Art. 15",)),
        description=f"{spec.goal}. Attacker cost: {group.cost.sensors} sensor(s), "
        f"{group.cost.magnitude} {group.cost.unit}.",
        evidence=Evidence(
            metrics={
                f"{kpi}_change_pct": change,
                f"{kpi}_change_pct_ci_low": group.change_pct.ci_low,
                f"{kpi}_change_pct_ci_high": group.change_pct.ci_high,
                **{f"{k}_delta": group.delta[k].metric.value for k in SUMMARISED},
                "success_rate": group.success_rate,
                "guard_detection_rate": detected.guard,
                "interop_detection_rate": detected.interop,
                "sensors_controlled": group.cost.sensors,
            },
            files=(str(plan_file),),
            seed=group.seeds[0] if group.seeds else None,
            reproduce=REPRODUCE.format(plan=shlex.quote(str(plan_file))),
        ),
    )


__all__ = [
    "REPRODUCE",
    "REPRODUCE_DIR",
    "SUMMARISED",
    "change_pct",
    "detection",
    "pair",
    "reproduce_file",
    "summarise",
]
