"""The auditor's (and the regulator's) export of a trial's signed evidence package.

A GET that changes nothing: the package is packed on request from the
trial's folder, signed with the city's key, with the regulator's ruling and
the checklist answers the store holds (:mod:`cityx.runs.evidence`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from ..access import state
from ..identity import Principal
from ..policy import API
from ..routes import governance as api_governance
from ..routes import submissions as api_submissions
from .base import Needs, router


@router.get("/console/trials/{trial_id}/evidence")
async def evidence(
    trial_id: str,
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials/{{trial_id}}/evidence"))],
    pdf: bool = True,
) -> Response:
    trial = await run_in_threadpool(api_submissions.get_trial, trial_id, who, request)
    if trial["status"] != "complete":
        raise HTTPException(409, "The trial is not complete: there is no evidence to export yet.")
    record = state(request).store.trial(trial_id)
    folder = record.out_dir if record else ""
    data = await run_in_threadpool(
        api_governance.evidence_archive, state(request), trial_id, folder, pdf=pdf
    )
    return Response(
        data,
        media_type="application/gzip",
        headers={"content-disposition": f'attachment; filename="evidence-{trial_id}.tar.gz"'},
    )
