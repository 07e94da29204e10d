"""Long-lived detached signatures: evidence that must still verify years later.

The message envelope (:mod:`.envelope`) is made for traffic that is read at
once and expires after a minute. Evidence is different: a decision log's
checkpoint, a regulator's ruling or a governance evidence package must
still verify long after it was signed, after the key expired or was
rotated out. This module is that second profile.

Words:

*statement*
    what is signed: the SHA-256 *digest* of the thing (canonical JSON of a
    value, or a manifest file's bytes), the *purpose* (what kind of
    evidence, e.g. ``decision-log.checkpoint``; a signature made for one
    purpose never verifies for another), the *signing time*, the signer's
    issuer and kid, and optionally a small *about* value (the run id of a
    checkpoint, the body of a ruling) that travels signed with it.
*long-lived signature*
    the statement as a compact JWS (Ed25519, header ``typ``
    :data:`LONGSIG_TYP`) *detached* from the thing it vouches for: only
    the digest is inside. It has no expiry.
*valid at signing time*
    the key's window (``not_before`` .. ``not_after``) holds the signing
    time, and the key was neither revoked nor compromised by then. A key
    revoked *after* it signed leaves the signature standing, with a
    warning (:attr:`LongStatus.VALID_WITH_WARNING`); a key marked
    *compromised since* a time at or before the signing time makes it
    invalid, since whoever stole the key could have made it.

The signing time is the signer's own word. A thief holding a compromised
key can backdate a statement to before ``compromised_since``; only an
external anchor (the store's audit log, which anchors decision-log
checkpoints and rulings, or a timestamp authority) bounds that. The
verifier warns of statements dated more than :data:`FUTURE_SKEW_S` in its
own future (a wrong clock: dating forward cannot escape a revocation).

Verification answers with a :class:`LongVerification`, never an
exception: a status, a reason code (:class:`LongReason`) and a detail
that names the key.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from .canonical import StrictJSONError, canonical_json, payload_digest, strict_loads
from .keys import ALG, SigningKey, thumbprint
from .trust import StaticTrustStore, TrustedKey, TrustStore

LONGSIG_PROFILE = "cityx.longsig/v1"
LONGSIG_TYP = "cityx-longsig+jws"
FUTURE_SKEW_S = 300.0
"""How far in the verifier's future a signing time may lie without a warning (clock skew)."""

UNANCHORED = "urn:cityx:unanchored"
"""The issuer of a key known only as a bare public JWK: it vouches for no issuer."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_PURPOSE = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")


class LongStatus(StrEnum):
    VALID = "valid"
    VALID_WITH_WARNING = "valid_with_warning"
    INVALID = "invalid"


class LongReason(StrEnum):
    """Why a long-lived signature got its status (stable codes)."""

    OK = "ok"
    REVOKED_AFTER_SIGNING = "revoked_after_signing"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_PURPOSE = "wrong_purpose"
    DIGEST_MISMATCH = "digest_mismatch"
    ISSUER_MISMATCH = "issuer_mismatch"
    SIGNED_IN_FUTURE = "signed_in_future"
    KEY_NOT_YET_VALID = "key_not_yet_valid"
    KEY_EXPIRED = "key_expired"
    REVOKED_BEFORE_SIGNING = "revoked_before_signing"
    COMPROMISED_BEFORE_SIGNING = "compromised_before_signing"


@dataclass(frozen=True, slots=True)
class Statement:
    """What a long-lived signature vouches for (read from a verified token)."""

    purpose: str
    digest: str
    signed_at: float
    issuer: str
    kid: str
    about: Any = None


@dataclass(frozen=True, slots=True)
class LongVerification:
    """The answer for one long-lived signature."""

    status: LongStatus
    reason: LongReason
    detail: str
    kid: str | None = None
    issuer: str | None = None
    statement: Statement | None = None

    @property
    def ok(self) -> bool:
        """Valid, with or without a warning."""
        return self.status is not LongStatus.INVALID

    @property
    def warning(self) -> str | None:
        return self.detail if self.status is LongStatus.VALID_WITH_WARNING else None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "reason": self.reason.value,
            "detail": self.detail,
            "kid": self.kid,
            "issuer": self.issuer,
            "signed_at": None if self.statement is None else iso_time(self.statement.signed_at),
        }


def iso_time(at: float) -> str:
    """Epoch seconds as ISO-8601 UTC with microseconds and ``Z``."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data`` (the digest of a file)."""
    return hashlib.sha256(data).hexdigest()


