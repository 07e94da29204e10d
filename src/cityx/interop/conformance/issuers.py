"""The conformance suite's issuers: senders with keys derived from a seed.

So the trust documents written for one seed match every run with that seed
(see :mod:`.cases` for what each issuer is trusted for).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.jwk import OKPKey

from cityx.core.seeding import derive_seed

from ..errors import InteropError
from ..keys import SigningKey
from ..trust import trust_document

CITY = "conformance"
ISSUER_PREFIX = "urn:cityx:conformance:"
_REVOKED_AT = "2020-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Issuer:
    """One of the suite's senders: its signing key and the raw private key."""

    name: str
    key: SigningKey
    private: Ed25519PrivateKey

    @property
    def urn(self) -> str:
        return self.key.issuer


_ISSUER_NAMES = ("sender", "limited", "revoked", "expired", "stranger", "forger")


def make_issuers(seed: int) -> dict[str, Issuer]:
    """The suite's issuers, their keys derived from ``seed`` (same seed, same keys)."""
    issuers = {}
    for name in _ISSUER_NAMES:
        rng = np.random.default_rng(derive_seed(seed, "conformance/key", name))
        private = Ed25519PrivateKey.from_private_bytes(rng.bytes(32))
        jwk = OKPKey.import_key(private)
        key = SigningKey(f"{ISSUER_PREFIX}{name}", jwk.thumbprint(), jwk)
        issuers[name] = Issuer(name, key, private)
    return issuers


def trust_documents(seed: int) -> dict[str, dict[str, Any]]:
    """The trust documents an endpoint must load, by file name."""
    issuers = make_issuers(seed)
    topic = f"cityx/v1/{CITY}/**"
    docs = {
        "sender": trust_document(issuers["sender"].key, topics=[topic]),
        "limited": trust_document(issuers["limited"].key, types=["SignalStateObserved"]),
        "revoked": trust_document(issuers["revoked"].key, topics=[topic]),
        "expired": trust_document(
            issuers["expired"].key,
            topics=[topic],
            not_before="2020-01-01T00:00:00Z",
            not_after="2021-01-01T00:00:00Z",
        ),
    }
    docs["revoked"]["revoked"] = [
        {"kid": issuers["revoked"].key.kid, "at": _REVOKED_AT, "reason": "conformance case"}
    ]
    return {f"conformance-{name}.trust.json": doc for name, doc in docs.items()}


def write_trust(folder: Path, *, seed: int = 0) -> list[Path]:
    """Write the suite's trust documents into ``folder``; returns their paths.

    Existing files of the same names are replaced: they hold public keys
    only, and a different seed must be able to take their place.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, document in trust_documents(seed).items():
            path = folder / name
            path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            paths.append(path)
    except OSError as exc:
        raise InteropError(
            f"cannot write the trust documents: {exc.strerror or exc}", where=str(folder)
        ) from exc
    return paths


__all__ = ["CITY", "ISSUER_PREFIX", "Issuer", "make_issuers", "trust_documents", "write_trust"]
