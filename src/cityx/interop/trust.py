"""The trust store: which public keys a receiver accepts, for whom and for what.

A *trusted key* is an Ed25519 public key bound to one *issuer*, with a
*validity window* (``not_before`` .. ``not_after``, either open), an
optional *revocation* time, an optional *compromise* time, and
*permissions*: the message types and the topics it may sign, as glob
patterns. *Rotation* is two keys of one issuer whose windows overlap:
while both are valid, messages signed by either are accepted.
*Revocation* is by kid and takes effect at its time.
*Compromise* (``compromised_since`` in a revocation) says the private key
may have been in someone else's hands since that time: everything it
signed from then on is void, so the key also counts as revoked from then
on (``revoked_at`` is the earlier of the two). A revocation without it is
a retirement: long-lived signatures (:mod:`.longterm`) made before it stand.

Globs: ``*`` matches any run of characters within a topic level (no ``/``),
``**`` matches across levels, ``?`` one character; everything else is
literal. ``["*"]`` for types and ``["**"]`` for topics allow everything.

The verifier sees the store through one method, :meth:`TrustStore.key`, so
the database-backed :class:`~cityx.interop.trust_db.DbTrustStore` replaces
the file-based one without the verifier knowing; trust documents are how
keys travel into and out of it.

A *trust document* (``*.json``; ``cityx interop keygen`` writes one) is a
JWKS with the issuer beside its keys::

    {
      "format": "cityx.trust/v1",
      "issuer": "urn:cityx:vendor:acme:detector-12",
      "keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": "...", "kid": "...",
         "alg": "Ed25519", "use": "sig",
         "not_before": "2026-01-01T00:00:00Z", "not_after": "2026-07-01T00:00:00Z",
         "types": ["TrafficFlowObserved"], "topics": ["cityx/v1/*/TrafficFlowObserved/*"]}
      ],
      "revoked": [{"kid": "...", "at": "2026-03-01T12:00:00Z", "reason": "key leaked",
                   "compromised_since": "2026-02-20T00:00:00Z"}]
    }

A *trust folder* holds any number of them; they merge. A kid may appear in
only one document; a revocation applies wherever its kid is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from joserfc.errors import JoseError

from .errors import TrustStoreError
from .keys import ALG, ISSUER_RE, SigningKey, thumbprint

if TYPE_CHECKING:
    from .keys import SigningKey

TRUST_FORMAT = "cityx.trust/v1"
_LEGACY_ALG = "EdDSA"


def _glob_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for pattern in patterns:
        text = ""
        for token in re.split(r"(\*\*|\*|\?)", pattern):
            text += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
        parts.append(f"(?:{text})")
    # (?!) never matches: an empty list allows nothing.
    return re.compile("|".join(parts) or "(?!)", re.DOTALL)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustedKey:
    """One public key the receiver trusts, with its window and permissions.

    Times are seconds since the epoch; None means no bound.
    """

    kid: str
    issuer: str
    x: str
    not_before: float | None = None
    not_after: float | None = None
    revoked_at: float | None = None
    compromised_since: float | None = None
    types: tuple[str, ...] = ("*",)
    topics: tuple[str, ...] = ("**",)
    _types_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _topics_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", tuple(self.types))
        object.__setattr__(self, "topics", tuple(self.topics))
        object.__setattr__(self, "_types_re", _glob_regex(self.types))
        object.__setattr__(self, "_topics_re", _glob_regex(self.topics))

    @classmethod
    def of(
        cls,
        key: SigningKey,
        *,
        types: Iterable[str] = ("*",),
        topics: Iterable[str] = ("**",),
    ) -> TrustedKey:
        """Trust the public half of ``key`` for ``types`` of message on ``topics``."""
        jwk = key.public_jwk()
        return cls(
            kid=key.kid, issuer=key.issuer, x=jwk["x"], types=tuple(types), topics=tuple(topics)
        )

    def allows_type(self, message_type: str) -> bool:
        return self._types_re.fullmatch(message_type) is not None

    def allows_topic(self, topic: str | None) -> bool:
        """Whether the key may sign for ``topic``; no topic needs a ``**`` permission."""
        if topic is None:
            return "**" in self.topics
        return self._topics_re.fullmatch(topic) is not None


class TrustStore(Protocol):
    """What the verifier needs from a trust store: a key by its kid."""

    def key(self, kid: str) -> TrustedKey | None:
        """The trusted key with this kid (revoked or expired ones included), or None."""
        ...


class StaticTrustStore:
    """A trust store held in memory (what :func:`load_trust` returns)."""

    def __init__(
        self,
        keys: Iterable[TrustedKey],
        *,
        revoked: Mapping[str, float] | None = None,
        compromised: Mapping[str, float] | None = None,
    ) -> None:
        revoked = dict(revoked or {})
        compromised = dict(compromised or {})
        self._keys: dict[str, TrustedKey] = {}
        for key in keys:
            if key.kid in self._keys:
                raise TrustStoreError(
                    f"kid {key.kid!r} is listed twice ({self._keys[key.kid].issuer} and "
                    f"{key.issuer})",
                    hint="a key belongs to one issuer, in one trust document",
                )
            at = revoked.get(key.kid)
            if at is not None and (key.revoked_at is None or at < key.revoked_at):
                key = replace(key, revoked_at=at)
            since = compromised.get(key.kid)
            if since is not None and (
                key.compromised_since is None or since < key.compromised_since
            ):
                key = replace(key, compromised_since=since)
            if key.compromised_since is not None and (
                key.revoked_at is None or key.compromised_since < key.revoked_at
            ):
                # A stolen key is void from the theft on, for short-lived messages too.
                key = replace(key, revoked_at=key.compromised_since)
            self._keys[key.kid] = key

    def key(self, kid: str) -> TrustedKey | None:
        return self._keys.get(kid)

    def keys(self) -> tuple[TrustedKey, ...]:
        return tuple(self._keys.values())


def _time(value: Any, *, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.timestamp()
    raise TrustStoreError(
        f"{value!r} is not an ISO-8601 date-time with a time zone",
        where=where,
        hint="for example 2026-01-01T00:00:00Z",
    )


def _patterns(value: Any, default: tuple[str, ...], *, where: str) -> tuple[str, ...]:
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TrustStoreError("must be a list of glob patterns", where=where)
    return tuple(value)


def parse_trust_document(document: Any, *, where: str) -> tuple[list[TrustedKey], dict[str, float]]:
    """The keys and revocations (kid -> time) of one trust document."""
    if not isinstance(document, dict):
        raise TrustStoreError("a trust document must be a JSON object", where=where)
    if document.get("format") != TRUST_FORMAT:
        raise TrustStoreError(
            f"format must be {TRUST_FORMAT!r}, not {document.get('format')!r}",
            where=where,
            hint="a bare JWKS does not say whose keys these are; add format and issuer",
        )
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or not ISSUER_RE.fullmatch(issuer):
        raise TrustStoreError(f"issuer {issuer!r} is not a URN", where=f"{where}: issuer")
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise TrustStoreError("keys must be a list of JWKs", where=f"{where}: keys")
    keys = [
        _trusted_key(entry, issuer, where=f"{where}: keys[{i}]") for i, entry in enumerate(entries)
    ]
    revoked: dict[str, float] = {}
    for i, entry in enumerate(document.get("revoked", [])):
        at_where = f"{where}: revoked[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            raise TrustStoreError("a revocation needs a kid and a time 'at'", where=at_where)
        at = _time(entry.get("at"), where=f"{at_where}.at")
        if at is None:
            raise TrustStoreError("a revocation needs a time 'at'", where=at_where)
        revoked[entry["kid"]] = min(at, revoked.get(entry["kid"], at))
    return keys, revoked


def parse_compromises(document: Any, *, where: str) -> dict[str, float]:
    """The compromise times (kid -> ``compromised_since``) of a trust document's revocations.

    Apart from :func:`parse_trust_document`, whose answer older callers unpack as a pair.
    """
    found: dict[str, float] = {}
    entries = document.get("revoked", []) if isinstance(document, dict) else []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        since = _time(
            entry.get("compromised_since"), where=f"{where}: revoked[{i}].compromised_since"
        )
        if since is not None:
            found[entry["kid"]] = min(since, found.get(entry["kid"], since))
    return found


def _trusted_key(entry: Any, issuer: str, *, where: str) -> TrustedKey:
    if not isinstance(entry, dict):
        raise TrustStoreError("a key must be a JSON object (a JWK)", where=where)
    if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519" or "d" in entry:
        raise TrustStoreError("only public Ed25519 OKP keys are trusted", where=where)
    if entry.get("alg", ALG) not in (ALG, _LEGACY_ALG) or entry.get("use", "sig") != "sig":
        raise TrustStoreError("the key must be for signatures with Ed25519", where=where)
    try:
        kid = thumbprint(entry)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise TrustStoreError(f"not a valid Ed25519 public key: {exc}", where=where) from exc
    if entry.get("kid", kid) != kid:
        raise TrustStoreError(
            f"kid {entry['kid']!r} is not the key's RFC 7638 thumbprint {kid!r}", where=where
        )
    not_before = _time(entry.get("not_before"), where=f"{where}.not_before")
    not_after = _time(entry.get("not_after"), where=f"{where}.not_after")
    if not_before is not None and not_after is not None and not_after <= not_before:
        raise TrustStoreError("not_after must be later than not_before", where=where)
    return TrustedKey(
        kid=kid,
        issuer=issuer,
        x=str(entry["x"]),
        not_before=not_before,
        not_after=not_after,
        types=_patterns(entry.get("types"), ("*",), where=f"{where}.types"),
        topics=_patterns(entry.get("topics"), ("**",), where=f"{where}.topics"),
    )


def load_trust(path: Path) -> StaticTrustStore:
    """A trust store from one trust document, or from every ``*.json`` in a folder."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise TrustStoreError("no *.json trust documents in the folder", where=str(path))
    elif path.is_file():
        files = [path]
    else:
        raise TrustStoreError("no such trust document or folder", where=str(path))
    keys: list[TrustedKey] = []
    revoked: dict[str, float] = {}
    compromised: dict[str, float] = {}
    for file in files:
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise TrustStoreError(f"cannot read JSON: {exc}", where=str(file)) from exc
        more, gone = parse_trust_document(document, where=str(file))
        keys.extend(more)
        for kid, at in gone.items():
            revoked[kid] = min(at, revoked.get(kid, at))
        for kid, at in parse_compromises(document, where=str(file)).items():
            compromised[kid] = min(at, compromised.get(kid, at))
    return StaticTrustStore(keys, revoked=revoked, compromised=compromised)


def trust_document(
    key: SigningKey,
    *,
    types: Iterable[str] = ("*",),
    topics: Iterable[str] = ("**",),
    not_before: str | None = None,
    not_after: str | None = None,
) -> dict[str, Any]:
    """A trust document for one signing key's public half."""
    entry: dict[str, Any] = {**key.public_jwk(), "types": list(types), "topics": list(topics)}
    if not_before is not None:
        entry["not_before"] = not_before
    if not_after is not None:
        entry["not_after"] = not_after
    return {"format": TRUST_FORMAT, "issuer": key.issuer, "keys": [entry], "revoked": []}


__all__ = [
    "TRUST_FORMAT",
    "StaticTrustStore",
    "TrustStore",
    "TrustedKey",
    "load_trust",
    "parse_compromises",
    "parse_trust_document",
    "trust_document",
]
