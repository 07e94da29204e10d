"""Trust rows: the store side of the database-backed trust store.

The store keeps trusted keys and revocations as plain values (see
:mod:`cityx.store.models` for the words); what they mean, and their file
format, is :mod:`cityx.interop.trust_db`'s business. Times are the store's
ISO-8601 UTC strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cityx.core import StoreError

from ._base import StoreBase, _now
from .models import TrustKeyRow, TrustRevocationRow

KEY_FIELDS = ("kid", "x", "not_before", "not_after", "types", "topics")
REVOCATION_FIELDS = ("kid", "at", "reason")


@dataclass(frozen=True, slots=True)
class TrustKeyRecord:
    """One trusted key as stored (no revocation: see :class:`TrustRevocationRecord`)."""

    kid: str
    issuer: str
    x: str
    not_before: str | None
    not_after: str | None
    types: tuple[str, ...]
    topics: tuple[str, ...]
    added_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class TrustRevocationRecord:
    """A revocation: the kid, when it takes effect, why, and when it was recorded."""

    kid: str
    at: str
    reason: str
    recorded_at: str


def check_fields(entries: Sequence[Mapping[str, Any]], fields: tuple[str, ...], what: str) -> None:
    for i, entry in enumerate(entries):
        missing = [name for name in fields if name not in entry]
        if missing:
            raise ValueError(f"{what} {i} lacks {', '.join(missing)}")


def issuers_of(conn: Connection, kids: Sequence[str]) -> dict[str, str]:
    """kid -> issuer for the stored keys among ``kids``."""
    if not kids:
        return {}
    rows = conn.execute(
        sa.select(TrustKeyRow.kid, TrustKeyRow.issuer).where(TrustKeyRow.kid.in_(kids))
    ).all()
    return {str(r.kid): str(r.issuer) for r in rows}


def upsert_key(
    conn: Connection, issuer: str, key: Mapping[str, Any], *, exists: bool, now: str
) -> None:
    values = {
        "x": str(key["x"]),
        "not_before": key["not_before"],
        "not_after": key["not_after"],
        "types": list(key["types"]),
        "topics": list(key["topics"]),
        "updated_at": now,
    }
    if exists:
        conn.execute(sa.update(TrustKeyRow).where(TrustKeyRow.kid == key["kid"]).values(**values))
    else:
        conn.execute(
            sa.insert(TrustKeyRow).values(kid=key["kid"], issuer=issuer, added_at=now, **values)
        )


def revoke(conn: Connection, kid: str, at: str, reason: str, *, now: str) -> bool:
    """Record a revocation; an earlier one already stored wins. Whether anything changed."""
    current = conn.execute(
        sa.select(TrustRevocationRow.at).where(TrustRevocationRow.kid == kid)
    ).scalar()
    if current is None:
        conn.execute(
            sa.insert(TrustRevocationRow).values(kid=kid, at=at, reason=reason, recorded_at=now)
        )
        return True
    if at < str(current):  # one ISO form throughout, so text order is time order
        conn.execute(
            sa.update(TrustRevocationRow)
            .where(TrustRevocationRow.kid == kid)
            .values(at=at, reason=reason, recorded_at=now)
        )
        return True
    return False


def key_records(conn: Connection) -> list[TrustKeyRecord]:
    rows = conn.execute(sa.select(TrustKeyRow).order_by(TrustKeyRow.issuer, TrustKeyRow.kid))
    return [
        TrustKeyRecord(
            kid=r.kid,
            issuer=r.issuer,
            x=r.x,
            not_before=r.not_before,
            not_after=r.not_after,
            types=tuple(r.types),
            topics=tuple(r.topics),
            added_at=r.added_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


def revocation_records(conn: Connection) -> list[TrustRevocationRecord]:
    rows = conn.execute(sa.select(TrustRevocationRow).order_by(TrustRevocationRow.kid))
    return [TrustRevocationRecord(r.kid, r.at, r.reason, r.recorded_at) for r in rows]


class TrustRows(StoreBase):
    """The trusted keys and revocations of the database-backed trust store."""

    def put_trust(
        self,
        *,
        issuer: str,
        keys: Sequence[Mapping[str, Any]],
        revoked: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Add or update ``issuer``'s keys and record revocations, in one transaction.

        ``keys`` items hold kid, x, not_before, not_after (ISO text or None),
        types and topics; ``revoked`` items hold kid, at and reason. A kid
        that belongs to another issuer is refused; an earlier revocation of a
        kid wins over a later one. Keys are never deleted.
        """
        check_fields(keys, KEY_FIELDS, "trusted key")
        check_fields(revoked, REVOCATION_FIELDS, "revocation")
        now = _now()
        with self._write() as conn:
            owners = issuers_of(conn, [str(k["kid"]) for k in keys])
            for key in keys:
                owner = owners.get(str(key["kid"]), issuer)
                if owner != issuer:
                    raise StoreError(
                        f"kid {key['kid']} already belongs to {owner}, not {issuer}",
                        where=self.display_url,
                        hint="a key belongs to one issuer: generate a new key",
                    )
                upsert_key(conn, issuer, key, exists=str(key["kid"]) in owners, now=now)
            changed = [
                str(r["kid"])
                for r in revoked
                if revoke(conn, str(r["kid"]), str(r["at"]), str(r["reason"]), now=now)
            ]
            self._append(
                conn,
                actor=self.actor,
                action="trust.imported",
                subject=issuer,
                payload={"keys": sorted(str(k["kid"]) for k in keys), "revoked": sorted(changed)},
            )

    def revoke_trust_key(self, *, kid: str, at: str, reason: str) -> bool:
        """Revoke ``kid`` from ``at`` (ISO text); False if an earlier revocation stands."""
        with self._write() as conn:
            changed = revoke(conn, kid, at, reason, now=_now())
            if changed:
                self._append(
                    conn,
                    actor=self.actor,
                    action="trust.key.revoked",
                    subject=kid,
                    payload={"at": at, "reason": reason},
                )
            return changed

    def trust_keys(self) -> list[TrustKeyRecord]:
        """Every trusted key, by issuer and kid."""
        with self._transaction(write=False) as conn:
            return key_records(conn)

    def trust_revocations(self) -> list[TrustRevocationRecord]:
        """Every revocation, by kid."""
        with self._transaction(write=False) as conn:
            return revocation_records(conn)
