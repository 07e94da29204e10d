"""The audit log's hash chain (pure: no I/O).

An *audit entry* records one step: its *seq* (1, 2, 3, ... with no gaps),
the time it happened (``at``, ISO-8601 UTC), the *actor* who did it, the
*action* (``trial.started``, ``gate.decided``, ...), the *subject* it
concerns (a trial id, a submission) and a *payload* of digests and small
facts. Its *hash* is the SHA-256 of all of that together with the previous
entry's hash (``prev_hash``; the first entry links to ``GENESIS``), over
:func:`sorted_json`, so the entries form a *chain*.

:func:`verify_chain` walks a chain in stored order and names the first
*bad* entry, by its position (which equals its seq in an intact chain):

- an edited entry no longer matches its stored hash;
- a deleted entry leaves a seq gap (and a broken link);
- an inserted entry repeats a seq or breaks the next entry's link;
- reordered entries put a seq out of order.

What the chain alone cannot show: deleting the newest entries
(*truncation*) leaves a shorter chain that is still valid, and someone who
can rewrite the whole store can recompute every hash. Both are caught only
by comparing with a *head* (the number of entries and the newest hash) kept
somewhere else: pass it as ``head`` (the chain must end exactly there) or as
``anchor`` (an older head: the chain must still contain it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry: there is nothing before it."""


def sorted_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8; NaN and infinities are refused.

    Two equal documents give the same bytes, so their digests compare.
    """
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
    """SHA-256 (hex) over the canonical JSON of an entry's fields and its link."""
    body = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload": dict(payload),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(sorted_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One link of the chain, as stored."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str

    def computed_hash(self) -> str:
        """The hash this entry's content gives; differs from ``hash`` if edited."""
        return entry_hash(
            self.seq, self.at, self.actor, self.action, self.subject, self.payload, self.prev_hash
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "payload": dict(self.payload),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AuditEntry:
        """The entry :meth:`to_json` wrote; KeyError, TypeError or ValueError when it is not one."""
        return cls(
            seq=int(obj["seq"]),
            at=str(obj["at"]),
            actor=str(obj["actor"]),
            action=str(obj["action"]),
            subject=str(obj["subject"]),
            payload=dict(obj["payload"]),
            prev_hash=str(obj["prev_hash"]),
            hash=str(obj["hash"]),
        )


class AuditHead(NamedTuple):
    """How many entries a chain has and its newest hash (``GENESIS`` when empty)."""

    entries: int
    hash: str


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The outcome of a verification: ``first_bad`` and ``reason`` are set iff not ok."""

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


def verify_chain(
    entries: Sequence[AuditEntry],
    *,
    head: AuditHead | None = None,
    anchor: AuditHead | None = None,
) -> AuditVerification:
    """Walk the chain in stored order and name the first entry that breaks it.

    ``first_bad`` is the 1-based position where the chain breaks; in an
    intact prefix positions equal seqs, so it is the seq of the edited
    entry, or the seq that should come next where one is missing.
    ``head``: the chain must end exactly there (detects truncation and a
    rewritten tail). ``anchor``: an earlier head kept elsewhere; the chain
    must hold that entry with that hash.
    """
    n = len(entries)
    # seq -> how often it occurs, to tell a deletion from a reordering.
    remaining: dict[int, int] = {}
    for e in entries:
        remaining[e.seq] = remaining.get(e.seq, 0) + 1
    seen: set[int] = set()
    prev = GENESIS
    for position, e in enumerate(entries, start=1):
        remaining[e.seq] -= 1
        problem = _problem(position, e, prev, seen, remaining)
        if problem is not None:
            return AuditVerification(False, n, position, f"entry {position}: {problem}")
        seen.add(e.seq)
        prev = e.hash
    return _check_ends(entries, head=head, anchor=anchor)


def _problem(
    position: int, e: AuditEntry, prev: str, seen: set[int], remaining: Mapping[int, int]
) -> str | None:
    if e.seq > position:
        if remaining.get(position, 0) > 0:
            return f"seq {e.seq} comes before seq {position} (reordered entries?)"
        return f"seq jumps from {position - 1} to {e.seq} (deleted entry?)"
    if e.seq < position:
        if e.seq in seen:
            return f"seq {e.seq} appears a second time (inserted entry?)"
        return f"seq {e.seq} comes after seq {position - 1} (reordered entries?)"
    if e.computed_hash() != e.hash:
        return "stored hash does not match its content (edited?)"
    if e.prev_hash != prev:
        return (
            f"does not link to the hash of entry {position - 1} "
            "(an entry before it was inserted, deleted or rewritten?)"
        )
    return None


def _check_ends(
    entries: Sequence[AuditEntry], *, head: AuditHead | None, anchor: AuditHead | None
) -> AuditVerification:
    n = len(entries)
    last = entries[-1].hash if entries else GENESIS
    if anchor is not None:
        if anchor.entries > n:
            return AuditVerification(
                False,
                n,
                n + 1,
                f"entry {n + 1}: missing; the log ends at {n} entries but an anchor "
                f"records {anchor.entries} (truncated?)",
            )
        held = entries[anchor.entries - 1].hash if anchor.entries > 0 else GENESIS
        if held != anchor.hash:
            return AuditVerification(
                False,
                n,
                max(anchor.entries, 1),
                f"entry {anchor.entries}: hash differs from the anchored one "
                "(the log was rewritten?)",
            )
    if head is not None:
        if head.entries > n:
            return AuditVerification(
                False,
                n,
                n + 1,
                f"entry {n + 1}: missing; the log ends at {n} entries but its head "
                f"records {head.entries} (truncated?)",
            )
        if head.entries < n:
            return AuditVerification(
                False,
                n,
                head.entries + 1,
                f"entry {head.entries + 1}: after the recorded head of {head.entries} "
                "entries (appended behind the store's back?)",
            )
        if head.hash != last:
            return AuditVerification(
                False,
                n,
                max(n, 1),
                f"entry {n}: hash differs from the recorded head (rewritten?)",
            )
    return AuditVerification(True, n)


__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditHead",
    "AuditVerification",
    "entry_hash",
    "sorted_json",
    "verify_chain",
]
