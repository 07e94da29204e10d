"""A predictor whose model lives in an isolated worker process.

An *isolated predictor* is what the rest of ``cityx`` calls: it has the
core :class:`~cityx.core.Predictor` interface, and behind it a worker
process (see :mod:`.process`) that loaded the vendor's artifact under
memory and CPU-time limits. A call that takes longer than the call
timeout, or a worker that dies, becomes a :class:`~cityx.core.TargetError`
subclass; the worker is then killed, and the next call transparently
*restarts* a fresh one, so a trial can carry on and report what happened.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import (
    DataError,
    FloatArray,
    InputSchema,
    Manifest,
    OutputSpec,
    Prediction,
    SystemKind,
    TargetCrashed,
    TargetError,
    TargetLoadError,
    TargetOutputError,
    TargetTimeout,
    Task,
)

from .limits import DEFAULT_LIMITS, Limits
from .model import LoadRequest
from .outputs import to_prediction
from .process import WorkerGone, WorkerProcess
from .protocol import Frame, encode

# The error types a worker may report; anything else is reported as TargetError.
_WORKER_ERRORS: dict[str, type[TargetError]] = {
    cls.__name__: cls
    for cls in (TargetError, TargetLoadError, TargetCrashed, TargetOutputError, TargetTimeout)
}


class IsolatedPredictor:
    """A :class:`~cityx.core.Predictor` backed by a worker process.

    Construction stores configuration only; :meth:`start` (or entering the
    ``with`` block, or the first :meth:`predict`) starts the worker and
    loads the artifact. ``restarts`` counts workers started to replace one
    that hung or died; ``calls`` counts answered calls. Calls from several
    threads are serialised.
    """

    def __init__(
        self,
        *,
        request: LoadRequest,
        schema: InputSchema,
        outputs: OutputSpec,
        limits: Limits = DEFAULT_LIMITS,
        cwd: Path,
    ) -> None:
        self._request = request
        self._schema = schema
        self._outputs = outputs
        self._limits = limits
        self._cwd = cwd
        self._worker: WorkerProcess | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._replace = False
        self._restarts = 0
        self._calls = 0
        self._classes: tuple[str, ...] = ()
        self._lock = threading.RLock()

    @property
    def schema(self) -> InputSchema:
        return self._schema

    @property
    def outputs(self) -> OutputSpec:
        return self._outputs

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def artifact(self) -> Path:
        return self._request.artifact

    @property
    def pid(self) -> int | None:
        """The worker's process id, or None when no worker runs."""
        return self._worker.pid if self._worker is not None else None

    @property
    def restarts(self) -> int:
        return self._restarts

    @property
    def calls(self) -> int:
        return self._calls

    def start(self) -> IsolatedPredictor:
        """Start the worker and load the artifact; TargetLoadError if it cannot be loaded."""
        with self._lock:
            if self._worker is None:
                self._spawn()
        return self

    def close(self) -> None:
        """Stop the worker; a later call would start a new one."""
        with self._lock:
            worker, self._worker = self._worker, None
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
            if worker is not None:
                worker.stop()

    def __enter__(self) -> IsolatedPredictor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def predict(self, batch: FloatArray) -> Prediction:
        """Labels and scores, or values, for every row of ``batch``, in one call."""
        rows = self._check_batch(batch)
        if rows.shape[0] == 0:
            return self._empty()
        header, arrays = self.call("predict", {"batch": rows})
        return to_prediction(
            header, arrays, rows=rows.shape[0], spec=self._outputs, where=self._request.where
        )

    def call(
        self,
        method: str,
        arrays: Mapping[str, NDArray[Any]],
        payload: Mapping[str, Any] | None = None,
    ) -> tuple[Mapping[str, Any], Mapping[str, NDArray[Any]]]:
        """Run one named method of the model on whole arrays, under the call timeout."""
        rows = next((a.shape[0] for a in arrays.values() if a.ndim), 0)
        # Encoded before the exchange: a ValueError there is the caller's, not the worker's.
        frame = encode(
            Frame({"op": "call", "method": method, "payload": dict(payload or {})}, arrays)
        )
        with self._lock:
            worker = self._worker or self._spawn()
            try:
                answer = worker.exchange(frame, timeout_s=self._limits.call_timeout_s)
            except TimeoutError:
                self._discard(worker)
                raise TargetTimeout(
                    f"{method} on {rows} rows took longer than "
                    f"{self._limits.call_timeout_s:g} s; the worker was stopped",
                    where=self._request.where,
                    hint="the next call starts a fresh worker; raise the limit with --timeout "
                    "if the model is only slow",
                ) from None
            except WorkerGone:
                how, why = self._discard(worker)
                raise TargetCrashed(
                    f"the worker died during {method} on {rows} rows: {how} — {why}",
                    where=self._request.where,
                    hint=self._hint("the next call starts a fresh worker", worker),
                ) from None
            except ValueError as exc:
                self._discard(worker)
                raise TargetOutputError(
                    f"the worker answered {method} with a broken frame: {exc}",
                    where=self._request.where,
                    hint="the worker was stopped; the next call starts a fresh one",
                ) from None
            except BaseException:
                # Interrupted mid-exchange: the pipe is out of step, so this
                # worker cannot be used again.
                self._discard(worker)
                raise
            if not answer.header.get("ok"):
                error = _rebuild(answer.header, self._request.where)
                if isinstance(error, TargetCrashed):
                    self._discard(worker)
                raise error
            self._calls += 1
            return answer.header, answer.arrays

    def _spawn(self) -> WorkerProcess:
        where = self._request.where
        worker = WorkerProcess.spawn(limits=self._limits, cwd=self._cwd)
        self._finalizer = weakref.finalize(self, WorkerProcess.kill, worker)
        if self._replace:
            self._restarts += 1
            self._replace = False
        load = encode(Frame({"op": "load", "request": self._request.to_json()}))
        try:
            answer = worker.exchange(load, timeout_s=self._limits.load_timeout_s)
        except TimeoutError:
            self._discard(worker, replace=False)
            raise TargetLoadError(
                f"loading took longer than {self._limits.load_timeout_s:g} s; the worker was "
                "stopped",
                where=where,
                hint="raise the load timeout if the artifact is only large",
            ) from None
        except WorkerGone:
            how, why = self._discard(worker, replace=False)
            raise TargetLoadError(
                f"the worker died while loading: {how} — {why}",
                where=where,
                hint=self._hint("check that the artifact loads outside cityx", worker),
            ) from None
        except ValueError as exc:
            self._discard(worker, replace=False)
            raise TargetLoadError(
                f"the worker answered with a broken frame: {exc}", where=where
            ) from None
        except BaseException:
            self._discard(worker, replace=False)
            raise
        if not answer.header.get("ok"):
            self._discard(worker, replace=False)
            error = _rebuild(answer.header, where)
            if not isinstance(error, TargetLoadError):
                error = TargetLoadError(error.message, where=error.where, hint=error.hint)
            raise error
        self._classes = tuple(str(c) for c in answer.header.get("classes") or ())
        self._worker = worker
        return worker

    def _discard(self, worker: WorkerProcess, *, replace: bool = True) -> tuple[str, str]:
        """Kill a worker that failed; the next call will start a fresh one."""
        if self._worker is worker:
            self._worker = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._replace = self._replace or replace
        return worker.death()

    def _hint(self, advice: str, worker: WorkerProcess) -> str:
        said = worker.last_output()
        return f"{advice}; its last output: {said}" if said else advice

    def _check_batch(self, batch: FloatArray) -> FloatArray:
        d = len(self._schema.features)
        array = np.asarray(batch)
        if array.ndim != 2 or array.shape[1] != d:
            raise DataError(
                f"a batch must have shape (n, {d}), one column per declared feature; got "
                f"{array.shape}",
                where=self._request.where,
            )
        if array.dtype.kind not in "biuf":
            raise DataError(f"a batch must hold numbers, got {array.dtype}")
        return np.ascontiguousarray(array, dtype=np.float64)

    def _empty(self) -> Prediction:
        if self._outputs.task is Task.REGRESSION:
            return Prediction(np.empty(0, dtype=np.float64))
        values = np.empty(0, dtype=str)
        if self._classes:
            return Prediction(values, np.empty((0, len(self._classes))), self._classes)
        return Prediction(values)


