"""The isolated worker: one process per predictor, and every way it can fail."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cityx.core import (
    DataError,
    Manifest,
    Predictor,
    TargetCrashed,
    TargetError,
    TargetLoadError,
    TargetOutputError,
    TargetTimeout,
)
from cityx.targets import Limits, open_predictor

Build = Callable[..., tuple[Manifest, Path]]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_construction_does_no_work_and_one_worker_serves_many_calls(
    entrypoint_model: Build, data: tuple[np.ndarray, np.ndarray]
) -> None:
    manifest, folder = entrypoint_model()
    predictor = open_predictor(manifest, folder)
    assert isinstance(predictor, Predictor)
    assert predictor.pid is None
    x, _ = data
    with predictor:
        pid = predictor.pid
        assert pid is not None and alive(pid)
        for start in range(0, 100, 10):
            prediction = predictor.predict(x[start : start + 10])
            assert prediction.values.dtype.kind == "U" and prediction.values.shape == (10,)
            assert predictor.pid == pid
        assert predictor.calls == 10 and predictor.restarts == 0
        many = predictor.predict(np.tile(x, (17, 1))[:10_000])
        assert many.values.shape == (10_000,)
        assert many.scores is not None and many.scores.shape == (10_000, 3)
        assert predictor.pid == pid and predictor.calls == 11
    assert predictor.pid is None
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:  # killed and reaped by close()
        time.sleep(0.05)
    assert not alive(pid)


def test_prints_to_stdout_do_not_break_the_protocol(entrypoint_model: Build) -> None:
    manifest, folder = entrypoint_model(
        """
        print("hello from predict", flush=True)
        sys.__stdout__.write("CXW1 not a frame\\n")
        sys.__stdout__.flush()
        os.write(1, b"written to fd 1 by 'C code'\\n")
        """,
        load='print("loading", flush=True)',
    )
    with open_predictor(manifest, folder) as predictor:
        for _ in range(3):
            assert predictor.predict(np.full((4, 4), 50.0)).values.tolist() == ["moderate"] * 4


def test_a_hanging_model_times_out_and_the_next_call_gets_a_fresh_worker(
    entrypoint_model: Build,
) -> None:
    manifest, folder = entrypoint_model("if batch.shape[0] == 7: time.sleep(60)")
    limits = Limits(call_timeout_s=1.0)
    with open_predictor(manifest, folder, limits=limits) as predictor:
        first = predictor.pid
        assert first is not None
        start = time.monotonic()
        with pytest.raises(TargetTimeout, match=r"predict on 7 rows took longer than 1 s") as info:
            predictor.predict(np.zeros((7, 4)))
        assert time.monotonic() - start < limits.call_timeout_s + 2
        assert "\n" not in str(info.value) and "model.py" in str(info.value)
        assert predictor.pid is None and not alive(first)
        assert predictor.predict(np.zeros((3, 4))).values.shape == (3,)
        assert predictor.pid not in (None, first)
        assert predictor.restarts == 1


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("os._exit(3)", r"exited with code 3"),
        ("import ctypes; ctypes.string_at(0)", r"killed by SIGSEGV"),
    ],
    ids=["exit", "segfault"],
)
def test_a_crashing_model_is_reported_and_replaced(
    entrypoint_model: Build, body: str, match: str
) -> None:
    manifest, folder = entrypoint_model(f"if batch.shape[0] == 5: {body}")
    with open_predictor(manifest, folder) as predictor:
        with pytest.raises(TargetCrashed, match=match) as info:
            predictor.predict(np.zeros((5, 4)))
        message = str(info.value)
        assert "\n" not in message and "during predict on 5 rows" in message
        assert predictor.predict(np.zeros((2, 4))).values.shape == (2,)
        assert predictor.restarts == 1


def test_a_segfault_quotes_the_workers_last_output(entrypoint_model: Build) -> None:
    manifest, folder = entrypoint_model("import ctypes; ctypes.string_at(0)")
    with open_predictor(manifest, folder) as predictor, pytest.raises(TargetCrashed) as info:
        predictor.predict(np.zeros((1, 4)))
    # faulthandler's report of the crash, taken from the worker's stderr.
    assert "last output:" in str(info.value) and "Segmentation fault" in str(info.value)


def test_a_memory_hog_is_stopped_by_the_memory_limit(entrypoint_model: Build) -> None:
    manifest, folder = entrypoint_model("hog = np.ones(8 * 2**30, dtype=np.uint8)")
    with open_predictor(manifest, folder, limits=Limits(memory_mb=1024)) as predictor:
        with pytest.raises(TargetError, match=r"1024 MB") as info:
            predictor.predict(np.zeros((2, 4)))
        assert isinstance(info.value, TargetCrashed)
        assert "memory" in str(info.value)


def test_a_model_that_raises_refuses_the_batch_and_the_worker_lives_on(
    entrypoint_model: Build,
) -> None:
    manifest, folder = entrypoint_model(
        "if np.isnan(batch).any(): raise ValueError('NaN in input')"
    )
    with open_predictor(manifest, folder) as predictor:
        pid = predictor.pid
        with pytest.raises(TargetError, match=r"ValueError: NaN in input") as info:
            predictor.predict(np.full((2, 4), np.nan))
        assert type(info.value) is TargetError
        assert predictor.predict(np.zeros((2, 4))).values.shape == (2,)
        assert predictor.pid == pid and predictor.restarts == 0


def test_labels_outside_the_manifest_are_an_output_error(entrypoint_model: Build) -> None:
    manifest, folder = entrypoint_model(
        "return np.array(['free', 'gridlock'])[batch[:, 3].astype(int)]"
    )
    rows = np.array([[0, 0, 0, 0], [0, 0, 0, 1.0]])
    with (
        open_predictor(manifest, folder) as predictor,
        pytest.raises(TargetOutputError, match=r"declare: 'gridlock'"),
    ):
        predictor.predict(rows)


def test_wrong_length_answers_are_an_output_error(entrypoint_model: Build) -> None:
    manifest, folder = entrypoint_model("return LABELS[:1]")
    with (
        open_predictor(manifest, folder) as predictor,
        pytest.raises(TargetOutputError, match=r"shape \(1,\) for 3 rows"),
    ):
        predictor.predict(np.zeros((3, 4)))


def test_a_load_crash_or_error_is_a_one_line_load_error(entrypoint_model: Build) -> None:
    manifest, folder = entrypoint_model(load="os._exit(5)")
    with pytest.raises(TargetLoadError, match=r"died while loading: exited with code 5") as info:
        open_predictor(manifest, folder).start()
    assert "\n" not in str(info.value)
    manifest, folder = entrypoint_model(load="raise RuntimeError('no weights')")
    with pytest.raises(TargetLoadError, match=r"model:load\(\) raised RuntimeError: no weights"):
        open_predictor(manifest, folder).start()


def test_a_slow_load_hits_the_load_timeout(entrypoint_model: Build) -> None:
    manifest, folder = entrypoint_model(load="time.sleep(60)")
    limits = Limits(load_timeout_s=1.0)
    start = time.monotonic()
    with pytest.raises(TargetLoadError, match=r"loading took longer than 1 s"):
        open_predictor(manifest, folder, limits=limits).start()
    assert time.monotonic() - start < 3


def test_batches_are_checked_and_empty_batches_need_no_call(entrypoint_model: Build) -> None:
    manifest, folder = entrypoint_model()
    predictor = open_predictor(manifest, folder)
    with pytest.raises(DataError, match=r"shape \(n, 4\)"):
        predictor.predict(np.zeros((2, 3)))
    empty = predictor.predict(np.zeros((0, 4)))
    assert empty.values.shape == (0,) and predictor.pid is None


def test_the_artifact_must_stay_inside_the_submission(
    tmp_path: Path, make_manifest: Callable[..., Manifest]
) -> None:
    manifest_for = make_manifest
    with pytest.raises(TargetLoadError, match="outside the submission"):
        open_predictor(manifest_for("../model.onnx", "onnx"), tmp_path)
    with pytest.raises(TargetLoadError, match="does not exist"):
        open_predictor(manifest_for("model.onnx", "onnx"), tmp_path)


def test_a_worker_whose_parent_is_killed_ends_itself(entrypoint_model: Build) -> None:
    manifest, folder = entrypoint_model("time.sleep(60)")
    (folder / "cityx.json").write_text(manifest.model_dump_json())
    script = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from cityx.core import Manifest\n"
        "from cityx.targets import open_predictor\n"
        "folder = Path(sys.argv[1])\n"
        "manifest = Manifest.model_validate_json((folder / 'cityx.json').read_text())\n"
        "predictor = open_predictor(manifest, folder).start()\n"
        "print(predictor.pid, flush=True)\n"
        "predictor.predict(np.zeros((1, 4)))\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert alive(worker)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    deadline = time.monotonic() + 5
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(worker)
