"""The message ledger: what a receiver accepted and rejected, for the audit log.

Every rejection is logged (logger ``cityx.interop``, level WARNING, with its
reason code, topic and issuer). Every accepted envelope enters the audit
log as its *digest*, the SHA-256 of the envelope's exact bytes, beside its
issuer, ``jti``, type and topic: an auditor can later prove which message
a decision rested on without the log holding payloads. Digests are
buffered and appended ``batch`` at a time, in one transaction each, so a
busy bus does not pay a transaction per message; :meth:`close` writes the
rest.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

LOG = logging.getLogger("cityx.interop")
ACTION = "interop.accepted"


class AuditRecorder(Protocol):
    """What the ledger needs from the store (``cityx.store.Store`` has it)."""

    def append_audit_many(self, entries: Sequence[tuple[str, str, str, Mapping[str, Any]]]) -> int:
        """Append (actor, action, subject, payload) entries in one transaction."""
        ...


def envelope_digest(data: bytes | str) -> str:
    raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
    return hashlib.sha256(raw).hexdigest()


class MessageLedger:
    """Logs rejections and sends accepted envelopes' digests to the audit log."""

    def __init__(
        self, recorder: AuditRecorder | None, *, actor: str = "cityx.interop", batch: int = 500
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.recorder = recorder
        self.actor = actor
        self.batch = batch
        self.recorded = 0
        self._pending: list[tuple[str, str, str, Mapping[str, Any]]] = []
        self._lock = threading.Lock()

    def accepted(self, topic: str, data: bytes | str, claims: Mapping[str, Any]) -> None:
        if self.recorder is None:
            return
        entry = (
            self.actor,
            ACTION,
            f"{claims.get('iss')}/{claims.get('jti')}",
            {
                "sha256": envelope_digest(data),
                "type": claims.get("type"),
                "topic": topic,
                "seq": claims.get("seq"),
            },
        )
        with self._lock:
            self._pending.append(entry)
            full = len(self._pending) >= self.batch
        if full:
            self.flush()

    def rejected(self, topic: str, reason: str, detail: str, issuer: str | None) -> None:
        LOG.warning("rejected %s on %s from %s: %s", reason, topic, issuer or "?", detail)

    def flush(self) -> int:
        """Write the buffered digests; returns how many were written."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending or self.recorder is None:
            return 0
        written = self.recorder.append_audit_many(pending)
        self.recorded += written
        return written

    def close(self) -> None:
        self.flush()


__all__ = ["ACTION", "LOG", "AuditRecorder", "MessageLedger", "envelope_digest"]
