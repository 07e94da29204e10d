"""The verification pipeline: every received envelope goes through it.

A *verdict* says whether an envelope is *accepted* and, if not, the
*reason*: a stable code from :class:`Reason`. The checks run in this fixed
order and the first failure decides (so the cheap checks shield the costly
ones, and nothing is read from the claims before the signature is good
except to see that they are well formed):

 1. ``oversize``           the envelope is longer than ``VerifierPolicy.max_bytes``
 2. ``malformed``          not a compact JWS, bad base64url, not strict JSON
                           (see :mod:`.canonical`), nested too deep, header
                           members other than alg/kid/typ, claims of the
                           wrong shape (see :func:`.envelope.claims_problem`)
 3. ``alg_not_allowed``    ``alg`` is not in ``VerifierPolicy.algorithms`` (``none``,
                           ``HS256``, ``RS256``, ... never are); then a
                           ``typ`` other than ``cityx-msg+jws`` is ``malformed``
 4. ``unknown_key``        no ``kid``, or the trust store does not know it;
    ``revoked_key``        its revocation time has passed;
    ``key_expired``        after its ``not_after``;
    ``key_not_yet_valid``  before its ``not_before``
 5. ``bad_signature``      the Ed25519 signature does not verify
 6. ``issuer_mismatch``    ``iss`` is not the issuer the key belongs to
 7. ``digest_mismatch``    a detached payload is missing or its RFC 8785
                           SHA-256 differs from ``payload_sha256``
 8. ``future_dated``       ``iat`` is later than now plus the clock skew;
    ``stale``              ``exp`` has passed, or ``iat`` is older than
                           ``VerifierPolicy.max_age_s`` (both with the skew)
 9. ``replayed_jti``       this issuer's ``jti`` was accepted before;
    ``seq_not_rising``     ``seq`` is not above the issuer's last accepted one
10. ``wrong_audience``     none of ``aud`` is this receiver
11. ``not_permitted``      the key may not sign this type or this topic, or
                           the envelope arrived on a topic other than the
                           one it was signed for
12. ``unknown_type``       no schema for ``type``, or ``schema`` is not its id;
    ``schema_invalid``     the entity does not fit the schema under the
                           catalog's profile (see :mod:`.profiles`); the
                           detail names the profile and the field
13. ``implausible``        the entity cannot physically be true
                           (see :func:`.plausibility.check_plausible`)

Replay state (seen jtis, last seq per issuer) is updated only for accepted
envelopes, so a rejected one cannot burn a sequence number. The jti cache
is bounded; an entry is dropped once its envelope could no longer pass the
freshness check, or, when full, oldest first (the ``seq`` check still
stops a replay of an evicted jti).

A :class:`Verifier` is not thread-safe: use one per consumer thread.
"""

from __future__ import annotations

import binascii
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from joserfc.jwa import JWS_ALGORITHMS, JWSAlgModel
from joserfc.jwk import OKPKey

from .canonical import MAX_DEPTH, StrictJSONError, payload_digest, strict_loads
from .envelope import LEGACY_ALG, TYP, claims_problem
from .keys import ALG
from .messages import Catalog
from .plausibility import PhysicalLimits, check_plausible
from .trust import TrustedKey, TrustStore


