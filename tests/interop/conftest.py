"""Shared pieces of the interop tests: a settable clock, keys, a trust store, signers."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityx.interop import (
    TYP,
    Catalog,
    Signer,
    SigningKey,
    StaticTrustStore,
    TrustedKey,
    Verifier,
    generate_key,
    traffic_flow_observed,
)

NOW = 1_800_000_000.0  # 2027-01-15, fixed so nothing depends on the wall clock
AUD = "urn:cityx:city:cologne:tmc"
ISSUER = "urn:cityx:vendor:acme:detector-12"
OTHER = "urn:cityx:vendor:globex:detector-7"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.builtin()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def key() -> SigningKey:
    return generate_key(ISSUER)


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    return generate_key(OTHER)


def trusted(key: SigningKey, **options: Any) -> TrustedKey:
    return TrustedKey(kid=key.kid, issuer=key.issuer, x=key.public_jwk()["x"], **options)


@pytest.fixture
def store(key: SigningKey, other_key: SigningKey) -> StaticTrustStore:
    return StaticTrustStore([trusted(key), trusted(other_key)])


@pytest.fixture
def signer(key: SigningKey, catalog: Catalog, clock: Clock) -> Signer:
    return Signer(key, catalog=catalog, now=clock)


@pytest.fixture
def verifier(store: StaticTrustStore, catalog: Catalog, clock: Clock) -> Verifier:
    return Verifier(store, audience=AUD, catalog=catalog, now=clock)


def flow(at: float = NOW, **changes: Any) -> dict[str, Any]:
    """A valid TrafficFlowObserved observed at ``at``, with attribute values changed."""
    entity = traffic_flow_observed(
        "cologne-a4-lane-1",
        road_segment="a4-km12",
        lane_id=1,
        observed_at=at,
        period_s=60,
        intensity=14,
        occupancy=0.18,
        average_speed_kmh=52.5,
        congested=False,
        location=(6.9603, 50.9375),
    )
    for name, value in changes.items():
        entity[name] = {"type": "Property", "value": value}
    return entity


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: dict[str, Any] | bytes,
    claims: dict[str, Any] | bytes,
    *,
    private: Ed25519PrivateKey | None = None,
    signature: bytes | None = None,
) -> str:
    """A compact JWS made by hand, for envelopes the library would refuse to sign."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{b64(head)}.{b64(body)}"
    if signature is None:
        signature = private.sign(signing_input.encode()) if private else b""
    return f"{signing_input}.{b64(signature)}"


def private_of(key: SigningKey) -> Ed25519PrivateKey:
    d = str(key.jwk.as_dict(private=True)["d"])
    return Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(d + "=" * (-len(d) % 4)))


def header_of(key: SigningKey, alg: str = "Ed25519") -> dict[str, Any]:
    return {"alg": alg, "kid": key.kid, "typ": TYP}


@pytest.fixture
def claimed(signer: Signer) -> Callable[..., dict[str, Any]]:
    def build(entity: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        options.setdefault("audience", AUD)
        return signer.claims(entity or flow(), **options).to_json()

    return build
