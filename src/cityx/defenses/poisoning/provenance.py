"""Dataset provenance: a signed manifest of a data file, per source.

A *dataset manifest* names a data file, its SHA-256, its rows and columns
and, for each *source* (the values of the source columns, e.g. a sensor),
a digest of that source's rows; it is signed as a compact JWS (Ed25519)
with an interop signing key (:mod:`cityx.interop.keys`). Verifying it
against the trust document of the signer shows which data trained a model
and names the sources whose rows changed, appeared or vanished after
signing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from cityx.core import DataError, InputError
from cityx.data import read_table
from cityx.interop import ALG, load_signing_key, load_trust

MANIFEST_SCHEMA_VERSION = 1
TYP = "cityx-dataset+jws"


def source_digests(table: pd.DataFrame, source_cols: Sequence[str]) -> dict[str, str]:
    """SHA-256 per source of its rows (values in column order, row order kept)."""
    missing = [c for c in source_cols if c not in table.columns]
    if missing:
        raise DataError(f"no source column {', '.join(missing)}", where="--source-col")
    hashed = pd.util.hash_pandas_object(table, index=False).to_numpy()
    header = "\x1f".join(map(str, table.columns)).encode()
    if not source_cols:
        return {"all": hashlib.sha256(header + hashed.tobytes()).hexdigest()}
    keys = table[list(source_cols)].astype(str).agg("/".join, axis=1).to_numpy()
    out: dict[str, str] = {}
    for key in sorted(set(keys)):
        out[key] = hashlib.sha256(header + hashed[keys == key].tobytes()).hexdigest()
    return out


def dataset_manifest(path: Path, source_cols: Sequence[str] = ()) -> dict[str, Any]:
    """The unsigned manifest of the data file at ``path``."""
    table = read_table(path)
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "rows": len(table),
        "columns": [str(c) for c in table.columns],
        "source_columns": list(source_cols),
        "sources": source_digests(table, source_cols),
    }


def sign_manifest(manifest: dict[str, Any], key_file: Path) -> str:
    """The manifest as a compact JWS signed with the private key in ``key_file``."""
    key = load_signing_key(key_file)
    body = {**manifest, "iss": key.issuer, "iat": int(time.time())}
    header = {"alg": ALG, "kid": key.kid, "typ": TYP}
    text = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return jws.serialize_compact(header, text, key.jwk, algorithms=[ALG])


@dataclass(frozen=True, slots=True)
class ProvenanceCheck:
    """What :func:`verify_manifest` found; ``ok`` only when nothing changed."""

    signature_ok: bool
    issuer: str | None
    file_ok: bool
    changed: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    reason: str

    @property
    def ok(self) -> bool:
        return (
            self.signature_ok and self.file_ok and not (self.changed or self.added or self.removed)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "signature_ok": self.signature_ok,
            "issuer": self.issuer,
            "file_ok": self.file_ok,
            "changed_sources": list(self.changed),
            "added_sources": list(self.added),
            "removed_sources": list(self.removed),
            "reason": self.reason,
        }


def verify_manifest(token: str, data: Path, trust: Path) -> ProvenanceCheck:
    """Check the signature against ``trust`` and the data file against the manifest."""
    store = load_trust(trust)
    try:
        header = jws.extract_compact(token.strip().encode()).protected
    except (JoseError, ValueError) as exc:
        raise InputError(f"not a compact JWS: {exc}", where="manifest") from exc
    kid = str(header.get("kid", ""))
    trusted = store.key(kid)
    if trusted is None:
        return ProvenanceCheck(False, None, False, (), (), (), f"signer key {kid!r} is not trusted")
    public = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": trusted.x})
    try:
        body = json.loads(jws.deserialize_compact(token.strip(), public, algorithms=[ALG]).payload)
    except (JoseError, ValueError) as exc:
        return ProvenanceCheck(False, trusted.issuer, False, (), (), (), f"bad signature: {exc}")
    if body.get("iss") != trusted.issuer:
        return ProvenanceCheck(
            False, trusted.issuer, False, (), (), (), "issuer does not match the trusted key"
        )
    now = dataset_manifest(data, body.get("source_columns", []))
    signed, current = body.get("sources", {}), now["sources"]
    changed = tuple(sorted(k for k in set(signed) & set(current) if signed[k] != current[k]))
    added = tuple(sorted(set(current) - set(signed)))
    removed = tuple(sorted(set(signed) - set(current)))
    file_ok = now["sha256"] == body.get("sha256")
    if file_ok:
        reason = "the data file matches the signed manifest"
    elif changed or added or removed:
        reason = (
            f"data changed after signing: {len(changed)} source(s) changed, "
            f"{len(added)} added, {len(removed)} removed"
        )
    else:
        reason = "the file's bytes changed but every source's rows are the same (re-encoded)"
    return ProvenanceCheck(True, trusted.issuer, file_ok, changed, added, removed, reason)