class Reason(StrEnum):
    """Why an envelope was rejected, in pipeline order."""

    OVERSIZE = "oversize"
    MALFORMED = "malformed"
    ALG_NOT_ALLOWED = "alg_not_allowed"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"
    KEY_EXPIRED = "key_expired"
    KEY_NOT_YET_VALID = "key_not_yet_valid"
    BAD_SIGNATURE = "bad_signature"
    ISSUER_MISMATCH = "issuer_mismatch"
    DIGEST_MISMATCH = "digest_mismatch"
    FUTURE_DATED = "future_dated"
    STALE = "stale"
    REPLAYED_JTI = "replayed_jti"
    SEQ_NOT_RISING = "seq_not_rising"
    WRONG_AUDIENCE = "wrong_audience"
    NOT_PERMITTED = "not_permitted"
    UNKNOWN_TYPE = "unknown_type"
    SCHEMA_INVALID = "schema_invalid"
    IMPLAUSIBLE = "implausible"


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome for one envelope.

    ``claims`` is set once the signature is good (also for later
    rejections, so logs can say who sent what), and None before.
    """

    accepted: bool
    reason: Reason | None
    detail: str
    claims: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reason": None if self.reason is None else self.reason.value,
            "claims": None if self.claims is None else dict(self.claims),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifierPolicy:
    """What the verifier tolerates. Times in seconds."""

    max_bytes: int = 64 * 1024
    max_depth: int = MAX_DEPTH
    algorithms: frozenset[str] = frozenset({ALG, LEGACY_ALG})
    clock_skew_s: float = 5.0
    max_age_s: float = 60.0
    jti_cache_size: int = 100_000
    limits: PhysicalLimits = field(default_factory=PhysicalLimits)

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithms", frozenset(self.algorithms))
        unknown = self.algorithms - {ALG, LEGACY_ALG}
        if unknown:
            raise ValueError(f"only {ALG} and {LEGACY_ALG} can be allowed, not {sorted(unknown)}")
        if self.max_bytes <= 0 or self.max_depth <= 0 or self.jti_cache_size <= 0:
            raise ValueError("max_bytes, max_depth and jti_cache_size must be positive")


def _algorithm_models() -> dict[str, JWSAlgModel]:
    """joserfc's models for the two names of Ed25519 (RFC 9864 and RFC 8037)."""
    # The verifier calls these models directly, not through JWSRegistry.get_alg: that warns
    # (SecurityWarning) on every use of the old name, once per envelope from an older sender.
    return {a.name: a for a in JWS_ALGORITHMS if a.name in (ALG, LEGACY_ALG)}


_B64URL_ALPHABET_AND_DOT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})
_SIGNATURE_BYTES = 64


def _b64decode(part: bytes) -> bytes:
    # What base64.urlsafe_b64decode does, minus its Python-level overhead (the alphabet was
    # checked already); strict_mode refuses anything but canonical padding.
    return binascii.a2b_base64(part.translate(_URLSAFE) + b"=" * (-len(part) % 4), strict_mode=True)


