"""A campaign's impact: pure functions from cell records to groups and findings.

Each attacked cell is paired with the clean cell of its scenario and seed
(see :mod:`.records` for delta, change, success, detection and cost). Per
group the paired deltas get 95 % t intervals over seeds
(:func:`cityx.assess.sandbox.paired`), with the success rate, detection
rates and cost; the group's *change* is the paired mean delta of the KPI
over the clean runs' mean, in % (:func:`cityx.assess.sandbox.percent_of`).

A group becomes a *finding* when its change may reach the plan's
``success_pct``. Its severity is decided by the interval, not the mean: it
is at least the class the interval's lower end reaches (``low`` when only
the upper end crosses a threshold), and the class of the upper end, when
worse, is what cannot be ruled out (``severity_upper``: the gate treats the
gap as undetermined). One seed gives no interval: nothing is ruled out.
With *baselines* that faced the same campaign, the harm is judged relative
to the *best baseline under the same attack* too (:class:`.records.Versus`):
a finding counts only as far as both the absolute change and the excess over
that baseline reach, so an attack that hurts every baseline as much is no
finding against the submission. Groups whose cells left exactly the same
KPIs on every seed (attacks with identical effects) merge into one finding
naming each attack. A finding carries a command that reproduces it: it names
the group's *reproduction plan*, the campaign's plan cut down to that group,
which the campaign writes to ``reproduce/GROUP.toml`` in its folder.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cityx.assess.sandbox import paired, percent_of
from cityx.attacks import AttackTarget, world_attack
from cityx.core import Evidence, Finding, Metric, NistFunction, Principle, Severity, Tags

from .plan import CLEAN, CampaignPlan, Thresholds, group_key
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
    Versus,
)

GroupKey = tuple[str, str, float]  # scenario, attack, intensity

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
        # A reused cell never ran its guard on the attacked observations: not assessed.
        detection=detection(record, base) if base is not None and record.reused is None else None,
        cost=AttackCost.from_json(attack.get("cost")),
        reused=record.reused,
    )


def summarise(
    plan: CampaignPlan,
    records: Sequence[CellRecord],
    *,
    out: Path,
    ran: int = 0,
    skipped: int = 0,
    reused: int = 0,
) -> CampaignResult:
    """Pair each attacked cell with its clean run; group by attack and intensity; findings."""
    clean = {(r.cell.scenario, r.cell.seed): r for r in records if r.cell.attack == CLEAN}
    cells = [
        pair(plan, r, clean.get((r.cell.scenario, r.cell.seed)))
        for r in records
        if r.cell.attack != CLEAN
    ]
    groups: list[Group] = []
    keys = dict.fromkeys((c.cell.scenario, c.cell.attack, c.cell.intensity) for c in cells)
    for scenario, attack, intensity in keys:
        members = [
            c
            for c in cells
            if (c.cell.scenario, c.cell.attack, c.cell.intensity) == (scenario, attack, intensity)
            and c.status == "ok"
        ]
        groups.append(_group(plan, scenario, attack, intensity, members, clean))
    findings = group_findings(plan, groups, cells, out)
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
        reused=reused,
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
    clean_kpi = [_number(clean[(c.cell.scenario, c.cell.seed)].kpis.get(kpi)) for c in members]
    # The clean mean over the same pairs the delta's mean is over, so the ratio is exact.
    both = [
        v
        for c, v in zip(members, clean_kpi, strict=True)
        if v is not None and c.delta.get(kpi) is not None
    ]
    clean_mean = sum(both) / len(both) if both else 0.0
    costs = [c.cost for c in members if c.cost is not None]
    assessed = [c for c in members if c.detection is not None]
    n = len(members)
    return Group(
        scenario=scenario,
        attack=attack,
        intensity=intensity,
        seeds=tuple(c.cell.seed for c in members),
        delta=deltas,
        kpi=kpi,
        change_pct=percent_of(deltas[kpi].metric, clean_mean)
        if kpi in deltas
        else Metric(None, unit="%"),
        clean_mean=clean_mean,
        success_rate=sum(c.success for c in members) / n if n else None,
        # Over the cells whose detection was assessed (a reused cell's was not).
        detection_rate=DetectionRates(
            *(
                sum(bool(getattr(c.detection, src)) for c in assessed) / len(assessed)
                if assessed
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


def bounds(thresholds: Thresholds, change: Metric) -> tuple[Severity | None, Severity | None]:
    """The class a change's interval supports at least, and the worst it cannot rule out.

    None is "below ``success_pct``". One pair gives no interval, so nothing is ruled
    out once its mean reaches ``success_pct``: (None, critical).
    """
    if change.value is None:
        return None, None
    if change.ci_low is None or change.ci_high is None:
        return None, (Severity.CRITICAL if thresholds.level(change.value) else None)
    return thresholds.level(change.ci_low), thresholds.level(change.ci_high)


def _lesser(a: Severity | None, b: Severity | None) -> Severity | None:
    return None if a is None or b is None else min(a, b, key=lambda s: s.rank)


def versus(
    plan: CampaignPlan,
    mine: Sequence[AttackedCell],
    groups: Sequence[Group],
    baselines: Mapping[str, Sequence[AttackedCell]],
) -> dict[GroupKey, Versus]:
    """Each of the submission's groups against the best baseline under the same attack.

    ``mine`` and ``baselines`` are attacked cells (each baseline's from the same
    campaign run with that baseline as the controller). The best baseline is the one
    with the lowest mean attacked KPI over the seeds it shares with the submission.
    """
    kpi = plan.thresholds.kpi

    def attacked(cells: Sequence[AttackedCell], key: GroupKey) -> dict[int, float]:
        values = {}
        for c in cells:
            v = _number(c.kpis.get(kpi)) if c.status == "ok" else None
            if (c.cell.scenario, c.cell.attack, c.cell.intensity) == key and v is not None:
                values[c.cell.seed] = v
        return values

    out: dict[GroupKey, Versus] = {}
    for g in groups:
        key = (g.scenario, g.attack, g.intensity)
        my = attacked(mine, key)
        best: tuple[float, str, list[int], dict[int, float]] | None = None
        for name, cells in baselines.items():
            theirs = attacked(cells, key)
            seeds = sorted(set(my) & set(theirs))
            if not seeds:
                continue
            mean = sum(theirs[s] for s in seeds) / len(seeds)
            if best is None or mean < best[0]:
                best = (mean, name, seeds, theirs)
        if best is None:
            continue
        mean, name, seeds, theirs = best
        excess = percent_of(paired([my[s] - theirs[s] for s in seeds]), mean)
        out[key] = Versus(g.scenario, g.attack, g.intensity, name, mean, excess, len(seeds))
    return out


def _signature(group: Group, cells: Sequence[AttackedCell]) -> str | None:
    """What a group's cells left, seed by seed: equal for attacks with identical effects."""
    runs = sorted(
        (c.cell.seed, json.dumps(dict(c.kpis), sort_keys=True))
        for c in cells
        if (c.cell.scenario, c.cell.attack, c.cell.intensity)
        == (group.scenario, group.attack, group.intensity)
        and c.status == "ok"
    )
    if not runs:
        return None
    return json.dumps([group.scenario, runs])


