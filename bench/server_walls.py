"""Benchmark: what the walls cost a prediction call, side by side in one run.

The metro-congestion model (ONNX) in two kept-alive isolated workers, one
plain and one jailed (:mod:`cityx.server.walls`: bubblewrap's namespaces, the
seccomp filter, the organisation's own uid under RLIMIT_NPROC, a scrubbed
environment), answering ``--calls`` one-row ``predict`` calls each, one to
each in turn, so that both meet the same load on a shared machine. Prints the
median, mean and 90th percentile call latency of each (milliseconds), the
ratio of the medians (the goal), the one-off cost of starting each worker
(process, jail, model load), whether each answered every call from the one
worker it started with, the walls' status and the machine's load average.
The goal is a ratio of at most 1.20. Exits 1 if the goal is missed, 2 if the
walls cannot all be built (the status says which).
Run it with ``.venv/bin/python bench/server_walls.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cityx.server.walls import probe
from cityx.submissions import open_submission
from cityx.targets import Limits

METRO = Path(__file__).resolve().parents[1] / "examples" / "submissions" / "metro-congestion"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    walls, why = probe()
    if walls is None or walls.missing:
        print(json.dumps({"error": why}))
        return 2
    sub = open_submission(METRO)
    names = list(sub.manifest.input_schema().names)
    row = pd.read_csv(METRO / "data" / "holdout.csv")[names].to_numpy(float)[:1]
    jailed = dataclasses.replace(Limits(), wrapper=walls.around(sub.folder, vendor="bench"))
    starts, pids = {}, {}
    models = {}
    for name, limits in (("plain", Limits()), ("walled", jailed)):
        t = time.perf_counter()
        models[name] = sub.predictor(limits=limits).start()
        models[name].predict(row)
        starts[name] = (time.perf_counter() - t) * 1e3
        pids[name] = models[name].pid
    try:
        for _ in range(args.warmup):
            for model in models.values():
                model.predict(row)
        times: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.calls):
            for name, model in models.items():
                t = time.perf_counter()
                model.predict(row)
                times[name].append((time.perf_counter() - t) * 1e3)
        # Kept alive: every call went to the worker (and jail) started first.
        kept = {k: m.pid == pids[k] and m.restarts == 0 for k, m in models.items()}
    finally:
        for model in models.values():
            model.close()
    summary = {
        name: {
            "median": float(np.median(ms)),
            "mean": float(np.mean(ms)),
            "p90": float(np.percentile(ms, 90)),
        }
        for name, ms in times.items()
    }
    ratio = summary["walled"]["median"] / summary["plain"]["median"]
    print(
        json.dumps(
            {
                "call_ms": {k: {s: round(v, 3) for s, v in d.items()} for k, d in summary.items()},
                "ratio": round(ratio, 3),
                "start_ms": {k: round(v, 1) for k, v in starts.items()},
                "kept_alive": kept,
                "walls": walls.status(),
                "goal": 1.20,
                "calls": args.calls,
                "load_average": round(os.getloadavg()[0], 1),
            }
        )
    )
    return 0 if ratio <= 1.20 else 1


if __name__ == "__main__":
    sys.exit(main())
