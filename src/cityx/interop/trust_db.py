"""A trust store kept in the cityx store (SQLite or PostgreSQL), not in files.

Same keys, same meaning as :mod:`.trust` (trusted keys with validity
windows for rotation and overlap, revocation with a time, per-key type and
topic permissions), held in the ``trust_keys`` and ``trust_revocations``
tables. The file format stays the way keys travel: :meth:`DbTrustStore.import_documents`
reads trust documents in, :meth:`DbTrustStore.export_documents` writes one per
issuer (a vendor's JWKS) back out.

Words used here:

*records*
    what holds the rows: anything with the four methods of
    :class:`TrustRecords`. :class:`cityx.store.Store` is one; the interop
    layer names the protocol rather than importing the store.
*snapshot*
    the keys and revocations as last read, which :meth:`DbTrustStore.key`
    answers from (the verifier asks once per envelope; a query each time
    would cost more than the signature check). It is re-read once it is
    ``refresh_s`` old, so a key added or revoked in the database by another
    process takes effect within ``refresh_s`` (at once in this process).
*fail closed*
    when the database cannot be read, the old snapshot serves for up to
    ``max_stale_s``; after that every kid is unknown (``unknown_key``)
    until a read succeeds. :meth:`DbTrustStore.key` never raises, since
    the verifier must not.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cityx.core import CityxError

from .errors import TrustStoreError
from .trust import (
    TRUST_FORMAT,
    StaticTrustStore,
    TrustedKey,
    parse_compromises,
    parse_trust_document,
)


class KeyRecord(Protocol):
    """A stored trusted key (times as ISO-8601 text)."""

    @property
    def kid(self) -> str: ...
    @property
    def issuer(self) -> str: ...
    @property
    def x(self) -> str: ...
    @property
    def not_before(self) -> str | None: ...
    @property
    def not_after(self) -> str | None: ...
    @property
    def types(self) -> Sequence[str]: ...
    @property
    def topics(self) -> Sequence[str]: ...


class RevocationRecord(Protocol):
    """A stored revocation."""

    @property
    def kid(self) -> str: ...
    @property
    def at(self) -> str: ...
    @property
    def reason(self) -> str: ...


class TrustRecords(Protocol):
    """Where trusted keys and revocations are kept (:class:`cityx.store.Store` is one)."""

    def put_trust(
        self,
        *,
        issuer: str,
        keys: Sequence[Mapping[str, Any]],
        revoked: Sequence[Mapping[str, Any]] = (),
    ) -> None: ...

    def revoke_trust_key(self, *, kid: str, at: str, reason: str) -> bool: ...

    def trust_keys(self) -> Sequence[KeyRecord]: ...

    def trust_revocations(self) -> Sequence[RevocationRecord]: ...


def iso(at: float) -> str:
    """Epoch seconds as the store's ISO-8601 UTC text (microseconds, ``Z``)."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def epoch(text: str | None) -> float | None:
    """ISO-8601 text (with a time zone) as epoch seconds; None stays None."""
    return None if text is None else datetime.fromisoformat(text).timestamp()


def _short_iso(at: float) -> str:
    # Whole seconds read better in a trust document; keep the fraction only if there is one.
    text = iso(at)
    return text.replace(".000000Z", "Z")


