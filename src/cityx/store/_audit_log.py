"""Reading, extending and verifying the store's audit log (see :mod:`cityx.core.audit`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cityx.core.audit import GENESIS, AuditEntry, AuditHead, AuditVerification, verify_chain

from ._base import StoreBase, _json_text, _stored_payload
from .models import HEAD_ROW, AuditHeadRow, AuditRow


class AuditLog(StoreBase):
    """The audit log's entries, its head and its verification."""

    def append_audit(
        self, *, actor: str, action: str, subject: str, payload: Mapping[str, Any]
    ) -> AuditEntry:
        """Append one entry to the audit log, in its own transaction, and return it."""
        for name, value in (("actor", actor), ("action", action)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        _json_text(payload, "the audit payload")  # refuse before taking the lock
        with self._write() as conn:
            return self._append(conn, actor=actor, action=action, subject=subject, payload=payload)

    def append_audit_many(self, entries: Sequence[tuple[str, str, str, Mapping[str, Any]]]) -> int:
        """Append (actor, action, subject, payload) entries in one transaction, in order.

        For high-rate sources (accepted interop messages): one lock of the
        head and one commit for the whole batch. Returns how many were written.
        """
        for actor, action, _, payload in entries:
            if not actor or not action:
                raise ValueError("actor and action must be non-empty strings")
            _json_text(payload, "the audit payload")
        if not entries:
            return 0
        with self._write() as conn:
            for actor, action, subject, payload in entries:
                self._append(conn, actor=actor, action=action, subject=subject, payload=payload)
        return len(entries)

    def audit_entries(self) -> list[AuditEntry]:
        """Every audit entry, by seq."""
        with self._transaction(write=False) as conn:
            return self._entries(conn)

    def _entries(self, conn: Connection) -> list[AuditEntry]:
        rows = conn.execute(sa.select(AuditRow).order_by(AuditRow.seq)).all()
        return [
            AuditEntry(
                int(r.seq),
                r.at,
                r.actor,
                r.action,
                r.subject,
                _stored_payload(r.payload),
                r.prev_hash,
                r.hash,
            )
            for r in rows
        ]

    def head(self) -> AuditHead:
        """(entries, newest hash) of the audit log as it is now.

        Keep it somewhere else (a report, a ticket, another system) and pass
        it to :meth:`verify_audit` later as ``anchor``: that is what reveals a
        truncated or rewritten log, which the chain alone cannot.
        """
        with self._transaction(write=False) as conn:
            last = conn.execute(
                sa.select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
            ).first()
        return AuditHead(int(last.seq), str(last.hash)) if last else AuditHead(0, GENESIS)

    def verify_audit(self, *, anchor: AuditHead | None = None) -> AuditVerification:
        """Check the chain, that it ends at the recorded head, and that it holds ``anchor``."""
        with self._transaction(write=False) as conn:
            entries = self._entries(conn)
            row = conn.execute(
                sa.select(AuditHeadRow.entries, AuditHeadRow.hash).where(
                    AuditHeadRow.id == HEAD_ROW
                )
            ).first()
        if row is None:
            result = verify_chain(entries, anchor=anchor)
            if not result.ok:
                return result
            return AuditVerification(
                False, len(entries), None, "the audit log's head record is missing (tampered?)"
            )
        return verify_chain(entries, head=AuditHead(int(row.entries), str(row.hash)), anchor=anchor)


__all__ = ["AuditLog"]
