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
from cityx.interop.bus import Message, SecureChannel

from ..support.services import mosquitto_program
from ..support.waiting import Collector

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


# -- MQTT: brokers and delivery checks for tests/interop/test_mqtt*.py ------

MARKER = "testMarker"  # an attribute no other test message carries


def accepted_before_marker(outbox: SecureChannel, accepted: Collector[Message]) -> list[Message]:
    """Send a marker flow and wait for it; then every message accepted before it.

    The messages of one publisher on one topic arrive in order (MQTT 5, 4.6) and
    the transport dispatches them on one thread, so a late copy of an earlier
    message (a redelivery, a second subscription's copy) is in before the marker
    is: a test sees that none came without sleeping for a guessed time. The
    marker must go through the same publisher and topic as the messages.
    """

    def is_marker(message: Message) -> bool:
        return MARKER in message.entity

    outbox.send(flow(**{MARKER: True}), audience=AUD)
    assert accepted.wait(lambda got: any(is_marker(m) for m in got)), "the marker never came"
    got = accepted.items
    return got[: next(i for i, m in enumerate(got) if is_marker(m))]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def mtls_broker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A mosquitto on a free port that requires a client certificate (trustme CA)."""
    import getpass
    import socket
    import subprocess
    import time
    from types import SimpleNamespace

    import trustme

    binary = mosquitto_program()
    folder = tmp_path_factory.mktemp("mtls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("cityx-test-client")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    server.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
    server.private_key_pem.write_to_path(str(folder / "server.key"))
    client.cert_chain_pems[0].write_to_path(str(folder / "client.pem"))
    client.private_key_pem.write_to_path(str(folder / "client.key"))
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        f"cafile {folder / 'ca.pem'}\n"
        f"certfile {folder / 'server.pem'}\n"
        f"keyfile {folder / 'server.key'}\n"
        "require_certificate true\n"
        "allow_anonymous true\n"
        "persistence false\n"
        # Run as whoever runs the tests: mosquitto started as root would drop
        # to user "mosquitto", which cannot read pytest's private temp folder.
        f"user {getpass.getuser()}\n"
    )
    process = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("test mosquitto with TLS did not start") from None
                time.sleep(0.05)
        yield SimpleNamespace(
            url=f"mqtts://127.0.0.1:{port}",
            ca=folder / "ca.pem",
            cert=folder / "client.pem",
            key=folder / "client.key",
        )
    finally:
        process.terminate()
        process.wait(timeout=5)
