"""Regulator rulings: the city's signed decision on a trial.

Words:

- a *ruling* is a regulator's decision on one trial: ``approve``,
  ``approve-with-conditions`` or ``reject``, with reasons and (for the second)
  conditions; it is distinct from the trial's *gate decision*, which the
  policy computes;
- the *city key* is the city's Ed25519 signing key (an interop key file,
  :mod:`cityx.interop.keys`), kept in the server's key folder, which only the
  server's user can read (0700; the key file 0600); it is made on first use;
- the ruling's *signature* is a compact JWS (Ed25519) over the canonical JSON
  of the ruling's body, which names the audit log's head at signing time; the
  store then appends the ruling's entry, holding the signature, to the same
  chain, so the ruling and the log vouch for each other.

The long-lived signature profile of the oversight work (timestamps, key
rotation) is not applied yet: see docs/server.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from cityx.core import InputError
from cityx.interop import (
    ALG,
    SigningKey,
    canonical_json,
    generate_key,
    load_signing_key,
    write_key_files,
)

TYP = "cityx-ruling+jws"


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
    """The compact JWS of the ruling's canonical JSON body."""
    header = {"alg": ALG, "kid": key.kid, "typ": TYP}
    return jws.serialize_compact(header, canonical_json(dict(body)), key.jwk, algorithms=[ALG])


def verify_ruling(signature: str, public_jwk: Mapping[str, str]) -> dict[str, Any]:
    """The body a ruling's signature vouches for; ValueError if it does not verify."""
    try:
        key = OKPKey.import_key({k: public_jwk[k] for k in ("kty", "crv", "x")})
        token = jws.deserialize_compact(signature, key, algorithms=[ALG])
    except (JoseError, KeyError, ValueError) as exc:
        raise ValueError(f"the ruling's signature does not verify: {exc}") from exc
    if token.protected.get("typ") != TYP:
        raise ValueError("not a cityx ruling")
    body: dict[str, Any] = json.loads(token.payload)
    return body


__all__ = ["TYP", "Decision", "check_ruling", "city_key", "sign_ruling", "verify_ruling"]
