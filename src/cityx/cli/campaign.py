"""``cityx redteam run``: a red-team campaign of world attacks on a signal controller.

The grid (scenario x attack x intensity x seed) comes from flags or a TOML
plan (``--plan``); each attacked run is paired with the same seed
unattacked. It prints, per cell, the KPIs, the *delta* (attacked minus
unattacked value of each overall KPI) and whether a runtime guard or the
interop verification noticed, then the findings. ``campaign.json`` and
each cell's files are written under ``--out``; re-running the same
command on the same folder resumes a killed campaign. ``--baselines``
runs the same campaign on each named baseline controller, prints them side
by side, and judges each finding against the best baseline under the same
attack (as the trial's ``redteam.campaign`` check does).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import EXIT_OK, Subparsers, add_command, emit
from .trust import add_trust_flags, trusted_by

EXAMPLE = (
    "cityx redteam run max-pressure --scenario cologne1 --attacks world.stuck-at "
    "--intensity 1 --seeds 2 --seconds 60 --baselines fixed,actuated --workers 2 "
    "--out out/redteam --json"
)


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None


def _seeds(text: str) -> list[int]:
    """``N`` (seeds 1..N) or a comma-separated list of seeds."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count or a list of seeds: {text!r}") from None
    if len(values) == 1 and "," not in text:
        if values[0] < 1:
            raise argparse.ArgumentTypeError(f"at least one seed, got {values[0]}")
        return list(range(1, values[0] + 1))
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"seeds must be non-negative integers: {text!r}")
    return values


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def add_run_command(group: Subparsers) -> argparse.ArgumentParser:
    """Add ``run`` to the ``redteam`` subcommand group."""
    run = add_command(
        group,
        "run",
        "Run a campaign of world attacks (sensor, world and message path) on a controller: "
        "each attacked run paired with the same seed unattacked; KPI deltas, detection, "
        "findings.",
        EXAMPLE,
        _run,
    )
    run.add_argument(
        "controller",
        nargs="?",
        metavar="SUBMISSION_DIR|fixed|actuated|max-pressure",
        help="the controller under attack (or set it in --plan)",
    )
    run.add_argument(
        "--plan", type=Path, metavar="FILE", help="campaign plan TOML; flags override it"
    )
    run.add_argument(
        "--scenario", type=_names, metavar="NAME|PATH[,...]", help="scenario name(s) or .sumocfg"
    )
    run.add_argument("--attacks", type=_names, metavar="ID[,ID...]", help="attack ids")
    run.add_argument(
        "--intensity", type=_floats, metavar="X[,X...]", help="intensities in [0, 1] (default 0.5)"
    )
    run.add_argument(
        "--seeds", type=_seeds, metavar="N|S1,S2", help="N seeds 1..N, or a list (default 2)"
    )
    run.add_argument("--seconds", type=int, metavar="N", help="simulated seconds (default 300)")
    run.add_argument("--demand", type=float, metavar="X", help="demand factor (default 1)")
    run.add_argument(
        "--share", type=float, metavar="X", help="share of the approaches the attacker controls"
    )
    run.add_argument(
        "--start",
        type=float,
        metavar="S",
        help="seconds before the attack starts (default: a quarter)",
    )
    run.add_argument(
        "--bus", metavar="memory|mqtt://HOST:PORT", help="run a submission on the secure loop"
    )
    run.add_argument(
        "--baselines",
        type=_names,
        default=[],
        metavar="NAME[,NAME...]",
        help="baseline controllers that face the same campaign, shown side by side (default: none)",
    )
    run.add_argument(
        "--workers", type=int, default=2, metavar="N", help="parallel runs (default 2)"
    )
    run.add_argument("--engine", choices=("local", "ray"), default="local", help="local or ray")
    run.add_argument("--address", metavar="ADDR", help="Ray cluster address (with --engine ray)")
    run.add_argument(
        "--out",
        type=Path,
        default=Path("cityx-campaign"),
        help="output folder (default: cityx-campaign)",
    )
    run.add_argument("--store", help="store URL (default: SQLite in the user data folder)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    add_trust_flags(run)
    return run


def plan_from_args(args: argparse.Namespace) -> Any:
    """The campaign plan that ``args`` describe (a TOML plan, then the flags over it)."""
    # lazy: cityx --help stays fast
    from cityx.core import InputError
    from cityx.runs.campaign import CampaignPlan

    flags = {
        "controller": args.controller,
        "scenarios": args.scenario,
        "attacks": args.attacks,
        "intensities": args.intensity,
        "seeds": args.seeds,
        "seconds": args.seconds,
        "demand": args.demand,
        "share": args.share,
        "start_s": args.start,
        "bus": args.bus,
    }
    if args.plan is not None:
        return CampaignPlan.from_toml(args.plan, **flags)
    for flag, key in (
        ("controller", "controller"),
        ("--scenario", "scenarios"),
        ("--attacks", "attacks"),
    ):
        if not flags[key]:
            raise InputError(f"{flag} is required (or give a --plan)", where="cityx redteam run")
    return CampaignPlan.from_json({k: v for k, v in flags.items() if v is not None})


def _run(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.runs.campaign import check_baselines, run_baselines, run_campaign

    plan = plan_from_args(args)
    check_baselines(args.baselines)  # a bad name fails before any cell runs
    result = run_campaign(
        plan,
        args.out,
        workers=args.workers,
        engine=args.engine,
        address=args.address,
        store=args.store,
        trusted_by=trusted_by(args),
    )
    baselines: dict[str, Any] = {}
    versus: list[dict[str, Any]] = []
    if args.baselines:
        compared = run_baselines(
            plan,
            result,
            args.baselines,
            workers=args.workers,
            engine=args.engine,
            address=args.address,
        )
        result = compared.result
        baselines = {
            name: {
                "groups": [g.to_json() for g in r.groups],
                "failed": [f.to_json() for f in r.failed],
                "ran": r.ran,
                "reused": r.reused,
                "out": str(r.out),
            }
            for name, r in compared.baselines.items()
        }
        versus = [v.to_json() for v in compared.versus.values()]
    full = result.to_json()
    keys = ("scenario", "attack", "intensity", "seed", "status", "kpis", "delta", "detected")
    obj = {
        "cells": [
            {k: c[k] for k in keys} | {"detection": c["detection"], "cost": c["cost"]}
            for c in full["cells"]
        ],
        "findings": full["findings"],
        "groups": full["groups"],
        "failed": full["failed"],
        "ran": full["ran"],
        "skipped": full["skipped"],
        "reused": full["reused"],
        "out": full["out"],
        "wall_s": full["wall_s"],
    }
    if args.baselines:
        obj |= {"baselines": baselines, "versus": versus}
    emit(args, obj, _text(full, plan.thresholds.kpi, baselines))
    return EXIT_OK


def _rate(value: float | None, width: int) -> str:
    # "n/a": not assessed (a reused cell's guard never saw the attacked observations).
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.0%}"


def _text(obj: dict[str, Any], kpi: str, baselines: dict[str, Any] | None = None) -> str:
    lines = [
        f"{'controller':<14} {'scenario':<12} {'attack':<24} {'x':>4} {kpi + ' %':>22} "
        f"{'success':>8} {'guard':>6} {'interop':>8}"
    ]
    rows = [(str(obj["plan"]["controller"]), g) for g in obj["groups"]]
    rows += [(name, g) for name, b in (baselines or {}).items() for g in b["groups"]]
    for controller, g in rows:
        change = g["change_pct"]
        ci = (
            f"[{change['ci_low']:+.0f}, {change['ci_high']:+.0f}]"
            if change["ci_low"] is not None
            else ""
        )
        value = "n/a" if change["value"] is None else f"{change['value']:+.1f} {ci}"
        rate = g["detection_rate"]
        name = controller if len(controller) <= 14 else "..." + controller[-11:]
        lines.append(
            f"{name:<14} {g['scenario'][:12]:<12} {g['attack']:<24} {g['intensity']:>4g} "
            f"{value:>22} {(g['success_rate'] or 0):>8.0%} {_rate(rate['guard'], 6)} "
            f"{_rate(rate['interop'], 8)}"
        )
    for f in obj["findings"]:
        lines.append(f"[{f['severity']}] {f['title']}\n    reproduce: {f['evidence']['reproduce']}")
    if obj["failed"]:
        lines.append(
            f"{len(obj['failed'])} cell(s) failed: "
            + "; ".join(f"{c['key']}: {c['error']}" for c in obj["failed"][:3])
        )
    for name, b in (baselines or {}).items():
        if b["failed"]:
            lines.append(f"baseline {name}: {len(b['failed'])} cell(s) failed")
        if b["reused"]:
            lines.append(
                f"baseline {name}: {b['reused']} cell(s) reused from its clean runs "
                "(observation-path attacks; it reads no observation)"
            )
    lines.append(
        f"{obj['ran']} cell(s) run, {obj['skipped']} already done; "
        f"{obj['out']}/campaign.json ({obj['wall_s']:.0f} s)"
    )
    return "\n".join(lines)


__all__ = ["add_run_command", "plan_from_args"]
