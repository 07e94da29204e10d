"""Unpacking an uploaded submission archive without trusting it.

An upload is a submission folder packed as ``.tar.gz`` or ``.zip`` (told
apart by their first bytes, not their names). Unpacking refuses, before
writing anything outside a fresh folder:

- *path traversal*: absolute names, ``..`` parts, drive letters, backslashes;
- *links*: symbolic or hard links, devices, FIFOs (a link could point the
  artifact at the server's own files);
- *archive bombs*: more than ``max_members`` members or more than
  ``max_bytes`` unpacked; sizes are counted as bytes are written, not taken
  from the archive's headers, which can lie.

The folder holds the submission either at its top or in one top-level folder.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from cityx.core import MANIFEST_FILE, InputError

_CHUNK = 1 << 16
_UNSUPPORTED = (NotImplementedError,)  # a compression method zipfile does not know


class ArchiveError(InputError):
    """An upload that is not a safe submission archive."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_members: int
    max_bytes: int


def unpack(archive: Path, into: Path, limits: Limits) -> Path:
    """Unpack ``archive`` into the new folder ``into``; returns the submission folder in it.

    On any refusal ``into`` is removed again: nothing is half-written.
    """
    into.mkdir(parents=True)
    try:
        with archive.open("rb") as handle:
            magic = handle.read(4)
        if magic[:2] == b"\x1f\x8b":
            _untar(archive, into, limits)
        elif magic == b"PK\x03\x04":
            _unzip(archive, into, limits)
        else:
            raise ArchiveError("not a .tar.gz or .zip archive", where="archive")
        return _submission_root(into)
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise


def _safe_name(name: str) -> PurePosixPath:
    if "\\" in name or "\x00" in name:
        raise ArchiveError(f"member name {name!r} holds a backslash or NUL", where="archive")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ArchiveError(f"member {name!r} points outside the folder", where="archive")
    return path


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.members = 0
        self.bytes = 0

    def member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveError(
                f"more than {self.limits.max_members} members (an archive bomb?)", where="archive"
            )

    def copy(self, source: IO[bytes], target: Path) -> None:
        with target.open("xb") as out:
            while chunk := source.read(_CHUNK):
                self.bytes += len(chunk)
                if self.bytes > self.limits.max_bytes:
                    raise ArchiveError(
                        f"unpacks to more than {self.limits.max_bytes // 2**20} MiB "
                        "(an archive bomb?)",
                        where="archive",
                    )
                out.write(chunk)


def _untar(archive: Path, into: Path, limits: Limits) -> None:
    budget = _Budget(limits)
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            # Streamed member by member: the headers are never all loaded at once.
            for member in tar:
                budget.member()
                rel = _safe_name(member.name)
                if member.isdir():
                    (into / rel).mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    raise ArchiveError(
                        f"member {member.name!r} is a link or special file; only files and "
                        "folders are accepted",
                        where="archive",
                    )
                source = tar.extractfile(member)
                if source is None:
                    raise ArchiveError(f"member {member.name!r} cannot be read", where="archive")
                (into / rel).parent.mkdir(parents=True, exist_ok=True)
                with source:
                    budget.copy(source, into / rel)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileExistsError):
            raise ArchiveError("a member appears twice", where="archive") from None
        raise ArchiveError(f"a broken .tar.gz: {exc}", where="archive") from None


def _unzip(archive: Path, into: Path, limits: Limits) -> None:
    budget = _Budget(limits)
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                budget.member()
                rel = _safe_name(info.filename)
                mode = info.external_attr >> 16
                if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise ArchiveError(
                        f"member {info.filename!r} is a link or special file; only files and "
                        "folders are accepted",
                        where="archive",
                    )
                if info.is_dir():
                    (into / rel).mkdir(parents=True, exist_ok=True)
                    continue
                (into / rel).parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as source:
                    budget.copy(source, into / rel)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        NotImplementedError,
    ) as exc:
        if isinstance(exc, FileExistsError):
            raise ArchiveError("a member appears twice", where="archive") from None
        raise ArchiveError(f"a broken .zip: {exc}", where="archive") from None


def _submission_root(into: Path) -> Path:
    if (into / MANIFEST_FILE).is_file():
        return into
    entries = list(into.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / MANIFEST_FILE).is_file():
        return entries[0]
    raise ArchiveError(
        f"no {MANIFEST_FILE} at the top of the archive or of its one folder", where="archive"
    )


@contextmanager
def removed_on_error(path: Path) -> Iterator[Path]:
    """``path``, removed (a folder, recursively) if the block raises."""
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


__all__ = ["ArchiveError", "Limits", "removed_on_error", "unpack"]