def open_predictor(
    manifest: Manifest,
    submission_dir: Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
    trust_pickle: bool = False,
    trusted: Sequence[str] = (),
    plugins_allow: Sequence[str] | None = None,
) -> IsolatedPredictor:
    """The predictor a submission's manifest describes, not yet started.

    ``trusted`` names types to accept in a skops file beyond those skops
    trusts; ``trust_pickle`` accepts pickles and any type in a skops file.
    ``plugins_allow`` is the allow-list of distributions whose target
    plugins the worker may load (None: any installed).
    The artifact must lie inside ``submission_dir``. A controller's model
    opens with :func:`cityx.targets.open_scorer`.
    """
    return _open(
        manifest,
        submission_dir,
        SystemKind.PREDICTOR,
        limits=limits,
        trust_pickle=trust_pickle,
        trusted=trusted,
        plugins_allow=plugins_allow,
    )


def _open(
    manifest: Manifest,
    submission_dir: Path,
    kind: SystemKind,
    *,
    limits: Limits,
    trust_pickle: bool,
    trusted: Sequence[str],
    plugins_allow: Sequence[str] | None = None,
) -> IsolatedPredictor:
    request = LoadRequest.for_submission(
        manifest,
        submission_dir,
        trust_pickle=trust_pickle,
        trusted=trusted,
        threads=limits.threads,
        plugins_allow=plugins_allow,
    )
    if manifest.system.kind is not kind:
        raise TargetLoadError(
            f"a {manifest.system.kind.value} submission cannot be opened as a {kind.value}",
            where=request.where,
            hint="open_predictor opens predictors, open_scorer controllers",
        )
    return IsolatedPredictor(
        request=request,
        schema=manifest.input_schema(),
        outputs=manifest.output_spec(),
        limits=limits,
        cwd=Path(submission_dir).resolve(),
    )


def _rebuild(header: Mapping[str, Any], where: str) -> TargetError:
    cls = _WORKER_ERRORS.get(str(header.get("error")), TargetError)
    hint = header.get("hint")
    return cls(
        str(header.get("message") or "the worker reported an unnamed failure"),
        where=str(header.get("where") or where),
        hint=str(hint) if hint else None,
    )


__all__ = ["IsolatedPredictor", "open_predictor"]
