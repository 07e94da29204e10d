"""Benchmark: the wall time of `cityx demo` (budget: 180 s on 2 cores).

Runs the demo as a user would, in a fresh output folder and store, and prints one
JSON object. Run it with `make bench` or `.venv/bin/python bench/demo.py`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 180.0


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{Path(tmp) / 'bench.db'}"
        start = time.perf_counter()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "cityx.cli.main",
                "demo",
                "--out",
                str(Path(tmp) / "demo"),
                "--store",
                store,
                "--json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
    result = {
        "benchmark": "demo",
        "wall_s": round(wall, 2),
        "budget_s": BUDGET_S,
        "within_budget": wall <= BUDGET_S,
        "exit": run.returncode,
        "demo": json.loads(run.stdout) if run.returncode == 0 else run.stderr.strip(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
