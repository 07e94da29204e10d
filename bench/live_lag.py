"""How far behind the simulation an overseer's console is: state lag and command latency.

Starts a server (uvicorn, a temporary SQLite store) on loopback, an overseer
starts a live run at real time (``--pace 1``) on the MQTT broker at
127.0.0.1:1883, and reads its state as server-sent events, while a direct
MQTT subscriber (the baseline: no server in between) reads the same signed
messages off the bus. Every ``--every`` simulated seconds the overseer sends
a command (hold, then phase, then resume, at one intersection).

Measures, in milliseconds:

- ``state_lag``: a step's state message signed (its ``iat``, just before it
  is published) -> received by the SSE client; ``bus_lag`` the same for the
  direct MQTT subscriber (p50, p95, max);
- ``command_accepted_latency``: POST -> ``accepted`` seen on the stream (a paced
  run takes a command as it comes); ``command_latency``: POST -> ``effective``
  (at the next step: up to one step's wall time at the pace, 1 s at real time);
  ``effective_after_applied``: the signed state message of the step in which
  the simulation made the command effective (its ``iat``) -> ``effective``
  seen on the stream.

Goals (issue 19): state lag <= 1 s; a command seen effective within 1 s of
the simulation applying it. Prints one JSON object.

    .venv/bin/python bench/live_lag.py [--seconds 60] [--pace 1] [--every 10]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx2 as httpx
from _live_server import start_server, summary  # bench/, the script's own folder

from cityx.interop.mqtt import MqttTransport
from cityx.server.live_api import read_sse, state_claims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="cologne1")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--pace", type=float, default=1.0)
    parser.add_argument("--every", type=float, default=10.0, help="simulated s between commands")
    args = parser.parse_args()

    served = start_server("cityx-live-lag-")
    base, auth = f"{served.url}/api/v1", {"Authorization": f"Bearer {served.token}"}

    answer = httpx.post(
        f"{base}/runs",
        json={
            "scenario": args.scenario,
            "seconds": args.seconds,
            "pace": args.pace,
            "controller": "max-pressure",
        },
        headers=auth,
        timeout=60,
    )
    answer.raise_for_status()
    rid = answer.json()["id"]

    bus_seen: dict[int, float] = {}
    bus = MqttTransport(url=served.config.bus).connect()
    bus.subscribe(
        f"cityx/v1/{rid}/OversightState/+",
        lambda _t, data: bus_seen.setdefault(int(state_claims(data.decode())["seq"]), time.time()),
    )

    state_lag: list[float] = []
    relay_lag: list[float] = []
    iat_by_sim: dict[float, float] = {}
    iat_by_seq: dict[int, float] = {}
    posted: dict[str, float] = {}
    latency: list[float] = []
    accepted: list[float] = []
    taken: set[str] = set()
    after_applied: list[float] = []
    done: set[str] = set()
    refused: list[dict[str, Any]] = []
    plan = ["hold", "phase", "resume"]
    next_at = args.every
    tls: str | None = None
    green = 0
    with httpx.stream("GET", f"{base}/runs/{rid}/state", headers=auth, timeout=None) as stream:
        for kind, data in read_sse(stream.iter_lines()):
            now = time.time()
            if kind == "state":
                iat = float(data["iat"])
                state_lag.append(now - iat)
                relay_lag.append(float(data["received_at"]) - iat)
                state = data["state"]
                iat_by_sim.setdefault(float(state["time_s"]), iat)
                iat_by_seq[int(data["seq"])] = iat
                (tls, info), *_ = state["intersections"].items()
                green = int(info["green"])
                if state["time_s"] >= next_at and plan:
                    action = plan.pop(0)
                    body: dict[str, Any] = {"action": action, "intersection": tls}
                    if action == "phase":
                        body["phase"] = green
                    sent = time.time()
                    reply = httpx.post(f"{base}/runs/{rid}/commands", json=body, headers=auth)
                    reply.raise_for_status()
                    posted[reply.json()["id"]] = sent
                    next_at += args.every
            elif kind == "command" and data["id"] in posted and data["id"] not in done:
                if data["state"] in ("accepted", "effective") and data["id"] not in taken:
                    taken.add(data["id"])
                    accepted.append(now - posted[data["id"]])
                if data["state"] == "effective":
                    done.add(data["id"])
                    latency.append(now - posted[data["id"]])
                    record = next(iter(data["records"].values()))
                    applied = iat_by_sim.get(float(record["effective_at_s"]))
                    if applied is not None:
                        after_applied.append(now - applied)
                elif data["state"] == "refused":
                    done.add(data["id"])
                    refused.append(data)
            elif kind == "end":
                ended = data
                break
    bus.close()
    bus_lag = [bus_seen[s] - iat for s, iat in iat_by_seq.items() if s in bus_seen]
    served.stop()
    out = {
        "bench": "live_lag",
        "scenario": args.scenario,
        "seconds": args.seconds,
        "pace": args.pace,
        "run": rid,
        "status": ended.get("status"),
        "complete": (ended.get("result") or {}).get("complete"),
        "states": len(state_lag),
        "state_lag": summary(state_lag),
        "server_relay_lag": summary(relay_lag),
        "bus_lag_baseline": summary(bus_lag),
        "commands": len(posted),
        "command_accepted_latency": summary(accepted),
        "command_latency": summary(latency),
        "effective_after_applied": summary(after_applied),
        "refused": refused,
        "goals": {
            "state_lag_p95_le_1s": bool(state_lag) and summary(state_lag)["p95_ms"] <= 1000,
            "effective_within_1s_of_applied": bool(after_applied) and max(after_applied) <= 1.0,
        },
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
