"""Nominal performance of a controller in the SUMO sandbox, against the baselines.

The check runs the submitted controller and each *baseline* (fixed-time,
actuated, max-pressure) on the same *cells* (scenario x seed x demand
level: the same seed gives the same vehicles), and reports for each
baseline the *paired difference* of each KPI, submission minus baseline,
over the cells: its mean with a 95 % Student-t confidence interval, and
the *change in percent*: the paired mean difference over the baseline's
mean (and its interval over the same mean), so that it always agrees with
the two means shown beside it. A
negative change in waiting or time loss is a gain. Backlog and teleports
stand beside every mean, since a controller can look better by keeping
vehicles out of the network.

*Decision latency*: the wall time of each step's decision (p95 and max over
the steps of the submission's worst run, in ms), judged under the policy's
limit.

Fairness of a controller (see :mod:`.fairness.controllers`): per cell, the
ratio of the least to the most waiting district (1: equal treatment) and,
against the fixed-time plan, the largest increase in a group's mean
waiting, whoever pays for the city's gain; both averaged over the cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    Evidence,
    Finding,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    Principle,
    RunError,
    Severity,
    Tags,
    WorldCell,
    WorldOutcome,
    status_from,
)

from .fairness.controllers import against, outcome_report
from .sandbox_details import BaselineComparison, KpiChange, SandboxDetails, sandbox_section

_TAGS = Tags(Principle.ROBUSTNESS, NistFunction.MEASURE, (), ("Art. 15",))
_FAIRNESS = Tags(Principle.FAIRNESS, NistFunction.MEASURE, (), ("Art. 10",))
_SAFETY = Tags(Principle.SAFETY, NistFunction.MEASURE, (), ("Art. 15",))

SUBMISSION = "submission"
DEFAULTS: Mapping[str, Any] = {
    "scenario": "cologne3",
    "seeds": [1, 2],
    "demands": [1.0, 1.3],
    "seconds": 600,
    "baselines": ["fixed", "actuated", "max-pressure"],
    # Fewest trips in a group, in both runs, for its mean waiting to count against the
    # baseline (as fairness.groups' min_group for predictors): a mean of 2 vehicles is noise.
    "min_group": 30,
}
# KPI -> (metric stem, compared relatively as well as absolutely)
COMPARED: Mapping[str, tuple[str, bool]] = {
    "mean_waiting_s": ("waiting", True),
    "mean_time_loss_s": ("time_loss", True),
    "p95_waiting_s": ("p95_waiting", True),
    "mean_travel_time_s": ("travel_time", True),
    "arrived": ("arrived", False),
    "backlog": ("backlog", False),
    "teleports": ("teleports", False),
}
# Two-sided 97.5 % quantiles of Student's t by degrees of freedom (1..30); above, normal.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def percent_of(diff: Metric, mean: float | None) -> Metric:
    """A paired difference (and its interval) in percent of the reference's ``mean``.

    The one definition of a "change %" here: the paired mean difference over the
    baseline's mean, so that it agrees with the two means shown beside it (the mean
    of per-pair percentages would not). Undefined when the mean is not positive.
    """
    if diff.value is None or mean is None or mean <= 0:
        return Metric(None, unit="%")
    scale = 100.0 / mean
    return Metric(
        diff.value * scale,
        None if diff.ci_low is None else diff.ci_low * scale,
        None if diff.ci_high is None else diff.ci_high * scale,
        "%",
    )


def paired(diffs: Sequence[float]) -> Metric:
    """Mean of paired differences with a 95 % t interval (no interval for one pair)."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return Metric(None)
    mean = float(d.mean())
    if d.size == 1:
        return Metric(mean)
    t = _T975[d.size - 2] if d.size - 1 <= len(_T975) else 1.96
    half = t * float(d.std(ddof=1)) / np.sqrt(d.size)
    return Metric(mean, mean - half, mean + half)


