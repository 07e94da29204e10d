"""Jobs: work requested over the API (a trial), run by a worker process, outside the web process.

Words:

- a *job* is a row of the store (:class:`cityx.store.JobRecord`): queued,
  running, done or failed, with its progress (stage, checks done of planned)
  and the id of the trial it runs; the row is the truth about a job;
- a *job kind* (``"trial"``, ...) names how a claimed job becomes *work*: a
  :data:`Prepare` function gives its :class:`Work` (picklable), and the job
  process runs ``work.run``; another kind plugs in with one more entry in the
  runner's ``kinds``;
- the *queue* is huey's, kept in the store's own database (:mod:`.queue`); it
  carries job ids only, and is rebuilt from the rows when a worker starts;
- the *worker* (:mod:`.queue`) is a process of its own that consumes the
  queue with at most ``trial_workers`` jobs at a time; for each job it
  *supervises* (:func:`supervise`): it claims the row, starts a *job process*
  (``spawn``, its own session), ends it when a cancel is asked for, and
  records an ending the process could not record itself;
- the *runner* (:class:`.queue.JobRunner`) is the web process's side: it
  queues jobs and, unless told the worker runs elsewhere, starts and stops it;
- *walls*: the model's worker is started inside the server's bubblewrap jail
  (:mod:`.walls`) whenever the walls can be built; an entry point (vendor
  code) is trusted to run only there, and refused when they cannot be built;
  a pickle is never run.

A job that fails or is cancelled leaves no half-written trial: the trial's
output folder is removed and the store keeps the trial ``incomplete`` (its true
state: it began, as the audit log says, and never finished), without results or
findings. Only a trial stored ``complete`` is a result.

A job whose worker or server was stopped or killed mid-run is *re-run*: the job
process dies with its worker (it watches its parent), and the next worker to
start finds the row ``running``, keeps the abandoned trial ``incomplete``,
requeues the job and runs it again under a new trial id. If the abandoned trial
had completed, the job is done instead. Either way one job leaves exactly one
complete trial. One worker serves a store: a second one would requeue the
first one's running jobs.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Protocol

from cityx.core import ArtifactFormat, InputError, Manifest, StoreError, SystemKind
from cityx.runs import TrialPlan, run_trial
from cityx.runs.trial import new_trial_id
from cityx.store import JobRecord, Store
from cityx.targets import Limits

from .config import ServerConfig
from .walls import Walls

_LOG = logging.getLogger("cityx.server.jobs")
RUNNER = "server:jobs"  # the actor of the runner's own audit entries
TRIAL = "trial"
_POLL_S = 0.2
_PARENT_POLL_S = 0.5

Progress = Callable[[str, int, int], None]


class Work(Protocol):
    """What a job process runs (picklable: it crosses a ``spawn``)."""

    @property
    def job_id(self) -> int: ...
    @property
    def store(self) -> str | None: ...
    @property
    def out(self) -> Path:
        """The job's output folder, removed when the job does not end well."""
        ...

    def run(self, progress: Progress) -> None:
        """Do the work; raise to fail the job (its one-line reason is kept)."""
        ...

    def committed(self, store: Store) -> bool:
        """Whether the work's one result is committed (so re-running it would repeat it)."""
        ...


@dataclass(frozen=True, slots=True)
class JobContext:
    """What preparing a claimed job may consult: the server's rules, in the worker."""

    config: ServerConfig
    store: Store
    walls: Walls | None
    code_walls: Walls | None  # the walls if vendor code may run in them (ModelPool.code_walls)
    why: str  # why there are no walls, when there are none


