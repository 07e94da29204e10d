"""Server under load: read and prediction latency while trials run, on PostgreSQL.

Creates a fresh PostgreSQL database (trust auth at ``--pg``), starts ``cityx
serve`` on it as its own process (its embedded job worker runs one job at a
time: ``trial_workers = 1``), uploads the metro-congestion example and queues
``--trials`` trials of it under the default policy. While they run, ``--clients``
concurrent clients (one asyncio task each, over httpx) read (submissions,
trials, jobs, one's own identity) and query the model (a few holdout rows per
call), each waiting an exponentially distributed think time of mean
``--think-s`` between calls. The load stops when every trial job has ended (or
after ``--max-s``). With ``--kill-worker-after S`` the job worker is killed
(SIGKILL) S seconds into the first trial: the server starts another, which
re-runs the job.

Prints one JSON object: p50/p95/p99 (ms, client side, loopback) per route kind,
errors (any answer but 2xx, or no answer), the trial jobs (status, seconds,
whether each left exactly one complete trial), and whether the goals hold:
p99 <= 200 ms for reads and <= 300 ms for predictions, 0 errors, no job lost.
``baseline_no_jobs`` is the same load for ``--baseline-s`` before any job is
queued, side by side. ``load_avg`` says how idle the machine was (the client
runs on the same cores).

    .venv/bin/python bench/server_load.py [--clients 50] [--trials 4] [--think-s 1.0]
        [--kill-worker-after 20] [--baseline-s 60] [--max-s 1200] [--pg postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pandas as pd
import psycopg

from cityx.server import Role, add_user
from cityx.store import Store

ROOT = Path(__file__).resolve().parents[1]
METRO = ROOT / "examples" / "submissions" / "metro-congestion"
GOALS_MS = {"read": 200.0, "predict": 300.0}
ROWS_PER_CALL = 5
BIG_BUDGET = 10**9


@dataclass
class Samples:
    ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, ms: float, error: str | None) -> None:
        self.ms.setdefault(kind, []).append(ms)
        if error is not None:
            self.errors.setdefault(kind, []).append(error)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank], 1)


def summary(samples: Samples) -> dict[str, dict[str, float]]:
    return {
        kind: {
            "count": len(values),
            "p50_ms": percentile(values, 50),
            "p95_ms": percentile(values, 95),
            "p99_ms": percentile(values, 99),
            "max_ms": round(max(values), 1),
            "errors": len(samples.errors.get(kind, [])),
        }
        for kind, values in sorted(samples.ms.items())
    }


def _admin(pg: str, sql: str) -> None:
    with psycopg.connect(f"postgresql://{pg}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pack(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname="sub")
    return buffer.getvalue()


def _worker_pids(server: int) -> list[int]:
    """The server's job worker: its child started by multiprocessing's spawn."""
    found = []
    for task in Path(f"/proc/{server}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmd:
                found.append(int(pid))
    return found


async def client(
    i: int,
    http: httpx.AsyncClient,
    tokens: dict[str, str],
    plan: dict[str, Any],
    stop: asyncio.Event,
    samples: Samples,
) -> None:
    rng = random.Random(1000 + i)
    readers = ["regulator", "auditor", "vendor"]
    while not stop.is_set():
        await asyncio.sleep(rng.expovariate(1.0 / plan["think_s"]))
        if stop.is_set():
            return
        if rng.random() < plan["predict_share"]:
            kind, method = "predict", "POST"
            start = rng.randrange(0, len(plan["rows"]) - ROWS_PER_CALL)
            url = f"/api/v1/models/{plan['model']}/predict"
            body: Any = {"rows": plan["rows"][start : start + ROWS_PER_CALL]}
            who = rng.choice(["regulator", "redteam"])
        else:
            kind, method, body = "read", "GET", None
            who = rng.choice(readers)
            url = rng.choice(plan["reads"])
            if "{trial}" in url:
                if not plan["trials"]:
                    url = "/api/v1/trials"
                else:
                    url = url.format(trial=rng.choice(plan["trials"]))
            if "{job}" in url:
                if not plan["jobs"]:
                    url = "/api/v1/jobs?limit=20"
                else:
                    url = url.format(job=rng.choice(plan["jobs"]))
        t0 = time.perf_counter()
        error = None
        try:
            answer = await http.request(
                method, url, json=body, headers={"Authorization": f"Bearer {tokens[who]}"}
            )
            if not 200 <= answer.status_code < 300:
                error = f"{method} {url}: {answer.status_code} {answer.text[:120]}"
        except httpx.HTTPError as exc:
            error = f"{method} {url}: {type(exc).__name__}: {exc}"
        samples.add(kind, (time.perf_counter() - t0) * 1000, error)


async def load(
    base: str, tokens: dict[str, str], args: argparse.Namespace, server: int
) -> dict[str, Any]:
    # Idle connections are dropped well before uvicorn's 5 s keep-alive: at equal timeouts a
    # request can go out on a connection the server is closing (a ReadError, not the server's).
    limits = httpx.Limits(
        max_connections=args.clients + 10,
        max_keepalive_connections=args.clients,
        keepalive_expiry=2.0,
    )
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        reg = {"Authorization": f"Bearer {tokens['regulator']}"}
        vendor = {"Authorization": f"Bearer {tokens['vendor']}"}
        up = await http.post(
            "/api/v1/submissions",
            files={"archive": ("metro.tar.gz", _pack(METRO), "application/gzip")},
            headers=vendor,
        )
        up.raise_for_status()
        model = up.json()["id"]
        holdout = pd.read_csv(METRO / "data" / "holdout.csv")
        names = (await http.get(f"/api/v1/submissions/{model}", headers=reg)).json()["features"]
        rows = holdout[names].head(500).to_dict(orient="records")
        # A first prediction starts the model's worker (a one-off cost, not under test).
        (
            await http.post(f"/api/v1/models/{model}/predict", json={"rows": rows[:1]}, headers=reg)
        ).raise_for_status()
        plan: dict[str, Any] = {
            "model": model,
            "rows": rows,
            "jobs": [],
            "trials": [],
            "think_s": args.think_s,
            "predict_share": args.predict_share,
            "reads": [
                "/api/v1/submissions",
                f"/api/v1/submissions/{model}",
                "/api/v1/jobs?limit=20",
                "/api/v1/jobs/{job}",
                "/api/v1/trials/{trial}",
                "/api/v1/me",
            ],
        }
        # The baseline: the same clients with no job running, side by side with the run.
        baseline = Samples()
        quiet = asyncio.Event()
        tasks = [
            asyncio.create_task(client(i, http, tokens, plan, quiet, baseline))
            for i in range(args.clients)
        ]
        await asyncio.sleep(args.baseline_s)
        quiet.set()
        await asyncio.gather(*tasks)
        jobs = []
        for seed in range(1, args.trials + 1):
            answer = await http.post(
                f"/api/v1/submissions/{model}/trials", json={"seed": seed}, headers=vendor
            )
            answer.raise_for_status()
            jobs.append(answer.json()["job"])
        plan["jobs"] = jobs
        samples = Samples()
        stop = asyncio.Event()
        started = time.monotonic()
        tasks = [
            asyncio.create_task(client(i, http, tokens, plan, stop, samples))
            for i in range(args.clients)
        ]
        killed: dict[str, Any] | None = None
        max_running = 0
        final: dict[int, dict[str, Any]] = {}
        while time.monotonic() - started < args.max_s:
            await asyncio.sleep(2)
            found = {j: (await http.get(f"/api/v1/jobs/{j}", headers=reg)).json() for j in jobs}
            max_running = max(max_running, sum(f["status"] == "running" for f in found.values()))
            plan["trials"] = [f["trial"] for f in found.values() if f["trial"]]
            first = found[jobs[0]]
            if (
                args.kill_worker_after is not None
                and killed is None
                and first["status"] == "running"
                and (first["wall_s"] or 0) >= args.kill_worker_after
            ):
                pids = _worker_pids(server)
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed = {
                    "job": jobs[0],
                    "at_s": first["wall_s"],
                    "stage": first["stage"],
                    "pids": pids,
                }
            if all(f["status"] in ("done", "failed") for f in found.values()):
                final = found
                break
            final = found
        stop.set()
        await asyncio.gather(*tasks)
        seconds = round(time.monotonic() - started, 1)
    return {
        "baseline": baseline,
        "samples": samples,
        "jobs": final,
        "killed": killed,
        "max_running": max_running,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--think-s", type=float, default=1.0)
    parser.add_argument("--predict-share", type=float, default=0.3)
    parser.add_argument("--kill-worker-after", type=float, metavar="S")
    parser.add_argument("--max-s", type=float, default=1200.0)
    parser.add_argument(
        "--baseline-s", type=float, default=60.0, help="load with no job first, for comparison"
    )
    parser.add_argument("--pg", default="postgres@127.0.0.1:5432")
    args = parser.parse_args()
    load_before = os.getloadavg()
    name = f"cityx_bench_{uuid.uuid4().hex[:10]}"
    _admin(args.pg, f'CREATE DATABASE "{name}"')
    url = f"postgresql://{args.pg}/{name}"
    server: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="cityx-bench-load-") as tmp:
        root = Path(tmp)
        try:
            port = _free_port()
            config = root / "server.toml"
            config.write_text(
                "[server]\n"
                f'store = "{url}"\n'
                f'data_dir = "{root / "data"}"\n'
                "trial_workers = 1\n"
                "secure_cookies = false\n"
                "monitor_min_queries = 1000000\n"  # the load is not an extraction attack
            )
            with Store.open(url) as store:
                tokens = {
                    user: add_user(
                        store, user, organisation=org, role=role, city="city", budget=budget
                    ).token
                    for user, org, role, budget in (
                        ("regulator", "city", Role.REGULATOR, BIG_BUDGET),
                        ("redteam", "city", Role.RED_TEAMER, BIG_BUDGET),
                        ("auditor", "city", Role.AUDITOR, None),
                        ("vendor", "metro-analytics", Role.VENDOR, None),
                    )
                }
            log = (root / "server.log").open("wb")
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cityx.cli.main",
                    "serve",
                    "--config",
                    str(config),
                    "--port",
                    str(port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/api/v1/openapi.json", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit((root / "server.log").read_text()[-2000:])
                time.sleep(0.5)
            ran = asyncio.run(load(base, tokens, args, server.pid))
            with Store.open(url) as store:
                complete = [t for t in store.trials(limit=1000) if t.status == "complete"]
                jobs = {}
                for job_id, shown in ran["jobs"].items():
                    record = store.job(job_id)
                    mine = [
                        t for t in complete if record is not None and t.trial_id == record.trial_id
                    ]
                    jobs[str(job_id)] = {
                        "status": shown["status"],
                        "wall_s": shown["wall_s"],
                        "error": shown["error"],
                        "one_complete_trial": len(mine) == 1,
                        "requeued": sum(
                            e.action == "job.requeued"
                            for e in store.audit_entries()
                            if e.subject == f"job {job_id}"
                        ),
                    }
                stray = len(complete) - sum(j["one_complete_trial"] for j in jobs.values())
            log.flush()
            log_tail = (root / "server.log").read_text(errors="replace").splitlines()[-40:]
        finally:
            if server is not None:
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            _admin(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    samples: Samples = ran["samples"]
    kinds = summary(samples)
    baseline = summary(ran["baseline"])
    errors = sum(len(v) for v in samples.errors.values())
    no_job_lost = (
        len(jobs) == args.trials
        and all(j["status"] == "done" and j["one_complete_trial"] for j in jobs.values())
        and stray == 0
    )
    goals = {
        f"{kind}_p99_ms<={goal:g}": kinds.get(kind, {}).get("p99_ms", float("inf")) <= goal
        for kind, goal in GOALS_MS.items()
    }
    goals["errors==0"] = errors == 0
    goals["no_job_lost"] = no_job_lost
    print(
        json.dumps(
            {
                "bench": "server_load",
                "store": "postgresql",
                "clients": args.clients,
                "think_s": args.think_s,
                "predict_share": args.predict_share,
                "rows_per_prediction": ROWS_PER_CALL,
                "trial_workers": 1,
                "max_jobs_running_at_once": ran["max_running"],
                "seconds": ran["seconds"],
                "kinds": kinds,
                "baseline_no_jobs": {"seconds": args.baseline_s, "kinds": baseline},
                "errors": errors,
                "error_examples": [e for v in samples.errors.values() for e in v[:3]],
                "server_log_tail": log_tail if errors else [],
                "jobs": jobs,
                "complete_trials_not_of_a_job": stray,
                "worker_killed": ran["killed"],
                "goals": goals,
                "goals_met": all(goals.values()),
                "cpus": os.cpu_count(),
                "load_avg": {"before": load_before, "after": os.getloadavg()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