def sign_digest(
    digest: str,
    key: SigningKey,
    *,
    purpose: str,
    about: Any = None,
    now: float | None = None,
) -> str:
    """A long-lived signature by ``key`` over ``digest`` (lowercase hex SHA-256)."""
    if not _HEX64.fullmatch(digest):
        raise ValueError(f"digest must be 64 lowercase hex digits, got {digest[:80]!r}")
    if not _PURPOSE.fullmatch(purpose):
        raise ValueError(f"purpose must be lowercase letters, digits, '.' and '-': {purpose!r}")
    statement: dict[str, Any] = {
        "profile": LONGSIG_PROFILE,
        "purpose": purpose,
        "digest": {"alg": "sha-256", "value": digest},
        "signed_at": iso_time(time.time() if now is None else now),
        "iss": key.issuer,
        "kid": key.kid,
    }
    if about is not None:
        statement["about"] = about
    header = {"alg": ALG, "kid": key.kid, "typ": LONGSIG_TYP}
    return jws.serialize_compact(header, canonical_json(statement), key.jwk, algorithms=[ALG])


def sign_value(
    value: Any, key: SigningKey, *, purpose: str, about: Any = None, now: float | None = None
) -> str:
    """A long-lived signature over the canonical JSON (RFC 8785) of ``value``."""
    return sign_digest(payload_digest(value), key, purpose=purpose, about=about, now=now)


def trust_of_jwk(public_jwk: Mapping[str, Any], *, issuer: str = UNANCHORED) -> StaticTrustStore:
    """A one-key trust store for a bare public JWK (no window, no revocation).

    For a key found beside the evidence: it checks consistency, not who signed.
    """
    jwk = {k: public_jwk[k] for k in ("kty", "crv", "x")}
    return StaticTrustStore(
        [TrustedKey(kid=thumbprint(jwk), issuer=issuer, x=str(public_jwk["x"]))]
    )


def _invalid(reason: LongReason, detail: str, **where: Any) -> LongVerification:
    return LongVerification(LongStatus.INVALID, reason, detail, **where)


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def _statement(payload: bytes) -> Statement | str:
    """The statement in a verified payload, or what is wrong with it."""
    try:
        body = strict_loads(payload)
    except StrictJSONError as exc:
        return f"the statement is not JSON: {exc}"
    if not isinstance(body, dict) or body.get("profile") != LONGSIG_PROFILE:
        return f"the statement is not of profile {LONGSIG_PROFILE}"
    digest = body.get("digest")
    if (
        not isinstance(digest, dict)
        or digest.get("alg") != "sha-256"
        or not isinstance(digest.get("value"), str)
        or not _HEX64.fullmatch(digest["value"])
    ):
        return "the statement's digest is not a sha-256 hex value"
    signed_at = _epoch(body.get("signed_at"))
    if signed_at is None:
        return "the statement's signed_at is not an ISO-8601 time with a zone"
    if not all(isinstance(body.get(k), str) for k in ("purpose", "iss", "kid")):
        return "the statement lacks purpose, iss or kid"
    return Statement(
        purpose=body["purpose"],
        digest=digest["value"],
        signed_at=signed_at,
        issuer=body["iss"],
        kid=body["kid"],
        about=body.get("about"),
    )


def _key_at(key: TrustedKey, at: float) -> tuple[LongStatus, LongReason, str]:
    """Whether ``key`` was good at signing time ``at``; the reason names the key."""
    name = f"key {key.kid} of {key.issuer}"
    when = iso_time(at)
    if key.compromised_since is not None and key.compromised_since <= at:
        since = iso_time(key.compromised_since)
        return (
            LongStatus.INVALID,
            LongReason.COMPROMISED_BEFORE_SIGNING,
            f"{name} is compromised since {since}, at or before it signed ({when})",
        )
    if key.revoked_at is not None and key.revoked_at <= at:
        return (
            LongStatus.INVALID,
            LongReason.REVOKED_BEFORE_SIGNING,
            f"{name} was revoked at {iso_time(key.revoked_at)}, before it signed ({when})",
        )
    if key.not_before is not None and at < key.not_before:
        return (
            LongStatus.INVALID,
            LongReason.KEY_NOT_YET_VALID,
            f"{name} signed at {when}, before its window opens ({iso_time(key.not_before)})",
        )
    if key.not_after is not None and at > key.not_after:
        return (
            LongStatus.INVALID,
            LongReason.KEY_EXPIRED,
            f"{name} signed at {when}, after its window closed ({iso_time(key.not_after)})",
        )
    if key.revoked_at is not None:
        detail = (
            f"{name} was revoked at {iso_time(key.revoked_at)}, after it signed ({when}); "
            "the signature stands"
        )
        if key.compromised_since is not None:
            detail += f" (compromised since {iso_time(key.compromised_since)}, also after)"
        return LongStatus.VALID_WITH_WARNING, LongReason.REVOKED_AFTER_SIGNING, detail
    return LongStatus.VALID, LongReason.OK, f"signed by {name} at {when}"


