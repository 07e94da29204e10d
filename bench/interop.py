"""Benchmark: the verification pipeline against bare Ed25519 verification.

In one process, on the same envelopes, alternating rounds: ``raw`` calls
``cryptography``'s ``Ed25519PublicKey.verify`` on each envelope's signing
input (the floor: no parsing, no checks); ``pipeline`` runs
:meth:`cityx.interop.Verifier.verify` (parse, algorithm, key, signature,
freshness, replay, audience, permission, schema, plausibility). Prints one
JSON object with the best round of each and their ratio; the goal is a
ratio of at least 0.5. Run it with ``.venv/bin/python bench/interop.py``.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import time
from importlib.metadata import version

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cityx.interop import (
    Catalog,
    Signer,
    StaticTrustStore,
    TrustedKey,
    Verifier,
    generate_key,
    topic_for,
    traffic_flow_observed,
)

GOAL = 0.5
AUD = "urn:cityx:city:cologne:tmc"


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="envelopes per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    now = 1_800_000_000.0
    catalog = Catalog.builtin()
    key = generate_key("urn:cityx:vendor:acme:detector-12")
    store = StaticTrustStore([TrustedKey(kid=key.kid, issuer=key.issuer, x=key.public_jwk()["x"])])
    signer = Signer(key, catalog=catalog, now=lambda: now)
    topic = topic_for("cologne", "TrafficFlowObserved", key.issuer)
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
        ).encode()
        for i in range(args.n)
    ]
    public = Ed25519PublicKey.from_public_bytes(_b64decode(key.public_jwk()["x"]))
    raw_inputs = [
        (e.rpartition(b".")[0], _b64decode(e.rpartition(b".")[2].decode())) for e in envelopes
    ]

    raw_best = pipeline_best = 0.0
    for _ in range(args.rounds):
        start = time.perf_counter()
        for signing_input, signature in raw_inputs:
            public.verify(signature, signing_input)
        raw_best = max(raw_best, args.n / (time.perf_counter() - start))

        # A fresh verifier each round: the same envelopes again would be replays.
        verifier = Verifier(store, audience=AUD, catalog=catalog, now=lambda: now)
        start = time.perf_counter()
        for envelope in envelopes:
            if not verifier.verify(envelope, topic=topic).accepted:
                raise SystemExit("a benchmark envelope was rejected")
        pipeline_best = max(pipeline_best, args.n / (time.perf_counter() - start))

    ratio = pipeline_best / raw_best
    print(
        json.dumps(
            {
                "benchmark": "interop.verify",
                "envelope_bytes": len(envelopes[0]),
                "n": args.n,
                "rounds": args.rounds,
                "raw_ed25519_verify_per_s": round(raw_best),
                "pipeline_msgs_per_s": round(pipeline_best),
                "ratio": round(ratio, 3),
                "goal": GOAL,
                "meets_goal": ratio >= GOAL,
                "schema_engine": catalog.engine.value,
                "python": platform.python_version(),
                "cryptography": version("cryptography"),
                "joserfc": version("joserfc"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
