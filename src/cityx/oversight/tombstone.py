"""The *tombstone* a pruned decision log starts with.

Retention (:mod:`.retention`) removes whole sealed *segments* (the records
up to and including a checkpoint) from the start of a decision log. What
is left must still verify, so the log's first line becomes a tombstone:

- ``upto`` and ``head``: the seq and hash of the last record removed, a
  checkpoint; the first record kept links to ``head`` as it always did;
- ``seal``: that checkpoint record itself, whole. Its hash is ``head`` and
  its signature is the run's own, so the tombstone cannot claim a place in
  the chain that no seal vouched for;
- what was removed: ``records``, ``checkpoints``, records by ``kinds``, the
  time span (``first_at``, ``last_at``), the retention (``keep_days``), when
  (``pruned_at``) and the digest of the tombstone it replaces (``previous``,
  when a log is pruned again);
- a long-lived signature (purpose :data:`TOMBSTONE_PURPOSE`) by the pruner's
  key (the city's) over the SHA-256 of that body, and the key's public half
  (``jwk``), which proves who pruned only when the verifier's trust holds it.

So cutting more than a tombstone says, editing it, dropping it or taking
another log's are all caught: the chain, the seal or the signature breaks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityx.core.audit import AuditEntry, sorted_json
from cityx.interop import LongReason, SigningKey, TrustStore, sign_digest, verify_digest
from cityx.interop.keys import thumbprint
from cityx.interop.longterm import trust_of_jwk

TOMBSTONE_SCHEMA = "decision-log-tombstone/v1"
TOMBSTONE_PURPOSE = "decision-log.tombstone"
_BODY_KEYS = {
    "schema",
    "run",
    "upto",
    "head",
    "seal",
    "records",
    "checkpoints",
    "kinds",
    "first_at",
    "last_at",
    "keep_days",
    "pruned_at",
    "previous",
    "final",
}


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A parsed tombstone line: its body, signature and signer's public key."""

    body: Mapping[str, Any]
    jws: str
    jwk: Mapping[str, Any]

    @property
    def upto(self) -> int:
        return int(self.body["upto"])

    @property
    def head(self) -> str:
        return str(self.body["head"])

    @property
    def final(self) -> bool:
        return bool(self.body["final"])

    @property
    def digest(self) -> str:
        return hashlib.sha256(sorted_json(dict(self.body))).hexdigest()

    def to_line(self) -> str:
        # "tombstone" first: readers tell the line from a record by its opening.
        return json.dumps(
            {"tombstone": dict(sorted(self.body.items())), "jws": self.jws, "jwk": dict(self.jwk)},
            separators=(",", ":"),
        )

    def summary(self) -> dict[str, Any]:
        """What ``cityx decisions verify`` says was pruned."""
        b = self.body
        return {
            "upto": b["upto"],
            "records": b["records"],
            "checkpoints": b["checkpoints"],
            "kinds": dict(b["kinds"]),
            "first_at": b["first_at"],
            "last_at": b["last_at"],
            "keep_days": b["keep_days"],
            "pruned_at": b["pruned_at"],
            "kid": thumbprint({"kty": "OKP", "crv": "Ed25519", "x": str(self.jwk.get("x"))}),
        }


def make_tombstone(body: Mapping[str, Any], key: SigningKey) -> Tombstone:
    digest = hashlib.sha256(sorted_json({**body, "schema": TOMBSTONE_SCHEMA})).hexdigest()
    token = sign_digest(digest, key, purpose=TOMBSTONE_PURPOSE, about={"run": body["run"]})
    return Tombstone({**body, "schema": TOMBSTONE_SCHEMA}, token, key.public_jwk())


def parse_tombstone(line: str) -> Tombstone | None:
    """The tombstone on this line, or None when the line is no tombstone at all."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or "tombstone" not in obj:
        return None
    body, token, jwk = obj.get("tombstone"), obj.get("jws"), obj.get("jwk")
    if not isinstance(body, dict) or not isinstance(token, str) or not isinstance(jwk, dict):
        return Tombstone({}, "", {})  # a tombstone, malformed: check_tombstone says so
    return Tombstone(body, token, jwk)


def read_tombstone(file: Path) -> Tombstone | None:
    with file.open(encoding="utf-8") as f:
        first = f.readline()
    return parse_tombstone(first) if first.startswith('{"tombstone"') else None


def check_tombstone(
    tomb: Tombstone, trust: TrustStore | None, *, run: str | None = None
) -> tuple[str | None, str | None, AuditEntry | None]:
    """(what is wrong, or None; a warning, or None; the pruned last checkpoint record).

    With ``trust`` (from outside) the pruner's key must be in it; without,
    the tombstone's own copy of the key is used and a warning says so.
    """
    b = tomb.body
    if set(b) != _BODY_KEYS or b.get("schema") != TOMBSTONE_SCHEMA:
        return f"tombstone body has keys {sorted(b)}, not the {TOMBSTONE_SCHEMA} keys", None, None
    if run is not None and b["run"] != run:
        return f"tombstone belongs to run {b['run']!r}, not {run!r}", None, None
    kid = thumbprint({"kty": "OKP", "crv": "Ed25519", "x": str(tomb.jwk.get("x"))})
    anchored = trust is not None and trust.key(kid) is not None
    if trust is not None and not anchored:
        return f"tombstone signed by key {kid}, which the trust does not hold", None, None
    try:
        store = trust if anchored and trust is not None else trust_of_jwk(tomb.jwk)
    except (KeyError, TypeError, ValueError) as exc:
        return f"tombstone key is unusable: {exc}", None, None
    checked = verify_digest(tomb.jws, tomb.digest, store, purpose=TOMBSTONE_PURPOSE)
    if checked.reason is LongReason.DIGEST_MISMATCH:
        return "tombstone differs from what was signed (edited?)", None, None
    if not checked.ok:
        return f"tombstone signature: {checked.detail}", None, None
    try:
        seal = AuditEntry.from_json(b["seal"])
    except (KeyError, TypeError, ValueError) as exc:
        return f"tombstone seal is not a record: {exc}", None, None
    if seal.action != "checkpoint" or seal.seq != tomb.upto:
        return "tombstone seal is not the checkpoint it claims to end on", None, None
    if seal.computed_hash() != seal.hash or seal.hash != tomb.head:
        return "tombstone seal's hash is not the tombstone's head", None, None
    if bool(seal.payload.get("final")) != tomb.final:
        return "tombstone says final where its seal does not (or the reverse)", None, None
    warning = checked.warning
    if not anchored:
        warning = (
            "the tombstone's key came with the tombstone (not anchored): give --trust to "
            "prove who pruned the log"
        )
    return None, warning, seal


__all__ = [
    "TOMBSTONE_PURPOSE",
    "TOMBSTONE_SCHEMA",
    "Tombstone",
    "check_tombstone",
    "make_tombstone",
    "parse_tombstone",
    "read_tombstone",
]