class SandboxNominal(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="sandbox.nominal",
        kind=PluginKind.CHECK,
        version="1",
        summary="The controller against fixed-time, actuated and max-pressure control in SUMO "
        "over seeds and demand levels: paired KPI differences with 95 % intervals",
        tags=_TAGS,
        supports=frozenset({"controller"}),
    )
    threshold_metrics = (
        *(f"{stem}_change_pct[*]" for stem, relative in COMPARED.values() if relative),
        *(f"{stem}_change[*]" for stem, _ in COMPARED.values()),
        "collisions",
        "failed_runs",
        "district_waiting_ratio",
        "group_waiting_increase_s[*]",
        "decision_latency_p95_ms",
        "decision_latency_max_ms",
    )
    # Collisions are measured safety, group waiting measured fairness (the red-team
    # campaign, not nominal runs, is the robustness evidence).
    principles: ClassVar[Mapping[Principle, tuple[str, ...]] | None] = {
        Principle.SAFETY: ("collisions",),
        Principle.FAIRNESS: ("group_waiting_increase_s[*]", "district_waiting_ratio"),
    }
    option_defaults = DEFAULTS
    details_type = SandboxDetails
    report_section = staticmethod(sandbox_section)
    # cityx.testing.check_plugin runs it small: one seed and baseline, a minute on cologne1.
    conformance_options: ClassVar[Mapping[str, Any]] = {
        "scenario": "cologne1",
        "seeds": [1],
        "demands": [1.0],
        "seconds": 60,
        "baselines": ["fixed"],
    }

    def _run(self, ctx: CheckContext) -> CheckResult:
        if ctx.world is None:
            raise RunError("the sandbox check needs a world runner (cityx[sumo])")
        options = ctx.options
        baselines = [str(b) for b in options["baselines"]]
        cells = [
            WorldCell(
                str(options["scenario"]), c, int(seed), float(demand), int(options["seconds"])
            )
            for c in (SUBMISSION, *baselines)
            for demand in options["demands"]
            for seed in options["seeds"]
        ]
        outcomes = ctx.world.run(cells)
        by_cell = {(o.cell.controller, o.cell.seed, o.cell.demand): o for o in outcomes}
        mine = [o for o in outcomes if o.cell.controller == SUBMISSION]
        failed = [o for o in mine if not o.complete]
        metrics: dict[str, Metric] = {
            "failed_runs": Metric(len(failed)),
            "collisions": Metric(sum(o.kpis.get("collisions") or 0.0 for o in mine if o.complete)),
        }
        metrics.update(_latency(mine))
        comparisons: dict[str, BaselineComparison] = {}
        for base in baselines:
            pairs = [
                (o, by_cell[(base, o.cell.seed, o.cell.demand)])
                for o in mine
                if o.complete and by_cell[(base, o.cell.seed, o.cell.demand)].complete
            ]
            comparisons[base] = _compare(pairs, metrics, base)
        fairness = _fairness(mine, by_cell, baselines, metrics, int(options["min_group"]))
        notes = {
            f"group_waiting_increase_s[{base}]": _worst_note(cases, int(options["min_group"]))
            for base, cases in fairness["worst"].items()
        }
        findings = [
            _judge(ctx, self.meta.id, name, m, options, notes.get(name, ""))
            for name, m in sorted(metrics.items())
        ]
        findings.extend(_failure(self.meta.id, o, ctx.seed) for o in failed)
        found = tuple(f for f in findings if f is not None)
        details = SandboxDetails(
            scenario=str(options["scenario"]),
            seeds=tuple(int(s) for s in options["seeds"]),
            demands=tuple(options["demands"]),
            seconds=int(options["seconds"]),
            baselines=tuple(baselines),
            comparisons=comparisons,
            fairness=fairness,
            cells=tuple(_cell_json(o) for o in outcomes),
        )
        return CheckResult(self.meta.id, status_from(found), metrics, found, details)


