"""Jobs: trials requested over the API, run one process each, outside the web process.

Words:

- a *job* is a row of the store (:class:`cityx.store.JobRecord`): queued,
  running, done or failed, with its progress (stage, checks done of planned)
  and the id of the trial it runs;
- the *runner* (:class:`JobRunner`) is one thread of the web process that
  claims queued jobs from the store, at most ``trial_workers`` at a time, and
  starts each in its own *job process* (``spawn``, its own session): the
  trial's Python work, its checks and the model's isolated worker never share
  the web process's interpreter or its cores beyond that cap;
- the job process runs :func:`cityx.runs.run_trial` with the server's
  namespaced system id and a trial id fixed when the job was claimed, and
  writes its own progress and ending into the store;
- *walls*: the model's worker is started inside the server's bubblewrap jail
  (:mod:`.walls`) whenever the walls can be built; an entry point (vendor
  code) is trusted to run only there, and refused when they cannot be built;
  a pickle is never run.

A job that fails, is cancelled, or whose process dies leaves no half-written
trial: the trial's output folder is removed and the store keeps the trial
``incomplete`` (its true state: it began, as the audit log says, and never
finished), without results or findings. Only a trial stored ``complete`` is a
result. A job found running when the server starts is failed as interrupted.

Not built: a queue library (procrastinate, huey) and re-running an
interrupted job; queued jobs do survive a restart and run then.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from pathlib import Path

from cityx.core import ArtifactFormat, InputError, Manifest, SystemKind
from cityx.runs import TrialPlan, run_trial
from cityx.store import JobRecord, Store
from cityx.targets import Limits

from .walls import Walls

_LOG = logging.getLogger("cityx.server.jobs")
RUNNER = "server:jobs"  # the actor of the runner's own audit entries
_POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything a job process needs (picklable: it crosses a ``spawn``)."""

    job_id: int
    store: str | None
    submission: Path
    out: Path
    trial_id: str
    system_id: str
    seed: int
    policy: Path | None
    memory_mb: int
    call_timeout_s: float
    wrapper: tuple[str, ...]
    trust_code: bool
    operator: str


PrepareJob = Callable[[JobRecord], JobSpec]
TrialIdFor = Callable[[], str]


def check_runnable(manifest: Manifest, walls: Walls | None, why: str) -> None:
    """Refuse (InputError, 422) a trial the server will not run, saying why."""
    if manifest.system.kind is not SystemKind.PREDICTOR:
        raise InputError(
            "the server runs trials of predictors only; run a controller's trial with "
            "cityx trial, which needs SUMO and minutes",
            where="submission",
        )
    fmt = manifest.artifact.format
    if fmt == ArtifactFormat.PICKLE:
        raise InputError(
            "a pickle artifact runs the vendor's code; it needs the vendor's opt-in trust, "
            "which the server never gives",
            where="submission",
            hint="submit ONNX, skops or LightGBM",
        )
    if fmt == ArtifactFormat.ENTRYPOINT and walls is None:
        raise InputError(
            f"an entry point runs the vendor's code; walls around it cannot be built here: {why}",
            where="submission",
            hint="submit ONNX, skops or LightGBM, or run the trial locally with cityx trial",
        )


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_job(spec: JobSpec) -> None:
    """The job process: run the trial, record progress and the ending in the store."""
    # Its own session, so that a cancel ends this process and anything it started.
    os.setsid()

    with Store.open(spec.store, actor=f"job:{spec.job_id}") as store:

        def progress(stage: str, done: int, total: int) -> None:
            store.job_progress(
                spec.job_id, stage="writing" if stage == "done" else stage, done=done, total=total
            )

        store.job_progress(spec.job_id, stage="admitting", done=0, total=0)
        plan = TrialPlan(
            submission=spec.submission,
            out=spec.out,
            policy=spec.policy,
            seed=spec.seed,
            store=spec.store,
            trust_code=spec.trust_code,
            operator=spec.operator,
            limits=Limits(
                memory_mb=spec.memory_mb,
                call_timeout_s=spec.call_timeout_s,
                wrapper=spec.wrapper,
            ),
            workers=1,
            system_id=spec.system_id,
            trial_id=spec.trial_id,
        )
        try:
            run_trial(plan, progress=progress)
        except Exception as exc:  # every failure ends the job with its one-line reason
            shutil.rmtree(spec.out, ignore_errors=True)
            store.finish_job(spec.job_id, ok=False, error=one_line(exc), actor=store.actor)
            return
        store.finish_job(spec.job_id, ok=True, error=None, actor=store.actor)


