"""Uploading submissions: validated like `cityx submission validate`, unpacked without trust."""

from __future__ import annotations

import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cityx.server.app import create_app
from cityx.server.archive import ArchiveError, Limits, unpack

from .conftest import METRO, World, make_config, pack


def upload(world: World, data: bytes, user: str = "vendor", name: str = "a.tar.gz") -> object:
    return world.client.post(
        "/api/v1/submissions",
        files={"archive": (name, data, "application/octet-stream")},
        headers=world.auth(user),
    )


def copy_metro(tmp_path: Path, version: str | None = None) -> Path:
    folder = shutil.copytree(METRO, tmp_path / "metro")
    if version:
        toml = folder / "cityx.toml"
        toml.write_text(toml.read_text().replace('version = "2.0.0"', f'version = "{version}"'))
    return folder


def test_every_problem_comes_back_with_422(world: World, tmp_path: Path) -> None:
    folder = copy_metro(tmp_path)
    (folder / "model.onnx").write_bytes(b"swapped model")
    toml = folder / "cityx.toml"
    toml.write_text(toml.read_text().replace('kind = "predictor"', 'kind = "oracle"'))
    answer = upload(world, pack(folder))
    assert answer.status_code == 422  # type: ignore[attr-defined]
    problems = answer.json()["problems"]  # type: ignore[attr-defined]
    assert problems and all({"where", "message", "level"} <= set(p) for p in problems)
    assert any("kind" in p["where"] for p in problems)


def test_digest_mismatch_is_refused(world: World, tmp_path: Path) -> None:
    folder = copy_metro(tmp_path)
    (folder / "model.onnx").write_bytes(b"swapped model")
    answer = upload(world, pack(folder))
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert "digest" in answer.text  # type: ignore[attr-defined]


def test_versions_are_linked_and_a_zip_works(world: World, tmp_path: Path) -> None:
    folder = copy_metro(tmp_path, version="2.1.0")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder))
    answer = upload(world, buffer.getvalue(), name="a.zip")
    assert answer.status_code == 201, answer.text  # type: ignore[attr-defined]
    new = answer.json()  # type: ignore[attr-defined]
    assert new["version"] == "2.1.0" and new["system"] == "metro-analytics/metro-congestion"
    again = upload(world, buffer.getvalue(), name="a.zip")
    assert again.json()["id"] == new["id"]  # type: ignore[attr-defined]
    read = world.client.get(f"/api/v1/submissions/{new['id']}", headers=world.auth("vendor"))
    assert {world.model_id, new["id"]} <= set(read.json()["versions"])


def tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.addfile(member, io.BytesIO(data) if data else None)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "kind", "why"),
    [
        ("../evil.txt", tarfile.REGTYPE, "outside"),
        ("/etc/evil.txt", tarfile.REGTYPE, "outside"),
        ("link", tarfile.SYMTYPE, "link"),
        ("hard", tarfile.LNKTYPE, "link"),
        ("fifo", tarfile.FIFOTYPE, "link"),
    ],
)
def test_traversal_and_links_are_refused(world: World, name: str, kind: bytes, why: str) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = "/etc/passwd"
    data = b"x" if kind == tarfile.REGTYPE else b""
    member.size = len(data)
    answer = upload(world, tar_with(member, data))
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert why in answer.text  # type: ignore[attr-defined]
    assert not (world.config.data_dir / "evil.txt").exists()
    assert list((world.config.data_dir / "incoming").iterdir()) == []


def test_archive_bombs_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    zeros = tarfile.TarInfo("sub/zeros.bin")
    zeros.size = 3 * 2**20
    bomb = tmp_path / "bomb.tar.gz"
    bomb.write_bytes(tar_with(zeros, b"\0" * zeros.size))
    assert bomb.stat().st_size < 20_000  # compresses >100:1
    with pytest.raises(ArchiveError, match="MiB"):
        unpack(bomb, tmp_path / "out", Limits(max_members=100, max_bytes=2**20))
    assert not (tmp_path / "out").exists()
    many = tmp_path / "many.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for i in range(20):
            tar.addfile(tarfile.TarInfo(f"f{i}"))
    many.write_bytes(buffer.getvalue())
    with pytest.raises(ArchiveError, match="members"):
        unpack(many, tmp_path / "out2", Limits(max_members=10, max_bytes=2**20))
    with pytest.raises(ArchiveError, match=r"\.tar\.gz or \.zip"):
        unpack(METRO / "cityx.toml", tmp_path / "out3", Limits(max_members=10, max_bytes=10))


def test_requests_over_the_size_limit_get_413(world: World, tmp_path: Path) -> None:
    config = make_config(tmp_path, max_upload_mb=1, max_request_kb=1)
    with TestClient(create_app(config, world.store)) as client:
        big = client.post(
            "/api/v1/submissions",
            files={"archive": ("a.tar.gz", b"\0" * (2 * 2**20), "application/gzip")},
            headers=world.auth("vendor"),
        )
        assert big.status_code == 413
        rows = {"rows": [{"x": 1.0}] * 200}
        assert (
            client.post(
                f"/api/v1/models/{world.model_id}/predict", json=rows, headers=world.auth("vendor")
            ).status_code
            == 413
        )
