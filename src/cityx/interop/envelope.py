"""The envelope: a message's claims, signed as a compact JWS.

An *envelope* is a compact JWS (RFC 7515) signed with Ed25519. Its
*protected header* holds exactly ``alg`` (``Ed25519``, RFC 9864; receivers
also accept the older ``EdDSA``), ``kid`` (the RFC 7638 thumbprint of the
signing key) and ``typ`` (``cityx-msg+jws``, so an envelope is never taken
for another kind of token). Its payload is the JSON object of *claims*:

=================  ========================================================
``v``              envelope version, ``1``
``jti``            unique id of this envelope (replay detection)
``iss``            the sending system's issuer URN
``aud``            the receiving system(s): a URN or a list of them
``iat``, ``exp``   issued at and expires at, whole seconds since the epoch
``seq``            the issuer's sequence number: rises with every envelope
``type``           the message type (``TrafficFlowObserved``, ...)
``schema``         the ``$id`` of the schema the entity follows
``payload``        the entity itself, *or* ...
``payload_sha256`` ... the hex SHA-256 of its RFC 8785 form (*detached*)
``topic``          the bus topic it is meant for (optional, signed)
``prov``           provenance: ``device`` and ``observed_at`` (epoch seconds)
``ai``             for AI outputs: ``model``, ``model_digest``
                   (``sha256:HEX``), ``confidence`` (0..1), ``explanation``
                   (a reference to the explanation)
=================  ========================================================

:func:`claims_problem` is the one definition of well-formed claims: the
signer refuses what it reports, and the verifier rejects it as malformed.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws

from .canonical import payload_digest
from .errors import MessageError
from .keys import ALG, ISSUER_RE, SigningKey
from .messages import Catalog

ENVELOPE_VERSION = 1
TYP = "cityx-msg+jws"
LEGACY_ALG = "EdDSA"
MAX_SAFE_INT = 2**53 - 1  # I-JSON: integers beyond this lose precision in other parsers

_CLAIMS = frozenset(
    {
        "v", "jti", "iss", "aud", "iat", "exp", "seq", "type", "schema",
        "payload", "payload_sha256", "topic", "prov", "ai",
    }
)  # fmt: skip
_REQUIRED = ("v", "jti", "iss", "aud", "iat", "exp", "seq", "type", "schema", "prov")
_JTI = re.compile(r"[A-Za-z0-9_-]{8,128}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_TOPIC = re.compile(r"[^+#\x00]{1,512}")


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where the content came from: the device and when it observed (epoch seconds)."""

    device: str
    observed_at: float

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "observed_at": self.observed_at}


@dataclass(frozen=True, slots=True, kw_only=True)
class AiInfo:
    """What an AI output declares about the model that produced it."""

    model: str
    model_digest: str
    confidence: float | None = None
    explanation: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "model_digest": self.model_digest}
        if self.confidence is not None:
            out["confidence"] = self.confidence
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Claims:
    """The claims of one envelope (see the module docstring for each field)."""

    jti: str
    iss: str
    aud: tuple[str, ...]
    iat: int
    exp: int
    seq: int
    type: str
    schema: str
    prov: Provenance
    payload: Mapping[str, Any] | None = None
    payload_sha256: str | None = None
    topic: str | None = None
    ai: AiInfo | None = None
    v: int = ENVELOPE_VERSION

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": self.v,
            "jti": self.jti,
            "iss": self.iss,
            "aud": self.aud[0] if len(self.aud) == 1 else list(self.aud),
            "iat": self.iat,
            "exp": self.exp,
            "seq": self.seq,
            "type": self.type,
            "schema": self.schema,
            "prov": self.prov.to_json(),
        }
        if self.payload is not None:
            out["payload"] = self.payload
        if self.payload_sha256 is not None:
            out["payload_sha256"] = self.payload_sha256
        if self.topic is not None:
            out["topic"] = self.topic
        if self.ai is not None:
            out["ai"] = self.ai.to_json()
        return out

    @classmethod
    def from_json(cls, claims: Mapping[str, Any]) -> Claims:
        """Typed claims from their JSON object; :class:`MessageError` if malformed."""
        problem = claims_problem(claims)
        if problem is not None:
            raise MessageError(f"malformed claims: {problem}")
        aud = claims["aud"]
        prov = claims["prov"]
        ai = claims.get("ai")
        return cls(
            v=claims["v"],
            jti=claims["jti"],
            iss=claims["iss"],
            aud=(aud,) if isinstance(aud, str) else tuple(aud),
            iat=claims["iat"],
            exp=claims["exp"],
            seq=claims["seq"],
            type=claims["type"],
            schema=claims["schema"],
            prov=Provenance(prov["device"], prov["observed_at"]),
            payload=claims.get("payload"),
            payload_sha256=claims.get("payload_sha256"),
            topic=claims.get("topic"),
            ai=None if ai is None else AiInfo(**ai),
        )