def wall_s(job: JobRecord) -> float | None:
    """Seconds the job has run (so far, or in all)."""
    if job.started_at is None:
        return None
    start = _parse(job.started_at)
    end = _parse(job.finished_at) if job.finished_at else datetime.now(UTC)
    return round((end - start).total_seconds(), 1)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class JobRunner:
    """Claims queued jobs and runs each in a job process; at most ``workers`` at a time.

    ``prepare(job)`` builds a claimed job's :class:`JobSpec` (the server knows the
    walls, the folders and the policy); ``trial_id(job_id)`` names its trial.
    """

    def __init__(
        self,
        store: Store,
        *,
        workers: int,
        prepare: PrepareJob,
        trial_id: TrialIdFor,
    ) -> None:
        self._store = store
        self._workers = workers
        self._prepare = prepare
        self._trial_id = trial_id
        self._running: dict[int, tuple[BaseProcess, JobSpec]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context = multiprocessing.get_context("spawn")

    def start(self) -> None:
        # Jobs left running by a server that stopped have no process any more.
        for job in self._store.interrupt_jobs(actor=RUNNER):
            _discard_output(self._store, job)
        self._thread = threading.Thread(target=self._loop, name="cityx-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A job was queued or a cancel asked for: look now, not at the next poll."""
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for job_id, (process, spec) in list(self._running.items()):
            _kill(process)
            self._store.finish_job(
                job_id, ok=False, error="interrupted: the server stopped", actor=RUNNER
            )
            shutil.rmtree(spec.out, ignore_errors=True)
        self._running.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                self._cancel()
                self._claim()
            except Exception:  # the runner must outlive a store hiccup; the next poll retries
                _LOG.exception("job runner step failed")
            self._wake.wait(_POLL_S)
            self._wake.clear()

    def _claim(self) -> None:
        while len(self._running) < self._workers and not self._stop.is_set():
            job = self._store.claim_job(trial_id=self._trial_id(), actor=RUNNER)
            if job is None:
                return
            try:
                spec = self._prepare(job)
            except Exception as exc:  # a submission gone from disk, walls gone: fail, go on
                self._store.finish_job(job.id, ok=False, error=one_line(exc), actor=RUNNER)
                continue
            process = self._context.Process(target=run_job, args=(spec,), name=f"job-{job.id}")
            process.start()
            self._running[job.id] = (process, spec)

    def _cancel(self) -> None:
        for job_id, (process, _spec) in list(self._running.items()):
            job = self._store.job(job_id)
            if job is not None and job.cancel_requested and process.is_alive():
                _kill(process)

    def _reap(self) -> None:
        for job_id, (process, spec) in list(self._running.items()):
            if process.is_alive():
                continue
            process.join()
            del self._running[job_id]
            job = self._store.job(job_id)
            if job is None or job.finished:
                continue
            # The process ended without recording its ending: cancelled, killed or crashed.
            trial = self._store.trial(spec.trial_id)
            if trial is not None and trial.status == "complete":
                self._store.finish_job(job_id, ok=True, error=None, actor=RUNNER)
                continue
            reason = (
                f"cancelled by {job.cancel_requested}"
                if job.cancel_requested
                else f"the job process died (exit code {process.exitcode})"
            )
            shutil.rmtree(spec.out, ignore_errors=True)
            self._store.finish_job(job_id, ok=False, error=reason, actor=RUNNER)


def _kill(process: BaseProcess) -> None:
    if process.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    # Before its setsid the process is in our group, which killpg above did not find.
    process.kill()
    process.join(timeout=10)


def _discard_output(store: Store, job: JobRecord) -> None:
    if job.trial_id is None:
        return
    trial = store.trial(job.trial_id)
    if trial is not None and trial.status != "complete":
        shutil.rmtree(trial.out_dir, ignore_errors=True)


__all__ = ["JobRunner", "JobSpec", "check_runnable", "one_line", "run_job", "wall_s"]
