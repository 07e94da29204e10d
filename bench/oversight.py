"""Random operator commands under oversight, and the baselines against the conflict monitor.

Part 1: for each scenario and seed, one run under oversight (max-pressure
adaptive) receives ``--commands`` random operator commands (hold, phase,
fixed-time, stop, resume at random intersections and times, some for
phases that are not green). Counts: accepted, refused by reason,
effective, stops that reached all-red within their clearance, and the
independent monitor's violations (the goal: every accepted command
effective, every stop within its clearance, 0 violations).

Part 2: the baselines (the network's program, SUMO's actuated logic and
max-pressure through the envelope) with the monitor on every scenario.

Prints one JSON object.

    .venv/bin/python bench/oversight.py [--scenarios cologne1,cologne3] [--seeds 2]
        [--seconds 300] [--commands 100] [--baselines]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from cityx.oversight import (
    Action,
    CommandQueue,
    OperatorCommand,
    OversightSpec,
    run_oversight,
)
from cityx.oversight.baseline_check import monitor_baseline
from cityx.worlds.traffic import (
    SignalMode,
    get_scenario,
    prepare_run,
)

ACTIONS = (Action.HOLD, Action.PHASE, Action.FIXED_TIME, Action.STOP, Action.RESUME)


def random_commands(
    ids: list[str], phases: dict[str, int], seconds: int, n: int, seed: int
) -> list[OperatorCommand]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        action = ACTIONS[int(rng.integers(len(ACTIONS)))]
        tls = ids[int(rng.integers(len(ids)))]
        phase = int(rng.integers(phases[tls])) if action is Action.PHASE else None
        at = float(rng.integers(1, seconds - 20))
        out.append(OperatorCommand(tls, action, at_s=at, phase=phase, reason="bench"))
    return out


def commands_part(scenario: str, seed: int, seconds: int, n: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="cityx-bench-oversight-"))
    probe = prepare_run(
        get_scenario(scenario),
        folder / "probe",
        seed=seed,
        seconds=seconds,
        demand=1.0,
        min_green_s=5.0,
        max_green_s=90.0,
        detector_period_s=300,
    )
    ids = [i.id for i in probe.network.intersections]
    phases = {i.id: len(i.phases) for i in probe.network.intersections}
    queue = CommandQueue()
    queue.extend(random_commands(ids, phases, seconds, n, seed))
    spec = OversightSpec(scenario, seconds=seconds, seed=seed, out=folder / "run")
    result = run_oversight(spec, commands=queue)
    states: Counter[str] = Counter(c.state.value for c in result.commands)
    refused: Counter[str] = Counter(
        str(c.reason_code) for c in result.commands if c.state.value == "refused"
    )
    accepted = [c for c in result.commands if c.accepted]
    superseded = [c for c in accepted if c.reason_code == "superseded"]
    late = [c for c in accepted if c.effective_at_s is None and c.reason_code != "superseded"]
    stops = [c for c in accepted if c.command.action is Action.STOP and c.effective_at_s]
    bound = {tls: 5.0 + r.intergreen_s + 1.0 for tls, r in result.monitor.references.items()}
    within = [
        c
        for c in stops
        if c.effective_at_s is not None
        and c.accepted_at_s is not None
        and c.effective_at_s - c.accepted_at_s <= bound[c.intersection]
    ]
    return {
        "scenario": scenario,
        "seed": seed,
        "commands": len(result.commands),
        "states": dict(states),
        "refused": dict(refused),
        "accepted": len(accepted),
        "superseded_before_effect": len(superseded),
        "accepted_not_effective": len(late),
        "stops_effective": len(stops),
        "stops_within_clearance": len(within),
        "violations": result.monitor.counts(),
        "complete": result.complete,
        "wall_s": round(result.wall_s, 2),
    }


def baseline_part(scenario: str, seconds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"scenario": scenario}
    for mode in SignalMode:
        folder = Path(tempfile.mkdtemp(prefix="cityx-bench-monitor-"))
        report = monitor_baseline(scenario, folder, mode, seed=1, seconds=seconds)
        name = {"program": "fixed", "actuated": "actuated", "envelope": "max-pressure"}[mode.value]
        out[name] = report.counts()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="cologne1,cologne3")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--commands", type=int, default=100)
    parser.add_argument("--baselines", action="store_true", help="also part 2")
    args = parser.parse_args()
    start = time.perf_counter()
    scenarios = args.scenarios.split(",")
    runs = [
        commands_part(s, seed, args.seconds, args.commands)
        for s in scenarios
        for seed in range(args.seeds)
    ]
    total = {
        "commands": sum(r["commands"] for r in runs),
        "accepted": sum(r["accepted"] for r in runs),
        "accepted_not_effective": sum(r["accepted_not_effective"] for r in runs),
        "stops_effective": sum(r["stops_effective"] for r in runs),
        "stops_within_clearance": sum(r["stops_within_clearance"] for r in runs),
        "violations": sum(sum(r["violations"].values()) for r in runs),
    }
    report: dict[str, Any] = {"total": total, "runs": runs}
    if args.baselines:
        report["baselines"] = [baseline_part(s, args.seconds) for s in scenarios]
    report["wall_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