def verify_digest(
    token: str,
    digest: str | None,
    trust: TrustStore,
    *,
    purpose: str,
    now: float | None = None,
) -> LongVerification:
    """Check a long-lived signature over ``digest`` for ``purpose`` against ``trust``.

    ``digest`` None means the statement is self-contained: its digest must
    be that of its own ``about`` value (how a ruling travels).
    """
    try:
        header = jws.extract_compact(token.strip().encode("ascii")).protected
    except (UnicodeEncodeError, JoseError, ValueError) as exc:
        return _invalid(LongReason.MALFORMED, f"not a compact JWS: {exc}")
    kid = str(header.get("kid", ""))
    trusted = trust.key(kid)
    if trusted is None:
        return _invalid(LongReason.UNKNOWN_KEY, f"key {kid} is unknown to the trust store", kid=kid)
    where: dict[str, str] = {"kid": kid, "issuer": trusted.issuer}
    try:
        public = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": trusted.x})
        payload = jws.deserialize_compact(token.strip(), public, algorithms=[ALG]).payload
    except (JoseError, ValueError) as exc:
        return _invalid(
            LongReason.BAD_SIGNATURE,
            f"the signature does not verify with key {kid}: {exc}",
            **where,
        )
    # After the signature check: a forgery is named a forgery, whatever its header says.
    if header.get("typ") != LONGSIG_TYP:
        return _invalid(
            LongReason.MALFORMED, f"typ is not {LONGSIG_TYP} (not a long-lived signature)", **where
        )
    statement = _statement(payload)
    if isinstance(statement, str):
        return _invalid(LongReason.MALFORMED, statement, **where)
    issuer = trusted.issuer
    if statement.kid != kid:
        return _invalid(
            LongReason.MALFORMED,
            f"the statement names key {statement.kid}",
            kid=kid,
            issuer=issuer,
            statement=statement,
        )
    if trusted.issuer == UNANCHORED:
        issuer = statement.issuer  # a bare key cannot say whose it is: take the word signed
    elif statement.issuer != trusted.issuer:
        return _invalid(
            LongReason.ISSUER_MISMATCH,
            f"the statement names {statement.issuer}; key {kid} belongs to {trusted.issuer}",
            kid=kid,
            issuer=issuer,
            statement=statement,
        )
    if statement.purpose != purpose:
        return _invalid(
            LongReason.WRONG_PURPOSE,
            f"signed with key {kid} for {statement.purpose!r}, not {purpose!r}",
            kid=kid,
            issuer=issuer,
            statement=statement,
        )
    if digest is None:
        try:
            digest = payload_digest(statement.about)
        except ValueError:
            digest = ""
    if statement.digest != digest:
        return _invalid(
            LongReason.DIGEST_MISMATCH,
            f"key {kid} signed another digest: the evidence changed",
            kid=kid,
            issuer=issuer,
            statement=statement,
        )
    status, reason, detail = _key_at(trusted, statement.signed_at)
    clock = time.time() if now is None else now
    if statement.signed_at > clock + FUTURE_SKEW_S and status is not LongStatus.INVALID:
        # Dating forward gains a thief nothing (a revocation still applies from its own
        # time); dating back is the threat. So a future date is a clock to look at: a warning.
        future = f"key {kid} dated its signature {iso_time(statement.signed_at)}, in the future"
        if status is LongStatus.VALID:
            status, reason, detail = (
                LongStatus.VALID_WITH_WARNING,
                LongReason.SIGNED_IN_FUTURE,
                future,
            )
        else:
            detail += f"; {future}"
    return LongVerification(status, reason, detail, kid=kid, issuer=issuer, statement=statement)


def verify_value(
    token: str, value: Any, trust: TrustStore, *, purpose: str, now: float | None = None
) -> LongVerification:
    """:func:`verify_digest` over the canonical JSON of ``value``."""
    try:
        digest = payload_digest(value)
    except ValueError as exc:
        return _invalid(LongReason.MALFORMED, f"the value has no canonical JSON: {exc}")
    return verify_digest(token, digest, trust, purpose=purpose, now=now)


__all__ = [
    "FUTURE_SKEW_S",
    "LONGSIG_PROFILE",
    "LONGSIG_TYP",
    "UNANCHORED",
    "LongReason",
    "LongStatus",
    "LongVerification",
    "Statement",
    "iso_time",
    "sha256_hex",
    "sign_digest",
    "sign_value",
    "trust_of_jwk",
    "verify_digest",
    "verify_value",
]
