"""One worker process, seen from the parent.

The *worker* is ``python -m cityx.targets.worker`` started with
:class:`subprocess.Popen` (never a fork of this process, which may hold
threads, locks and open stores) in a new session, so that it and anything
it starts form one *process group* that can be killed at once. The parent
talks to it over its stdin and stdout pipes with :mod:`.protocol` frames
and enforces a *deadline* on every exchange by polling the pipes. The
worker's stderr is drained during those polls into a bounded *tail*, so
the last lines it wrote can be quoted when it fails.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from .limits import Limits
from .protocol import PREFIX, Frame, body_size, decode, encode

_TAIL_BYTES = 16 * 1024
_CHUNK = 1 << 20
# Environment variables that size the thread pools of numpy's BLAS, OpenMP
# and friends; they must be set before those libraries load.
_WALLED_ENV = ("MALLOC_ARENA_MAX", "PYTHONDONTWRITEBYTECODE", "LANG", "LC_ALL")
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class WorkerGone(Exception):
    """The worker closed its pipes: it exited or was killed (internal signal)."""


class WorkerProcess:
    """A running worker: exchange messages under a deadline, stop it, tell how it died."""

    def __init__(self, popen: subprocess.Popen[bytes], limits: Limits) -> None:
        self._popen = popen
        self._limits = limits
        self._tail = bytearray()
        self._closed = False
        self._stderr_open = True
        self._stdin = _pipe(popen.stdin)
        self._stdout = _pipe(popen.stdout)
        self._stderr = _pipe(popen.stderr)
        for fd in (self._stdin, self._stdout, self._stderr):
            os.set_blocking(fd, False)

    @classmethod
    def spawn(cls, *, limits: Limits, cwd: Path) -> WorkerProcess:
        env = dict(os.environ)
        env.update({name: str(limits.threads) for name in _THREAD_VARIABLES})
        # Each glibc malloc arena reserves 64 MB of address space; a few
        # arenas keep RLIMIT_AS about memory actually used.
        env["MALLOC_ARENA_MAX"] = "2"
        # Do not write __pycache__ folders into the vendor's submission.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        command = [
            sys.executable,
            "-P",  # keep cwd (the submission folder) off sys.path: it could shadow modules
            "-m",
            "cityx.targets.worker",
            "--memory-mb",
            str(limits.memory_mb),
            "--cpu-s",
            str(limits.cpu_s),
        ]
        if limits.wrapper:
            # Inside the walls the worker sees only what it needs: not the server's secrets.
            keep = {k: v for k, v in env.items() if k in _WALLED_ENV or k in _THREAD_VARIABLES}
            command = [
                *limits.wrapper,
                "/usr/bin/env",
                "-i",
                *(f"{k}={v}" for k, v in keep.items()),
                *command,
            ]
        popen = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        return cls(popen, limits)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def exchange(self, frame: bytes, *, timeout_s: float) -> Frame:
        """Send an encoded frame and wait for the answer.

        TimeoutError if the deadline passes, WorkerGone if the worker's pipes
        close, ValueError if it answers with something that is not a frame.
        """
        deadline = time.monotonic() + timeout_s
        self._send(memoryview(frame), deadline)
        prefix = self._receive(PREFIX.size, deadline)
        return decode(self._receive(body_size(prefix), deadline))

    def stop(self, *, grace_s: float = 2.0) -> None:
        """Ask the worker to exit; kill its process group if it does not."""
        if self._popen.returncode is None:
            try:
                self._send(memoryview(encode(Frame({"op": "close"}))), time.monotonic() + grace_s)
                self._popen.wait(timeout=grace_s)
            except (OSError, WorkerGone, TimeoutError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def kill(self) -> None:
        """Kill the whole process group, reap the worker and close the pipes."""
        if self._closed:
            return
        # The group outlives its leader while any member lives, so its id
        # cannot have been reused: this only ever hits our own processes.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        self._popen.wait()
        self._drain_stderr(until_eof_s=0.5)
        self._closed = True
        for pipe in (self._popen.stdin, self._popen.stdout, self._popen.stderr):
            if pipe is not None:
                pipe.close()

    def death(self) -> tuple[str, str]:
        """After the worker's pipes closed: kill what is left, say how it ended and a hint."""
        self.kill()
        return describe_exit(self._popen.returncode, self._limits)

    def last_output(self, lines: int = 4, limit: int = 400) -> str:
        """The last lines the worker wrote to stderr, on one line.

        After a crash that is faulthandler's report: its first line and the
        innermost frames say more than the list of extension modules it ends with.
        """
        text = self._tail.decode("utf-8", "replace")
        said = [line.strip() for line in text.splitlines() if line.strip()]
        fatal = [i for i, line in enumerate(said) if line.startswith("Fatal Python error")]
        if fatal:
            report = said[fatal[-1] :]
            frames = [line for line in report if line.startswith("File ")]
            kept = [report[0], *frames[: lines - 1]]
        else:
            kept = said[-lines:]
        joined = " | ".join(kept)
        return joined if len(joined) <= limit else "..." + joined[-(limit - 3) :]

    def _send(self, view: memoryview, deadline: float) -> None:
        while view:
            ready = self._wait(self._stdin, select.POLLOUT, deadline)
            if ready:
                try:
                    view = view[os.write(self._stdin, view) :]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    raise WorkerGone("the worker closed its input") from None

    def _receive(self, size: int, deadline: float) -> bytearray:
        # Read straight into one buffer: answers can be hundreds of megabytes.
        buffer = bytearray(size)
        view = memoryview(buffer)
        done = 0
        while done < size:
            if not self._wait(self._stdout, select.POLLIN, deadline):
                continue
            try:
                got = os.readv(self._stdout, [view[done : done + _CHUNK]])
            except BlockingIOError:
                continue
            if got == 0:
                raise WorkerGone("the worker closed its output")
            done += got
        return buffer

    def _wait(self, fd: int, event: int, deadline: float) -> bool:
        """Block until ``fd`` is ready or stderr has data; True if ``fd`` is ready."""
        poller = select.poll()
        poller.register(fd, event)
        if self._stderr_open:
            poller.register(self._stderr, select.POLLIN)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        ready = False
        for ready_fd, events in poller.poll(remaining * 1000):
            if ready_fd == self._stderr:
                self._drain_stderr()
            elif events & (event | select.POLLHUP | select.POLLERR):
                # A hang-up is "ready" too: the read or write then reports it.
                ready = True
        return ready

    def _drain_stderr(self, *, until_eof_s: float = 0.0) -> None:
        end = time.monotonic() + until_eof_s
        while self._stderr_open:
            try:
                chunk = os.read(self._stderr, 65536)
            except BlockingIOError:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return
                select.select([self._stderr], [], [], remaining)
                continue
            except OSError:
                self._stderr_open = False
                return
            if not chunk:
                # Stop polling it: a closed pipe would wake every poll at once.
                self._stderr_open = False
                return
            self._tail += chunk
            if len(self._tail) > _TAIL_BYTES:
                del self._tail[:-_TAIL_BYTES]


def describe_exit(returncode: int | None, limits: Limits) -> tuple[str, str]:
    """How a worker ended, and a hint at why, for an error message."""
    memory = f"{limits.memory_mb} MB memory limit"
    if returncode is None:
        return "stopped answering", "the worker was stopped"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hints = {
            "SIGKILL": f"it may have exceeded the {memory}, or the system stopped it",
            "SIGXCPU": f"it used up its CPU-time limit of {limits.cpu_s} s",
            "SIGSEGV": f"native code crashed; running out of the {memory} can also cause this",
            "SIGBUS": f"native code crashed; running out of the {memory} can also cause this",
            "SIGABRT": f"native code aborted, often because an allocation failed under the "
            f"{memory}",
        }
        return f"killed by {name}", hints.get(name, "something sent it a signal")
    if returncode == 0:
        return "exited in the middle of a call", "the model's code ended the process"
    return f"exited with code {returncode}", "the model's code called exit() or os._exit()"


def _pipe(stream: IO[bytes] | None) -> int:
    if stream is None:  # Popen was asked for all three pipes
        raise RuntimeError("worker pipe missing")
    return stream.fileno()


__all__ = ["WorkerGone", "WorkerProcess", "describe_exit"]
