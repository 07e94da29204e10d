"""The execution engine: result files, resume after a killed runner, the folder lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cityx.core import InputError
from cityx.worlds.engine import PID_FILE, Engine, SpawnHook, hold

RESULT = "job.json"

# A runner whose jobs each start a child that sleeps; job "a" ends at once, the others
# sleep long enough to be killed with the runner (leaving their child orphaned).
RUNNER = """
import subprocess, sys
from pathlib import Path
from cityx.worlds.engine import Engine, hold

def work(seconds, folder, on_spawn):
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; time.sleep(float(sys.argv[1]))",
         str(seconds), str(folder)],
        start_new_session=True,
    )
    on_spawn(child.pid)
    child.wait()
    return {"seconds": seconds}

with hold(Path(sys.argv[1])) as folder:
    Engine(workers=2).run(folder, {"a": 0, "b/1": 600, "b/2": 600}, work, result_file="job.json")
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except OSError:
        return False
    return state != "Z"


def test_resume_after_a_killed_runner_kills_orphans_and_counts_each_job_once(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(root)], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        pid_files = [root / "b" / "1" / PID_FILE, root / "b" / "2" / PID_FILE]
        while time.monotonic() < deadline and not (
            (root / "a" / RESULT).is_file() and any(p.is_file() for p in pid_files)
        ):
            time.sleep(0.05)
        assert (root / "a" / RESULT).is_file(), "job a did not finish in time"
        time.sleep(0.3)  # let the second worker start its child and record it
    finally:
        runner.kill()  # the runner only: its children live on as orphans
        runner.wait()
    orphans = [int(p.read_text()) for p in pid_files if p.is_file()]
    assert orphans and all(alive(pid) for pid in orphans)

    ran: list[str] = []

    def quick(seconds: int, folder: Path, on_spawn: SpawnHook | None) -> Mapping[str, Any]:
        ran.append(folder.name)
        return {"seconds": seconds, "resumed": True}

    with hold(root) as folder:
        batch = Engine(workers=2).run(
            folder, {"a": 0, "b/1": 600, "b/2": 600}, quick, result_file=RESULT
        )
    assert (batch.ran, batch.skipped) == (2, 1) and sorted(ran) == ["1", "2"]
    assert [r.get("resumed", False) for r in batch.records] == [False, True, True]
    assert not any(alive(pid) for pid in orphans)
    assert not list(root.rglob(PID_FILE))
    # Run again: everything is finished, nothing runs twice.
    with hold(root) as folder:
        again = Engine().run(folder, {"a": 0, "b/1": 600, "b/2": 600}, quick, result_file=RESULT)
    assert (again.ran, again.skipped) == (0, 3) and again.records == batch.records


def test_the_lock_refuses_a_second_runner_and_is_released_after(tmp_path: Path) -> None:
    with hold(tmp_path) as folder:
        with pytest.raises(InputError, match="another run is using this folder"), hold(tmp_path):
            pass
        # Another process is refused too, while this one holds the folder.
        probe = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; "
             "from cityx.worlds.engine import hold; hold(Path(sys.argv[1])).__enter__()",
             str(tmp_path)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert probe.returncode != 0 and "another run is using this folder" in probe.stderr
        assert folder.root == tmp_path.resolve()
    with hold(tmp_path):
        pass


def test_records_are_written_atomically_in_job_order_and_fresh_runs_redo_all(
    tmp_path: Path,
) -> None:
    seen: list[tuple[str, Mapping[str, Any]]] = []

    def double(x: int, folder: Path, on_spawn: SpawnHook | None) -> Mapping[str, Any]:
        time.sleep(0.05 * (3 - x))  # finish out of order
        return {"x": x, "twice": 2 * x}

    jobs = {f"j{x}": x for x in range(3)}
    with hold(tmp_path) as folder:
        batch = Engine(workers=3).run(
            folder, jobs, double, result_file=RESULT, on_done=lambda k, r: seen.append((k, r))
        )
        assert [r["twice"] for r in batch.records] == [0, 2, 4]
        assert [k for k, _ in seen] == ["j2", "j1", "j0"]
        assert json.loads((tmp_path / "j1" / RESULT).read_text()) == {"x": 1, "twice": 2}
        assert not list(tmp_path.rglob("*.tmp"))
        (tmp_path / "j1" / "stale.txt").write_text("from before")
        fresh = Engine().run(folder, jobs, double, result_file=RESULT, resume=False)
    assert fresh.ran == 3 and not (tmp_path / "j1" / "stale.txt").exists()


def test_a_failing_job_stops_the_jobs_not_yet_started(tmp_path: Path) -> None:
    started: list[int] = []

    def fail_first(x: int, folder: Path, on_spawn: SpawnHook | None) -> Mapping[str, Any]:
        started.append(x)
        if x == 0:
            raise RuntimeError("job 0 broke")
        return {"x": x}

    with hold(tmp_path) as folder, pytest.raises(RuntimeError, match="job 0 broke"):
        Engine(workers=1).run(
            folder, {f"j{x}": x for x in range(5)}, fail_first, result_file=RESULT
        )
    assert started[0] == 0 and len(started) < 5
    assert not (tmp_path / "j0" / RESULT).exists()


@pytest.mark.parametrize("key", ["", "/abs", "../out", "a/../../b"])
def test_job_keys_stay_inside_the_root(tmp_path: Path, key: str) -> None:
    with hold(tmp_path) as folder, pytest.raises(ValueError, match="relative path"):
        Engine().run(folder, {key: 1}, lambda *a: {}, result_file=RESULT)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"kind": "spark"}, "unknown engine 'spark'"), ({"workers": 0}, "at least 1")],
)
def test_bad_engine_options_are_input_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Engine(**options)


def test_an_orphan_is_only_killed_when_it_names_its_folder(tmp_path: Path) -> None:
    from cityx.worlds.engine import reset

    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
    )
    try:
        folder = tmp_path / "job"
        folder.mkdir()
        (folder / PID_FILE).write_text(str(other.pid))  # a recycled pid: not ours
        reset(folder)
        assert not folder.exists() and other.poll() is None
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait()
