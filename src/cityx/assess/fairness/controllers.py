"""Fairness of a traffic controller: who waits, and who pays for its gains.

A *world run* is the folder ``cityx world run --out DIR`` writes: its
``result.json`` and its trip table (:class:`cityx.core.TripTable`, in
``trips.parquet``), which the world's own process built from SUMO's
outputs. A trial's runs come as :class:`cityx.core.WorldOutcome` values
carrying the same table. Each trip belongs to one group of each *group
kind*: ``district`` (quadrant of its departure edge), ``approach`` (the
edge by which it reached its first signal) and ``vclass`` (bus, emergency,
passenger, ...).

Per group: mean, median, p95 and max of waiting, time loss and travel time.
Across groups of a kind, the *difference* (largest minus smallest mean) and
the *ratio* (smallest over largest mean; 1 is equal treatment). Across
vehicles: the *Gini* coefficient (0 when everyone waits the same, towards 1
when a few carry all the waiting) and *Jain's index* (sum x)² / (n sum x²)
(1 when equal, 1/n when one vehicle carries everything). *Starvation* is
the p95 and max waiting of the worst group. Against a *baseline* run of the
same scenario and seed, each group's change in mean waiting and time loss
shows who pays for a gain: groups that got worse while the city got better.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import DataError, TripTable, WorldOutcome
from cityx.worlds.traffic import TRIPS_FILE, load_trips

SCHEMA_VERSION = 1
GROUP_KINDS = ("district", "approach", "vclass")
MEASURES = {"waiting_s": "waiting", "time_loss_s": "time_loss", "travel_time_s": "duration"}
_QUANTILES = (0.5, 0.95)


@dataclass(frozen=True, slots=True)
class RunTrips:
    """Per-trip measures of one world run and each trip's group of each kind."""

    folder: Path
    scenario: str
    controller: str
    seed: int
    seconds: int
    measures: Mapping[str, NDArray[np.float64]]  # NaN where undefined (unfinished travel)
    groups: Mapping[str, NDArray[np.str_]]


def read_run(folder: Path) -> RunTrips:
    """Read a world run folder; DataError naming the missing file otherwise."""
    folder = Path(folder)
    for name in ("result.json", TRIPS_FILE):
        if not (folder / name).is_file():
            raise DataError(
                f"not a world run folder: {name} is missing",
                where=str(folder),
                hint="make one with: cityx world run --scenario grid3x3 --out DIR",
            )
    try:
        result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"unreadable run file: {exc}", where=str(folder)) from None
    trips = load_trips(folder)
    assert trips is not None  # checked above
    return run_trips(
        trips,
        folder=folder,
        scenario=str(result.get("scenario", "?")),
        controller=str(result.get("controller", "?")),
        seed=int(result.get("seed", 0)),
        seconds=int(result.get("seconds", 0)),
    )


def run_trips(
    trips: TripTable, *, folder: Path, scenario: str, controller: str, seed: int, seconds: int
) -> RunTrips:
    """The measures and groups of a run's trip table; DataError when it holds no trip."""
    if len(trips) == 0:
        raise DataError("the run has no trips to judge", where=str(folder))
    return RunTrips(
        folder=folder,
        scenario=scenario,
        controller=controller,
        seed=seed,
        seconds=seconds,
        measures={
            "waiting_s": trips.waiting_s,
            "time_loss_s": trips.time_loss_s,
            "travel_time_s": trips.travel_time_s,
        },
        groups={kind: trips.group(kind) for kind in GROUP_KINDS},
    )


def outcome_report(outcome: WorldOutcome) -> dict[str, Any]:
    """The fairness report of a trial's world run, from the trip table it carries."""
    where = Path(outcome.out or ".")
    if outcome.trips is None:
        raise DataError("the run kept no trip table", where=str(where))
    c = outcome.cell
    return _run_report(
        run_trips(
            outcome.trips,
            folder=where,
            scenario=c.scenario,
            controller=c.controller,
            seed=c.seed,
            seconds=c.seconds,
        )
    )


