"""The signed evidence package: pack, verify, and every tampering caught."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityx.core import InputError
from cityx.interop import SigningKey, StaticTrustStore, TrustedKey, generate_key
from cityx.runs.evidence import pack_evidence, read_package, verify_evidence

GOLDEN = Path(__file__).parents[1] / "governance" / "golden" / "results-example.json"
SIGNED_AT = 1_800_000_000.0


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key("urn:cityx:city:test")


@pytest.fixture(scope="module")
def trusted(key: SigningKey) -> StaticTrustStore:
    return StaticTrustStore([TrustedKey.of(key)])


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, key: SigningKey) -> Path:
    root = tmp_path_factory.mktemp("evidence")
    trial = root / "trial"
    trial.mkdir()
    shutil.copy(GOLDEN, trial / "results.json")
    (trial / "events.jsonl").write_text('{"event": "start"}\n', "utf-8")
    (trial / "report.html").write_text("<html></html>\n", "utf-8")
    return pack_evidence(trial, key, root / "pkg", pdf=False, now=SIGNED_AT).path


def copy(package: Path) -> Path:
    target = Path(tempfile.mkdtemp()) / "pkg"
    shutil.copytree(package, target)
    return target


def test_an_intact_package_verifies(package: Path, trusted: StaticTrustStore) -> None:
    result = verify_evidence(package, trusted)
    assert result.ok, result.problems
    names = set(read_package(package))
    assert {
        "results.json",
        "report.html",
        "ledgers/events.jsonl",
        "checklist.json",
        "artifacts.json",
        "manifest.json",
        "manifest.jws",
        "trial-report.html",
    } <= names
    assert result.files == len(names) - 2


def _files(package: Path) -> list[str]:
    return sorted(read_package(package))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_single_byte_change_is_caught(
    package: Path, trusted: StaticTrustStore, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(_files(package)))
    target = copy(package)
    body = bytearray((target / name).read_bytes())
    at = data.draw(st.integers(0, len(body) - 1))
    body[at] = (body[at] + data.draw(st.integers(1, 255))) % 256
    (target / name).write_bytes(bytes(body))
    result = verify_evidence(target, trusted)
    assert not result.ok
    shutil.rmtree(target.parent)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_deletion_and_addition_is_caught(
    package: Path, trusted: StaticTrustStore, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(_files(package)))
    target = copy(package)
    (target / name).unlink()
    result = verify_evidence(target, trusted)
    assert not result.ok
    assert any(p.subject == name for p in result.problems)
    shutil.rmtree(target)
    target = copy(package)
    added = data.draw(st.sampled_from(["extra.txt", "ledgers/more.jsonl", "a/b/c.json"]))
    (target / added).parent.mkdir(parents=True, exist_ok=True)
    (target / added).write_bytes(data.draw(st.binary(max_size=20)))
    result = verify_evidence(target, trusted)
    assert [(p.subject, "added" in p.reason) for p in result.problems] == [(added, True)]
    shutil.rmtree(target.parent)


def test_signers_unknown_revoked_before_and_after_signing(package: Path, key: SigningKey) -> None:
    other = StaticTrustStore([TrustedKey.of(generate_key("urn:cityx:city:other"))])
    unknown = verify_evidence(package, other)
    assert not unknown.ok and unknown.problems[0].subject == f"key {key.kid}"
    before = StaticTrustStore([TrustedKey.of(key)], revoked={key.kid: SIGNED_AT - 1})
    result = verify_evidence(package, before)
    assert not result.ok and "before it signed" in result.problems[0].reason
    after = StaticTrustStore([TrustedKey.of(key)], revoked={key.kid: SIGNED_AT + 60})
    result = verify_evidence(package, after)
    assert result.ok and "after it signed" in result.warnings[0]


def test_a_resigned_manifest_with_another_key_is_caught(
    package: Path, trusted: StaticTrustStore
) -> None:
    target = copy(package)
    forger = generate_key("urn:cityx:city:test")
    from joserfc import jws

    manifest = json.loads((target / "manifest.json").read_text())
    token = jws.serialize_compact(
        {"alg": "Ed25519", "kid": trusted.keys()[0].kid},
        json.dumps(manifest).encode(),
        forger.jwk,
        algorithms=["Ed25519"],
    )
    (target / "manifest.jws").write_text(token)
    result = verify_evidence(target, trusted)
    assert not result.ok and "does not verify" in result.problems[0].reason


def test_archives_verify_without_extraction_and_refuse_links(
    tmp_path: Path, package: Path, key: SigningKey, trusted: StaticTrustStore
) -> None:
    trial = tmp_path / "trial"
    trial.mkdir()
    shutil.copy(GOLDEN, trial / "results.json")
    archive = pack_evidence(trial, key, tmp_path / "pkg.tar.gz", archive=True, pdf=False).path
    assert verify_evidence(archive, trusted).ok
    members = read_package(archive)
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    result = verify_evidence(evil, trusted)
    assert not result.ok and result.problems[0].subject == "escape"
    climb = tmp_path / "climb.tar.gz"
    with tarfile.open(climb, "w:gz") as tar:
        info = tarfile.TarInfo("../x")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    assert "leaves the package" in verify_evidence(climb, trusted).problems[0].reason
    assert not (tmp_path.parent / "x").exists()
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(InputError, match="not a readable"):
        verify_evidence(tmp_path / "junk.tar.gz", trusted)
    with pytest.raises(InputError, match="no such evidence package"):
        verify_evidence(tmp_path / "nowhere", trusted)


def test_pack_refuses_a_key_the_trust_store_does_not_hold(tmp_path: Path, key: SigningKey) -> None:
    trial = tmp_path / "trial"
    trial.mkdir()
    shutil.copy(GOLDEN, trial / "results.json")
    other = StaticTrustStore([TrustedKey.of(generate_key("urn:cityx:city:other"))])
    with pytest.raises(InputError, match="not in the trust store"):
        pack_evidence(trial, key, tmp_path / "p", pdf=False, trust=other)
    assert not (tmp_path / "p").exists()
    with pytest.raises(InputError, match=r"results\.json is missing"):
        pack_evidence(tmp_path, key, tmp_path / "q", pdf=False)


def test_a_key_compromised_before_signing_voids_the_package(package: Path, key: SigningKey) -> None:
    # Revoked only after it signed, but stolen before: the thief could have signed it.
    stolen = StaticTrustStore(
        [TrustedKey.of(key)],
        revoked={key.kid: SIGNED_AT + 60},
        compromised={key.kid: SIGNED_AT - 3600},
    )
    result = verify_evidence(package, stolen)
    assert not result.ok and result.problems[0].subject == f"key {key.kid}"
    assert "compromised" in result.problems[0].reason
    later = StaticTrustStore(
        [TrustedKey.of(key)],
        revoked={key.kid: SIGNED_AT + 60},
        compromised={key.kid: SIGNED_AT + 30},
    )
    assert verify_evidence(package, later).ok


def test_the_signature_is_the_long_lived_profile(package: Path, trusted: StaticTrustStore) -> None:
    from cityx.interop import LongStatus, verify_digest
    from cityx.runs.evidence import PURPOSE

    token = (package / "manifest.jws").read_text()
    digest = hashlib.sha256((package / "manifest.json").read_bytes()).hexdigest()
    checked = verify_digest(token, digest, trusted, purpose=PURPOSE, now=SIGNED_AT)
    assert checked.status is LongStatus.VALID
    assert verify_digest(token, digest, trusted, purpose="ruling", now=SIGNED_AT).ok is False
