"""Routes of live runs: start a world run under oversight, follow its signed state, command it.

A regulator or an overseer starts a run and names the overseers assigned to
it (an overseer who names none is assigned alone); regulators and auditors
read every run, an overseer the runs assigned to it or that it started
(another run is 404, like an id that does not exist). Only the overseers
assigned to a run command it: anyone else gets 403, an unassigned overseer
too (a run's id is no secret among the city's staff; its commands are).
Words as in :mod:`cityx.server.live`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from cityx.store import LiveRunRecord

from ..access import Caller, ServerState, _deny, state
from ..identity import Principal
from ..live import LiveRuns
from ..live_api import RunRequest, may_read, network_of, run_json
from ..policy import Role
from ._router import router


class RunIn(BaseModel):
    scenario: str = Field(max_length=64)
    seconds: int = Field(default=60, ge=1, le=86_400)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    controller: str | int = Field(default="max-pressure")
    pace: float | None = Field(default=None, gt=0, le=1000)
    overseers: list[str] = Field(default_factory=list, max_length=50)
    channel_timeout_s: float | None = Field(default=None, gt=0)


class CommandIn(BaseModel):
    action: str = Field(max_length=16)
    intersection: str = Field(default="*", max_length=200)
    phase: int | None = Field(default=None, ge=0, le=1000)
    reason: str = Field(default="", max_length=2000)
    pace: float | None = Field(default=None, ge=0, le=1000)  # a "pace" command's; 0: fast


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


def live_runs(st: ServerState) -> LiveRuns:
    if st.live is None:
        raise HTTPException(503, "live runs are not available")
    return st.live


def visible_run(st: ServerState, request: Request, who: Principal, run_id: str) -> LiveRunRecord:
    run = st.store.live_run(run_id)
    if run is None or not may_read(run, who.role, who.user):
        raise _deny(st, request, who.actor, 404, "no such run")
    return run


def assigned(st: ServerState, request: Request, who: Principal, run_id: str) -> LiveRunRecord:
    run = st.store.live_run(run_id)
    if run is None:
        raise _deny(st, request, who.actor, 404, "no such run")
    if who.user not in run.overseers:
        raise _deny(st, request, who.actor, 403, f"{who.user} is not assigned to this run")
    return run


@router.post("/runs", status_code=202, response_model=None)
def post_run(body: RunIn, who: Caller, request: Request) -> JSONResponse:
    """Start a live run: 202 with the run; follow it at /runs/{id}/state (server-sent events)."""
    st = state(request)
    overseers = tuple(body.overseers) or (
        (who.user,) if who.role is Role.OVERSEER else tuple(body.overseers)
    )
    run = live_runs(st).start(
        RunRequest(
            scenario=body.scenario,
            seconds=body.seconds,
            seed=body.seed,
            controller=body.controller,
            pace=body.pace,
            overseers=overseers,
            channel_timeout_s=body.channel_timeout_s,
        ),
        actor=who.actor,
        organisation=who.organisation,
    )
    return JSONResponse(
        run_json(run), status_code=202, headers={"Location": f"/api/v1/runs/{run.id}"}
    )


@router.get("/runs")
def list_runs(who: Caller, request: Request, limit: int = 100) -> dict[str, Any]:
    """The newest live runs the caller may see."""
    st = state(request)
    found = st.store.live_runs(limit=max(1, min(limit, 1000)))
    return {"runs": [run_json(r) for r in found if may_read(r, who.role, who.user)]}


@router.get("/runs/{run_id}")
def get_run(run_id: str, who: Caller, request: Request) -> dict[str, Any]:
    """A live run: status, result summary when it has ended, its decision log's path, and
    its intersections' signal programs (``network``: what a ``phase`` command may ask for)."""
    st = state(request)
    run = visible_run(st, request, who, run_id)
    return {**run_json(run), "network": network_of(run)}


@router.get("/runs/{run_id}/commands")
def get_commands(run_id: str, who: Caller, request: Request) -> dict[str, Any]:
    """The commands sent to a run, each with the state the run reported."""
    st = state(request)
    visible_run(st, request, who, run_id)
    return {"commands": [c.to_json() for c in live_runs(st).commands(run_id)]}


@router.get("/runs/{run_id}/state", response_model=None)
def run_state(run_id: str, who: Caller, request: Request) -> StreamingResponse:
    """Server-sent events: ``hello``, then each verified signed ``state`` message (the JWS
    ``token`` and its verified ``state``), ``command`` and ``note`` changes, ``ping`` while
    quiet, and ``end``. Each event's data carries ``received_at`` (the server's clock)."""
    st = state(request)
    visible_run(st, request, who, run_id)
    live = live_runs(st)

    async def stream() -> AsyncIterator[str]:
        async for event in live.subscribe(run_id, who.user):
            data = {**event.data, "received_at": event.received_at}
            yield f"event: {event.kind}\ndata: {json.dumps(data, allow_nan=False)}\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )


@router.post("/runs/{run_id}/commands", status_code=202, response_model=None)
def post_command(run_id: str, body: CommandIn, who: Caller, request: Request) -> JSONResponse:
    """Send an operator command, signed with the caller's operator key: 202 with its id and
    state (``sent``); its later states arrive on /state and at /commands."""
    st = state(request)
    assigned(st, request, who, run_id)
    record = live_runs(st).command(
        run_id,
        who.user,
        body.action,
        intersection=body.intersection,
        phase=body.phase,
        reason=body.reason,
        pace=body.pace,
    )
    return JSONResponse(record.to_json(), status_code=202)


@router.post("/runs/{run_id}/commands/{command_id}/reason", status_code=202)
def post_reason(
    run_id: str, command_id: str, body: ReasonIn, who: Caller, request: Request
) -> dict[str, Any]:
    """Give a command its reason afterwards (a stop acts at once; its reason follows)."""
    st = state(request)
    assigned(st, request, who, run_id)
    return live_runs(st).annotate(run_id, command_id, body.reason, who.user).to_json()
