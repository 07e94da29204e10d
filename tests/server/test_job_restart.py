"""A worker killed mid-trial (a real SIGKILL) loses no job: the next worker re-runs it,
and the job leaves exactly one complete trial; on SQLite and on PostgreSQL (where the
queue is huey's SqlStorage in the store's database).

The trial is of an entry point (run behind the walls) whose predict sleeps, so
that it is still in a check when the worker is killed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from cityx.server import Role, add_user
from cityx.server.app import create_app
from cityx.server.queue import run_worker
from cityx.server.walls import probe
from cityx.store import JobRecord, Store

from ..conftest import ENTRYPOINT, write_submission
from ..support.services import POSTGRES_URL
from .conftest import make_config, pack
from .test_jobs import ENTRY, POLICY


def until(store: Store, job_id: int, done: bool, s: float = 120) -> JobRecord:
    """The job once it is finished (``done``) or running a check (not ``done``)."""
    deadline = time.monotonic() + s
    while True:
        job = store.job(job_id)
        assert job is not None
        if done and job.finished:
            return job
        if not done and job.status == "running" and job.stage not in ("starting", "admitting"):
            return job
        assert not job.finished, job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def worker(config: object) -> BaseProcess:
    process = multiprocessing.get_context("spawn").Process(target=run_worker, args=(config,))
    process.start()
    return process


# PostgreSQL only: the SQLite queue's re-run is test_jobs.py's (a job left running is
# re-run once when the worker starts); a real SIGKILL once is what this file adds, and
# the suite's 20-minute budget does not hold it twice.
@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new PostgreSQL database (dropped afterwards)."""
    name = f"cityx_jobs_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_a_worker_killed_mid_trial_reruns_the_job_once(tmp_path: Path, store_url: str) -> None:
    if probe()[0] is None:
        pytest.skip("bubblewrap walls cannot be built here: entry points are refused")
    (tmp_path / "tiny.toml").write_text(POLICY)
    config = make_config(
        tmp_path, store=store_url, trial_policy=tmp_path / "tiny.toml", embedded_worker=False
    )
    code = ENTRYPOINT.format(body="time.sleep(0.3)").encode()
    folder = write_submission(
        tmp_path / "slow", code, name="model.py", fmt="entrypoint", entrypoint=ENTRY
    )
    with Store.open(config.store) as store:
        token = add_user(store, "v", organisation="v", role=Role.VENDOR, city="city").token
        auth = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(config, store)) as client:  # the web process alone
            sid = client.post(
                "/api/v1/submissions",
                files={"archive": ("s.tar.gz", pack(folder), "application/gzip")},
                headers=auth,
            ).json()["id"]
            answer = client.post(f"/api/v1/submissions/{sid}/trials", headers=auth)
            job_id = answer.json()["job"]

        first = worker(config)
        try:
            abandoned = until(store, job_id, done=False).trial_id
            assert abandoned is not None
            assert first.pid is not None
            os.kill(first.pid, signal.SIGKILL)
            first.join(10)
        finally:
            first.kill()
        assert store.job(job_id).status == "running"  # type: ignore[union-attr]

        second = worker(config)
        try:
            ended = until(store, job_id, done=True)
        finally:
            second.terminate()
            second.join(10)
        assert ended.status == "done", ended
        assert ended.trial_id not in (None, abandoned)
        # The killed attempt's job process died with its worker: its trial never completed.
        left = store.trial(abandoned)  # type: ignore[arg-type]
        assert left is None or (left.status == "incomplete" and left.results is None)
        assert not (config.data_dir / "trials" / str(abandoned)).exists()
        complete = [t.trial_id for t in store.trials() if t.status == "complete"]
        assert complete == [ended.trial_id]
        actions = [e.action for e in store.audit_entries() if e.subject == f"job {job_id}"]
        assert actions == ["job.queued", "job.started", "job.requeued", "job.started", "job.done"]
