"""The job queue and its worker: huey, with its queue kept in the store's own database.

Words:

- the *queue* is a huey queue named :data:`QUEUE_NAME` whose messages are job
  ids. It lives where the store does: in a SQLite store's own file (huey's
  ``SqliteStorage``, tables ``task``, ``schedule``, ``kv``, ``counter``), or in
  a PostgreSQL store's own database (huey's ``SqlStorage`` through peewee, the
  same tables, dequeued with ``FOR UPDATE SKIP LOCKED``). One library, one
  consumer and one task over both stores; see docs/server.md for why huey;
- the *worker* (:func:`run_worker`, ``cityx worker``) is one process: huey's
  consumer with ``trial_workers`` threads, each supervising one job at a time
  (:func:`cityx.server.jobs.supervise`), so at most that many job processes
  share the cores with the web process;
- the *runner* (:class:`JobRunner`) is the web process's side: it queues job
  ids and, with ``embedded_worker`` (the default), starts the worker as a
  child process and stops it.

The job rows are the truth; the queue only says "look at job N". A message
for a job that is not queued any more does nothing (a claim is atomic), so
the worker may rebuild the queue from the rows when it starts (after settling
the jobs its predecessor left running, :func:`cityx.server.jobs.recover`), and
a job queued twice still runs once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

from huey import Huey, SqliteHuey
from huey.api import TaskWrapper
from huey.consumer import Consumer
from huey.contrib.sql_huey import SqlHuey
from peewee import PostgresqlDatabase

from cityx.core import StoreError
from cityx.store import POSTGRESQL, Store, default_store_url, parse_store_url
from cityx.targets import Limits

from .config import ServerConfig
from .jobs import (
    DEFAULT_KINDS,
    RUNNER,
    JobContext,
    Prepare,
    die_with_parent,
    kill_job_process,
    recover,
    supervise,
)
from .scoring import ModelPool

_LOG = logging.getLogger("cityx.server.queue")
QUEUE_NAME = "cityx-jobs"
TASK = "cityx.job"
# An idle worker looks at the queue at least this often (huey backs off to it).
_MAX_POLL_S = 1.0
_WATCH_S = 1.0  # how often the web process checks that its worker is alive


@dataclass(frozen=True, slots=True)
class JobQueue:
    """A huey queue of job ids kept in a store, and its one task."""

    huey: Huey
    task: TaskWrapper

    def put(self, job_id: int) -> None:
        """Queue a message "run job ``job_id``"."""
        database = getattr(self.huey.storage, "database", None)
        if database is None:  # SQLite: huey's own connection
            self.huey.enqueue(self.task.s(job_id))
            return
        # peewee keeps a connection per thread and the web server's threads come and go:
        # one connection per job queued, closed at once (a job is queued rarely).
        with database.connection_context():
            self.huey.enqueue(self.task.s(job_id))

    def clear(self) -> None:
        """Drop every message (the worker rebuilds the queue from the job rows)."""
        self.huey.storage.flush_queue()

    def close(self) -> None:
        self.huey.storage.close()


def _not_here(job_id: int) -> None:
    raise RuntimeError(f"job {job_id} runs in the worker, not in the web process")


def job_queue(store: str | None, run: Callable[[int], None] = _not_here) -> JobQueue:
    """The queue kept in the store at URL ``store``, whose task calls ``run(job_id)``
    where it is consumed (the worker's; the web process only puts)."""
    target = parse_store_url(store or default_store_url())
    if target.memory:
        raise StoreError(
            "an in-memory store has no room for a job queue that a worker process can read",
            where=target.display,
            hint="serve a store file (sqlite:///PATH.db) or a PostgreSQL database",
        )
    huey: Huey
    if target.backend == POSTGRESQL:
        url = target.url.set(drivername="postgresql").render_as_string(hide_password=False)
        huey = SqlHuey(name=QUEUE_NAME, results=False, database=PostgresqlDatabase(url))
    elif target.path is not None:
        target.path.parent.mkdir(parents=True, exist_ok=True)
        # journal_mode=None: leave the store file's journal mode as the store set it.
        huey = SqliteHuey(
            name=QUEUE_NAME,
            results=False,
            filename=str(target.path),
            journal_mode=None,
            timeout=30,
        )
    else:  # a SQLite target has a path unless in memory
        raise StoreError("the store has no file for the job queue", where=target.display)
    return JobQueue(huey=huey, task=huey.task(name=TASK, retries=0)(run))


def run_worker(
    config: ServerConfig,
    kinds: Mapping[str, Prepare] = DEFAULT_KINDS,
    parent: int | None = None,
    *,
    duration_s: float | None = None,
) -> None:
    """The worker: settle what a predecessor left running, then consume the queue until
    stopped (SIGTERM: at once; SIGINT: after the running jobs; or after ``duration_s``).
    ``parent``: end when that process does. Call it from a main thread (signals)."""
    if parent is not None:
        die_with_parent(parent, group=False)
    with Store.open(config.store, actor=RUNNER) as store:
        pool = ModelPool(
            limits=Limits(memory_mb=config.worker_memory_mb, call_timeout_s=config.call_timeout_s),
            contain=config.contain,
            realm=str(config.data_dir.resolve()),
            nproc=config.worker_nproc,
        )
        ctx = JobContext(
            config=config,
            store=store,
            walls=pool.walls(),
            code_walls=pool.code_walls(),
            why=pool.why,
        )

        def run(job_id: int) -> None:
            supervise(ctx, kinds, job_id)

        queue = job_queue(config.store, run)
        # The job processes are the children started from here on (in a test the calling
        # process may have others of its own, not ours to end).
        before = set(multiprocessing.active_children())
        try:
            # The rows are the truth: drop stale messages, then queue every queued job.
            queue.clear()
            for job_id in recover(ctx, kinds):
                queue.put(job_id)
            _consume(queue, config.trial_workers, duration_s)
        finally:
            # A job stopped here runs again at the next start (the module docstring).
            for child in multiprocessing.active_children():
                if child not in before:
                    kill_job_process(child)
            queue.close()


def _consume(queue: JobQueue, workers: int, duration_s: float | None) -> None:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        consumer = Consumer(
            queue.huey,
            workers=workers,
            worker_type="thread",
            periodic=False,
            initial_delay=0.1,
            backoff=1.15,
            max_delay=_MAX_POLL_S,
        )
        timer = None
        if duration_s is not None:
            timer = threading.Timer(duration_s, consumer.stop)
            timer.daemon = True
            timer.start()
        _LOG.info("worker %s: %s job(s) at a time", os.getpid(), workers)
        consumer.run()
        if timer is not None:
            timer.cancel()
    finally:
        for number, handler in handlers.items():  # huey's consumer set its own
            signal.signal(number, handler)


class JobRunner:
    """The web process's side of the jobs: queue them; start and stop the worker.

    ``kinds`` maps a job kind to its :data:`~cityx.server.jobs.Prepare`
    (top-level functions: they cross into the worker process). With
    ``config.embedded_worker`` false the worker is ``cityx worker``, started on
    its own, and no worker is started here. Otherwise the worker starts with the
    server when the store holds jobs to settle or run, else with the first job
    queued (a server that runs no jobs spends no process on them).
    """

    def __init__(
        self, config: ServerConfig, store: Store, *, kinds: Mapping[str, Prepare] | None = None
    ) -> None:
        self._config = config
        self._store = store
        self._kinds = dict(DEFAULT_KINDS if kinds is None else kinds)
        self._queue: JobQueue | None = None
        self._worker: BaseProcess | None = None
        self._lock = threading.Lock()
        self._refused: StoreError | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        try:
            self._queue = job_queue(self._config.store)
        except StoreError as exc:  # an in-memory store: the server runs, its jobs cannot
            self._refused = exc
            _LOG.warning("no jobs on this store: %s", exc)
            return
        if self._store.job_ids("running") or self._store.job_ids("queued"):
            self._ensure_worker()

    def submit(self, job_id: int) -> None:
        """Queue job ``job_id`` (its row is already ``queued`` in the store)."""
        if self._refused is not None:
            raise self._refused
        if self._queue is None:
            raise StoreError("the job queue is not started", where="jobs")
        self._queue.put(job_id)
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        with self._lock:
            if not self._config.embedded_worker or self._worker is not None:
                return
            self._start_worker()
            threading.Thread(target=self._watch, name="cityx-worker-watch", daemon=True).start()

    def _start_worker(self) -> None:
        self._worker = multiprocessing.get_context("spawn").Process(
            target=run_worker,
            args=(self._config, self._kinds, os.getpid()),
            name="cityx-worker",
        )
        self._worker.start()

    def _watch(self) -> None:
        # A worker that died (killed, out of memory) is replaced; the new one re-runs the
        # jobs it left running (cityx.server.jobs.recover).
        while not self._stopping.wait(_WATCH_S):
            with self._lock:
                worker = self._worker
                if self._stopping.is_set() or worker is None or worker.is_alive():
                    continue
                worker.join()
                _LOG.warning(
                    "the job worker died (exit code %s): starting another", worker.exitcode
                )
                self._start_worker()

    def close(self) -> None:
        """Stop the worker: its running jobs stop too, and run again at the next start."""
        self._stopping.set()
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None and worker.pid is not None:
            worker.terminate()  # huey's consumer: SIGTERM stops at once
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join(timeout=10)
        queue, self._queue = self._queue, None
        if queue is not None:
            queue.close()


__all__ = ["QUEUE_NAME", "JobQueue", "JobRunner", "job_queue", "run_worker"]
