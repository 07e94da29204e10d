"""Key files, RFC test vectors, and the trust document format."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import OKPKey

from cityx.interop import (
    KeyFileError,
    TrustStoreError,
    generate_key,
    load_signing_key,
    load_trust,
    trust_document,
    write_key_files,
)
from cityx.interop.keys import thumbprint
from cityx.interop.verify import _algorithm_models

from .conftest import ISSUER, NOW, b64


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# RFC 8037 appendix A.1-A.4: an Ed25519 key, its thumbprint, and a signature over a fixed payload.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_JWS = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def test_rfc8037_thumbprint() -> None:
    assert thumbprint({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}) == RFC8037_THUMBPRINT


def test_rfc8037_signature_under_both_algorithm_names() -> None:
    """Ed25519 is deterministic: both names must give the RFC's exact signature."""
    key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_D})
    signing_input, _, signature = RFC8037_JWS.rpartition(".")
    models = _algorithm_models()
    for name in ("Ed25519", "EdDSA"):
        assert b64(models[name].sign(signing_input.encode(), key)) == signature
        assert models[name].verify(signing_input.encode(), b64decode(signature), key)
    # joserfc's own parser agrees, and warns on the old name on every call: the reason the
    # verifier calls the algorithm models directly.
    with pytest.warns(SecurityWarning, match="RFC 9864"):
        parsed = jws.deserialize_compact(RFC8037_JWS, key, algorithms=["Ed25519", "EdDSA"])
    assert parsed.payload == b"Example of Ed25519 signing"


def test_keygen_writes_a_private_file_only_the_owner_can_read(tmp_path: Path) -> None:
    key = generate_key(ISSUER)
    files = write_key_files(key, tmp_path / "keys")
    assert stat.S_IMODE(files.private.stat().st_mode) == 0o600
    loaded = load_signing_key(files.private)
    assert loaded.kid == key.kid == thumbprint(key.public_jwk()) and loaded.issuer == ISSUER
    document = json.loads(files.public.read_text())
    assert "d" not in document["keys"][0]
    assert load_trust(files.public).key(key.kid) is not None


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    key = generate_key(ISSUER)
    write_key_files(key, tmp_path)
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_files(key, tmp_path)


def test_bad_issuers_are_refused() -> None:
    for issuer in ("acme", "urn:x:a/b", "urn:x:a+b", "urn:x:a#", ""):
        with pytest.raises(KeyFileError, match="URN"):
            generate_key(issuer)


def _written(tmp_path: Path) -> Path:
    return write_key_files(generate_key(ISSUER), tmp_path).private


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = _written(tmp_path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_signing_key(path)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda b: b.update(kid="x" * 43), "thumbprint"),
        (lambda b: b.update(x=generate_key(ISSUER).public_jwk()["x"]), "does not belong"),
        (lambda b: b.pop("d"), "no private key"),
        (lambda b: b.update(crv="Ed448"), "Ed25519"),
        (lambda b: b.update(iss="nobody"), "URN"),
        (lambda b: b.update(d="AAAA"), "usable"),
    ],
)
def test_edited_key_files_are_refused(tmp_path: Path, edit: Any, words: str) -> None:
    path = _written(tmp_path)
    body = json.loads(path.read_text())
    edit(body)
    path.write_text(json.dumps(body))
    with pytest.raises(KeyFileError, match=words):
        load_signing_key(path)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no such key file"):
        load_signing_key(tmp_path / "nope.jwk")


def test_trust_folder_merges_documents_and_revocations(tmp_path: Path) -> None:
    old, new = generate_key(ISSUER), generate_key(ISSUER)
    (tmp_path / "old.json").write_text(
        json.dumps(
            trust_document(old, not_after="2027-02-01T00:00:00Z", types=["TrafficFlowObserved"])
        )
    )
    doc = trust_document(
        new, not_before="2027-01-01T00:00:00+00:00", topics=["cityx/v1/*/TrafficFlowObserved/*"]
    )
    doc["revoked"] = [{"kid": old.kid, "at": "2027-01-20T00:00:00Z", "reason": "rotation"}]
    (tmp_path / "new.json").write_text(json.dumps(doc))
    store = load_trust(tmp_path)
    old_key, new_key = store.key(old.kid), store.key(new.kid)
    assert old_key is not None and new_key is not None
    assert old_key.revoked_at is not None and NOW < old_key.revoked_at < old_key.not_after  # type: ignore[operator]
    assert old_key.allows_type("TrafficFlowObserved") and not old_key.allows_type(
        "SignalPhaseCommand"
    )
    assert new_key.allows_topic(f"cityx/v1/cologne/TrafficFlowObserved/{ISSUER}")
    assert not new_key.allows_topic("cityx/v1/cologne/SignalPhaseCommand/x")
    assert not new_key.allows_topic(None)


def _doc(**changes: Any) -> dict[str, Any]:
    doc = trust_document(generate_key(ISSUER))
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ([], "JSON object"),
        ({"keys": []}, "format"),  # a bare JWKS: whose keys are these?
        (_doc(issuer="acme"), "issuer"),
        (_doc(keys={}), "keys"),
        (_doc(keys=[{"kty": "RSA", "n": "x", "e": "AQAB"}]), "Ed25519"),
        (_doc(keys=[{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]), "valid Ed25519"),
        (
            _doc(
                keys=[
                    {
                        "kty": "OKP",
                        "crv": "Ed25519",
                        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                        "kid": "me",
                    }
                ]
            ),
            "thumbprint",
        ),
        (_doc(keys=[{**generate_key(ISSUER).public_jwk(), "not_before": "yesterday"}]), "ISO-8601"),
        (
            _doc(keys=[{**generate_key(ISSUER).public_jwk(), "not_after": "2027-01-01T00:00:00"}]),
            "time zone",
        ),
        (_doc(keys=[{**generate_key(ISSUER).public_jwk(), "types": "all"}]), "glob"),
        (_doc(keys=[{**generate_key(ISSUER).public_jwk(), "alg": "RS256"}]), "Ed25519"),
        (_doc(revoked=[{"kid": "x"}]), "time"),
    ],
)
def test_bad_trust_documents(tmp_path: Path, document: Any, words: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(document))
    with pytest.raises(TrustStoreError, match=words):
        load_trust(path)


def test_a_private_key_in_a_trust_document_is_refused(tmp_path: Path) -> None:
    key = generate_key(ISSUER)
    doc = trust_document(key)
    doc["keys"][0]["d"] = key.jwk.as_dict(private=True)["d"]
    (tmp_path / "t.json").write_text(json.dumps(doc))
    with pytest.raises(TrustStoreError, match="public"):
        load_trust(tmp_path / "t.json")


def test_one_kid_in_two_documents_is_refused(tmp_path: Path) -> None:
    key = generate_key(ISSUER)
    (tmp_path / "a.json").write_text(json.dumps(trust_document(key)))
    (tmp_path / "b.json").write_text(json.dumps(trust_document(key)))
    with pytest.raises(TrustStoreError, match="twice"):
        load_trust(tmp_path)


def test_missing_or_empty_trust(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError, match="no such"):
        load_trust(tmp_path / "nope")
    with pytest.raises(TrustStoreError, match=r"no \*\.json"):
        load_trust(tmp_path)
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(TrustStoreError, match="JSON"):
        load_trust(tmp_path)
