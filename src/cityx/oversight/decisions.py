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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

from cityx.core.audit import (
    GENESIS,
    AuditEntry,
    AuditVerification,
    sorted_json,
    verify_chain,
)
from cityx.core.errors import InputError
from cityx.interop import (
    LongReason,
    SigningKey,
    StaticTrustStore,
    TrustedKey,
    TrustStore,
    sign_digest,
    verify_digest,
)
from cityx.interop.keys import thumbprint
from cityx.interop.longterm import UNANCHORED

from .tombstone import Tombstone, check_tombstone, parse_tombstone

LOG_FILE = "decisions.jsonl"
KEY_FILE = "decisions.key.json"
SCHEMA = "decision-log/v1"
CHECKPOINT = "checkpoint"
CHECKPOINT_PURPOSE = "decision-log.checkpoint"
ANCHOR_ACTION = "decisions.checkpoint"
KINDS = (
    "choice",
    "request",
    "command",
    "command.reason",
    "mode",
    "alert",
    "violation",
    CHECKPOINT,
)


def _seal_body(run: str, upto: int, head: str, final: bool) -> bytes:
    return sorted_json({"schema": SCHEMA, "run": run, "upto": upto, "head": head, "final": final})


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
            hashlib.sha256(_seal_body(self.run, upto, head, final)).hexdigest(),
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


@dataclass(frozen=True, slots=True)
class DecisionsVerification:
    """``cityx audit verify``'s keys plus ``sealed`` (records covered by a valid checkpoint)."""

    ok: bool
    entries: int
    sealed: int
    first_bad: int | None = None
    reason: str | None = None
    key_anchored: bool = False  # the public key came from outside the run folder
    kid: str | None = None
    # e.g. the sealing key was revoked after it sealed: the seals stand, but say so
    warnings: tuple[str, ...] = ()
    pruned: Mapping[str, Any] | None = None  # what a tombstone says was pruned

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "sealed": self.sealed,
            "first_bad": self.first_bad,
            "reason": self.reason,
            "key_anchored": self.key_anchored,
            "kid": self.kid,
            "warnings": list(self.warnings),
            "pruned": None if self.pruned is None else dict(self.pruned),
        }


def _log_path(path: Path) -> Path:
    return path / LOG_FILE if path.is_dir() else path