class _Reject(Exception):
    """Internal: carries a rejection out of a stage."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Verifier:
    """Runs the pipeline for one receiver.

    ``audience`` is this receiver's URN (or several); None accepts any
    audience and is meant for offline inspection only. ``topic`` passed to
    :meth:`verify` is where the envelope arrived, when it came over a bus.
    """

    def __init__(
        self,
        trust: TrustStore,
        *,
        audience: str | Collection[str] | None,
        catalog: Catalog,
        policy: VerifierPolicy | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.trust = trust
        self.audience = (
            None
            if audience is None
            else frozenset([audience] if isinstance(audience, str) else audience)
        )
        self.catalog = catalog
        self.policy = policy or VerifierPolicy()
        self._now = now
        self._algorithms = {
            name: model
            for name, model in _algorithm_models().items()
            if name in self.policy.algorithms
        }
        self._public_keys: dict[str, tuple[str, OKPKey]] = {}
        self._headers: dict[bytes, dict[str, Any]] = {}
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._last_seq: dict[str, int] = {}

    # -- the pipeline ---------------------------------------------------------------------------

    def verify(
        self,
        envelope: bytes | str,
        *,
        topic: str | None = None,
        payload: bytes | Mapping[str, Any] | None = None,
    ) -> Verification:
        """Check one envelope; never raises for any ``envelope`` or ``payload``.

        ``payload`` is the entity of a detached envelope: its JSON text
        (parsed strictly) or the already-parsed object.
        """
        claims: dict[str, Any] | None = None
        try:
            data = self._bytes(envelope)
            signing_input, header, claims, signature = self._parse(data)
            model = self._algorithm(header)
            now = self._now()
            key = self._key(header, now)
            self._signature(model, key, signing_input, signature)
            entity = self._content(key, claims, payload)
            self._fresh(claims, now)
            self._not_replayed(claims)
            self._addressed(claims)
            self._permitted(key, claims, topic)
            self._valid(claims, entity)
            problem = check_plausible(
                entity, issuer=claims["iss"], now=now, limits=self.policy.limits
            )
            if problem is not None:
                raise _Reject(Reason.IMPLAUSIBLE, problem)
        except _Reject as rejection:
            signed = claims is not None and rejection.reason not in _BEFORE_SIGNATURE
            return Verification(
                False,
                rejection.reason,
                rejection.detail,
                MappingProxyType(claims) if signed and claims is not None else None,
            )
        self._remember(claims, now)
        return Verification(True, None, "accepted", MappingProxyType(claims))

    def _bytes(self, envelope: Any) -> bytes:
        if isinstance(envelope, str):
            if len(envelope) > self.policy.max_bytes:
                raise _Reject(Reason.OVERSIZE, f"longer than {self.policy.max_bytes} bytes")
            try:
                return envelope.encode("ascii")
            except UnicodeEncodeError:
                raise _Reject(Reason.MALFORMED, "a compact JWS is ASCII") from None
        if isinstance(envelope, bytes | bytearray | memoryview):
            data = bytes(envelope)
            if len(data) > self.policy.max_bytes:
                raise _Reject(Reason.OVERSIZE, f"longer than {self.policy.max_bytes} bytes")
            return data
        raise _Reject(
            Reason.MALFORMED, f"an envelope is bytes or text, not {type(envelope).__name__}"
        )

    def _parse(self, data: bytes) -> tuple[bytes, dict[str, Any], dict[str, Any], bytes]:
        if data.count(b".") != 2:
            raise _Reject(Reason.MALFORMED, "not a compact JWS (three base64url parts)")
        signing_input, _, signature_part = data.rpartition(b".")
        header_part, _, claims_part = signing_input.partition(b".")
        if not header_part or not claims_part:
            raise _Reject(Reason.MALFORMED, "empty header or payload")
        # Deleting the alphabet leaves nothing of valid base64url (a C-speed check).
        if data.translate(None, _B64URL_ALPHABET_AND_DOT):
            raise _Reject(Reason.MALFORMED, "not base64url (A-Z a-z 0-9 - _ only, no padding)")
        try:
            signature = _b64decode(signature_part)
            header = self._headers.get(header_part)
            if header is None:
                header = self._header(_b64decode(header_part), header_part)
            claims_bytes = _b64decode(claims_part)
        except binascii.Error:
            raise _Reject(Reason.MALFORMED, "bad base64url length") from None
        # Unused low bits would let one signature be spelled several ways.
        canonical = binascii.b2a_base64(signature, newline=False).translate(_TO_URLSAFE)
        if canonical.rstrip(b"=") != signature_part:
            raise _Reject(Reason.MALFORMED, "signature is not canonical base64url")
        claims = self._json(claims_bytes, "claims")
        problem = claims_problem(claims)
        if problem is not None:
            raise _Reject(Reason.MALFORMED, problem)
        return signing_input, header, claims, signature

    def _header(self, text: bytes, part: bytes) -> dict[str, Any]:
        header = self._json(text, "header")
        if not header.keys() <= _HEADER_MEMBERS or not isinstance(header.get("alg"), str):
            extra = sorted(header.keys() - _HEADER_MEMBERS)
            raise _Reject(
                Reason.MALFORMED,
                f"header member {extra[0]!r} is not allowed" if extra else "header has no alg",
            )
        # A sender repeats one header (alg, kid, typ) on every envelope: parse it once.
        if len(self._headers) >= 1024:
            self._headers.clear()
        self._headers[part] = header
        return header

    def _json(self, text: bytes, what: str) -> dict[str, Any]:
        try:
            value = strict_loads(text, max_depth=self.policy.max_depth)
        except StrictJSONError as exc:
            raise _Reject(Reason.MALFORMED, f"{what}: {exc}") from None
        if not isinstance(value, dict):
            raise _Reject(Reason.MALFORMED, f"{what} is not a JSON object")
        return value

    def _algorithm(self, header: Mapping[str, Any]) -> JWSAlgModel:
        model = self._algorithms.get(header["alg"])
        if model is None:
            raise _Reject(Reason.ALG_NOT_ALLOWED, f"alg {header['alg'][:32]!r} is not allowed")
        if header.get("typ") != TYP:
            raise _Reject(Reason.MALFORMED, f"typ must be {TYP!r}")
        return model

    def _key(self, header: Mapping[str, Any], now: float) -> TrustedKey:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _Reject(Reason.UNKNOWN_KEY, "no kid in the header")
        key = self.trust.key(kid)
        if key is None:
            raise _Reject(Reason.UNKNOWN_KEY, f"kid {kid[:64]!r} is not in the trust store")
        if key.revoked_at is not None and now >= key.revoked_at:
            raise _Reject(Reason.REVOKED_KEY, f"kid {kid!r} of {key.issuer} is revoked")
        if key.not_after is not None and now > key.not_after:
            raise _Reject(Reason.KEY_EXPIRED, f"kid {kid!r} of {key.issuer} has expired")
        if key.not_before is not None and now < key.not_before:
            raise _Reject(Reason.KEY_NOT_YET_VALID, f"kid {kid!r} of {key.issuer} is not valid yet")
        return key

    def _public_key(self, key: TrustedKey) -> OKPKey:
        cached = self._public_keys.get(key.kid)
        if cached is not None and cached[0] == key.x:
            return cached[1]
        okp = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": key.x})
        if len(self._public_keys) >= 4096:  # bounded: a database store may hold many keys
            self._public_keys.clear()
        self._public_keys[key.kid] = (key.x, okp)
        return okp

    def _signature(
        self, model: JWSAlgModel, key: TrustedKey, signing_input: bytes, signature: bytes
    ) -> None:
        if len(signature) != _SIGNATURE_BYTES or not model.verify(
            signing_input, signature, self._public_key(key)
        ):
            raise _Reject(Reason.BAD_SIGNATURE, f"signature does not verify with kid {key.kid!r}")

    def _content(
        self, key: TrustedKey, claims: Mapping[str, Any], payload: bytes | Mapping[str, Any] | None
    ) -> Mapping[str, Any]:
        if claims["iss"] != key.issuer:
            raise _Reject(
                Reason.ISSUER_MISMATCH, f"iss {claims['iss']!r} but the key is {key.issuer!r}'s"
            )
        if "payload" in claims:
            entity: Mapping[str, Any] = claims["payload"]
            return entity
        if payload is None:
            raise _Reject(Reason.DIGEST_MISMATCH, "detached envelope but no payload given")
        if isinstance(payload, bytes | bytearray | memoryview):
            if len(payload) > self.policy.max_bytes:
                raise _Reject(Reason.DIGEST_MISMATCH, "detached payload is oversize")
            try:
                payload = strict_loads(bytes(payload), max_depth=self.policy.max_depth)
            except StrictJSONError as exc:
                raise _Reject(Reason.DIGEST_MISMATCH, f"detached payload: {exc}") from None
        if not isinstance(payload, Mapping):
            raise _Reject(Reason.DIGEST_MISMATCH, "detached payload is not a JSON object")
        try:
            digest = payload_digest(payload)
        except (ValueError, TypeError, RecursionError):  # no RFC 8785 form (not JSON data)
            raise _Reject(
                Reason.DIGEST_MISMATCH, "detached payload has no canonical form"
            ) from None
        if not hmac.compare_digest(digest, claims["payload_sha256"]):
            raise _Reject(Reason.DIGEST_MISMATCH, "detached payload does not match payload_sha256")
        return payload

    def _fresh(self, claims: Mapping[str, Any], now: float) -> None:
        skew = self.policy.clock_skew_s
        if claims["iat"] > now + skew:
            raise _Reject(Reason.FUTURE_DATED, f"iat is {claims['iat'] - now:.0f} s in the future")
        if claims["exp"] < now - skew:
            raise _Reject(Reason.STALE, f"expired {now - claims['exp']:.0f} s ago")
        if now - claims["iat"] > self.policy.max_age_s + skew:
            raise _Reject(
                Reason.STALE,
                f"issued {now - claims['iat']:.0f} s ago (max {self.policy.max_age_s:g})",
            )

    def _not_replayed(self, claims: Mapping[str, Any]) -> None:
        issuer = claims["iss"]
        if (issuer, claims["jti"]) in self._seen:
            raise _Reject(Reason.REPLAYED_JTI, f"jti {claims['jti']!r} of {issuer} was seen")
        last = self._last_seq.get(issuer)
        if last is not None and claims["seq"] <= last:
            raise _Reject(
                Reason.SEQ_NOT_RISING, f"seq {claims['seq']} of {issuer} is not above {last}"
            )

    def _addressed(self, claims: Mapping[str, Any]) -> None:
        if self.audience is None:
            return
        aud = claims["aud"]
        if self.audience.isdisjoint([aud] if isinstance(aud, str) else aud):
            raise _Reject(Reason.WRONG_AUDIENCE, f"aud {aud!r} is not this receiver")

    def _permitted(self, key: TrustedKey, claims: Mapping[str, Any], topic: str | None) -> None:
        if not key.allows_type(claims["type"]):
            raise _Reject(Reason.NOT_PERMITTED, f"kid {key.kid!r} may not sign {claims['type']}")
        signed_topic = claims.get("topic")
        if topic is not None and signed_topic is not None and topic != signed_topic:
            raise _Reject(
                Reason.NOT_PERMITTED, f"signed for topic {signed_topic!r}, arrived on {topic!r}"
            )
        effective = signed_topic if signed_topic is not None else topic
        if not key.allows_topic(effective):
            raise _Reject(Reason.NOT_PERMITTED, f"kid {key.kid!r} may not publish on {effective!r}")

    def _valid(self, claims: Mapping[str, Any], entity: Mapping[str, Any]) -> None:
        kind = claims["type"]
        expected = self.catalog.schema_id(kind)
        if expected is None:
            raise _Reject(Reason.UNKNOWN_TYPE, f"no schema for type {kind!r}")
        if claims["schema"] != expected:
            raise _Reject(
                Reason.UNKNOWN_TYPE, f"schema {claims['schema']!r} is not {expected!r} for {kind}"
            )
        problem = self.catalog.first_error(kind, entity)
        if problem is not None:
            raise _Reject(Reason.SCHEMA_INVALID, problem)

    def _remember(self, claims: Mapping[str, Any], now: float) -> None:
        issuer = claims["iss"]
        self._last_seq[issuer] = claims["seq"]
        skew = self.policy.clock_skew_s
        # After this the freshness check rejects the envelope anyway.
        forget_at = min(claims["exp"], claims["iat"] + self.policy.max_age_s) + skew
        seen = self._seen
        seen[(issuer, claims["jti"])] = forget_at
        while seen and (len(seen) > self.policy.jti_cache_size or next(iter(seen.values())) < now):
            seen.popitem(last=False)


_BEFORE_SIGNATURE = frozenset(
    {
        Reason.OVERSIZE,
        Reason.MALFORMED,
        Reason.ALG_NOT_ALLOWED,
        Reason.UNKNOWN_KEY,
        Reason.REVOKED_KEY,
        Reason.KEY_EXPIRED,
        Reason.KEY_NOT_YET_VALID,
        Reason.BAD_SIGNATURE,
    }
)


__all__ = ["Reason", "Verification", "Verifier", "VerifierPolicy"]
