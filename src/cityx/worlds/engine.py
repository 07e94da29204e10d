"""Running many jobs, each in its own folder, resumably: in threads here or as Ray tasks.

Words used here:

- *job*: one unit of work, named by its *key*: the path of its *job folder*
  under a *root* folder (``cells/cologne1-5d2c1e/world.stale/i1/s2``). Its
  *work* runs in that folder, typically by starting a simulation in a child
  process and waiting for it, and returns the job's *record*, a JSON object;
- *result file*: the record, written atomically into the job folder when
  the job ends. A job is *finished* exactly when its result file exists;
- *holder*: the one runner that may use a root folder at a time. Holding is
  an OS file lock on ``ROOT/.lock``, so the OS drops it when its holder dies;
- *orphan*: a child process that a killed runner left running. The work
  reports each child's process id as it starts it, and the engine keeps it
  in the job folder (``child.pid``) until the job ends;
- *resume*: running the jobs of a root folder again skips the finished
  ones, kills the orphans of the unfinished ones, clears their folders and
  runs them again, so each job is counted once.

The ``local`` engine runs ``workers`` jobs at a time, each in a thread that
only waits for its child process. The ``ray`` engine runs each job as a Ray
task (on the cluster at ``address``, else on a Ray started here); the root
folder must then be one the Ray workers share. The engine knows nothing of
what its jobs are: campaigns, trials and datasets each bring their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from cityx.core import InputError, RunError

ENGINES = ("local", "ray")
LOCK_FILE = ".lock"
PID_FILE = "child.pid"

J = TypeVar("J")
SpawnHook = Callable[[int], None]
# What a job runs: (job, job folder, spawn hook or None) -> record. It must return
# only once every child process it started has ended.
Work = Callable[[J, Path, SpawnHook | None], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class HeldFolder:
    """A root folder this process holds (only :func:`hold` makes one)."""

    root: Path


@contextlib.contextmanager
def hold(root: Path) -> Iterator[HeldFolder]:
    """Hold ``root`` (made if missing) for this runner; InputError if another holds it."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                "another run is using this folder",
                where=str(root),
                hint="wait for it to end, or choose another output folder",
            ) from None
        yield HeldFolder(root)


