"""Console page times: p50/p95 server time per HTML page on the demo's data.

Builds (or reuses, with ``--data``) a server store loaded like ``cityx serve
--demo`` (the metro-congestion trial, run for real: about 40 s the first
time; one user per role), then asks each role's pages ``--repeat`` times
through the app in process (Starlette's TestClient: no network, so the time
is the server's plus a small in-process transport cost). Prints one JSON
object; the goal is p95 <= 300 ms per page on 2 cores (``load_avg`` says how
idle the machine was).

    .venv/bin/python bench/console_pages.py [--repeat 30] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from cityx.server import ServerConfig
from cityx.server.app import create_app
from cityx.server.console.session import CONSOLE_COOKIE
from cityx.server.demo import load_demo
from cityx.server.identity import SESSION, issue_token
from cityx.store import Store

GOAL_MS = 300.0
PAGES = {
    "metro": ["/console", "/console/submissions", "/console/trials", "/console/policy"],
    "regulator": [
        "/console/queue",
        "/console/trials",
        "/console/trials/{trial}",
        "/console/trials/{trial}/report",
        "/console/trials/{trial}/checklist",
        "/console/compare?system=metro-congestion",
        "/console/alerts",
    ],
    "auditor": ["/console/audit", "/console/audit?verify=1"],
    "admin": ["/console/users"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--data", type=Path, help="a folder to keep the demo store in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cityx-bench-console-") as tmp:
        root = args.data or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        config = ServerConfig(
            store=f"sqlite:///{root / 'store.db'}", data_dir=root / "data", secure_cookies=False
        )
        with Store.open(config.store) as store:
            load_demo(store, config)
            trial = next(t.trial_id for t in store.trials(limit=10) if t.status == "complete")
            pages: dict[str, dict[str, float]] = {}
            with TestClient(create_app(config, store)) as client:
                for user, paths in PAGES.items():
                    token = issue_token(
                        store, user, kind=SESSION, lifetime=timedelta(hours=1), actor="bench"
                    ).token
                    client.cookies.set(CONSOLE_COOKIE, token)
                    for path in paths:
                        url = path.replace("{trial}", trial)
                        times = []
                        for _ in range(args.repeat + 2):
                            start = time.perf_counter()
                            answer = client.get(url)
                            times.append((time.perf_counter() - start) * 1000)
                            assert answer.status_code == 200, (url, answer.status_code)
                        times = sorted(times[2:])  # the first two warm caches up
                        pages[f"{user} {path}"] = {
                            "p50_ms": round(statistics.median(times), 1),
                            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                        }
    worst = max(p["p95_ms"] for p in pages.values())
    print(
        json.dumps(
            {
                "bench": "console_pages",
                "repeat": args.repeat,
                "pages": pages,
                "worst_p95_ms": worst,
                "goal_p95_ms": GOAL_MS,
                "meets_goal": worst <= GOAL_MS,
                "load_avg": [round(x, 2) for x in os.getloadavg()],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