def gini(values: NDArray[np.float64]) -> float:
    """Gini coefficient of non-negative values; NaN when empty or all zero."""
    x = np.sort(values[~np.isnan(values)])
    n, total = x.size, x.sum()
    if n == 0 or total <= 0:
        return float("nan")
    ranks = np.arange(1, n + 1)
    return float((2.0 * (ranks * x).sum()) / (n * total) - (n + 1) / n)


def jain(values: NDArray[np.float64]) -> float:
    """Jain's fairness index (sum x)² / (n sum x²); NaN when empty or all zero."""
    x = values[~np.isnan(values)]
    squares = float((x * x).sum())
    if x.size == 0 or squares == 0:
        return float("nan")
    return float(x.sum() ** 2 / (x.size * squares))


def group_stats(
    codes: NDArray[np.int64], values: NDArray[np.float64], g: int
) -> dict[str, NDArray[np.float64]]:
    """n, mean, p50, p95 and max per group, without a loop over groups.

    Percentiles interpolate linearly between order statistics, as
    ``np.percentile`` does, within each group's sorted run of values.
    """
    ok = ~np.isnan(values)
    c, v = codes[ok], values[ok]
    n = np.bincount(c, minlength=g).astype(np.float64)
    total = np.bincount(c, weights=v, minlength=g)
    mean = np.full(g, np.nan)
    np.divide(total, n, out=mean, where=n > 0)
    order = np.lexsort((v, c))
    sorted_v = v[order]
    start = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
    out = {"n": n, "mean": mean}
    has = n > 0
    for q in _QUANTILES:
        pos = start + q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, start + np.maximum(n, 1).astype(np.int64) - 1)
        frac = pos - lo
        safe_lo, safe_hi = np.where(has, lo, 0), np.where(has, hi, 0)
        if sorted_v.size:
            value = sorted_v[safe_lo] * (1 - frac) + sorted_v[safe_hi] * frac
        else:
            value = np.zeros(g)
        out[f"p{round(q * 100)}"] = np.where(has, value, np.nan)
    last = start + n.astype(np.int64) - 1
    out["max"] = np.where(has, sorted_v[np.where(has, last, 0)] if sorted_v.size else 0.0, np.nan)
    return out


