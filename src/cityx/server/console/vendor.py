"""The vendor's pages: submissions (list, upload with problems by file and field, one
submission) and the process checklist of a trial, answered and stored with its author."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cityx.core import InputError, Principle
from cityx.governance import checklist

from ..access import state
from ..identity import Principal
from ..policy import API
from ..routes import governance as api_governance
from ..routes import jobs as api_jobs
from ..routes import submissions as api_submissions
from . import session as s
from .base import (
    Needs,
    form_checks,
    permits,
    render,
    router,
)
from .jobs import submission_jobs


def _problem_rows(problems: list[dict[str, str]]) -> list[dict[str, str]]:
    """Each problem with its file and field apart: ``where`` reads ``file: field``."""
    rows = []
    for p in problems:
        where = p.get("where", "")
        file, sep, field = where.partition(":")
        rows.append(
            {
                "file": file.strip() if sep else where,
                "field": field.strip() if sep else "",
                "message": p.get("message", ""),
                "level": p.get("level", "error"),
            }
        )
    return rows


def _submissions_page(
    request: Request, who: Principal, *, problems: list[dict[str, str]], status: int = 200
) -> Response:
    listed = api_submissions.list_submissions(who, request)["submissions"]
    return render(
        request,
        "submissions.html.j2",
        {
            "submissions": listed,
            "may_upload": permits(who, "POST", f"{API}/submissions"),
            "problems": _problem_rows(problems),
            "once": s.new_once(),
        },
        status=status,
        who=who,
    )


@router.get("/console/submissions")
def submissions(
    request: Request, who: Annotated[Principal, Depends(Needs("GET", f"{API}/submissions"))]
) -> Response:
    return _submissions_page(request, who, problems=[])


@router.post("/console/submissions")
def upload(
    request: Request,
    who: Annotated[Principal, Depends(Needs("POST", f"{API}/submissions"))],
    archive: Annotated[UploadFile | None, File()] = None,
    csrf: Annotated[str, Form()] = "",
    once: Annotated[str, Form()] = "",
) -> Response:
    first = form_checks(request, csrf, once)
    if first is not None:
        return s.see_other(first)
    if archive is None or not archive.filename:
        s.ONCE.release(once)
        problem = {"where": "archive", "message": "Choose a .tar.gz or .zip file to upload."}
        return _submissions_page(request, who, problems=[problem], status=422)
    try:
        answer = api_submissions.upload(who, request, archive)
    except BaseException:
        s.ONCE.release(once)  # it did not act: the same form may be sent again
        raise
    if isinstance(answer, JSONResponse):
        s.ONCE.release(once)
        problems = json.loads(bytes(answer.body))["problems"]
        return _submissions_page(request, who, problems=problems, status=422)
    location = f"/console/submissions/{answer['id']}"
    s.ONCE.finish(once, location)
    return s.see_other(location)


@router.get("/console/submissions/{submission_id}")
def submission(
    submission_id: int,
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/submissions/{{submission_id}}"))],
) -> Response:
    return submission_page(request, who, submission_id)


def submission_page(
    request: Request,
    who: Principal,
    submission_id: int,
    *,
    trial_error: str | None = None,
    seed: str = "0",
    status: int = 200,
) -> Response:
    """One submission: facts, versions, trials, its trial jobs and the trial request form."""
    sub = api_submissions.get_submission(submission_id, who, request)
    trials = []
    if permits(who, "GET", f"{API}/trials"):
        trials = [
            t
            for t in api_submissions.list_trials(who, request, limit=1000)["trials"]
            if t["system"] == sub["system"]
        ]
    return render(
        request,
        "submission.html.j2",
        {
            "sub": sub,
            "trials": trials,
            "jobs": submission_jobs(request, who, submission_id),
            "may_request": permits(who, "POST", f"{API}/submissions/{{submission_id}}/trials"),
            "trial_error": trial_error,
            "seed": seed,
            "once": s.new_once(),
        },
        status=status,
        who=who,
    )


@router.post("/console/submissions/{submission_id}/trials")
def request_trial(
    submission_id: int,
    request: Request,
    who: Annotated[
        Principal, Depends(Needs("POST", f"{API}/submissions/{{submission_id}}/trials"))
    ],
    seed: Annotated[str, Form()] = "0",
    csrf: Annotated[str, Form()] = "",
    once: Annotated[str, Form()] = "",
) -> Response:
    first = form_checks(request, csrf, once)
    if first is not None:
        return s.see_other(first)
    error = None
    if not seed.strip().isdigit() or int(seed) > 2**32 - 1:
        error = "The seed is a whole number from 0 to 4294967295."
    else:
        try:
            job_id = api_jobs.request_trial(state(request), request, who, submission_id, int(seed))
        except InputError as exc:  # a submission the server will not run: say why
            error = exc.message
        except BaseException:
            s.ONCE.release(once)  # it did not act: the same form may be sent again
            raise
    if error is not None:
        s.ONCE.release(once)
        return submission_page(
            request, who, submission_id, trial_error=error, seed=seed, status=422
        )
    location = f"/console/jobs/{job_id}"
    s.ONCE.finish(once, location)
    return s.see_other(location)


def _checklist_rows(request: Request, who: Principal, trial_id: str) -> dict[str, Any]:
    """The trial and every checklist item with its answer: stored (with author and time) or
    the trial's own (through the API's route function, which checks tenancy)."""
    return api_governance.get_checklist(trial_id, who, request)


def _checklist_page(
    request: Request,
    who: Principal,
    trial_id: str,
    *,
    given: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    saved: int | None = None,
) -> Response:
    trial = api_submissions.get_trial(trial_id, who, request)
    listed = _checklist_rows(request, who, trial_id)
    answers = [_as_answer(row) for row in listed["items"]]
    return render(
        request,
        "checklist.html.j2",
        {
            "trial": trial,
            "rows": listed["items"],
            "summary": checklist.principle_summary(answers),
            "given": given or {},
            "errors": errors or {},
            "choices": checklist.ANSWERS,
            "may_answer": permits(who, "PUT", f"{API}/trials/{{trial_id}}/checklist"),
            "saved": saved,
        },
        status=status,
        who=who,
    )


def _as_answer(row: dict[str, Any]) -> checklist.Answer:
    return checklist.Answer(
        row["id"],
        Principle(row["principle"]),
        row["question"],
        row["answer"],
        row["source"],
        row["evidence"],
        row["comment"],
        row["author"] or "",
    )


@router.get("/console/trials/{trial_id}/checklist")
def checklist_page(
    trial_id: str,
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials/{{trial_id}}/checklist"))],
    saved: int | None = None,
) -> Response:
    return _checklist_page(request, who, trial_id, saved=saved)


@router.get("/console/trials/{trial_id}/checklist.json")
def checklist_json(
    trial_id: str,
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials/{{trial_id}}/checklist"))],
) -> Response:
    """The current answers as the JSON file ``cityx report render --checklist`` reads."""
    answers = [_as_answer(row) for row in _checklist_rows(request, who, trial_id)["items"]]
    with tempfile.TemporaryDirectory(prefix="cityx-checklist-") as tmp:
        data = checklist.write_answers(answers, Path(tmp) / "checklist.json").read_bytes()
    return Response(
        data,
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="checklist-{trial_id}.json"'},
    )


@router.post("/console/trials/{trial_id}/checklist")
async def checklist_answers(
    trial_id: str,
    request: Request,
    who: Annotated[Principal, Depends(Needs("PUT", f"{API}/trials/{{trial_id}}/checklist"))],
) -> Response:
    """Store the vendor's answers, the vendor as their author. Submitting the same answers
    again stores nothing new (the store keeps only changes), so a double submit acts once."""
    form = await request.form()
    given = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    if not s.csrf_ok(request, given.get("csrf")):
        raise HTTPException(403, "This form is stale or did not come from this site: reload it.")
    # The store and the report code block: off the event loop, as sync routes are.
    return await run_in_threadpool(_checklist_store, request, who, trial_id, given)


def _checklist_store(
    request: Request, who: Principal, trial_id: str, given: dict[str, str]
) -> Response:
    rows = _checklist_rows(request, who, trial_id)["items"]
    errors = {}
    out = []
    for row in rows:
        if row["source"] == "trial":
            continue  # answered from the trial's own evidence, not the vendor's to change
        name, cname = f"answer-{row['id']}", f"comment-{row['id']}"
        if name not in given:
            continue
        value = given.get(name, "")
        comment = given.get(cname, "")[:2000]
        if value not in checklist.ANSWERS:
            errors[name] = "Choose yes, no, n/a or leave it open."
        elif value == "no" and not comment.strip():
            errors[cname] = "Say why in a comment when the answer is no."
        out.append(api_governance.AnswerItem(item=row["id"], answer=value, comment=comment))
    if errors:
        return _checklist_page(request, who, trial_id, given=given, errors=errors, status=422)
    done = api_governance.put_checklist(
        trial_id, api_governance.ChecklistIn(answers=out), who, request
    )
    return s.see_other(f"/console/trials/{trial_id}/checklist?saved={len(done['recorded'])}")
