"""``cityx scenarios`` and ``cityx world``: the SUMO city sandbox from the shell.

``cityx scenarios list`` shows the scenario catalogue; ``cityx world run``
runs one scenario with a baseline or a controller submission in a child
process and prints its KPIs and safety report (one JSON object with ``--json``);
``cityx world dataset`` runs seeds x demand levels and writes a Parquet
file of detector time series with next-interval congestion labels.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .common import EXIT_OK, EXIT_VERDICT, Subparsers, add_command, add_group, emit, seed
from .trust import add_trust_flags, trusted_by


def register(sub: Subparsers) -> None:
    """Add ``scenarios`` and ``world`` to the ``cityx`` parser."""
    scenarios = add_group(sub, "scenarios", "The city scenarios a world can run.")
    listing = add_command(
        scenarios,
        "list",
        "List the scenarios: built-in, RESCO (from sumo-rl) and how many signals each has.",
        "cityx scenarios list --json",
        _scenarios_list,
    )
    listing.add_argument("--json", action="store_true", help="print the list as JSON")

    world = add_group(sub, "world", "Run the SUMO city sandbox.")
    run = add_command(
        world,
        "run",
        "Run a scenario with a baseline or a submitted controller and print KPIs and the "
        "safety report (and a submission's decision time per step). A submission that fails "
        "(crash, non-finite or wrong number of scores, step timeout) is a finding: exit 3, "
        "with the run's wall time and, with --json, its partial KPIs.",
        "cityx world run --scenario cologne1 --controller max-pressure --seconds 600 --seed 1\n"
        "  cityx world run --scenario cologne3 --controller examples/submissions/acme-signals",
        _world_run,
    )
    run.add_argument(
        "--scenario",
        required=True,
        metavar="NAME|PATH",
        help="a scenario name (see: cityx scenarios list) or a .sumocfg file",
    )
    run.add_argument(
        "--controller",
        default="fixed",
        metavar="NAME|DIR",
        help="fixed, actuated, max-pressure or a controller submission folder (default: fixed)",
    )
    run.add_argument("--seconds", type=int, default=600, help="simulated seconds (default: 600)")
    run.add_argument("--seed", type=seed, default=0, help="random seed (default: 0)")
    run.add_argument(
        "--demand", type=float, default=1.0, help="demand scale factor, SUMO --scale (default: 1)"
    )
    run.add_argument(
        "--out", type=Path, help="run folder for SUMO's outputs (default: a temp folder)"
    )
    run.add_argument("--emissions", action="store_true", help="measure CO2 (slower)")
    run.add_argument(
        "--detectors",
        action="store_true",
        help="attach the induction loops and lane-area detectors even when no controller "
        "reads them, to keep their e1.out.xml/e2.out.xml (slower)",
    )
    run.add_argument(
        "--bus",
        metavar="memory|mqtt://HOST:PORT",
        help="wire a submitted controller through signed messages on this bus: detectors "
        "publish signed TrafficFlowObserved, the controller's commands are signed and "
        "verified before the signals obey them (see docs/interop.md)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object")
    add_trust_flags(run)

    dataset = add_command(
        world,
        "dataset",
        "Simulate seeds 0..K-1 at each demand level and write a Parquet file of detector "
        "features per approach and interval, labelled with the next interval's congestion "
        "(free, moderate, heavy).",
        "cityx world dataset --scenario grid3x3 --seconds 1800 --seeds 4 --demand 1,1.5,2 "
        "--controller fixed --interval 300 --workers 2 --out grid3x3.parquet",
        _world_dataset,
    )
    dataset.add_argument(
        "--scenario",
        required=True,
        metavar="NAME|PATH",
        help="a scenario name (see: cityx scenarios list) or a .sumocfg file",
    )
    dataset.add_argument("--seconds", type=int, required=True, help="simulated seconds per run")
    dataset.add_argument("--seeds", type=int, required=True, metavar="K", help="run seeds 0..K-1")
    dataset.add_argument(
        "--demand",
        type=_demands,
        default=(1.0,),
        metavar="X,...",
        help="demand scale factors, comma-separated (default: 1)",
    )
    dataset.add_argument(
        "--controller",
        default="fixed",
        metavar="NAME",
        help="fixed, actuated or max-pressure (default: fixed)",
    )
    dataset.add_argument(
        "--interval", type=int, default=300, help="aggregation interval, seconds (default: 300)"
    )
    dataset.add_argument(
        "--workers", type=int, default=1, help="simulations at once, 1 or 2 (default: 1)"
    )
    dataset.add_argument("--out", type=Path, required=True, help="the Parquet file to write")
    dataset.add_argument("--json", action="store_true", help="print one JSON object")


def _demands(text: str) -> tuple[float, ...]:
    """An argparse type for ``1,1.5,2``; positivity is checked with the other inputs."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None


