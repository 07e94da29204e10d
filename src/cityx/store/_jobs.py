"""Jobs: work the server queued (a trial of an uploaded submission), as rows in the store.

Words:

- a *job* is one requested piece of work; its *status* goes ``queued`` ->
  ``running`` -> ``done`` or ``failed`` and never back;
- its *progress* is the *stage* (what it is doing: ``queued``, ``admitting``,
  a check's id, ``writing``), the checks done of the checks planned, and the
  id of the trial it runs (fixed when the job starts, so the trial's side
  effects are keyed by the job);
- a *cancel request* is recorded on the row (who asked); the runner ends the
  job's process and fails the job;
- a job found ``running`` when a worker starts was *interrupted*: no process
  runs it any more, so it is *requeued* (``running`` -> ``queued``, its
  unfinished trial left ``incomplete``) and runs again under a new trial id;
  the queue itself (:mod:`cityx.server.queue`) is rebuilt from these rows.

Requests, starts, ends and cancels are audited; progress updates are not
(they are not changes of anyone's data, and there is one per check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cityx.core import StoreError

from ._base import StoreBase, _now
from .models import JobRow

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
_TABLE = JobRow.__table__


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored."""

    id: int
    kind: str
    submission_id: int
    system_id: str
    organisation: str
    requested_by: str
    params: Mapping[str, Any]
    status: str
    stage: str
    checks_done: int
    checks_total: int
    trial_id: str | None
    error: str | None
    cancel_requested: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)