def _compare(
    pairs: Sequence[tuple[WorldOutcome, WorldOutcome]], metrics: dict[str, Metric], base: str
) -> BaselineComparison:
    kpis: dict[str, KpiChange] = {}
    for kpi, (stem, relative) in COMPARED.items():
        # Undefined KPIs (None) become NaN and leave the comparison.
        mine = np.array([a.kpis.get(kpi) for a, _ in pairs], dtype=np.float64)
        theirs = np.array([b.kpis.get(kpi) for _, b in pairs], dtype=np.float64)
        keep = np.isfinite(mine) & np.isfinite(theirs)
        diff = paired((mine - theirs)[keep].tolist())
        metrics[f"{stem}_change[{base}]"] = diff
        pct = None
        if relative:
            pct = percent_of(diff, _mean(theirs[keep]))
            metrics[f"{stem}_change_pct[{base}]"] = pct
        kpis[kpi] = KpiChange(
            _mean(mine[keep]),
            _mean(theirs[keep]),
            diff.value,
            diff.ci_low,
            diff.ci_high,
            relative,
            pct.value if pct is not None else None,
        )
    return BaselineComparison(len(pairs), kpis)


def _fairness(
    mine: Sequence[WorldOutcome],
    by_cell: Mapping[tuple[str, int, float], WorldOutcome],
    baselines: Sequence[str],
    metrics: dict[str, Metric],
    min_group: int,
) -> dict[str, Any]:
    """District waiting ratio of the submission, and who pays against each baseline.

    Only groups with at least ``min_group`` trips in both runs count; each
    baseline's worst case per cell is kept with its group and its n.
    """
    ratios: list[float] = []
    increases: dict[str, list[float]] = {b: [] for b in baselines}
    payers: dict[str, list[dict[str, Any]]] = {b: [] for b in baselines}
    worst: dict[str, list[dict[str, Any]]] = {b: [] for b in baselines}
    small: dict[str, int] = dict.fromkeys(baselines, 0)
    for o in mine:
        if not o.complete or o.trips is None:
            continue
        report = outcome_report(o)  # from the trip table the run carries
        ratio = report["by"]["district"]["spread"]["waiting_s"]["ratio"]
        if ratio is not None:
            ratios.append(float(ratio))
        for base in baselines:
            other = by_cell.get((base, o.cell.seed, o.cell.demand))
            if other is None or not other.complete or other.trips is None:
                continue
            everyone = against(report, outcome_report(other))["baseline"]["who_pays"]
            pays = [p for p in everyone if min(p["n"], p["n_baseline"]) >= min_group]
            small[base] += len(everyone) - len(pays)
            increases[base].append(max([p["delta_mean_waiting_s"] for p in pays], default=0.0))
            where = {"seed": o.cell.seed, "demand": o.cell.demand}
            payers[base] += [{**p, **where} for p in pays]
            if pays:  # who_pays comes sorted, worst first
                worst[base].append({**pays[0], **where})
    metrics["district_waiting_ratio"] = paired(ratios)
    for base, values in increases.items():
        metrics[f"group_waiting_increase_s[{base}]"] = Metric(paired(values).value, unit="s")
    return {
        "district_waiting_ratio": ratios,
        "who_pays": payers,
        "worst": worst,
        "min_group": min_group,
        "small_groups_left_out": small,
    }


def _latency(mine: Sequence[WorldOutcome]) -> dict[str, Metric]:
    """The worst run's p95 and max decision time per step (ms); absent when no run
    recorded one (a controller plugin, or a run that never started)."""
    out: dict[str, Metric] = {}
    for name in ("p95", "max"):
        values = [
            float(v)
            for o in mine
            if isinstance(v := o.kpis.get(f"decision_{name}_ms"), int | float)
        ]
        if values:
            out[f"decision_latency_{name}_ms"] = Metric(max(values), unit="ms")
    return out


def _mean(values: np.ndarray[Any, Any]) -> float | None:
    return float(values.mean()) if values.size else None


