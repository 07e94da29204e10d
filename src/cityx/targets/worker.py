"""The worker: loads one artifact and answers calls, inside its limits.

Started by :mod:`cityx.targets.process` as ``python -m cityx.targets.worker
--memory-mb MB --cpu-s S``. It sets its own resource limits, then serves
:mod:`.protocol` messages on its stdin and stdout until told to ``close``
or until the parent goes away:

- ``load`` (header: a :class:`~.model.LoadRequest`) checks the artifact's
  SHA-256 digest against the manifest's (when the request carries one),
  finds the target plugin for the artifact format in the plugin registry
  (the built-ins and installed ``cityx.plugins`` entry points, within the
  request's allow-list) and loads the artifact;
- ``call`` (header: ``method`` and ``payload``; arrays) runs one method of
  the loaded model on whole arrays;
- ``close`` ends the worker.

Each answer has ``ok``; a failure carries the core error's type name,
message, ``where`` and ``hint``. The worker's stdout is reserved for
frames: it keeps a private copy of the pipe and points file descriptor 1
at stderr, so prints from the model, from Python or from C libraries,
cannot corrupt the stream.
"""

from __future__ import annotations

import argparse
import faulthandler
import hashlib
import os
import resource
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from cityx.core import (
    CityxError,
    PluginError,
    PluginKind,
    Registry,
    TargetCrashed,
    TargetError,
    TargetLoadError,
)

from .model import LoadRequest, TargetModel, brief
from .protocol import Frame, encode, read_message, write_frame

_CPU_GRACE_S = 5  # between SIGXCPU (soft limit) and SIGKILL (hard limit)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cityx.targets.worker")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--cpu-s", type=int, required=True)
    args = parser.parse_args(argv)
    frames_in, frames_out = _claim_pipes()
    _limit(resource.RLIMIT_AS, args.memory_mb * 1024 * 1024)
    _limit(resource.RLIMIT_CPU, args.cpu_s, hard=args.cpu_s + _CPU_GRACE_S)
    # A crashing model must not leave core files in the submission folder.
    _limit(resource.RLIMIT_CORE, 0)
    # On a segfault, print the Python stack to stderr, where the parent quotes it.
    faulthandler.enable(file=sys.stderr, all_threads=True)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    return Worker(memory_mb=args.memory_mb).serve(frames_in, frames_out)


class Worker:
    """The serve loop; holds the loaded model between calls."""

    def __init__(self, *, memory_mb: int) -> None:
        self._memory_mb = memory_mb
        self._model: TargetModel | None = None
        self._request: LoadRequest | None = None

    def serve(self, frames_in: int, frames_out: int) -> int:
        while True:
            try:
                message = read_message(frames_in)
            except EOFError:  # the parent went away
                return 0
            op = message.header.get("op")
            if op == "close":
                return 0
            try:
                frame = encode(self._handle(str(op), message))
            except MemoryError:
                # Free what the model holds before building the answer.
                self._model = None
                write_frame(frames_out, encode(Frame(_failure(self._out_of_memory(message)))))
                return 3
            except CityxError as exc:
                frame = encode(Frame(_failure(exc)))
            except Exception as exc:
                frame = encode(Frame(_failure(self._unexpected(op, exc))))
            write_frame(frames_out, frame)

    def _handle(self, op: str, message: Frame) -> Frame:
        header = message.header
        if op == "load":
            self._request = LoadRequest.from_json(header["request"])
            self._model = self._load(self._request)
            return Frame({"ok": True, "classes": list(self._model.classes())})
        if op == "call":
            if self._model is None:
                raise TargetError("call before load: the worker has no model")
            answer, arrays = self._model.answer(
                str(header.get("method")), header.get("payload") or {}, message.arrays
            )
            return Frame({"ok": True, **answer}, arrays)
        raise TargetError(f"unknown operation {op!r}")

    def _load(self, request: LoadRequest) -> TargetModel:
        _check_digest(request)
        try:
            adapter: type[TargetModel] = Registry(allow=request.plugins_allow).load(
                PluginKind.TARGET, request.format
            )
        except PluginError as exc:
            cause = exc.__cause__
            if isinstance(cause, ImportError):
                raise request.load_error(
                    f"the {request.format} adapter cannot start: {brief(cause)}",
                    hint="install the library it needs",
                ) from exc
            raise request.load_error(
                f"no target plugin for format {request.format!r}: {exc.message}", hint=exc.hint
            ) from exc
        try:
            return adapter.load(request)
        except TargetLoadError as exc:
            if isinstance(exc.__cause__, MemoryError):
                raise request.load_error(exc.message, hint=self._memory_hint()) from exc
            raise
        except CityxError:
            raise
        except MemoryError:
            raise
        except Exception as exc:
            raise request.load_error(f"loading failed: {brief(exc)}") from exc

    def _unexpected(self, op: Any, exc: Exception) -> CityxError:
        where = self._request.where if self._request else None
        if op == "load":
            return TargetLoadError(f"loading failed: {brief(exc)}", where=where)
        # The model's own exception: it refused this batch, the worker lives on.
        return TargetError(f"the model raised {brief(exc)}", where=where)

    def _out_of_memory(self, message: Frame) -> CityxError:
        where = self._request.where if self._request else None
        if message.header.get("op") == "load":
            return TargetLoadError(
                "the model ran out of memory while loading", where=where, hint=self._memory_hint()
            )
        rows = next((a.shape[0] for a in message.arrays.values() if a.ndim), 0)
        method = message.header.get("method")
        return TargetCrashed(
            f"the model ran out of memory during {method} on {rows} rows",
            where=where,
            hint=self._memory_hint(),
        )

    def _memory_hint(self) -> str:
        return (
            f"the worker's memory limit is {self._memory_mb} MB, raise it with --memory-mb if "
            "the model needs more; the worker was stopped, the next call starts a fresh one"
        )


def _check_digest(request: LoadRequest) -> None:
    """Refuse an artifact that is not the one the manifest's digest names."""
    if request.sha256 is None or not request.artifact.is_file():
        return
    digest = hashlib.sha256()
    with request.artifact.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    found = digest.hexdigest()
    if found != request.sha256:
        raise request.load_error(
            f"digest mismatch: the artifact has sha256 {found}, the manifest says {request.sha256}",
            hint="the artifact changed after the manifest was written, or was tampered with; "
            "nothing was loaded",
        )


def _failure(exc: CityxError) -> dict[str, Any]:
    return {
        "ok": False,
        "error": type(exc).__name__,
        "message": exc.message,
        "where": exc.where,
        "hint": exc.hint,
    }


def _exit_with_parent(parent: int) -> None:
    # A parent killed outright cannot stop a worker stuck in a model's
    # sleep or wait; once orphaned (re-parented), the worker ends itself.
    # (PR_SET_PDEATHSIG would tie the worker to the parent's *thread*.)
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(70)


def _claim_pipes() -> tuple[int, int]:
    """Keep private copies of the frame pipes; send fd 1 to stderr, read fd 0 from nowhere."""
    sys.stdout.flush()
    frames_in, frames_out = os.dup(0), os.dup(1)  # dup'd descriptors are not inherited
    nowhere = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nowhere, 0)
    os.close(nowhere)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return frames_in, frames_out


def _limit(which: int, soft: int, *, hard: int | None = None) -> None:
    _, current_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:
        # An unprivileged process may lower its hard limit, never raise it.
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


if __name__ == "__main__":
    sys.exit(main())