Prepare = Callable[[JobContext, JobRecord], Work]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A trial job's work: :func:`cityx.runs.run_trial` with the server's ids and rules."""

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

    def run(self, progress: Progress) -> None:
        plan = TrialPlan(
            submission=self.submission,
            out=self.out,
            policy=self.policy,
            seed=self.seed,
            store=self.store,
            trust_code=self.trust_code,
            operator=self.operator,
            limits=Limits(
                memory_mb=self.memory_mb,
                call_timeout_s=self.call_timeout_s,
                wrapper=self.wrapper,
            ),
            workers=1,  # the worker's cap is the job's share of the cores
            system_id=self.system_id,
            trial_id=self.trial_id,
        )
        run_trial(plan, progress=progress)

    def committed(self, store: Store) -> bool:
        trial = store.trial(self.trial_id)
        return trial is not None and trial.status == "complete"


def check_runnable(manifest: Manifest, walls: Walls | None, why: str) -> None:
    """Refuse (InputError, 422) a trial the server will not run, saying why."""
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
    if manifest.system.kind not in (SystemKind.PREDICTOR, SystemKind.CONTROLLER):
        raise InputError(
            f"the server runs trials of predictors and controllers, not {manifest.system.kind}",
            where="submission",
        )


def prepare_trial(ctx: JobContext, job: JobRecord) -> JobSpec:
    """The work of a claimed trial ``job``: the server's rules, applied."""
    sub = ctx.store.submission(job.submission_id)
    if sub is None or job.trial_id is None:
        raise StoreError(f"job {job.id}: its submission is gone", where="jobs")
    manifest = Manifest.model_validate(sub.manifest)
    check_runnable(manifest, ctx.code_walls, ctx.why)  # the walls could have gone since
    folder = Path(sub.path)
    cfg = ctx.config
    return JobSpec(
        job_id=job.id,
        store=cfg.store,
        submission=folder,
        out=cfg.data_dir / "trials" / job.trial_id,
        trial_id=job.trial_id,
        system_id=job.system_id,
        seed=int(job.params.get("seed", 0)),
        policy=cfg.trial_policy,
        memory_mb=cfg.worker_memory_mb,
        call_timeout_s=cfg.call_timeout_s,
        wrapper=() if ctx.walls is None else ctx.walls.around(folder, vendor=job.organisation),
        # Vendor code is trusted to run only behind the walls (check_runnable).
        trust_code=ctx.code_walls is not None,
        operator=job.requested_by,
    )


