"""Campaign throughput: cells per minute at 1 and 2 workers, side by side in one run.

The same grid (max-pressure on cologne3, three sensor attacks at full
intensity, two seeds, with their clean pairs) runs twice into fresh
folders, once with one worker and once with two. Prints one JSON object;
the goal is 2 workers >= 1.7x one worker on an idle machine (``load_avg``
says how idle it was).

    .venv/bin/python bench/campaign.py [--seconds 300] [--scenario cologne3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from cityx.runs.campaign import CampaignPlan, run_campaign

GOAL = 1.7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="cologne3")
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    plan = CampaignPlan(
        controller="max-pressure",
        scenarios=(args.scenario,),
        attacks=("world.phantom-queue", "world.hidden-vehicles", "world.cv-spoof"),
        intensities=(1.0,),
        seeds=tuple(range(1, args.seeds + 1)),
        seconds=args.seconds,
    )
    cells = len(plan.cells())
    load_before = os.getloadavg()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="cityx-bench-campaign-") as tmp:
        for workers in (1, 2):
            start = time.perf_counter()
            result = run_campaign(plan, Path(tmp) / f"w{workers}", workers=workers, record=False)
            wall = time.perf_counter() - start
            runs[workers] = {
                "wall_s": round(wall, 2),
                "cells_per_min": round(60 * cells / wall, 2),
                "failed": len(result.failed),
            }
    speedup = runs[2]["cells_per_min"] / runs[1]["cells_per_min"]
    print(
        json.dumps(
            {
                "bench": "campaign",
                "scenario": args.scenario,
                "seconds": args.seconds,
                "cells": cells,
                "workers_1": runs[1],
                "workers_2": runs[2],
                "speedup": round(speedup, 3),
                "goal": GOAL,
                "met": speedup >= GOAL,
                "cpus": os.cpu_count(),
                "load_avg_before": [round(x, 2) for x in load_before],
                "load_avg_after": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
