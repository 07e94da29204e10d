"""Verifying a decision log: its chain, every checkpoint's signature, tombstone and anchors.

The words (record, checkpoint, sealed, pruned, anchor) are defined in
:mod:`cityx.oversight.decisions`, which writes the log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

from cityx.core.audit import GENESIS, AuditEntry, AuditVerification, verify_chain
from cityx.core.errors import InputError
from cityx.interop import LongReason, StaticTrustStore, TrustedKey, TrustStore, verify_digest
from cityx.interop.keys import thumbprint
from cityx.interop.longterm import UNANCHORED

from .decisions_format import CHECKPOINT, CHECKPOINT_PURPOSE, KEY_FILE, LOG_FILE, seal_body
from .tombstone import Tombstone, check_tombstone, parse_tombstone


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
    body = seal_body(str(claimed), upto, head, bool(p.get("final")))
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
    "DecisionsVerification",
    "check_anchors",
    "iter_records",
    "read_entries",
    "read_log",
    "verify_decisions",
]
