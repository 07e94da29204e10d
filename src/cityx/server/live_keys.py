"""Operator keys: the overseers' own Ed25519 keys, which the server holds for them.

Words as in :mod:`cityx.server.live`. Each overseer has one folder,
``KEY_DIR/operators/USER`` (0700, the private key 0600); the key is made on first use.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cityx.interop import SigningKey, generate_key, load_signing_key, write_key_files

from .identity import check_name


def safe(name: str) -> str:
    """``name`` as a file name and URN part."""
    return re.sub(r"[^A-Za-z0-9._~-]", "-", name)[:100] or "-"


def operator_key(keys: Path, user: str) -> SigningKey:
    """The overseer's signing key under key folder ``keys`` (made on first use); the caller
    holds a lock so that two first uses make one key."""
    check_name(user, "user name")  # user names are file- and URN-safe: one folder each
    folder = keys / "operators" / safe(user)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder.parent, 0o700)
    os.chmod(folder, 0o700)
    found = sorted(folder.glob("*.key.jwk"))
    if found:
        return load_signing_key(found[0])
    key = generate_key(f"urn:cityx:operator:{safe(user)}")
    write_key_files(key, folder)
    return key
