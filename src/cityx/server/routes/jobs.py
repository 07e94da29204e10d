"""Routes about jobs: request a trial of a submission, follow it, cancel it.

A vendor requests trials of its own organisation's submissions and sees and
cancels its own organisation's jobs; a regulator does so for any; an auditor
reads jobs. Another tenant's job is 404, like an id that does not exist.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from cityx.core import Manifest, StoreError
from cityx.store import JobRecord

from ..access import Caller, ServerState, state, visible
from ..identity import Principal
from ..jobs import TRIAL, check_runnable, wall_s
from ..policy import may_see
from ._router import router
from .submissions import _visible_submission

EVENTS_POLL_S = 0.5
EVENTS_MAX_S = 3600.0  # a stream ends after an hour even if the job has not
HEARTBEAT_S = 15.0


class TrialIn(BaseModel):
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


def job_json(st: ServerState, job: JobRecord) -> dict[str, Any]:
    """A job as the API and the console show it."""
    result = None
    if job.status == "done" and job.trial_id is not None:
        trial = st.store.trial(job.trial_id)
        result = {
            "trial": job.trial_id,
            "decision": None if trial is None else trial.decision,
        }
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "stage": job.stage,
        "checks": {"done": job.checks_done, "total": job.checks_total},
        "wall_s": wall_s(job),
        "trial": job.trial_id if job.status == "done" else None,
        "result": result,
        "error": job.error,
        "submission": job.submission_id,
        "system": job.system_id,
        "organisation": job.organisation,
        "seed": job.params.get("seed"),
        "requested_by": job.requested_by,
        "cancel_requested": job.cancel_requested,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def request_trial(st: ServerState, request: Request, who: Principal, sid: int, seed: int) -> int:
    """Queue a trial job of submission ``sid`` for ``who``; the job's id (audited)."""
    sub, owner = _visible_submission(st, request, who, sid)
    pool = st.pool
    check_runnable(Manifest.model_validate(sub.manifest), pool.code_walls(), pool.why)
    job_id = st.store.add_job(
        kind=TRIAL,
        submission_id=sub.id,
        system_id=sub.system_id,
        organisation=owner,
        actor=who.actor,
        params={"seed": seed},
    )
    try:
        if st.jobs is None:
            raise StoreError("this server runs no jobs", where="jobs")
        st.jobs.submit(job_id)
    except Exception:
        # Not left queued: a worker starting later would run a job its requester was told
        # had failed (503), and a retry would run it twice.
        st.store.request_cancel(job_id, actor=who.actor)
        raise
    return job_id


def visible_job(st: ServerState, request: Request, who: Principal, job_id: int) -> JobRecord:
    job = st.store.job(job_id)
    if job is None:
        raise HTTPException(404, "no such job")
    visible(st, request, who, job.organisation, "job")
    return job


def cancel_job(st: ServerState, request: Request, who: Principal, job_id: int) -> JobRecord:
    visible_job(st, request, who, job_id)
    try:
        job = st.store.request_cancel(job_id, actor=who.actor)
    except StoreError as exc:
        if "already" in exc.message:
            raise HTTPException(409, exc.message) from None
        raise
    return job  # a running job's worker sees the request on the row and ends it


@router.post("/submissions/{submission_id}/trials", status_code=202, response_model=None)
def post_trial(
    submission_id: int, who: Caller, request: Request, body: TrialIn | None = None
) -> JSONResponse:
    """Request a trial of a submission: 202 with the job's id; follow it at /jobs/{id}."""
    st = state(request)
    job_id = request_trial(st, request, who, submission_id, (body or TrialIn()).seed)
    return JSONResponse(
        {"job": job_id}, status_code=202, headers={"Location": f"/api/v1/jobs/{job_id}"}
    )


@router.get("/jobs")
def list_jobs(who: Caller, request: Request, limit: int = 100) -> dict[str, Any]:
    """The newest jobs the caller may see."""
    st = state(request)
    found = st.store.jobs(limit=max(1, min(limit, 1000)))
    return {
        "jobs": [
            job_json(st, j) for j in found if may_see(who.role, who.organisation, j.organisation)
        ]
    }


@router.get("/jobs/{job_id}")
def get_job(job_id: int, who: Caller, request: Request) -> dict[str, Any]:
    """A job's status and progress; when done, the trial it made."""
    st = state(request)
    return job_json(st, visible_job(st, request, who, job_id))


@router.post("/jobs/{job_id}/cancel", status_code=202)
def post_cancel(job_id: int, who: Caller, request: Request) -> dict[str, Any]:
    """Cancel a queued or running job: it fails, and leaves no trial behind."""
    st = state(request)
    return job_json(st, cancel_job(st, request, who, job_id))


@router.get("/jobs/{job_id}/events", response_model=None)
def job_events(job_id: int, who: Caller, request: Request) -> StreamingResponse:
    """Server-sent events: a ``progress`` event (the job's JSON) whenever its status, stage
    or checks change, then ``end`` once it has ended."""
    st = state(request)
    visible_job(st, request, who, job_id)

    def stream() -> Iterator[str]:
        last: tuple[object, ...] | None = None
        quiet = 0.0
        deadline = time.monotonic() + EVENTS_MAX_S
        while time.monotonic() < deadline:
            job = st.store.job(job_id)
            if job is None:
                return
            seen = (job.status, job.stage, job.checks_done, job.checks_total)
            if seen != last:
                last, quiet = seen, 0.0
                yield f"event: progress\ndata: {json.dumps(job_json(st, job))}\n\n"
            elif quiet >= HEARTBEAT_S:
                quiet = 0.0
                yield ": still running\n\n"  # a comment keeps proxies from closing it
            if job.finished:
                yield "event: end\ndata: {}\n\n"
                return
            time.sleep(EVENTS_POLL_S)
            quiet += EVENTS_POLL_S

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )
