"""Routes of the governance report: the process checklist a vendor answers, and the signed
evidence package an auditor exports.

- ``GET /trials/{trial_id}/checklist``: every checklist item of the trial's
  system version, with the answer stored for it (its author and time) or
  the trial's own answer;
- ``PUT /trials/{trial_id}/checklist``: the vendor's answers, stored with
  the caller as author (:mod:`cityx.store._checklist`); an unknown item or a
  bad answer is a 422 naming the item, and nothing is stored;
- ``GET /trials/{trial_id}/evidence``: the trial's signed evidence package
  (:mod:`cityx.runs.evidence`) as one ``.tar.gz``, signed with the city's
  key, with the regulator's ruling and the stored answers; reading it
  changes nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cityx.core import CityxError
from cityx.governance.checklist import ANSWERS, load_checklist
from cityx.interop import trust_of_jwk
from cityx.runs.evidence import pack_evidence
from cityx.runs.report_inputs import stored_answers
from cityx.store import AnswerIn

from ..access import Caller, ServerState, state
from ._router import router
from .submissions import _visible_trial

_MAX_COMMENT = 2000


class AnswerItem(BaseModel):
    item: str = Field(max_length=100)
    answer: str = Field(max_length=8)
    comment: str = Field(default="", max_length=_MAX_COMMENT)


class ChecklistIn(BaseModel):
    answers: list[AnswerItem] = Field(max_length=500)


def checklist_rows(
    st: ServerState, trial_id: str, system: str, version: str
) -> list[dict[str, Any]]:
    """Every item with its current answer: stored (an attestation) or from the trial."""
    record = st.store.trial(trial_id)
    records = st.store.checklist_answers(system_id=system, version=version)
    by_item = {r.item_id: r for r in records}
    folder = Path(record.out_dir) if record and record.out_dir else None
    # A trial whose folder is gone still shows its stored answers, over blank items.
    found = folder is not None and (folder / "results.json").is_file()
    answers = stored_answers(folder if found else None, records)
    rows = []
    for a in answers:
        r = by_item.get(a.id)
        rows.append(
            {
                "id": a.id,
                "principle": a.principle.value,
                "question": a.question,
                "answer": a.answer,
                "source": a.source,
                "evidence": a.evidence,
                "comment": a.comment,
                "author": a.author or None,
                "answered_at": r.answered_at if r else None,
            }
        )
    return rows


@router.get("/trials/{trial_id}/checklist")
def get_checklist(trial_id: str, who: Caller, request: Request) -> dict[str, Any]:
    """Every checklist item of the trial's system version with its answer and author."""
    st = state(request)
    trial, _owner = _visible_trial(st, request, who, trial_id)
    return {
        "trial": trial_id,
        "system": trial.system_id,
        "version": trial.version,
        "items": checklist_rows(st, trial_id, trial.system_id, trial.version),
    }


def check_answers(given: list[AnswerItem]) -> list[AnswerIn]:
    """The answers to store; HTTP 422 naming the first bad item (nothing is stored)."""
    known = {i.id for i in load_checklist()}
    seen: set[str] = set()
    out = []
    for a in given:
        if a.item not in known:
            raise HTTPException(422, f"unknown checklist item {a.item!r}")
        if a.item in seen:
            raise HTTPException(422, f"item {a.item!r} appears twice")
        seen.add(a.item)
        if a.answer not in ANSWERS:
            raise HTTPException(
                422, f"answer {a.answer!r} for {a.item!r} is not one of yes, no, n/a or empty"
            )
        if a.answer == "no" and not a.comment.strip():
            raise HTTPException(422, f"item {a.item!r}: say why in a comment when the answer is no")
        out.append(AnswerIn(a.item, a.answer, a.comment.strip()))
    return out


@router.put("/trials/{trial_id}/checklist")
def put_checklist(
    trial_id: str, body: ChecklistIn, who: Caller, request: Request
) -> dict[str, Any]:
    """Store the caller's answers for the trial's system version, the caller as author."""
    st = state(request)
    trial, _owner = _visible_trial(st, request, who, trial_id)
    answers = check_answers(body.answers)
    recorded = st.store.record_answers(
        system_id=trial.system_id,
        version=trial.version,
        answers=answers,
        author=who.user,
        organisation=who.organisation,
        actor=who.actor,
    )
    return {
        "trial": trial_id,
        "system": trial.system_id,
        "version": trial.version,
        "recorded": [
            {
                "item": r.item_id,
                "answer": r.answer,
                "author": r.author,
                "answered_at": r.answered_at,
            }
            for r in recorded
        ],
    }


def evidence_archive(st: ServerState, trial_id: str, folder: str, *, pdf: bool) -> bytes:
    """The trial's signed evidence package as ``.tar.gz`` bytes (blocking: PDF, hashing)."""
    path = Path(folder) if folder else None
    if path is None or not (path / "results.json").is_file():
        raise HTTPException(409, "the trial's folder is no longer on the server")
    key = st.city_key()
    with tempfile.TemporaryDirectory(prefix="cityx-evidence-") as tmp:
        out = Path(tmp) / f"evidence-{trial_id}.tar.gz"
        try:
            pack_evidence(
                path,
                key,
                out,
                archive=True,
                pdf=pdf,
                trust=trust_of_jwk(key.public_jwk()),
                store=st.store,
                audit_head=st.store.head(),
            )
        except CityxError as exc:
            raise HTTPException(409, f"cannot pack the evidence: {exc}") from exc
        return out.read_bytes()


@router.get("/trials/{trial_id}/evidence")
async def get_evidence(trial_id: str, who: Caller, request: Request, pdf: bool = True) -> Response:
    """The trial's evidence package, signed with the city's key, as one ``.tar.gz``."""
    st = state(request)
    trial, _owner = _visible_trial(st, request, who, trial_id)
    if trial.status != "complete":
        raise HTTPException(409, "the trial is not complete")
    data = await run_in_threadpool(evidence_archive, st, trial_id, trial.out_dir, pdf=pdf)
    return Response(
        data,
        media_type="application/gzip",
        headers={"content-disposition": f'attachment; filename="evidence-{trial_id}.tar.gz"'},
    )


__all__ = ["check_answers", "checklist_rows", "evidence_archive"]
