"""Jobs in the console: the job page (the "Request a trial" form is in :mod:`.vendor`).

The job page shows the job's progress (stage, checks done of planned, wall
time) and, once done, a link to its trial. With JavaScript, htmx polls the
progress fragment every two seconds and stops once the job has ended;
without it, reloading the page shows the same progress.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request, Response

from ..access import state
from ..identity import Principal
from ..policy import API
from ..routes import jobs as api_jobs
from . import session as s
from .base import Needs, form_checks, permits, render, router

POLL = "every 2s"


def submission_jobs(
    request: Request, who: Principal, submission_id: int
) -> list[dict[str, object]]:
    """The jobs of one submission the caller may read (newest first)."""
    if not permits(who, "GET", f"{API}/jobs"):
        return []
    st = state(request)
    return [api_jobs.job_json(st, j) for j in st.store.jobs(submission_id=submission_id)]


def _job(request: Request, who: Principal, job_id: int) -> dict[str, object]:
    st = state(request)
    return api_jobs.job_json(st, api_jobs.visible_job(st, request, who, job_id))


@router.get("/console/jobs/{job_id}")
def job_page(
    job_id: int,
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/jobs/{{job_id}}"))],
) -> Response:
    job = _job(request, who, job_id)
    return render(
        request,
        "job.html.j2",
        {
            "job": job,
            "poll": POLL,
            "may_cancel": permits(who, "POST", f"{API}/jobs/{{job_id}}/cancel"),
            "once": s.new_once(),
        },
        who=who,
    )


@router.get("/console/jobs/{job_id}/progress")
def job_progress(
    job_id: int,
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/jobs/{{job_id}}"))],
) -> Response:
    """The progress fragment htmx swaps in (a whole page has the same block)."""
    return render(
        request, "job_progress.html.j2", {"job": _job(request, who, job_id), "poll": POLL}, who=who
    )


@router.post("/console/jobs/{job_id}/cancel")
def cancel(
    job_id: int,
    request: Request,
    who: Annotated[Principal, Depends(Needs("POST", f"{API}/jobs/{{job_id}}/cancel"))],
    csrf: Annotated[str, Form()] = "",
    once: Annotated[str, Form()] = "",
) -> Response:
    first = form_checks(request, csrf, once)
    if first is not None:
        return s.see_other(first)
    location = f"/console/jobs/{job_id}"
    try:
        api_jobs.cancel_job(state(request), request, who, job_id)
    except HTTPException as exc:
        if exc.status_code != 409:  # already ended: show the job as it is
            s.ONCE.release(once)
            raise
    s.ONCE.finish(once, location)
    return s.see_other(location)


__all__ = ["cancel", "job_page", "job_progress", "submission_jobs"]
