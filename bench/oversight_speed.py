"""What oversight costs in simulation speed: plain, under oversight, and with a signed MQTT feed.

Three runs of max-pressure on one scenario and seed, side by side in one
process: (1) the world loop alone (envelope, controller); (2) under
oversight (modes, monitor, guards, alerts, the signed decision log with
every choice); (3) the same with the signed state published each step on
the MQTT broker (``--bus``; skipped when it is not reachable). Prints one
JSON object with simulated steps per wall-clock second and the slowdowns.

    .venv/bin/python bench/oversight_speed.py [--scenario cologne8] [--seconds 300]
        [--bus mqtt://127.0.0.1:1883]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from cityx.oversight import OversightSpec, run_oversight
from cityx.oversight.channel import StateFeed
from cityx.worlds.traffic import (
    SignalMode,
    TrafficWorld,
    WorldOptions,
    get_scenario,
    prepare_run,
)
from cityx.worlds.traffic.controllers import MaxPressure


def plain(scenario: str, seconds: int, seed: int) -> float:
    run = prepare_run(
        get_scenario(scenario),
        Path(tempfile.mkdtemp(prefix="cityx-bench-plain-")),
        seed=seed,
        seconds=seconds,
        demand=1.0,
        min_green_s=5.0,
        max_green_s=90.0,
        detector_period_s=300,
    )
    world = TrafficWorld(run, WorldOptions(seconds=seconds, mode=SignalMode.ENVELOPE))
    observation = world.reset(seed)
    controller = MaxPressure(run.network)
    start = time.perf_counter()
    while not world.done:
        assert observation is not None
        observation = world.step(controller.act(observation))
    wall = time.perf_counter() - start
    world.close()
    return world.steps / wall


def overseen(scenario: str, seconds: int, seed: int, feed: StateFeed | None) -> dict[str, Any]:
    spec = OversightSpec(scenario, seconds=seconds, seed=seed)
    start = time.perf_counter()
    result = run_oversight(spec, feed=feed)
    return {
        "wall_s": round(time.perf_counter() - start, 2),
        "steps_per_s": round(result.sim_steps_per_s, 1),  # the step loop alone, as in plain
        "steps": result.steps,
        "decision_records": sum(result.decision_records.values()),
        "published": feed.published if feed is not None else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="cologne8")
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bus", default="mqtt://127.0.0.1:1883")
    args = parser.parse_args()
    rate_plain = plain(args.scenario, args.seconds, args.seed)
    report: dict[str, Any] = {
        "scenario": args.scenario,
        "seconds": args.seconds,
        "plain_steps_per_s": round(rate_plain, 1),
    }
    for name, feed in (("oversight", None), ("oversight_mqtt", "mqtt")):
        transport = None
        if feed is not None:
            try:
                from cityx.interop.mqtt import MqttTransport

                transport = MqttTransport(url=args.bus).connect()
            except Exception as exc:  # the broker is optional for this bench
                report[name] = {"skipped": f"{args.bus}: {exc}"}
                continue
        run = overseen(
            args.scenario,
            args.seconds,
            args.seed,
            StateFeed(transport, city="bench") if transport is not None else None,
        )
        run["slowdown_vs_plain"] = round(1 - run["steps_per_s"] / rate_plain, 3)
        report[name] = run
        if transport is not None:
            transport.close()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
