"""Framing, limits and the adapter table: the parts that need no worker."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from cityx.core import (
    ArtifactFormat,
    InputError,
    PluginKind,
    Registry,
)
from cityx.targets import Limits, TargetModel
from cityx.targets.protocol import (
    PREFIX,
    Frame,
    body_size,
    decode,
    encode,
    read_message,
    write_frame,
)


def test_messages_round_trip_with_numbers_and_text() -> None:
    arrays = {
        "batch": np.arange(12, dtype=np.float64).reshape(4, 3),
        "labels": np.array(["free", "heavy"]),
        "empty": np.empty((0, 5)),
    }
    frame = encode(Frame({"op": "call", "method": "predict", "payload": {"k": 1}}, arrays))
    assert body_size(frame[: PREFIX.size]) == len(frame) - PREFIX.size
    back = decode(frame[PREFIX.size :])
    assert back.header == {"op": "call", "method": "predict", "payload": {"k": 1}}
    assert set(back.arrays) == set(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(back.arrays[name], array)
        assert back.arrays[name].dtype == array.dtype


def test_frames_cross_a_pipe_whole() -> None:
    big = np.random.default_rng(0).random((50_000, 4))  # bigger than a pipe's buffer
    read_fd, write_fd = os.pipe()

    def writer() -> None:  # the other end, as the worker would be
        write_frame(write_fd, encode(Frame({"op": "x"}, {"big": big})))
        os.close(write_fd)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        got = read_message(read_fd)
        thread.join()
        np.testing.assert_array_equal(got.arrays["big"], big)
        with pytest.raises(EOFError):
            read_message(read_fd)
    finally:
        os.close(read_fd)


def test_object_arrays_never_travel() -> None:
    with pytest.raises(ValueError, match="pickle"):
        encode(Frame({}, {"bad": np.array([{"a": 1}], dtype=object)}))


@pytest.mark.parametrize(
    "prefix", [b"hello world!", b"CXW1" + b"\xff" * 8], ids=["not-a-frame", "absurd-length"]
)
def test_garbage_prefixes_are_refused(prefix: bytes) -> None:
    with pytest.raises(ValueError, match="frame"):
        body_size(prefix)


def test_damaged_bodies_are_refused() -> None:
    frame = encode(Frame({"op": "x"}, {"a": np.ones(3)}))
    with pytest.raises(ValueError, match=r"malformed frame|cut short|stray"):
        decode(frame[PREFIX.size : -5])
    with pytest.raises(ValueError, match="must be a JSON object"):
        decode(b"\x00\x00\x00\x05[1,2]")
    with pytest.raises(ValueError, match="malformed frame"):
        decode(b"\x00\x00\x00\x05{1,2}")


def test_limits_are_keyword_only_and_validated() -> None:
    assert Limits() == Limits(memory_mb=4096, cpu_s=600, call_timeout_s=30.0, load_timeout_s=60.0)
    with pytest.raises(TypeError):
        Limits(1024)  # type: ignore[misc]
    for bad in (
        {"memory_mb": 100},
        {"memory_mb": True},
        {"cpu_s": 0},
        {"call_timeout_s": 0},
        {"load_timeout_s": float("inf")},
        {"threads": 0},
    ):
        with pytest.raises(InputError, match=next(iter(bad))):
            Limits(**bad)  # type: ignore[arg-type]


def test_every_builtin_format_has_a_target_plugin_for_both_system_kinds() -> None:
    registry = Registry()
    for fmt in ArtifactFormat:
        cls = registry.load(PluginKind.TARGET, fmt.value)
        assert issubclass(cls, TargetModel)
        # Controller submissions load through the same adapters as predictors.
        assert cls.meta.id == fmt.value and cls.meta.supports == {"predictor", "controller"}