def group_findings(
    plan: CampaignPlan,
    groups: Sequence[Group],
    cells: Sequence[AttackedCell],
    out: Path,
    against: Mapping[GroupKey, Versus] | None = None,
) -> tuple[Finding, ...]:
    """The findings of ``groups`` (judged against the best baselines in ``against``);
    groups with identical effects on every seed make one finding."""
    merged: dict[str, list[Group]] = {}
    for g in groups:
        merged.setdefault(
            _signature(g, cells) or f"alone:{g.scenario}/{g.attack}/{g.intensity}", []
        ).append(g)
    findings = []
    for same in merged.values():
        first = same[0]
        f = _finding(
            plan,
            first,
            out,
            (against or {}).get((first.scenario, first.attack, first.intensity)),
            same[1:],
        )
        if f is not None:
            findings.append(f)
    return tuple(findings)


def _span(m: Metric) -> str:
    if m.value is None:
        return "undefined"
    if m.ci_low is None or m.ci_high is None:
        return f"{m.value:+.1f} % (one seed: no interval)"
    return f"{m.value:+.1f} % [{m.ci_low:+.1f}, {m.ci_high:+.1f}]"


def _pct(m: Metric) -> str:
    return "undefined" if m.value is None else f"{m.value:+.0f} %"


def _finding(
    plan: CampaignPlan,
    group: Group,
    out: Path,
    vs: Versus | None,
    also: Sequence[Group] = (),
) -> Finding | None:
    thresholds = plan.thresholds
    change = group.change_pct
    low, high = bounds(thresholds, change)
    if vs is not None:
        rel_low, rel_high = bounds(thresholds, vs.excess_pct)
        low, high = _lesser(low, rel_low), _lesser(high, rel_high)
    if high is None:
        return None
    severity = low or Severity.LOW
    spec = world_attack(group.attack).spec
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
    attacks = [group.attack, *(g.attack for g in also)]
    names = ", ".join(attacks)
    identical = (
        f" {names} left identical KPIs on every seed: one finding for all of them." if also else ""
    )
    decided = (
        f"at least {low.value}"
        if low is not None
        else f"no class shown (the interval reaches below {thresholds.success_pct:g} %)"
    )
    if high is not low:
        decided += f"; {high.value} not ruled out"
    relative = (
        f"; against {vs.best} under the same attack (the best baseline there, mean "
        f"{vs.best_attacked_mean:.4g}): {_span(vs.excess_pct)} over {vs.n} seed(s)"
        if vs is not None
        else ""
    )
    return Finding(
        id=f"redteam.campaign/{group.scenario}/{'+'.join(attacks)}/i{group.intensity:g}",
        check="redteam.campaign",
        title=f"{names} at intensity {group.intensity:g} "
        f"{'change' if also else 'changes'} {kpi} by {_pct(change)} on {group.scenario}"
        + (
            ""
            if vs is None
            else f" ({_pct(vs.excess_pct)} against {vs.best} under the same attack)"
        )
        + ("" if high is low else f": {severity.value}, {high.value} not ruled out"),
        severity=severity,
        severity_upper=high,
        severity_reason=f"{decided}. Change of {kpi} against the same seeds unattacked: "
        f"{_span(change)} over {group.n} seed(s) (paired mean difference over the clean mean)"
        f"{relative}; a class counts as far as both reach it (thresholds: medium "
        f"{thresholds.success_pct:g} %, high {thresholds.high_pct:g} %, critical "
        f"{thresholds.critical_pct:g} %); {noticed}",
        tags=Tags(principle, NistFunction.MEASURE, spec.atlas, ("Art. 15",)),
        description=f"{spec.goal}. Attacker cost: {group.cost.sensors} sensor(s), "
        f"{group.cost.magnitude} {group.cost.unit}.{identical}",
        evidence=Evidence(
            metrics={
                f"{kpi}_change_pct": change.value,
                f"{kpi}_change_pct_ci_low": change.ci_low,
                f"{kpi}_change_pct_ci_high": change.ci_high,
                **(
                    {
                        "best_baseline": vs.best,
                        f"{kpi}_excess_pct": vs.excess_pct.value,
                        f"{kpi}_excess_pct_ci_low": vs.excess_pct.ci_low,
                        f"{kpi}_excess_pct_ci_high": vs.excess_pct.ci_high,
                    }
                    if vs is not None
                    else {}
                ),
                **{f"{k}_delta": group.delta[k].metric.value for k in SUMMARISED},
                "success_rate": group.success_rate,
                "guard_detection_rate": detected.guard,
                "interop_detection_rate": detected.interop,
                "sensors_controlled": group.cost.sensors,
                "attacks": names,
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
    "GroupKey",
    "bounds",
    "change_pct",
    "detection",
    "group_findings",
    "pair",
    "reproduce_file",
    "summarise",
    "versus",
]