class DbTrustStore:
    """A :class:`~cityx.interop.trust.TrustStore` over stored trust records.

    Thread-safe: several verifiers (one per consumer thread) may share one.
    """

    def __init__(
        self,
        records: TrustRecords,
        *,
        refresh_s: float = 5.0,
        max_stale_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= refresh_s <= max_stale_s:
            raise ValueError("need 0 <= refresh_s <= max_stale_s")
        self.records = records
        self.refresh_s = refresh_s
        self.max_stale_s = max_stale_s
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: StaticTrustStore | None = None
        self._read_at = float("-inf")
        self._tried_at = float("-inf")
        self.last_error: str | None = None

    # -- what the verifier calls ----------------------------------------------------------

    def key(self, kid: str) -> TrustedKey | None:
        """The trusted key with this kid, from a snapshot at most ``refresh_s`` old."""
        snapshot = self._current()
        return None if snapshot is None else snapshot.key(kid)

    def keys(self) -> tuple[TrustedKey, ...]:
        """Every trusted key, read now (raises if the database cannot be read)."""
        return self.refresh().keys()

    def refresh(self) -> StaticTrustStore:
        """Read the keys and revocations now; raises :class:`CityxError` if that fails."""
        keys = [
            TrustedKey(
                kid=r.kid,
                issuer=r.issuer,
                x=r.x,
                not_before=epoch(r.not_before),
                not_after=epoch(r.not_after),
                types=tuple(r.types),
                topics=tuple(r.topics),
            )
            for r in self.records.trust_keys()
        ]
        revoked = {
            r.kid: at for r in self.records.trust_revocations() if (at := epoch(r.at)) is not None
        }
        snapshot = StaticTrustStore(keys, revoked=revoked)
        with self._lock:
            self._snapshot = snapshot
            self._read_at = self._tried_at = self._clock()
            self.last_error = None
        return snapshot

    def _current(self) -> StaticTrustStore | None:
        now = self._clock()
        with self._lock:
            snapshot, read_at, tried_at = self._snapshot, self._read_at, self._tried_at
        # After a failed read, wait refresh_s before trying again: not one query per envelope.
        if now - read_at < self.refresh_s or now - tried_at < self.refresh_s:
            return snapshot if now - read_at <= self.max_stale_s else None
        try:
            return self.refresh()
        except CityxError as exc:
            with self._lock:
                self._tried_at = now
                self.last_error = str(exc)
            return snapshot if now - read_at <= self.max_stale_s else None

    # -- changes --------------------------------------------------------------------------

    def import_documents(self, documents: Iterable[tuple[Any, str]]) -> int:
        """Store the keys and revocations of trust documents ``(document, where)``; how many keys.

        Every document is checked before anything is written, so a bad one
        stores nothing. Keys are added or updated (a new window or
        permissions), never deleted.
        """
        parsed = []
        for document, where in documents:
            keys, revoked = parse_trust_document(document, where=where)
            # The tables hold no compromise time yet: fold it into the revocation, which
            # voids what the key signed since then (a compromise read as mere retirement
            # would let a thief's signatures stand with a warning).
            for kid, since in parse_compromises(document, where=where).items():
                revoked[kid] = min(since, revoked.get(kid, since))
            reasons = {
                entry.get("kid"): entry.get("reason")
                for entry in document.get("revoked", [])
                if isinstance(entry, dict)
            }
            parsed.append((str(document["issuer"]), keys, revoked, reasons))
        seen: dict[str, str] = {}
        for issuer, keys, _, _ in parsed:
            for key in keys:
                if seen.setdefault(key.kid, issuer) != issuer:
                    raise TrustStoreError(
                        f"kid {key.kid!r} is listed for {seen[key.kid]} and {issuer}",
                        hint="a key belongs to one issuer, in one trust document",
                    )
        count = 0
        for issuer, keys, revoked, reasons in parsed:
            self.records.put_trust(
                issuer=issuer,
                keys=[_key_row(key) for key in keys],
                revoked=[
                    {"kid": kid, "at": iso(at), "reason": str(reasons.get(kid) or "")}
                    for kid, at in revoked.items()
                ],
            )
            count += len(keys)
        self.refresh()
        return count

    def import_path(self, path: Path) -> int:
        """Import one trust document, or every ``*.json`` in a folder; how many keys."""
        if path.is_dir():
            files = sorted(path.glob("*.json"))
            if not files:
                raise TrustStoreError("no *.json trust documents in the folder", where=str(path))
        elif path.is_file():
            files = [path]
        else:
            raise TrustStoreError("no such trust document or folder", where=str(path))
        documents = []
        for file in files:
            try:
                documents.append((json.loads(file.read_text(encoding="utf-8")), str(file)))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise TrustStoreError(f"cannot read JSON: {exc}", where=str(file)) from exc
        return self.import_documents(documents)

    def revoke(self, kid: str, *, at: float, reason: str) -> bool:
        """Revoke ``kid`` from ``at`` (epoch seconds); False if an earlier revocation stands."""
        changed = self.records.revoke_trust_key(kid=kid, at=iso(at), reason=reason)
        self.refresh()
        return changed

    # -- export ---------------------------------------------------------------------------

    def export_documents(self) -> list[dict[str, Any]]:
        """One trust document per issuer (its JWKS), in the file format :func:`load_trust` reads.

        A revocation goes with its key's issuer; revocations of kids the
        store holds no key for go into the first document (a revocation
        applies wherever its kid is).
        """
        by_issuer: dict[str, list[dict[str, Any]]] = {}
        owner: dict[str, str] = {}
        for record in self.records.trust_keys():
            entry: dict[str, Any] = {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": record.x,
                "kid": record.kid,
                "alg": "Ed25519",
                "use": "sig",
                "types": list(record.types),
                "topics": list(record.topics),
            }
            for name in ("not_before", "not_after"):
                at = epoch(getattr(record, name))
                if at is not None:
                    entry[name] = _short_iso(at)
            by_issuer.setdefault(record.issuer, []).append(entry)
            owner[record.kid] = record.issuer
        documents: dict[str, dict[str, Any]] = {
            issuer: {"format": TRUST_FORMAT, "issuer": issuer, "keys": keys, "revoked": []}
            for issuer, keys in sorted(by_issuer.items())
        }
        first = next(iter(documents.values()), None)
        for revocation in self.records.trust_revocations():
            at = epoch(revocation.at)
            document = documents.get(owner.get(revocation.kid, ""), first)
            if document is None or at is None:
                continue
            entry = {"kid": revocation.kid, "at": _short_iso(at)}
            if revocation.reason:
                entry["reason"] = revocation.reason
            document["revoked"].append(entry)
        return list(documents.values())

    def export_folder(self, folder: Path) -> list[Path]:
        """Write :meth:`export_documents` into ``folder``, one ``<issuer>.json`` each."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for document in self.export_documents():
            issuer = document["issuer"]
            name = "".join(c if c.isalnum() or c in "-." else "_" for c in issuer)
            # Two URNs can sanitise alike (":" and "_"); the hash keeps their files apart.
            tag = hashlib.sha256(issuer.encode()).hexdigest()[:8]
            path = folder / f"{name}-{tag}.json"
            path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            written.append(path)
        return written


def _key_row(key: TrustedKey) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "x": key.x,
        "not_before": None if key.not_before is None else iso(key.not_before),
        "not_after": None if key.not_after is None else iso(key.not_after),
        "types": list(key.types),
        "topics": list(key.topics),
    }


__all__ = ["DbTrustStore", "KeyRecord", "RevocationRecord", "TrustRecords", "epoch", "iso"]