def _int(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_SAFE_INT


def _number(value: Any) -> bool:
    # bool is an int in Python but never a number in JSON.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any, limit: int = 256) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def claims_problem(claims: Any) -> str | None:
    """None when ``claims`` is a well-formed claims object, else the first problem."""
    if not isinstance(claims, dict):
        return "claims must be a JSON object"
    extra = claims.keys() - _CLAIMS
    if extra:
        return f"unknown claim {sorted(extra)[0]!r}"
    for name in _REQUIRED:
        if name not in claims:
            return f"missing claim {name!r}"
    if claims["v"] != ENVELOPE_VERSION or type(claims["v"]) is not int:
        return f"envelope version {claims['v']!r} is not supported (only {ENVELOPE_VERSION})"
    if not isinstance(claims["jti"], str) or not _JTI.fullmatch(claims["jti"]):
        return "jti must be 8-128 characters of A-Z a-z 0-9 _ -"
    if not isinstance(claims["iss"], str) or not ISSUER_RE.fullmatch(claims["iss"]):
        return "iss must be an issuer URN"
    aud = claims["aud"]
    if isinstance(aud, list):
        if not 0 < len(aud) <= 16 or not all(_text(a) for a in aud):
            return "aud must be a URN or a list of 1-16 of them"
    elif not _text(aud):
        return "aud must be a URN or a list of 1-16 of them"
    for name in ("iat", "exp", "seq"):
        if not _int(claims[name]):
            return f"{name} must be an integer in 0..2**53-1"
    if claims["exp"] <= claims["iat"]:
        return "exp must be later than iat"
    if not isinstance(claims["type"], str) or not _TYPE.fullmatch(claims["type"]):
        return "type must be a message type name"
    if not _text(claims["schema"]):
        return "schema must be a schema id"
    has_payload, has_digest = "payload" in claims, "payload_sha256" in claims
    if has_payload == has_digest:
        return "exactly one of payload and payload_sha256 is needed"
    if has_payload and not isinstance(claims["payload"], dict):
        return "payload must be a JSON object (an entity)"
    if has_digest and not (
        isinstance(claims["payload_sha256"], str) and _HEX64.fullmatch(claims["payload_sha256"])
    ):
        return "payload_sha256 must be 64 lowercase hex digits"
    if "topic" in claims and not (
        isinstance(claims["topic"], str) and _TOPIC.fullmatch(claims["topic"])
    ):
        return "topic must be 1-512 characters without + # or NUL"
    return _prov_problem(claims["prov"]) or _ai_problem(claims.get("ai"))


def _prov_problem(prov: Any) -> str | None:
    if not isinstance(prov, dict) or prov.keys() != {"device", "observed_at"}:
        return "prov must be an object with exactly device and observed_at"
    if not _text(prov["device"]):
        return "prov.device must be a non-empty string"
    if not _number(prov["observed_at"]) or not 0 <= prov["observed_at"] <= MAX_SAFE_INT:
        return "prov.observed_at must be seconds since the epoch"
    return None


def _ai_problem(ai: Any) -> str | None:
    if ai is None:
        return None
    if not isinstance(ai, dict) or not {"model", "model_digest"} <= ai.keys() <= {
        "model",
        "model_digest",
        "confidence",
        "explanation",
    }:
        return "ai must have model and model_digest, and may have confidence and explanation"
    if not _text(ai["model"]):
        return "ai.model must be a non-empty string"
    if not isinstance(ai["model_digest"], str) or not _DIGEST.fullmatch(ai["model_digest"]):
        return "ai.model_digest must be sha256: and 64 lowercase hex digits"
    confidence = ai.get("confidence")
    if confidence is not None and not (_number(confidence) and 0 <= confidence <= 1):
        return "ai.confidence must be a number in 0..1"
    if "explanation" in ai and not _text(ai["explanation"], 1024):
        return "ai.explanation must be a reference (a non-empty string)"
    return None


def sign(claims: Claims, key: SigningKey) -> str:
    """The compact JWS of ``claims`` signed with ``key`` (whose issuer must be ``iss``)."""
    body = claims.to_json()
    problem = claims_problem(body)
    if problem is not None:
        raise MessageError(f"refusing to sign malformed claims: {problem}")
    if claims.iss != key.issuer:
        raise MessageError(f"iss {claims.iss!r} is not the key's issuer {key.issuer!r}")
    header = {"alg": ALG, "kid": key.kid, "typ": TYP}
    text = _dumps(body)
    return jws.serialize_compact(header, text, key.jwk, algorithms=[ALG])


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class Signer:
    """Signs entities for one issuer: fills in jti, times, seq, schema and provenance.

    ``seq`` starts at the clock in microseconds and then rises by at least
    one per envelope, so it keeps rising across restarts of the sender
    (receivers reject a sequence number that does not rise).
    """

    def __init__(
        self,
        key: SigningKey,
        *,
        catalog: Catalog,
        device: str | None = None,
        ttl_s: int = 60,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.catalog = catalog
        self.device = device or key.issuer
        self.ttl_s = ttl_s
        self._now = now
        self._seq = 0

    def next_seq(self) -> int:
        self._seq = max(self._seq + 1, int(self._now() * 1_000_000))
        return self._seq

    def claims(
        self,
        entity: Mapping[str, Any],
        *,
        audience: str | Sequence[str],
        topic: str | None = None,
        detached: bool = False,
        observed_at: float | None = None,
        ai: AiInfo | None = None,
        message_type: str | None = None,
    ) -> Claims:
        """The claims for ``entity``, after checking it against its schema."""
        kind = message_type or str(entity.get("type"))
        if entity.get("type") != kind:
            raise MessageError(f"the entity's type {entity.get('type')!r} is not {kind!r}")
        self.catalog.check(kind, entity)
        schema = self.catalog.schema_id(kind) or ""  # check() already rejected unknown types
        try:
            digest = payload_digest(entity) if detached else None
        except ValueError as exc:  # rfc8785 cannot represent it (a huge integer, ...)
            raise MessageError(f"the entity has no canonical JSON form: {exc}") from exc
        now = self._now()
        return Claims(
            jti=secrets.token_urlsafe(16),
            iss=self.key.issuer,
            aud=(audience,) if isinstance(audience, str) else tuple(audience),
            iat=int(now),
            exp=int(now) + self.ttl_s,
            seq=self.next_seq(),
            type=kind,
            schema=schema,
            prov=Provenance(self.device, now if observed_at is None else observed_at),
            payload=None if detached else dict(entity),
            payload_sha256=digest,
            topic=topic,
            ai=ai,
        )

    def sign(
        self,
        entity: Mapping[str, Any],
        *,
        audience: str | Sequence[str],
        topic: str | None = None,
        detached: bool = False,
        observed_at: float | None = None,
        ai: AiInfo | None = None,
        message_type: str | None = None,
    ) -> str:
        """The compact JWS envelope of ``entity`` (see :meth:`claims`)."""
        claims = self.claims(
            entity,
            audience=audience,
            topic=topic,
            detached=detached,
            observed_at=observed_at,
            ai=ai,
            message_type=message_type,
        )
        return sign(claims, self.key)


__all__ = [
    "ENVELOPE_VERSION",
    "LEGACY_ALG",
    "MAX_SAFE_INT",
    "TYP",
    "AiInfo",
    "Claims",
    "Provenance",
    "Signer",
    "claims_problem",
    "sign",
]
