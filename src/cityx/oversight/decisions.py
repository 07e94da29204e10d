"""The decision log: a run's controller choices, operator commands, mode changes and alerts.

The log is a JSON-lines file (``decisions.jsonl`` in the run folder), one
*record* per line, append-only and *hash-chained* with the audit log's
chain (:mod:`cityx.core.audit`): ``seq``, ``at`` (wall clock, UTC),
``actor`` (the controller, an operator's URN, the monitor, a guard),
``action`` (the record *kind*, below), ``subject`` (an intersection, or
``"*"``), ``payload`` and the link ``prev_hash``/``hash``. Kinds:

- ``choice``: a controller choice (``controller-choice/v1``,
  :mod:`cityx.worlds.traffic.choices`), the one format explanations read;
- ``request``: a controller's requested phases, when it gives no scores;
- ``command``: an operator command and its state (sent, accepted or
  refused with a reason code, effective); ``command.reason``: a reason
  given after the command (a stop acts first);
- ``mode``: an intersection's operating mode changed, with who and why;
- ``alert``: an alert with its evidence and suggested action;
- ``violation``: what the independent conflict monitor saw;
- ``checkpoint``: a *seal*. Every ``checkpoint_every`` records, and as the
  last record of a run (``final``), the log signs the number of records
  before it and the hash of the last one, as a long-lived detached
  signature (:mod:`cityx.interop.longterm`, purpose
  :data:`CHECKPOINT_PURPOSE`) over the SHA-256 of the seal's canonical
  body, with the run id signed beside it. It has no expiry: a log kept for
  the six months Art. 26(6) asks for still verifies after the key is
  rotated out or revoked (with a warning), unless the key is marked
  compromised since before the seal. The private key never lives in the
  run folder.

*Sealed* records are those a valid checkpoint covers. Someone who can
write the run folder can rewrite records and recompute every hash, but
cannot sign: :func:`verify_decisions` catches an edited, deleted,
inserted or reordered record, a swapped segment, and a truncated tail (no
final checkpoint: the tail after the last checkpoint is reported as
*unsealed*, as a crash leaves it). The signature proves who sealed the log
only when the public key comes from elsewhere (``trust``); the copy in the
run folder (``decisions.key.json``) is checked for consistency only.

*Pruned* logs (retention, :mod:`.retention`) start with a signed
*tombstone* (:mod:`.tombstone`) in place of the whole sealed segments
removed; the chain then starts after it, and verification says what was
pruned.

*Anchors*: each checkpoint can also go to the store's audit log as it is
made (``on_checkpoint``; action :data:`ANCHOR_ACTION`, subject the run id,
payload its ``upto``, ``head``, ``final`` and ``kid``).
:func:`check_anchors` then compares a log with them: a log re-signed with
another key, rewritten, or cut before an anchored checkpoint no longer
matches what the store holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityx.core.audit import GENESIS, sorted_json
from cityx.interop import SigningKey, sign_digest

# The format and the verifier live in their own modules; their names stay importable from here.
from .decisions_format import (
    ANCHOR_ACTION,
    CHECKPOINT,
    CHECKPOINT_PURPOSE,
    KEY_FILE,
    KINDS,
    LOG_FILE,
    SCHEMA,
    seal_body,
)
from .decisions_verify import (
    DecisionsVerification,
    check_anchors,
    iter_records,
    read_entries,
    read_log,
    verify_decisions,
)


class DecisionLog:
    """Appends records to a run's decision log and seals it with checkpoints."""

    def __init__(
        self,
        folder: Path,
        key: SigningKey,
        *,
        run: str,
        checkpoint_every: int = 500,
        on_checkpoint: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        self.path = folder / LOG_FILE
        self.key = key
        self.run = run
        self.checkpoint_every = checkpoint_every
        self.on_checkpoint = on_checkpoint
        self._seq = 0
        self._prev = GENESIS
        self._since_seal = 0
        self._counts: dict[str, int] = {}
        self._handle = self.path.open("w", encoding="utf-8")
        (folder / KEY_FILE).write_text(json.dumps(key.public_jwk(), indent=1) + "\n")

    @property
    def entries(self) -> int:
        return self._seq

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def append(self, kind: str, actor: str, subject: str, payload: Mapping[str, Any]) -> int:
        """Append one record; returns its seq. A checkpoint follows every N records."""
        if kind not in KINDS or kind == CHECKPOINT:
            raise ValueError(f"unknown decision-log kind {kind!r}")
        seq = self._write(kind, actor, subject, payload)
        self._since_seal += 1
        if self._since_seal >= self.checkpoint_every:
            self.checkpoint(final=False)
        return seq

    def checkpoint(self, *, final: bool) -> int:
        """Seal everything written so far with a signed checkpoint record."""
        upto, head = self._seq, self._prev
        token = sign_digest(
            hashlib.sha256(seal_body(self.run, upto, head, final)).hexdigest(),
            self.key,
            purpose=CHECKPOINT_PURPOSE,
            about={"run": self.run},
        )
        payload = {"upto": upto, "head": head, "final": final, "kid": self.key.kid, "jws": token}
        seq = self._write(CHECKPOINT, self.key.issuer, "*", payload)
        self._since_seal = 0
        self._handle.flush()
        if self.on_checkpoint is not None:
            anchor = {"upto": upto, "head": head, "final": final, "kid": self.key.kid}
            self.on_checkpoint(self.run, anchor)
        return seq

    def close(self) -> None:
        """Write the final checkpoint and close the file."""
        if self._handle.closed:
            return
        self.checkpoint(final=True)
        self._handle.close()

    def abandon(self) -> None:
        """Close without a final seal (what a crash leaves): the tail stays unsealed."""
        if not self._handle.closed:
            self._handle.close()

    def _write(self, kind: str, actor: str, subject: str, payload: Mapping[str, Any]) -> int:
        self._seq += 1
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        # One encoding per record: the bytes entry_hash covers (cityx.core.audit) are
        # the line itself, with the hash appended; reading it back gives the same bytes.
        raw = sorted_json(
            {
                "seq": self._seq,
                "at": at,
                "actor": actor,
                "action": kind,
                "subject": subject,
                "payload": dict(payload),
                "prev_hash": self._prev,
            }
        )
        digest = hashlib.sha256(raw).hexdigest()
        self._handle.write(raw[:-1].decode("utf-8") + f',"hash":"{digest}"}}\n')
        self._prev = digest
        self._counts[kind] = self._counts.get(kind, 0) + 1
        return self._seq


__all__ = [
    "ANCHOR_ACTION",
    "CHECKPOINT",
    "CHECKPOINT_PURPOSE",
    "KEY_FILE",
    "KINDS",
    "LOG_FILE",
    "SCHEMA",
    "DecisionLog",
    "DecisionsVerification",
    "check_anchors",
    "iter_records",
    "read_entries",
    "read_log",
    "verify_decisions",
]