def read_log(path: Path) -> tuple[Tombstone | None, list[AuditEntry]]:
    """The tombstone of a pruned log (None when none was pruned) and its records."""
    file = _log_path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError("no decision log here", where=str(file)) from None
    tomb = parse_tombstone(lines[0]) if lines and lines[0].startswith('{"tombstone"') else None
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip() or (n == 1 and tomb is not None):
            continue
        try:
            out.append(AuditEntry.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise _Malformed(n, f"line {n} is not a decision-log record: {exc}") from exc
    return tomb, out


def read_entries(path: Path) -> list[AuditEntry]:
    """The records of a decision log (a run folder or the file), as audit entries."""
    return read_log(path)[1]


def _chain_after(entries: Sequence[AuditEntry], upto: int, head: str) -> AuditVerification:
    """The chain check of records that continue a tombstone (seq ``upto`` + 1 on)."""
    prev = head
    for k, e in enumerate(entries):
        due = upto + 1 + k
        if e.seq != due:
            why = "deleted, inserted or reordered record?"
            return AuditVerification(
                False, len(entries), due, f"seq {e.seq} where {due} is due ({why})"
            )
        if e.computed_hash() != e.hash:
            return AuditVerification(
                False,
                len(entries),
                due,
                f"entry {due}: stored hash does not match its content (edited?)",
            )
        if e.prev_hash != prev:
            return AuditVerification(
                False,
                len(entries),
                due,
                f"entry {due}: prev_hash does not link to the record (or tombstone) before it",
            )
        prev = e.hash
    return AuditVerification(True, len(entries))


class _Malformed(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _one_key(jwk: Mapping[str, Any]) -> tuple[StaticTrustStore, str]:
    """A trust store of one bare public key (``x``), and its kid (the thumbprint)."""
    x = str(jwk["x"])
    kid = thumbprint({"kty": "OKP", "crv": "Ed25519", "x": x})
    return StaticTrustStore([TrustedKey(kid=kid, issuer=UNANCHORED, x=x)]), kid


def verify_decisions(
    path: Path,
    *,
    trusted: Mapping[str, Any] | None = None,
    run: str | None = None,
    trust: TrustStore | None = None,
) -> DecisionsVerification:
    """Check the chain and every checkpoint's signature; name the first bad record.

    ``trust`` is a trust store from outside the run folder: each seal's key
    must have been valid when it sealed (window, revocation, compromise).
    ``trusted`` is the signer's bare public JWK from outside (``x``), checked
    for the signature only. Without either the folder's own copy is used and
    the result says the key is not anchored. ``run`` (the run's id) must
    match the checkpoints' when given.
    """
    try:
        tomb, entries = read_log(path)
    except _Malformed as exc:
        return DecisionsVerification(False, 0, 0, exc.line, str(exc))
    n = len(entries)
    chain = verify_chain(entries) if tomb is None else _chain_after(entries, tomb.upto, tomb.head)
    folder = _log_path(path).parent
    anchored = trusted is not None or trust is not None
    outside = trust  # a trust store from outside: a tombstone's key must be in it too
    kid: str | None = None
    if trust is None:
        if trusted is None:
            try:
                trusted = json.loads((folder / KEY_FILE).read_text())
            except (OSError, ValueError):
                trusted = None
        if trusted is None:
            return DecisionsVerification(
                False, n, 0, 1 if n else None, "no public key to check seals"
            )
        try:
            trust, kid = _one_key(trusted)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            return DecisionsVerification(False, n, 0, None, f"unusable public key: {exc}")
    sealed, final = 0, False
    warnings: list[str] = []
    hashes = {0: GENESIS, **{e.seq: e.hash for e in entries}}
    seals = entries
    pruned: dict[str, Any] | None = None
    if tomb is not None:
        problem, warning, seal = check_tombstone(tomb, outside, run=run)
        if problem is not None or seal is None:
            return DecisionsVerification(
                False, n, 0, tomb.upto, f"tombstone: {problem}", anchored, kid
            )
        if warning is not None:
            warnings.append(warning)
            anchored = anchored and "not anchored" not in warning
        # The pruned seal is checked like the others, but what it sealed is gone.
        hashes = {seal.seq - 1: str(seal.payload.get("head")), **hashes, seal.seq: seal.hash}
        seals = [seal, *entries]
        pruned = tomb.summary()
    start = tomb.upto + 1 if tomb is not None else 1
    limit = chain.first_bad - start if chain.first_bad is not None else n
    for e in seals[: limit + len(seals) - n]:
        if e.action != CHECKPOINT:
            continue
        problem, warning = _seal_problem(e, hashes, trust, run)
        kid = kid or str(e.payload.get("kid"))
        if problem is not None:
            return DecisionsVerification(
                False, n, sealed, e.seq, f"record {e.seq}: {problem}", anchored, kid
            )
        if warning is not None and warning not in warnings:
            warnings.append(warning)
        sealed, final = e.seq, bool(e.payload.get("final"))
    done = tuple(warnings)
    if not chain.ok:
        return DecisionsVerification(
            False, n, sealed, chain.first_bad, chain.reason, anchored, kid, done, pruned
        )
    last = entries[-1].seq if entries else (tomb.upto if tomb is not None else 0)
    if not final or sealed != last:
        where = f"after checkpoint {sealed}" if sealed else "with no checkpoint"
        return DecisionsVerification(
            False,
            n,
            sealed,
            sealed + 1 if sealed < last else last + 1,
            f"{last - sealed} record(s) unsealed {where}; no final seal "
            "(a crash or a truncated log)",
            anchored,
            kid,
            done,
            pruned,
        )
    return DecisionsVerification(True, n, sealed, None, None, anchored, kid, done, pruned)


def _claimed_run(token: str) -> Any:
    """The run a seal says it belongs to, read before verifying (only to rebuild its body)."""
    try:
        about = json.loads(jws.extract_compact(token.encode("ascii")).payload).get("about")
    except (JoseError, ValueError, UnicodeEncodeError, AttributeError):
        return None
    return about.get("run") if isinstance(about, dict) else None


def _seal_problem(
    e: AuditEntry,
    hashes: Mapping[int, str],
    trust: TrustStore,
    run: str | None,
) -> tuple[str | None, str | None]:
    """(what is wrong with checkpoint ``e``, or None; a warning, or None)."""
    p = e.payload
    if set(p) != {"upto", "head", "final", "kid", "jws"}:
        return f"checkpoint payload has keys {sorted(p)}, not exactly upto/head/final/kid/jws", None
    try:
        upto, head, token = int(p["upto"]), str(p["head"]), str(p["jws"])
    except (KeyError, TypeError, ValueError):
        return "a checkpoint without upto/head/jws", None
    if upto != e.seq - 1:
        return f"checkpoint seals up to {upto}, not the record before it", None
    if head != hashes.get(upto):
        return "checkpoint head is not the hash of the record it seals", None
    claimed = _claimed_run(token)
    if run is not None and claimed != run:
        return f"checkpoint belongs to run {claimed!r}, not {run!r}", None
    body = _seal_body(str(claimed), upto, head, bool(p.get("final")))
    checked = verify_digest(
        token, hashlib.sha256(body).hexdigest(), trust, purpose=CHECKPOINT_PURPOSE
    )
    if checked.reason is LongReason.UNKNOWN_KEY:
        return f"checkpoint signature by key {checked.kid}, which is not the trusted key", None
    if checked.reason is LongReason.BAD_SIGNATURE:
        return f"checkpoint signature does not verify: {checked.detail}", None
    if checked.reason is LongReason.DIGEST_MISMATCH:
        return "checkpoint record differs from what was signed", None
    if not checked.ok:
        return f"checkpoint signature: {checked.detail}", None
    if p.get("kid") != checked.kid:
        return "checkpoint signed with another key", None
    return None, checked.warning


def check_anchors(
    result: DecisionsVerification, path: Path, anchors: Sequence[Mapping[str, Any]]
) -> DecisionsVerification:
    """``result`` (from :func:`verify_decisions`) checked against the store's anchors too."""
    if not anchors:
        return replace(result, ok=False, reason="the store holds no anchor for this run")
    seals = {
        int(e.payload["upto"]): e.payload
        for e in read_entries(path)
        if e.action == CHECKPOINT and "upto" in e.payload
    }
    for anchor in anchors:
        upto = int(anchor["upto"])
        held = seals.get(upto)
        if held is None:
            return replace(
                result,
                ok=False,
                first_bad=upto + 1,
                reason=f"the store anchors a checkpoint after record {upto}; the log has none "
                "(truncated or rewritten?)",
            )
        if held.get("head") != anchor.get("head") or held.get("kid") != anchor.get("kid"):
            return replace(
                result,
                ok=False,
                first_bad=upto,
                reason=f"the checkpoint after record {upto} differs from the store's anchor "
                "(rewritten or re-signed with another key?)",
            )
    # The store vouches for the kid the log was sealed with: the key is anchored.
    result = replace(result, key_anchored=True)
    if not any(a.get("final") for a in anchors) and result.ok:
        return replace(result, reason="the store anchors no final seal (the run did not end?)")
    return result


def iter_records(
    path: Path, *, intersection: str | None = None, kind: str | None = None
) -> Iterator[AuditEntry]:
    """The log's records, filtered by intersection (its own and ``"*"``) and kind."""
    for e in read_entries(path):
        if kind is not None and e.action != kind:
            continue
        if intersection is not None and e.subject not in (intersection, "*"):
            continue
        yield e


__all__ = [
    "ANCHOR_ACTION",
    "CHECKPOINT",
    "KEY_FILE",
    "KINDS",
    "LOG_FILE",
    "DecisionLog",
    "DecisionsVerification",
    "check_anchors",
    "iter_records",
    "read_entries",
    "read_log",
    "verify_decisions",
]