def _num(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def _kind_report(run: RunTrips, kind: str) -> dict[str, Any]:
    names, codes = np.unique(run.groups[kind], return_inverse=True)
    codes = codes.astype(np.int64).reshape(-1)
    g = names.size
    groups: dict[str, dict[str, Any]] = {str(name): {} for name in names}
    spread: dict[str, dict[str, Any]] = {}
    for measure, values in run.measures.items():
        stats = group_stats(codes, values, g)
        for j, name in enumerate(names.tolist()):
            row = groups[str(name)]
            row["n"] = int(np.bincount(codes, minlength=g)[j])
            row |= {f"{k}_{measure}": _num(stats[k][j]) for k in ("mean", "p50", "p95", "max")}
        means = stats["mean"][~np.isnan(stats["mean"])]
        enough = means.size >= 2
        spread[measure] = {
            "difference": _num(means.max() - means.min()) if enough else None,
            "ratio": _num(means.min() / means.max()) if enough and means.max() > 0 else None,
            "jain_over_groups": _num(jain(means)),
            "worst_group": str(names[~np.isnan(stats["mean"])][np.argmax(means)])
            if means.size
            else None,
        }
    waits = group_stats(codes, run.measures["waiting_s"], g)
    worst = int(np.nanargmax(np.where(np.isnan(waits["p95"]), -np.inf, waits["p95"])))
    return {
        "groups": groups,
        "spread": spread,
        "starvation": {
            "group": str(names[worst]),
            "p95_waiting_s": _num(waits["p95"][worst]),
            "max_waiting_s": _num(np.nanmax(waits["max"])),
        },
    }


def controller_fairness(run_dir: Path, baseline_dir: Path | None = None) -> dict[str, Any]:
    """The fairness report of one world run, against a baseline run if given."""
    report = run_report(run_dir)
    if baseline_dir is not None:
        report = against(report, run_report(baseline_dir))
    return report


def run_report(run_dir: Path) -> dict[str, Any]:
    """The fairness report of one world run (read once; compare with :func:`against`)."""
    return _run_report(read_run(run_dir))


def against(report: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """``report`` with its ``baseline`` comparison to the ``base`` run's report."""
    out = {**report, "warnings": list(report["warnings"])}
    if (base["scenario"], base["seed"], base["seconds"]) != (
        report["scenario"],
        report["seed"],
        report["seconds"],
    ):
        out["warnings"].append(
            f"the baseline ran {base['scenario']} seed {base['seed']} for {base['seconds']} s, "
            f"the run {report['scenario']} seed {report['seed']} for {report['seconds']} s: "
            "differences mix in demand, not only the controller"
        )
    out["baseline"] = _comparison(report, base)
    return out


def _run_report(run: RunTrips) -> dict[str, Any]:
    overall = {}
    for measure, values in run.measures.items():
        v = values[~np.isnan(values)]
        overall[measure] = {
            "n": int(v.size),
            "mean": _num(v.mean()) if v.size else None,
            "p95": _num(np.percentile(v, 95)) if v.size else None,
            "max": _num(v.max()) if v.size else None,
            "gini": _num(gini(v)),
            "jain": _num(jain(v)),
        }
    by_kind = {kind: _kind_report(run, kind) for kind in GROUP_KINDS}
    vclass = by_kind["vclass"]["groups"]
    special = {cls: vclass.get(cls) for cls in ("bus", "emergency")}
    warnings = [
        f"{cls}: no {cls} trips in this run, so their delay cannot be judged"
        for cls, row in special.items()
        if row is None
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "run": str(run.folder),
        "scenario": run.scenario,
        "controller": run.controller,
        "seed": run.seed,
        "seconds": run.seconds,
        "overall": overall,
        "by": by_kind,
        "priority_vehicles": special,
        "warnings": warnings,
    }


def _comparison(run: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """Each group's change in mean waiting and time loss, run minus baseline."""
    changes: dict[str, dict[str, dict[str, float | None]]] = {}
    payers: list[dict[str, Any]] = []
    overall_gain = {
        m: _delta(run["overall"][m]["mean"], base["overall"][m]["mean"])
        for m in ("waiting_s", "time_loss_s")
    }
    for kind in GROUP_KINDS:
        ours, theirs = run["by"][kind]["groups"], base["by"][kind]["groups"]
        changes[kind] = {}
        for name in sorted(set(ours) | set(theirs)):
            row: dict[str, float | None] = {}
            for m in ("waiting_s", "time_loss_s"):
                now = ours.get(name, {}).get(f"mean_{m}")
                before = theirs.get(name, {}).get(f"mean_{m}")
                row[f"delta_mean_{m}"] = _delta(now, before)
                row[f"relative_{m}"] = (
                    _num((now - before) / before) if now is not None and before else None
                )
            changes[kind][name] = row
            d, city = row["delta_mean_waiting_s"], overall_gain["waiting_s"]
            if d is not None and d > 0 and city is not None and city < 0:
                payers.append(
                    {
                        "kind": kind,
                        "group": name,
                        "delta_mean_waiting_s": d,
                        "relative_waiting_s": row["relative_waiting_s"],
                        # Trips behind each mean: a mean of a handful says little.
                        "n": int(ours.get(name, {}).get("n") or 0),
                        "n_baseline": int(theirs.get(name, {}).get("n") or 0),
                    }
                )
    payers.sort(key=lambda p: -float(p["delta_mean_waiting_s"]))
    return {
        "run": base["run"],
        "controller": base["controller"],
        "delta_overall": overall_gain,
        "by": changes,
        "who_pays": payers,
    }


def _delta(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else _num(now - before)


__all__ = [
    "GROUP_KINDS",
    "RunTrips",
    "against",
    "controller_fairness",
    "gini",
    "group_stats",
    "jain",
    "outcome_report",
    "read_run",
    "run_report",
    "run_trips",
]