@dataclass(frozen=True, slots=True)
class Batch:
    """Every job's record in the jobs' order; ``ran`` now, ``skipped`` as finished before."""

    records: tuple[Mapping[str, Any], ...]
    ran: int
    skipped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    """How jobs run: ``kind`` ``local`` (``workers`` at a time) or ``ray`` (at ``address``)."""

    kind: str = "local"
    workers: int = 2
    address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise InputError(
                f"unknown engine {self.kind!r}", where="engine", hint=" or ".join(ENGINES)
            )
        if self.workers < 1:
            raise InputError(f"workers must be at least 1, got {self.workers}", where="workers")

    def run(
        self,
        folder: HeldFolder,
        jobs: Mapping[str, J],
        work: Work[J],
        *,
        result_file: str,
        resume: bool = True,
        failed: Callable[[J, str], Mapping[str, Any]] | None = None,
        on_done: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> Batch:
        """Run the unfinished ``jobs`` (all of them unless ``resume``) and read every record.

        ``jobs`` maps each key to what ``work`` receives. ``failed`` turns a
        Ray task that died into a record (without it, a RunError); ``on_done``
        hears of each job run here as it ends. An exception ``work`` raises
        stops the jobs not yet started and is raised here.
        """
        root = folder.root
        for key in jobs:
            _check_key(key)
        todo = {
            key: job
            for key, job in jobs.items()
            if not (resume and (root / key / result_file).is_file())
        }
        for key in todo:
            reset(root / key)
        if todo and self.kind == "ray":
            self._run_ray(root, todo, work, result_file, failed, on_done)
        elif todo:
            self._run_local(root, todo, work, result_file, on_done)
        records = tuple(read_json(root / key / result_file) for key in jobs)
        return Batch(records, ran=len(todo), skipped=len(jobs) - len(todo))

    def _run_local(
        self,
        root: Path,
        todo: Mapping[str, J],
        work: Work[J],
        result_file: str,
        on_done: Callable[[str, Mapping[str, Any]], None] | None,
    ) -> None:
        def one(key: str, job: J) -> Mapping[str, Any]:
            folder = root / key
            folder.mkdir(parents=True, exist_ok=True)
            pid_file = folder / PID_FILE

            def spawned(pid: int) -> None:
                pid_file.write_text(str(pid))

            record = work(job, folder, spawned)
            # Its children have ended: from here on there is no orphan to kill.
            pid_file.unlink(missing_ok=True)
            write_json(folder / result_file, record)
            return record

        # No more jobs in flight than workers: a job is handed out only once one has ended
        # well, so a failure stops every job not yet started, however fast the others are.
        waiting = iter(todo.items())
        with ThreadPoolExecutor(self.workers) as pool:
            running: dict[Future[Mapping[str, Any]], str] = {}

            def hand_out() -> None:
                for key, job in itertools.islice(waiting, self.workers - len(running)):
                    running[pool.submit(one, key, job)] = key

            hand_out()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    key = running.pop(future)
                    record = future.result()  # raises: the running ones end, no more start
                    if on_done is not None:
                        on_done(key, record)
                hand_out()

    def _run_ray(
        self,
        root: Path,
        todo: Mapping[str, J],
        work: Work[J],
        result_file: str,
        failed: Callable[[J, str], Mapping[str, Any]] | None,
        on_done: Callable[[str, Mapping[str, Any]], None] | None,
    ) -> None:
        # Ray is optional (the cityx[ray] extra): imported on this path only.
        try:
            import ray  # optional: the cityx[ray] extra, imported on this path only
        except ImportError:
            raise InputError(
                "the Ray engine needs Ray", hint="install the extra: pip install 'cityx[ray]'"
            ) from None
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        task = ray.remote(num_cpus=1, max_retries=0)(_ray_job)
        pending = {}
        for key, job in todo.items():
            folder = root / key
            folder.mkdir(parents=True, exist_ok=True)
            pending[task.remote(work, job, str(folder))] = (key, job)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                key, job = pending.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as exc:  # the task's worker died or raised
                    reason = f"ray task failed: {' '.join(str(exc).split())[:300]}"
                    if failed is None:
                        raise RunError(reason, where=str(root / key)) from None
                    record = failed(job, reason)
                write_json(root / key / result_file, record)
                if on_done is not None:
                    on_done(key, record)


def _ray_job(work: Work[Any], job: Any, folder: str) -> dict[str, Any]:
    """What a Ray task runs: no spawn hook, since a remote child is not ours to kill."""
    return dict(work(job, Path(folder), None))


def _check_key(key: str) -> None:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"a job key is a relative path inside the root folder, got {key!r}")


def reset(folder: Path) -> None:
    """Clear an unfinished job's folder, killing the orphan a killed runner left there."""
    pid_file = folder / PID_FILE
    if pid_file.is_file():
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            # Only our own orphan, started for this very folder: a recycled pid names another.
            if str(folder).encode() in cmdline:
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)  # its own process group: with its children
                else:
                    os.kill(pid, signal.SIGKILL)
                for _ in range(50):
                    if _ended(pid):
                        break
                    time.sleep(0.1)
    if folder.exists():
        shutil.rmtree(folder)


def _ended(pid: int) -> bool:
    """Gone, or a zombie: dead, waiting only for a parent (perhaps none) to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def write_json(path: Path, obj: Mapping[str, Any]) -> None:
    """Write ``obj`` to ``path`` atomically: a reader sees the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=False))
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any]:
    """A result file's record; RunError when it is missing or unreadable."""
    try:
        obj: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"a job's result is missing or unreadable: {exc}", where=str(path)) from None
    return obj


__all__ = [
    "ENGINES",
    "LOCK_FILE",
    "PID_FILE",
    "Batch",
    "Engine",
    "HeldFolder",
    "SpawnHook",
    "Work",
    "hold",
    "read_json",
    "reset",
    "write_json",
]