class JobRows(StoreBase):
    """The jobs table; every change of status with its audit entry."""

    def add_job(
        self,
        *,
        kind: str,
        submission_id: int,
        system_id: str,
        organisation: str,
        actor: str,
        params: Mapping[str, Any],
    ) -> int:
        """Queue a job and return its id (``job.queued`` audit entry)."""
        with self._write() as conn:
            job_id = conn.execute(
                sa.insert(JobRow)
                .values(
                    kind=kind,
                    submission_id=submission_id,
                    system_id=system_id,
                    organisation=organisation,
                    requested_by=actor,
                    params=dict(params),
                    status=QUEUED,
                    stage=QUEUED,
                    checks_done=0,
                    checks_total=0,
                    created_at=_now(),
                )
                .returning(JobRow.id)
            ).scalar_one()
            self._append(
                conn,
                actor=actor,
                action="job.queued",
                subject=f"job {job_id}",
                payload={
                    "kind": kind,
                    "submission": submission_id,
                    "system_id": system_id,
                    "params": dict(params),
                },
            )
        return int(job_id)

    def job(self, job_id: int) -> JobRecord | None:
        found = self._jobs(JobRow.id == job_id, limit=1)
        return found[0] if found else None

    def jobs(self, *, limit: int = 100, submission_id: int | None = None) -> list[JobRecord]:
        """The newest jobs (of one submission when given)."""
        where = sa.true() if submission_id is None else JobRow.submission_id == submission_id
        return self._jobs(where, limit=limit)

    def _jobs(self, where: sa.ColumnElement[bool], *, limit: int) -> list[JobRecord]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(_TABLE).where(where).order_by(JobRow.id.desc()).limit(limit)
            )
            return [_record(r) for r in rows]

    def claim_job(
        self, *, trial_id: str, actor: str, job_id: int | None = None
    ) -> JobRecord | None:
        """Mark job ``job_id`` (default: the oldest queued one) running with ``trial_id``;
        None if it is not queued. One claim wins: a second one of the same job finds it
        running, so a job queued twice still runs once."""
        queued = JobRow.status == QUEUED
        pick = queued if job_id is None else sa.and_(queued, JobRow.id == job_id)
        # A read first: the runner asks often, and a write queues behind every writer.
        with self._transaction(write=False) as conn:
            if conn.execute(sa.select(JobRow.id).where(pick).limit(1)).first() is None:
                return None
        with self._write() as conn:
            row = conn.execute(
                sa.select(JobRow.id).where(pick).order_by(JobRow.id).limit(1)
            ).first()
            if row is None:
                return None
            claimed = conn.execute(
                sa.update(JobRow)
                .where(JobRow.id == row.id, queued)
                .values(status=RUNNING, stage="starting", trial_id=trial_id, started_at=_now())
            ).rowcount
            if not claimed:  # PostgreSQL: another claim committed between the two statements
                return None
            self._append(
                conn,
                actor=actor,
                action="job.started",
                subject=f"job {row.id}",
                payload={"trial_id": trial_id},
            )
        return self.job(int(row.id))

    def job_progress(self, job_id: int, *, stage: str, done: int, total: int) -> None:
        """Record how far a running job got (not audited: see the module docstring)."""
        with self._write() as conn:
            conn.execute(
                sa.update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == RUNNING)
                .values(stage=stage[:100], checks_done=done, checks_total=total)
            )

    def request_cancel(self, job_id: int, *, actor: str) -> JobRecord:
        """Ask for a job to end: a queued one fails at once, a running one when its
        runner ends its process. Cancelling a finished job is an error."""
        with self._write() as conn:
            row = conn.execute(sa.select(_TABLE).where(JobRow.id == job_id)).first()
            if row is None:
                raise StoreError(f"no job {job_id}", where=self.display_url)
            if row.status in (DONE, FAILED):
                raise StoreError(f"job {job_id} is already {row.status}", where=self.display_url)
            values: dict[str, Any] = {"cancel_requested": actor}
            if row.status == QUEUED:
                values |= {
                    "status": FAILED,
                    "stage": "cancelled",
                    "error": f"cancelled by {actor}",
                    "finished_at": _now(),
                }
            conn.execute(sa.update(JobRow).where(JobRow.id == job_id).values(**values))
            self._append(
                conn,
                actor=actor,
                action="job.cancel",
                subject=f"job {job_id}",
                payload={"status": row.status},
            )
        found = self.job(job_id)
        if found is None:  # it was there inside the transaction: someone deleted it since
            raise StoreError(f"no job {job_id}", where=self.display_url)
        return found

    def finish_job(self, job_id: int, *, ok: bool, error: str | None, actor: str) -> bool:
        """End a running job (done, or failed with the one-line ``error``); False if it had
        ended already (the first ending wins)."""
        with self._write() as conn:
            ended = conn.execute(
                sa.update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.in_((QUEUED, RUNNING)))
                .values(
                    status=DONE if ok else FAILED,
                    stage="done" if ok else "failed",
                    error=None if ok else (error or "failed").splitlines()[0][:500],
                    finished_at=_now(),
                )
            ).rowcount
            if not ended:
                return False
            self._append(
                conn,
                actor=actor,
                action="job.done" if ok else "job.failed",
                subject=f"job {job_id}",
                payload={} if ok else {"error": (error or "failed").splitlines()[0][:500]},
            )
        return True

    def job_ids(self, status: str) -> list[int]:
        """The ids of the jobs in ``status``, oldest first."""
        with self._transaction(write=False) as conn:
            found = conn.execute(
                sa.select(JobRow.id).where(JobRow.status == status).order_by(JobRow.id)
            ).scalars()
            return [int(i) for i in found]

    def requeue_job(self, job_id: int, *, actor: str, reason: str) -> bool:
        """Put a running job whose process is gone back in the queue (``job.requeued``);
        False if it was not running. Its unfinished trial stays ``incomplete``."""
        with self._write() as conn:
            row = conn.execute(sa.select(JobRow.trial_id).where(JobRow.id == job_id)).first()
            moved = conn.execute(
                sa.update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == RUNNING)
                .values(
                    status=QUEUED,
                    stage=QUEUED,
                    checks_done=0,
                    checks_total=0,
                    trial_id=None,
                    started_at=None,
                )
            ).rowcount
            if not moved or row is None:
                return False
            self._append(
                conn,
                actor=actor,
                action="job.requeued",
                subject=f"job {job_id}",
                payload={"reason": reason, "abandoned_trial": row.trial_id},
            )
        return True


def _record(row: sa.Row[Any]) -> JobRecord:
    return JobRecord(
        id=row.id,
        kind=row.kind,
        submission_id=row.submission_id,
        system_id=row.system_id,
        organisation=row.organisation,
        requested_by=row.requested_by,
        params=row.params,
        status=row.status,
        stage=row.stage,
        checks_done=row.checks_done,
        checks_total=row.checks_total,
        trial_id=row.trial_id,
        error=row.error,
        cancel_requested=row.cancel_requested,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


__all__ = ["DONE", "FAILED", "QUEUED", "RUNNING", "JobRecord", "JobRows"]
