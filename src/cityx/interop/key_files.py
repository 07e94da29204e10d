"""Writing a new key to disk: its private JWK and the trust document that vouches for it.

Kept apart from :mod:`.keys` because the public half is written as a trust
document (:mod:`.trust`), which itself reads keys.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import KeyFileError
from .keys import ALG, SigningKey
from .trust import trust_document


@dataclass(frozen=True, slots=True)
class KeyFiles:
    """Where :func:`write_key_files` put a key: private JWK and public trust document."""

    private: Path
    public: Path


def _stem(key: SigningKey) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", key.issuer) + "." + key.kid[:12]


def write_key_files(key: SigningKey, out: Path) -> KeyFiles:
    """Write ``key`` into folder ``out``: ``STEM.key.jwk`` (0600) and ``STEM.trust.json``.

    Never overwrites: an existing file is an error, since losing a private
    key silently is worse than stopping.
    """
    out.mkdir(parents=True, exist_ok=True)
    private = out / f"{_stem(key)}.key.jwk"
    public = out / f"{_stem(key)}.trust.json"
    for path in (private, public):
        if path.exists():
            raise KeyFileError("already exists; not overwriting a key", where=str(path))
    body = {**key.jwk.as_dict(private=True), "kid": key.kid, "alg": ALG, "use": "sig"}
    body["iss"] = key.issuer
    # O_EXCL with mode 0600: the file is never readable by others, not even for an instant.
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(body, indent=2) + "\n")
    public.write_text(json.dumps(trust_document(key), indent=2) + "\n", encoding="utf-8")
    return KeyFiles(private, public)


__all__ = ["KeyFiles", "write_key_files"]