DEFAULT_KINDS: Mapping[str, Prepare] = {TRIAL: prepare_trial}


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def die_with_parent(parent: int, *, group: bool) -> None:
    """End this process (and its process group when ``group``) once ``parent`` is gone.

    A thread polls the parent's pid rather than PR_SET_PDEATHSIG, whose signal
    follows the spawning *thread*, not the process.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL_S)
        if group:
            with contextlib.suppress(OSError):
                os.killpg(os.getpgid(0), signal.SIGKILL)
        os._exit(1)

    if os.getppid() != parent:  # it died before we began to watch
        os._exit(1)
    threading.Thread(target=watch, name="cityx-parent-watch", daemon=True).start()


def run_job(work: Work, parent: int) -> None:
    """The job process: do the work, record progress and the ending in the store."""
    # Its own session, so that a cancel ends this process and anything it started.
    os.setsid()
    die_with_parent(parent, group=True)

    with Store.open(work.store, actor=f"job:{work.job_id}") as store:

        def progress(stage: str, done: int, total: int) -> None:
            store.job_progress(
                work.job_id, stage="writing" if stage == "done" else stage, done=done, total=total
            )

        store.job_progress(work.job_id, stage="admitting", done=0, total=0)
        try:
            work.run(progress)
        except Exception as exc:  # every failure ends the job with its one-line reason
            shutil.rmtree(work.out, ignore_errors=True)
            store.finish_job(work.job_id, ok=False, error=one_line(exc), actor=store.actor)
            return
        store.finish_job(work.job_id, ok=True, error=None, actor=store.actor)


def supervise(ctx: JobContext, kinds: Mapping[str, Prepare], job_id: int) -> None:
    """Run job ``job_id`` to its end in a job process; a no-op unless it is queued.

    Called by the worker for each job id it takes from the queue (see :mod:`.queue`).
    """
    store = ctx.store
    job = store.claim_job(job_id=job_id, trial_id=new_trial_id(datetime.now(UTC)), actor=RUNNER)
    if job is None:  # cancelled while queued, or queued twice and already taken
        return
    try:
        prepare = kinds.get(job.kind)
        if prepare is None:
            raise InputError(f"this worker runs no {job.kind!r} jobs", where="jobs")
        work = prepare(ctx, job)
    except Exception as exc:  # a submission gone from disk, walls gone: fail, go on
        store.finish_job(job.id, ok=False, error=one_line(exc), actor=RUNNER)
        return
    process = multiprocessing.get_context("spawn").Process(
        target=run_job, args=(work, os.getpid()), name=f"job-{job.id}"
    )
    process.start()
    cancelled = False
    while process.is_alive():
        process.join(_POLL_S)
        if not cancelled and process.is_alive():
            try:
                now = store.job(job.id)
            except StoreError:  # the store is away for a moment: the job goes on, ask again
                continue
            if now is not None and now.cancel_requested:
                cancelled = True
                kill_job_process(process)
    process.join()
    now = store.job(job.id)
    if now is None or now.finished:
        return
    # The process ended without recording its ending: cancelled, killed or crashed.
    if work.committed(store):
        store.finish_job(job.id, ok=True, error=None, actor=RUNNER)
        return
    reason = (
        f"cancelled by {now.cancel_requested}"
        if now.cancel_requested
        else f"the job process died (exit code {process.exitcode})"
    )
    shutil.rmtree(work.out, ignore_errors=True)
    store.finish_job(job.id, ok=False, error=reason, actor=RUNNER)


def recover(ctx: JobContext, kinds: Mapping[str, Prepare]) -> list[int]:
    """At a worker's start: settle the jobs left running; the ids to queue, oldest first.

    A job left running whose work committed is done; one whose cancel was asked
    for fails; any other is requeued, to run again (see the module docstring).
    """
    store = ctx.store
    for job_id in store.job_ids("running"):
        job = store.job(job_id)
        if job is None:
            continue
        out = _abandoned_out(ctx, job)
        if _abandoned_committed(ctx, kinds, job):
            store.finish_job(job_id, ok=True, error=None, actor=RUNNER)
            continue
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
        if job.cancel_requested:
            store.finish_job(
                job_id, ok=False, error=f"cancelled by {job.cancel_requested}", actor=RUNNER
            )
            continue
        store.requeue_job(
            job_id, actor=RUNNER, reason="interrupted: its worker stopped during the job"
        )
    return store.job_ids("queued")


def _abandoned_committed(ctx: JobContext, kinds: Mapping[str, Prepare], job: JobRecord) -> bool:
    try:
        work = kinds[job.kind](ctx, job)
    except Exception:  # it cannot be prepared any more: nothing of it can have committed
        trial = None if job.trial_id is None else ctx.store.trial(job.trial_id)
        return trial is not None and trial.status == "complete"
    return work.committed(ctx.store)


def _abandoned_out(ctx: JobContext, job: JobRecord) -> Path | None:
    if job.trial_id is None:
        return None
    trial = ctx.store.trial(job.trial_id)
    if trial is not None:
        return Path(trial.out_dir)
    return ctx.config.data_dir / "trials" / job.trial_id


def wall_s(job: JobRecord) -> float | None:
    """Seconds the job has run (so far, or in all)."""
    if job.started_at is None:
        return None
    start = _parse(job.started_at)
    end = _parse(job.finished_at) if job.finished_at else datetime.now(UTC)
    return round((end - start).total_seconds(), 1)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def kill_job_process(process: BaseProcess) -> None:
    """End a job process and everything it started (its session's process group)."""
    if process.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    # Before its setsid the process is in our group, which killpg above did not find.
    process.kill()
    process.join(timeout=10)


__all__ = [
    "DEFAULT_KINDS",
    "TRIAL",
    "JobContext",
    "JobSpec",
    "Prepare",
    "Work",
    "check_runnable",
    "die_with_parent",
    "kill_job_process",
    "one_line",
    "prepare_trial",
    "recover",
    "run_job",
    "supervise",
    "wall_s",
]
