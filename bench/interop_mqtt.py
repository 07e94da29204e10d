"""Benchmark: publish-to-verified-receive latency over MQTT 5 on loopback.

Two processes, each with one :class:`~cityx.interop.mqtt.MqttTransport`
connection to the broker (default the local Mosquitto at
``mqtt://127.0.0.1:1883``), as a detector and a receiver would be: the sender
process publishes pre-signed envelopes at a fixed rate (default 1,000 per
second for 5 s, a bounded loop), the receiver runs them through a
:class:`~cityx.interop.SecureChannel` and records, per accepted message, the
time from ``publish`` to the handler (``time.monotonic``, shared by all
processes on Linux). Prints one JSON object with p50/p99/max
in milliseconds; the goal is p99 <= 20 ms. Loopback only: the URL must point
at 127.0.0.1 or localhost. Run it with ``.venv/bin/python bench/interop_mqtt.py``.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import platform
import threading
import time
import uuid
from importlib.metadata import version
from typing import Any

from cityx.interop import (
    Catalog,
    SecureChannel,
    Signer,
    StaticTrustStore,
    TrustedKey,
    Verifier,
    generate_key,
    topic_for,
    traffic_flow_observed,
)
from cityx.interop.bus import Message
from cityx.interop.mqtt import MqttTransport, parse_url

GOAL_P99_MS = 20.0
AUD = "urn:cityx:city:cologne:tmc"


def _jti(envelope: str) -> str:
    body = envelope.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return str(claims["jti"])


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _send(url: str, topic: str, envelopes: list[str], rate: int, go: Any, out: Any) -> None:
    """The sender process: wait for ``go``, publish at ``rate``, report send times."""
    sent: list[float] = []
    with MqttTransport(url=url) as sender:
        go.wait(10)
        start = time.monotonic()
        for i, envelope in enumerate(envelopes):
            pause = start + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sent.append(time.monotonic())
            sender.publish(topic, envelope.encode("ascii"))
        sender.flush()
    out.put(sent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--rate", type=int, default=1000, help="messages per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if parse_url(args.url).host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("this benchmark runs on loopback only")
    n = max(1, min(int(args.rate * args.seconds), 100_000))  # bounded

    # A fixed clock: the benchmark measures transport and verification, not freshness.
    now = 1_800_000_000.0
    catalog = Catalog.builtin()
    key = generate_key("urn:cityx:vendor:acme:detector-12")
    store = StaticTrustStore([TrustedKey(kid=key.kid, issuer=key.issuer, x=key.public_jwk()["x"])])
    signer = Signer(key, catalog=catalog, now=lambda: now)
    verifier = Verifier(store, audience=AUD, catalog=catalog, now=lambda: now)
    city = f"bench{uuid.uuid4().hex[:8]}"  # apart from anything else on the broker
    topic = topic_for(city, "TrafficFlowObserved", key.issuer)
    # Signed ahead of time so the sender can keep the rate; signing is not measured.
    envelopes = [
        signer.sign(
            traffic_flow_observed(
                f"lane-{i % 4}",
                road_segment="a4-km12",
                lane_id=i % 4,
                observed_at=now,
                period_s=60,
                intensity=10 + i % 30,
                occupancy=0.1 + (i % 50) / 100,
                average_speed_kmh=30.0 + i % 60,
                congested=i % 7 == 0,
                location=(6.9603, 50.9375),
            ),
            audience=AUD,
            topic=topic,
        )
        for i in range(n)
    ]
    index = {_jti(e): i for i, e in enumerate(envelopes)}
    received_at: list[float] = [0.0] * n
    count = 0
    done = threading.Event()

    def handle(message: Message) -> None:
        nonlocal count
        received_at[index[str(message.claims["jti"])]] = time.monotonic()
        count += 1
        if count == n:
            done.set()

    # spawn, not fork: this process already runs threads.
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    process = context.Process(target=_send, args=(args.url, topic, envelopes, args.rate, go, out))
    process.start()
    try:
        with MqttTransport(url=args.url) as receiver:
            inbox = SecureChannel(receiver, city=city, verifier=verifier)
            inbox.subscribe(f"cityx/v1/{city}/#", handle)
            time.sleep(0.3)  # let SUBACK arrive
            go.set()
            sent_at: list[float] = out.get(timeout=args.seconds + 30)
            done.wait(10)
            rejected = sum(inbox.rejected.values())
    finally:
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join()
    elapsed = sent_at[-1] - sent_at[0] if n > 1 else 1.0
    latencies = [r - t for r, t in zip(received_at, sent_at, strict=True) if r]

    ms = sorted(x * 1000 for x in latencies)
    p99 = _percentile(ms, 0.99) if ms else float("inf")
    print(
        json.dumps(
            {
                "benchmark": "interop_mqtt",
                "url": args.url,
                "messages": n,
                "received": len(ms),
                "rejected": rejected,
                "rate_target": args.rate,
                "rate_achieved": round((n - 1) / elapsed, 1) if n > 1 else None,
                "p50_ms": round(_percentile(ms, 0.50), 3) if ms else None,
                "p99_ms": round(p99, 3),
                "max_ms": round(ms[-1], 3) if ms else None,
                "goal_p99_ms": GOAL_P99_MS,
                "ok": len(ms) == n and p99 <= GOAL_P99_MS,
                "python": platform.python_version(),
                "paho_mqtt": version("paho-mqtt"),
            }
        )
    )
    return 0 if len(ms) == n and p99 <= GOAL_P99_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
