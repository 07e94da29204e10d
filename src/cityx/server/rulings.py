"""Regulator rulings: the city's signed decision on a trial.

Words:

- a *ruling* is a regulator's decision on one trial: ``approve``,
  ``approve-with-conditions`` or ``reject``, with reasons and (for the second)
  conditions; it is distinct from the trial's *gate decision*, which the
  policy computes;
- the *city key* is the city's Ed25519 signing key (an interop key file,
  :mod:`cityx.interop.keys`), kept in the server's key folder, which only the
  server's user can read (0700; the key file 0600); it is made on first use;
- the ruling's *signature* is a long-lived signature
  (:mod:`cityx.interop.longterm`, purpose :data:`PURPOSE`) over the SHA-256
  of the canonical JSON of the ruling's body, which travels signed with it
  (the statement's ``about``) and names the audit log's head at signing
  time; the store then appends the ruling's entry, holding the signature,
  to the same chain, so the ruling and the log vouch for each other. It
  has no expiry: a ruling verifies years later, after the city's key was
  rotated out, as long as the key was valid when it signed and is not
  marked compromised since before then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from cityx.core import InputError
from cityx.governance.external import RULING_PURPOSE
from cityx.interop import (
    LongVerification,
    SigningKey,
    TrustStore,
    generate_key,
    load_signing_key,
    sign_value,
    trust_of_jwk,
    verify_digest,
    write_key_files,
)

PURPOSE = RULING_PURPOSE  # one name: the governance report checks rulings with it too


class Decision(StrEnum):
    APPROVE = "approve"
    APPROVE_WITH_CONDITIONS = "approve-with-conditions"
    REJECT = "reject"


def city_key(folder: Path, city: str) -> SigningKey:
    """The city's signing key from ``folder``, made (mode 0600 in a 0700 folder) if absent."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        os.chmod(folder, 0o700)
    found = sorted(folder.glob("*.key.jwk"))
    if len(found) > 1:
        raise InputError(
            f"{len(found)} private keys in the key folder; keep exactly one", where=str(folder)
        )
    if found:
        return load_signing_key(found[0])
    key = generate_key(f"urn:cityx:city:{city}")
    write_key_files(key, folder)
    return key


def check_ruling(decision: str, reasons: Sequence[str], conditions: Sequence[str]) -> Decision:
    """The decision, or an InputError naming what is wrong with the ruling."""
    try:
        chosen = Decision(decision)
    except ValueError:
        allowed = ", ".join(d.value for d in Decision)
        raise InputError(f"decision must be one of {allowed}", where="decision") from None
    if not [r for r in reasons if r.strip()]:
        raise InputError("a ruling needs at least one reason", where="reasons")
    if chosen is Decision.APPROVE_WITH_CONDITIONS and not [c for c in conditions if c.strip()]:
        raise InputError("approve-with-conditions needs at least one condition", where="conditions")
    if chosen is not Decision.APPROVE_WITH_CONDITIONS and conditions:
        raise InputError(f"a ruling to {chosen.value} takes no conditions", where="conditions")
    return chosen


def sign_ruling(body: Mapping[str, Any], key: SigningKey) -> str:
    """The long-lived signature of the ruling's body, carrying the body with it."""
    return sign_value(dict(body), key, purpose=PURPOSE, about=dict(body))


def check_ruling_signature(signature: str, trust: TrustStore) -> LongVerification:
    """The ruling's signature checked against a trust store (validity at signing time)."""
    return verify_digest(signature, None, trust, purpose=PURPOSE)


def verify_ruling(signature: str, public_jwk: Mapping[str, str]) -> dict[str, Any]:
    """The body a ruling's signature vouches for; ValueError if it does not verify.

    With a bare public key (what the API returns beside a ruling) this checks
    the signature, not who holds the key: check against the city's trust
    document with :func:`check_ruling_signature` for that.
    """
    try:
        trust = trust_of_jwk(public_jwk)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"the ruling's signature does not verify: bad key: {exc}") from exc
    checked = check_ruling_signature(signature, trust)
    if not checked.ok or checked.statement is None:
        raise ValueError(f"the ruling's signature does not verify: {checked.detail}")
    body = checked.statement.about
    if not isinstance(body, dict):
        raise ValueError("the ruling's signature does not verify: it carries no ruling")
    return body


__all__ = [
    "PURPOSE",
    "Decision",
    "check_ruling",
    "check_ruling_signature",
    "city_key",
    "sign_ruling",
    "verify_ruling",
]
