"""A conformance case's building blocks: the expected outcome, and the context that signs steps.

A *step* is one envelope sent to the endpoint under test (a
:class:`~.protocol.Request`); a :class:`Context` makes them for one run of
the suite: it holds the issuers' keys, the receiver's audience and a nonce,
and signs claims as any issuer, or as no signer would (:func:`compact`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..canonical import payload_digest
from ..envelope import ENVELOPE_VERSION, TYP
from ..keys import ALG
from ..messages import schema_id, traffic_flow_observed
from ..verify import Reason
from .issuers import CITY, ISSUER_PREFIX, Issuer
from .protocol import Request

FLOW = "TrafficFlowObserved"


@dataclass(frozen=True, slots=True)
class Expected:
    """The outcome a case expects: accepted (``reason`` None) or rejected for ``reason``."""

    reason: Reason | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None

    def __str__(self) -> str:
        return "accepted" if self.reason is None else f"rejected ({self.reason.value})"


class Context:
    """What the cases are built from: the issuers, the audience, the clock, a jti stream.

    Sequence numbers rise across the whole run and start at the clock in
    microseconds, like :class:`~cityx.interop.envelope.Signer`'s.
    """

    def __init__(
        self,
        issuers: Mapping[str, Issuer],
        *,
        audience: str,
        clock: Callable[[], float],
        nonce: int,
    ) -> None:
        self.issuers = issuers
        self.audience = audience
        self._clock = clock
        self._seq = 0
        self._rng = np.random.default_rng(nonce)

    @property
    def now(self) -> int:
        return int(self._clock())

    def next_seq(self) -> int:
        self._seq = max(self._seq + 1, int(self._clock() * 1_000_000))
        return self._seq

    def jti(self) -> str:
        return b64(self._rng.bytes(16))

    def topic(self, issuer: str = "sender", message_type: str = FLOW) -> str:
        return f"cityx/v1/{CITY}/{message_type}/{self.issuers[issuer].urn}"

    def flow(self, **extra: Any) -> dict[str, Any]:
        entity = traffic_flow_observed(
            "conformance-lane-1",
            road_segment="conformance-km1",
            lane_id=1,
            observed_at=self.now - 1,
            period_s=60,
            intensity=14,
            occupancy=0.2,
            average_speed_kmh=48.0,
            location=(6.9603, 50.9375),
        )
        entity.update(extra)
        return entity

    def claims(
        self,
        issuer: str = "sender",
        *,
        entity: Mapping[str, Any] | None = None,
        detached: bool = False,
        **changes: Any,
    ) -> dict[str, Any]:
        """Well-formed claims from ``issuer`` for ``entity`` (a flow by default)."""
        body = dict(entity if entity is not None else self.flow())
        kind = str(body["type"])
        now = self.now
        claims: dict[str, Any] = {
            "v": ENVELOPE_VERSION,
            "jti": self.jti(),
            "iss": self.issuers[issuer].urn,
            "aud": self.audience,
            "iat": now,
            "exp": now + 60,
            "seq": self.next_seq(),
            "type": kind,
            "schema": schema_id(kind),
            "prov": {"device": f"{ISSUER_PREFIX}device-1", "observed_at": now - 1},
            "topic": self.topic(issuer, kind),
        }
        if detached:
            claims["payload_sha256"] = payload_digest(body)
        else:
            claims["payload"] = body
        claims.update(changes)
        return claims

    def sign(
        self,
        claims: Mapping[str, Any],
        issuer: str = "sender",
        *,
        alg: str = ALG,
        kid_of: str | None = None,
    ) -> str:
        """A compact JWS of ``claims`` with ``issuer``'s private key, under ``kid_of``'s kid."""
        header = {"alg": alg, "kid": self.issuers[kid_of or issuer].key.kid, "typ": TYP}
        return compact(header, claims, self.issuers[issuer].private)

    def step(self, issuer: str = "sender", **changes: Any) -> Request:
        """A step with a signed envelope from ``issuer``, arriving on its signed topic."""
        claims = self.claims(issuer, **changes)
        return Request(self.sign(claims, issuer), claims.get("topic"))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def compact(
    header: Mapping[str, Any], claims: Mapping[str, Any], private: Ed25519PrivateKey | None
) -> str:
    """A compact JWS put together by hand: the suite must send what no signer would."""
    signing_input = f"{b64(compact_json(header))}.{b64(compact_json(claims))}"
    signature = b"" if private is None else private.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64(signature)}"


__all__ = ["FLOW", "Context", "Expected", "b64", "compact", "compact_json"]
