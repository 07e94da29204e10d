"""Benchmark: the verification pipeline against bare Ed25519, and MQTT latency, in one run.

Two measurements on the same kind of envelope (a signed TrafficFlowObserved):

``verify``
    in this process, alternating rounds on the same envelopes: ``raw`` calls
    ``cryptography``'s ``Ed25519PublicKey.verify`` on each envelope's signing
    input (the floor: no parsing, no checks); ``pipeline`` runs
    :meth:`cityx.interop.Verifier.verify` (parse, algorithm, key, signature,
    freshness, replay, audience, permission, schema, plausibility). The best
    round of each and their ratio; the goal is a ratio of at least 0.5.
``mqtt``
    publish-to-verified-receive latency over MQTT 5 on loopback: a sender
    process publishes pre-signed envelopes at a fixed rate (default 1,000 a
    second for 5 s) through its own connection to the broker (default the
    local Mosquitto), and this process receives them through a
    :class:`~cityx.interop.SecureChannel` and records, per accepted message,
    the time from ``publish`` to the handler (``time.monotonic``, shared by
    all processes on Linux). p50/p99/max in milliseconds and the delivered
    count; the goal is p99 <= 20 ms with every message delivered.

Prints one JSON object; exits 1 if a goal is missed or the broker is down.
Run it with ``.venv/bin/python bench/interop.py`` (``--help`` for options).
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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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
from cityx.interop.mqtt import BrokerError, MqttTransport, parse_url

GOAL_RATIO = 0.5
GOAL_P99_MS = 20.0
AUD = "urn:cityx:city:cologne:tmc"
ISSUER = "urn:cityx:vendor:acme:detector-12"
# A fixed clock: the benchmark measures parsing, checks and transport, not freshness.
NOW = 1_800_000_000.0


def _now() -> float:
    return NOW


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _envelopes(signer: Signer, topic: str, n: int) -> list[bytes]:
    """``n`` signed flows (signed ahead: signing is not measured)."""
    return [
        signer.sign(
            traffic_flow_observed(
                f"lane-{i % 4}",
                road_segment="a4-km12",
                lane_id=i % 4 + 1,
                observed_at=NOW,
                period_s=60,
                intensity=10 + i % 30,
                occupancy=0.1 + (i % 50) / 100,
                average_speed_kmh=30.0 + i % 60,
                congested=i % 7 == 0,
                location=(6.9603, 50.9375),
            ),
            audience=AUD,
            topic=topic,
        ).encode("ascii")
        for i in range(n)
    ]


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def bench_verify(
    store: StaticTrustStore, catalog: Catalog, signer: Signer, n: int, rounds: int
) -> dict[str, Any]:
    topic = topic_for("cologne", "TrafficFlowObserved", ISSUER)
    envelopes = _envelopes(signer, topic, n)
    public = Ed25519PublicKey.from_public_bytes(_b64decode(signer.key.public_jwk()["x"]))
    raw_inputs = [
        (e.rpartition(b".")[0], _b64decode(e.rpartition(b".")[2].decode())) for e in envelopes
    ]
    raw_best = pipeline_best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for signing_input, signature in raw_inputs:
            public.verify(signature, signing_input)
        raw_best = max(raw_best, n / (time.perf_counter() - start))

        # A fresh verifier each round: the same envelopes again would be replays.
        verifier = Verifier(store, audience=AUD, catalog=catalog, now=_now)
        start = time.perf_counter()
        for envelope in envelopes:
            if not verifier.verify(envelope, topic=topic).accepted:
                raise SystemExit("a benchmark envelope was rejected")
        pipeline_best = max(pipeline_best, n / (time.perf_counter() - start))
    ratio = pipeline_best / raw_best
    return {
        "envelope_bytes": len(envelopes[0]),
        "n": n,
        "rounds": rounds,
        "raw_ed25519_verify_per_s": round(raw_best),
        "pipeline_msgs_per_s": round(pipeline_best),
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "meets_goal": ratio >= GOAL_RATIO,
    }


def _send(url: str, topic: str, envelopes: list[bytes], rate: int, go: Any, out: Any) -> None:
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
            sender.publish(topic, envelope)
        sender.flush()
    out.put(sent)


def bench_mqtt(
    store: StaticTrustStore, catalog: Catalog, signer: Signer, url: str, rate: int, seconds: float
) -> dict[str, Any]:
    n = max(1, min(int(rate * seconds), 100_000))  # bounded
    verifier = Verifier(store, audience=AUD, catalog=catalog, now=_now)
    city = f"bench{uuid.uuid4().hex[:8]}"  # apart from anything else on the broker
    topic = topic_for(city, "TrafficFlowObserved", ISSUER)
    envelopes = _envelopes(signer, topic, n)
    index = {
        json.loads(_b64decode(e.split(b".")[1].decode()))["jti"]: i for i, e in enumerate(envelopes)
    }
    received_at = [0.0] * n
    count = 0
    done = threading.Event()

    def handle(message: Message) -> None:
        nonlocal count
        received_at[index[str(message.claims["jti"])]] = time.monotonic()
        count += 1
        if count == n:
            done.set()

    result: dict[str, Any] = {"url": url, "messages": n, "rate_target": rate}
    # spawn, not fork: this process already runs threads.
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    process = context.Process(target=_send, args=(url, topic, envelopes, rate, go, out))
    try:
        with MqttTransport(url=url) as receiver:
            process.start()
            inbox = SecureChannel(receiver, city=city, verifier=verifier)
            inbox.subscribe(f"cityx/v1/{city}/#", handle)
            time.sleep(0.3)  # let SUBACK arrive
            go.set()
            sent_at: list[float] = out.get(timeout=seconds + 30)
            done.wait(10)
            rejected = sum(inbox.rejected.values())
    except BrokerError as exc:
        return {**result, "error": str(exc), "meets_goal": False}
    finally:
        if process.pid is not None:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join()
    ms = sorted(
        (r - t) * 1000 for r, t in zip(received_at, sent_at, strict=True) if r
    )  # only delivered ones
    p99 = _percentile(ms, 0.99) if ms else float("inf")
    elapsed = sent_at[-1] - sent_at[0] if n > 1 else 0.0
    return {
        **result,
        "delivered": len(ms),
        "rejected": rejected,
        "rate_achieved": round((n - 1) / elapsed, 1) if elapsed > 0 else None,
        "p50_ms": round(_percentile(ms, 0.50), 3) if ms else None,
        "p99_ms": round(p99, 3) if ms else None,
        "max_ms": round(ms[-1], 3) if ms else None,
        "goal_p99_ms": GOAL_P99_MS,
        "meets_goal": len(ms) == n and p99 <= GOAL_P99_MS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="envelopes per verify round")
    parser.add_argument("--rounds", type=int, default=5, help="verify rounds (best is kept)")
    parser.add_argument("--url", default="mqtt://127.0.0.1:1883", help="broker (loopback only)")
    parser.add_argument("--rate", type=int, default=1000, help="MQTT messages per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="MQTT sending time")
    args = parser.parse_args()
    if parse_url(args.url).host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("this benchmark runs on loopback only")

    catalog = Catalog.builtin()
    key = generate_key(ISSUER)
    store = StaticTrustStore([TrustedKey(kid=key.kid, issuer=key.issuer, x=key.public_jwk()["x"])])
    signer = Signer(key, catalog=catalog, now=_now)
    verify = bench_verify(store, catalog, signer, args.n, args.rounds)
    mqtt = bench_mqtt(store, catalog, signer, args.url, args.rate, args.seconds)
    ok = bool(verify["meets_goal"] and mqtt["meets_goal"])
    print(
        json.dumps(
            {
                "benchmark": "interop",
                "verify": verify,
                "mqtt": mqtt,
                "ok": ok,
                "schema_engine": catalog.engine.value,
                "python": platform.python_version(),
                "cryptography": version("cryptography"),
                "joserfc": version("joserfc"),
                "paho_mqtt": version("paho-mqtt"),
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