def _worst_note(cases: Sequence[Mapping[str, Any]], min_group: int) -> str:
    """Each cell's worst-off group against the baseline, with the trips behind its mean."""
    if not cases:
        return f" No group of {min_group} or more trips waited longer than under the baseline."
    shown = "; ".join(
        f"{c['kind']} {c['group']} +{c['delta_mean_waiting_s']:.3g} s "
        f"(n = {c['n']} trips, {c['n_baseline']} under the baseline; seed {c['seed']}, "
        f"demand {c['demand']:g})"
        for c in cases
    )
    return f" Worst case per run (groups of at least {min_group} trips): {shown}."


def _judge(
    ctx: CheckContext,
    check_id: str,
    name: str,
    metric: Metric,
    options: Mapping[str, Any],
    note: str = "",
) -> Finding | None:
    threshold = ctx.threshold_for(name)
    verdict = threshold.judge_interval(metric) if threshold else None
    if verdict is None:
        return None
    severity, upper, reason = verdict
    ci = "" if metric.ci_low is None else f" (95% CI {metric.ci_low:.3g} to {metric.ci_high:.3g})"
    value = "undefined" if metric.value is None else f"{metric.value:.3g}{metric.unit or ''}"
    open_ = "" if upper is None else f"; {upper.value} not ruled out"
    return Finding(
        id=f"{check_id}/{name}",
        check=check_id,
        title=f"In the sandbox, {name} is {value}{ci}{open_}",
        severity=severity,
        severity_upper=upper,
        severity_reason=reason,
        tags=_SAFETY
        if name in ("collisions", "failed_runs")
        else _FAIRNESS
        if name.startswith(("district_", "group_"))
        else _TAGS,
        description=f"Paired over {options['scenario']} runs with seeds {options['seeds']} and "
        f"demand levels {options['demands']}, {options['seconds']} s each: the submission "
        "minus the baseline named in brackets; the interval is Student's t over the pairs." + note,
        evidence=Evidence(
            metrics={name: metric.value, "ci_low": metric.ci_low, "ci_high": metric.ci_high},
            seed=ctx.seed,
            reproduce=f"cityx world run --scenario {options['scenario']} --controller SUBMISSION "
            f"--seconds {options['seconds']} --seed {options['seeds'][0]} "
            f"--demand {options['demands'][0]}",
        ),
    )


def _failure(check_id: str, outcome: WorldOutcome, seed: int) -> Finding:
    c = outcome.cell
    wall = outcome.kpis.get("wall_s")
    after = f" after {wall:.3g} s of wall time" if isinstance(wall, int | float) else ""
    return Finding(
        id=f"{check_id}/failed-run-seed{c.seed}-demand{c.demand:g}",
        check=check_id,
        title=f"The controller failed in {c.scenario} (seed {c.seed}, demand {c.demand:g})"
        f"{after}: {outcome.error}",
        severity=Severity.HIGH,
        severity_reason="a controller that crashes, hangs or gives unusable answers cannot run "
        "a city's signals",
        tags=_SAFETY,
        evidence=Evidence(
            metrics=dict(outcome.kpis),
            files=(outcome.out,) if outcome.out else (),
            seed=seed,
            reproduce=f"cityx world run --scenario {c.scenario} --controller SUBMISSION "
            f"--seconds {c.seconds} --seed {c.seed} --demand {c.demand:g}",
        ),
    )


def _cell_json(o: WorldOutcome) -> dict[str, Any]:
    return {
        "controller": o.cell.controller,
        "scenario": o.cell.scenario,
        "seed": o.cell.seed,
        "demand": o.cell.demand,
        "seconds": o.cell.seconds,
        "complete": o.complete,
        "error": o.error,
        "kpis": dict(o.kpis),
        "safety": dict(o.safety),
    }


__all__ = ["COMPARED", "DEFAULTS", "SandboxNominal", "paired", "percent_of"]
