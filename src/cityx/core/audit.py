"""The audit log's hash chain (pure: no I/O).

An *audit entry* records one step (who, what, on which subject, with a
payload of digests) and the *hash* of all of that together with the
previous entry's hash, starting from ``GENESIS``. Editing, deleting,
inserting or reordering any entry breaks the chain at that entry, which
:func:`verify_chain` names. Removing the newest entries (truncation) leaves
a shorter valid chain: only an externally kept copy of the head hash can
reveal that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8; NaN and infinities are refused."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(
    seq: int,
    at: str,
    actor: str,
    action: str,
    subject: str,
    payload: Mapping[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def computed_hash(self) -> str:
        return entry_hash(
            self.seq, self.at, self.actor, self.action, self.subject, self.payload, self.prev_hash
        )


@dataclass(frozen=True, slots=True)
class AuditVerification:
    ok: bool
    entries: int
    first_bad: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad": self.first_bad,
            "reason": self.reason,
        }


def verify_chain(entries: Sequence[AuditEntry]) -> AuditVerification:
    """Walk the chain in stored order; name the first entry that breaks it."""
    prev, expected = GENESIS, 1
    for entry in entries:
        reason = None
        if entry.seq > expected:
            reason = f"seq jumps from {expected - 1} to {entry.seq} (deleted entry?)"
        elif entry.seq < expected:
            reason = f"seq {entry.seq} comes after {expected - 1} (inserted or reordered entry?)"
        elif entry.computed_hash() != entry.hash:
            reason = "stored hash does not match its content (edited entry?)"
        elif entry.prev_hash != prev:
            reason = (
                "does not link to the previous entry's hash (inserted, deleted or reordered entry?)"
            )
        if reason is not None:
            return AuditVerification(False, len(entries), entry.seq, f"entry {entry.seq}: {reason}")
        prev, expected = entry.hash, expected + 1
    return AuditVerification(True, len(entries))


__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditVerification",
    "canonical_json",
    "entry_hash",
    "verify_chain",
]
