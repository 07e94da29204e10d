"""Signing keys: generate them, write them to files, read them back.

An *issuer* is the system that sends messages, named by a URN such as
``urn:cityx:vendor:acme:detector-12``. Its *signing key* is an Ed25519
private key kept as a JWK (RFC 8037) in a file only its owner can read
(mode 0600). The key's *kid* is its RFC 7638 *thumbprint*: the base64url
SHA-256 of its public members, so anyone holding the public key can
recompute and check it, and two different keys never share a kid.

The *public half* goes out as a *trust document* (see :mod:`.trust`), a
JWKS with the issuer and permissions beside the keys, for receivers to add
to their trust store.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from .errors import KeyFileError

ALG = "Ed25519"
"""The JWS algorithm name (RFC 9864's fully specified name for EdDSA on Ed25519)."""

# No "/", "+" or "#": an issuer is one level of an MQTT topic.
ISSUER_RE = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[A-Za-z0-9._:~-]{1,200}")


def check_issuer(issuer: str) -> str:
    """``issuer`` if it is a URN we accept, else :class:`KeyFileError`."""
    if not isinstance(issuer, str) or not ISSUER_RE.fullmatch(issuer):
        raise KeyFileError(
            f"issuer {issuer!r} is not a URN of letters, digits and ._:~-",
            hint="for example urn:cityx:vendor:acme:detector-12",
        )
    return issuer


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of an OKP public JWK (its kid)."""
    return OKPKey.import_key({k: public_jwk[k] for k in ("kty", "crv", "x")}).thumbprint()


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An issuer's Ed25519 private key, with its kid."""

    issuer: str
    kid: str
    jwk: OKPKey = field(repr=False, compare=False)

    def public_jwk(self) -> dict[str, str]:
        """The public JWK: ``kty``, ``crv``, ``x``, ``kid``, ``alg``, ``use``."""
        public = self.jwk.as_dict(private=False)
        return {
            "kty": str(public["kty"]),
            "crv": str(public["crv"]),
            "x": str(public["x"]),
            "kid": self.kid,
            "alg": ALG,
            "use": "sig",
        }


def generate_key(issuer: str) -> SigningKey:
    """A fresh Ed25519 signing key for ``issuer``."""
    check_issuer(issuer)
    key = OKPKey.generate_key("Ed25519", private=True)
    return SigningKey(issuer, key.thumbprint(), key)


def _refuse_public(text: str, where: str) -> None:
    """A trust document or a public key given where a private key belongs, said as such
    (before the permission check, which a public file need not pass)."""
    try:
        body = json.loads(text)
    except ValueError:
        return
    hint = "give the private .key.jwk file that cityx interop keygen wrote"
    if isinstance(body, dict) and isinstance(body.get("keys"), list):
        raise KeyFileError(
            "this is a trust file (a JWKS of public keys), not a private key",
            where=where,
            hint=hint,
        )
    if isinstance(body, dict) and "kty" in body and "d" not in body:
        raise KeyFileError(
            "this is a public key, not a private key: it holds no private key (no 'd' member)",
            where=where,
            hint=hint,
        )


def load_signing_key(path: Path) -> SigningKey:
    """Read a private key file written by :func:`write_key_files`."""
    where = str(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError("no such key file", where=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the key file: {exc}", where=where) from exc
    _refuse_public(text, where)
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"private key is accessible by others (mode {stat.S_IMODE(mode):04o})",
            where=where,
            hint=f"chmod 600 {path}",
        )
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise KeyFileError(f"not JSON: {exc}", where=where) from exc
    if not isinstance(body, dict) or body.get("kty") != "OKP" or body.get("crv") != "Ed25519":
        raise KeyFileError("not an Ed25519 OKP JWK", where=where)
    if "d" not in body:
        raise KeyFileError("holds no private key (no 'd' member)", where=where)
    issuer = check_issuer(body.get("iss", ""))
    try:
        # Rebuild from d alone: a file whose x was edited must not pass as that other key.
        raw = base64.urlsafe_b64decode(str(body["d"]) + "=" * (-len(str(body["d"])) % 4))
        key = OKPKey.import_key(Ed25519PrivateKey.from_private_bytes(raw))
    except (JoseError, ValueError, TypeError) as exc:
        raise KeyFileError(f"not a usable Ed25519 key: {exc}", where=where) from exc
    if key.as_dict(private=False)["x"] != body.get("x"):
        raise KeyFileError("the public key x does not belong to the private key d", where=where)
    kid = key.thumbprint()
    if body.get("kid", kid) != kid:
        raise KeyFileError(
            f"kid {body['kid']!r} is not the key's thumbprint {kid!r}",
            where=where,
            hint="the file was edited; regenerate the key",
        )
    return SigningKey(issuer, kid, key)


__all__ = [
    "ALG",
    "ISSUER_RE",
    "SigningKey",
    "check_issuer",
    "generate_key",
    "load_signing_key",
    "thumbprint",
]