def _scenarios_list(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.worlds.traffic import list_scenarios

    rows = [s.to_json() for s in list_scenarios()]
    if args.json:
        # The contract is a JSON list, not an object.
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        width = max(len(r["name"]) for r in rows)
        sys.stdout.write(
            "".join(
                f"{r['name']:<{width}}  {r['source']:<7}  {r['signals']:>3} "
                f"{'signal ' if r['signals'] == 1 else 'signals'}  "
                f"{r['description']}\n"
                for r in rows
            )
        )
    return EXIT_OK


def _world_run(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.runs import run_controller_world
    from cityx.runs.submitted import read_latency, read_trust
    from cityx.worlds import ControllerFailed

    started = time.perf_counter()
    try:
        result = run_controller_world(
            args.scenario,
            args.controller,
            seconds=args.seconds,
            seed=args.seed,
            demand=args.demand,
            out=args.out,
            bus=args.bus,
            emissions=args.emissions,
            detectors=args.detectors,
            trusted_by=trusted_by(args),
        )
    except ControllerFailed as exc:
        # The controller's own failure is a finding about it, not an error of cityx.
        wall = round(time.perf_counter() - started, 3)
        partial = exc.partial
        latency = read_latency(partial.out) if partial is not None else None
        failed = {
            "controller_failed": {
                "message": exc.message,
                "where": exc.where,
                "wall_s": wall,
                "kpis": dict(partial.kpis.overall) if partial is not None else None,
                "decision_latency": latency,
            }
        }
        emit(
            args,
            failed,
            f"cityx: finding: {exc.message} (after {wall:.3g} s of wall time; partial "
            f"outputs in {exc.where})",
        )
        return EXIT_VERDICT
    obj = result.to_json()
    latency = read_latency(result.out)
    if latency is not None:
        obj["decision_latency"] = latency
    trust = read_trust(result.out)
    if trust is not None:
        obj["trusted"] = trust
    wiring = result.out / "interop.json"
    if wiring.is_file():
        obj["interop"] = json.loads(wiring.read_text())
    o = result.kpis.overall
    safety = obj["safety"]
    lines = [
        f"{args.scenario} / {args.controller}: {args.seconds} s, seed {args.seed}, demand "
        f"{args.demand:g}",
        f"  arrived {o['arrived']} of {o['vehicles']} vehicles; backlog {o['backlog']}, "
        f"teleports {o['teleports']}, collisions {o['collisions']}",
        f"  waiting   mean {o['mean_waiting_s']} s, p95 {o['p95_waiting_s']} s",
        f"  time loss mean {o['mean_time_loss_s']} s, p95 {o['p95_time_loss_s']} s",
        f"  travel    mean {o['mean_travel_time_s']} s (finished trips)",
        "  safety    "
        + (
            f"{safety['switches']} switches, {safety['refused_total']} refused, "
            f"{safety['forced_max_green']} forced by max green"
            if safety["enforced"]
            else "signals run by SUMO (no envelope needed)"
        ),
        f"  {obj['sim_steps_per_s']} steps/s; outputs in {result.out}",
    ]
    if latency is not None:
        lines.insert(
            -1,
            f"  decision  p50 {latency['p50_ms']} ms, p95 {latency['p95_ms']} ms, max "
            f"{latency['max_ms']} ms per step",
        )
    if trust is not None:
        lines.insert(
            -1,
            f"  trusted   the {trust['format']} artifact ran vendor code because "
            f"{trust['given_by']} passed {trust['opt_in']}",
        )
    if "interop" in obj:
        wired = obj["interop"]
        lines.insert(
            -1,
            f"  messages  observations {wired['observations']}, commands {wired['commands']}",
        )
    emit(args, obj, "\n".join(lines))
    return EXIT_OK


def _world_dataset(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.worlds.traffic.dataset import DatasetSpec, build_dataset

    spec = DatasetSpec(
        scenario=args.scenario,
        seconds=args.seconds,
        seeds=args.seeds,
        demands=args.demand,
        controller=args.controller,
        interval_s=args.interval,
        workers=args.workers,
    )
    summary = build_dataset(spec, args.out)
    obj = {
        "out": str(summary.out),
        "rows": summary.rows,
        "runs": summary.runs,
        "places": summary.places,
        "labels": summary.label_counts,
        "sumo_version": summary.sumo_version,
        "cityx_version": summary.cityx_version,
    }
    labels = ", ".join(f"{k} {v}" for k, v in summary.label_counts.items())
    emit(
        args,
        obj,
        f"{summary.rows} rows from {summary.runs} runs ({summary.places} places); "
        f"next-interval labels: {labels}; written to {summary.out}",
    )
    return EXIT_OK
