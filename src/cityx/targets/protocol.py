"""The wire protocol between the parent and its worker.

A *frame* is what one side writes to the other in one go: the magic bytes
``CXW1``, the length of the body as an unsigned 64-bit big-endian integer,
then the body. A *message* is a decoded body: a JSON *header* (an object
whose ``op`` says what to do: ``load``, ``call``, ``close``) and named numpy
*arrays*. The body holds the header's length (unsigned 32-bit big-endian),
the header as UTF-8 JSON, then each array as written by
``np.save(..., allow_pickle=False)``, back to back, in the order and with
the byte sizes the header lists under ``"arrays"``.

Nothing on the wire is a pickle: a worker runs vendor code, and the parent
must be able to read its answers without running any of it.
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAGIC = b"CXW1"
PREFIX = struct.Struct(">4sQ")
_HEADER_SIZE = struct.Struct(">I")
MAX_HEADER_BYTES = 1 << 20
# A sanity bound, not a quota: a length beyond it means the stream is corrupt.
MAX_BODY_BYTES = 1 << 36


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: a JSON header and named arrays."""

    header: Mapping[str, Any]
    arrays: Mapping[str, NDArray[Any]] = field(default_factory=dict)


def encode(message: Frame) -> bytes:
    """The whole frame for ``message``, prefix included."""
    blobs: list[bytes] = []
    sizes: list[list[Any]] = []
    for name, array in message.arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        blobs.append(buffer.getvalue())
        sizes.append([name, len(blobs[-1])])
    header = json.dumps(
        {**message.header, "arrays": sizes}, allow_nan=False, separators=(",", ":")
    ).encode()
    if len(header) > MAX_HEADER_BYTES:
        raise ValueError(f"a frame header of {len(header)} bytes is over the 1 MiB limit")
    body_size = _HEADER_SIZE.size + len(header) + sum(len(b) for b in blobs)
    return b"".join([PREFIX.pack(MAGIC, body_size), _HEADER_SIZE.pack(len(header)), header, *blobs])


def body_size(prefix: bytes | bytearray | memoryview) -> int:
    """The body length a frame prefix announces; ValueError if it is not a prefix."""
    magic, size = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ValueError(
            f"expected a frame but read {bytes(prefix)[:12]!r}; something other than the "
            "protocol wrote to the pipe"
        )
    if size < _HEADER_SIZE.size or size > MAX_BODY_BYTES:
        raise ValueError(f"a frame announces an impossible body of {size} bytes")
    return int(size)


def decode(body: bytes | bytearray | memoryview) -> Frame:
    """The message in a frame body; ValueError if it is malformed."""
    view = memoryview(body)
    try:
        (header_size,) = _HEADER_SIZE.unpack(view[: _HEADER_SIZE.size])
        start = _HEADER_SIZE.size
        header = json.loads(bytes(view[start : start + header_size]))
        if not isinstance(header, dict):
            raise ValueError("a frame header must be a JSON object")
        sizes = header.pop("arrays", [])
        offset = start + header_size
        arrays: dict[str, NDArray[Any]] = {}
        for name, size in sizes:
            if not isinstance(name, str) or not isinstance(size, int) or size < 0:
                raise ValueError(f"bad array entry {name!r}: {size!r}")
            chunk = view[offset : offset + size]
            if len(chunk) != size:
                raise ValueError(f"array {name!r} is cut short")
            arrays[name] = np.load(io.BytesIO(chunk), allow_pickle=False)
            offset += size
        if offset != len(view):
            raise ValueError(f"{len(view) - offset} stray bytes after the arrays")
    except (struct.error, UnicodeDecodeError, json.JSONDecodeError, TypeError, EOFError) as exc:
        raise ValueError(f"malformed frame: {exc}") from exc
    return Frame(header, arrays)


def read_message(fd: int) -> Frame:
    """Block until a whole message arrives on ``fd``; EOFError if it closes first."""
    prefix = _read_exact(fd, PREFIX.size, allow_eof=True)
    return decode(_read_exact(fd, body_size(prefix), allow_eof=False))


def write_frame(fd: int, frame: bytes) -> None:
    """Block until the whole of an encoded frame is written to ``fd``."""
    view = memoryview(frame)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int, *, allow_eof: bool) -> bytearray:
    # Read straight into one buffer: bodies can be hundreds of megabytes.
    buffer = bytearray(size)
    view = memoryview(buffer)
    done = 0
    while done < size:
        got = os.readv(fd, [view[done:]])
        if got == 0:
            if done == 0 and allow_eof:
                raise EOFError("the other side closed the pipe")
            raise ValueError(f"the pipe closed after {done} of {size} bytes of a frame")
        done += got
    return buffer


__all__ = [
    "MAGIC",
    "PREFIX",
    "Frame",
    "body_size",
    "decode",
    "encode",
    "read_message",
    "write_frame",
]
