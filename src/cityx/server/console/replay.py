"""A finished live run read back from its decision log, step by step, with its verification.

Words as in :mod:`cityx.server.live` and :mod:`cityx.oversight.timeline`:
``/console/runs/{id}/replay?t=S`` shows the run's state at ``S`` seconds (the map, the
AI's decisions, the commands so far) and links the steps before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response

from cityx.core.errors import InputError
from cityx.oversight.decisions import verify_decisions
from cityx.oversight.timeline import read_timeline, state_at

from ..access import state
from ..identity import Principal
from ..live_api import run_json
from .base import render, router
from .mapviews import view_from_snapshot
from .runs import READ, _map, _run, _state_context


@router.get("/console/runs/{run_id}/replay")
def replay_page(
    run_id: str,
    request: Request,
    who: Annotated[Principal, Depends(READ)],
    t: float | None = None,
) -> Response:
    run = _run(request, who, run_id)
    folder = Path(run.out_dir)
    try:
        timeline = read_timeline(folder)
    except InputError as exc:
        raise HTTPException(
            404, f"This run has no decision log to replay ({exc.message})."
        ) from exc
    except ValueError as exc:  # a line still being written: the log of a run going on
        raise HTTPException(
            409,
            "This run's decision log is still being written: replay it once the run has "
            f"ended ({exc}).",
        ) from exc
    times = timeline.times()
    at = max(0.0, min(t if t is not None else 0.0, timeline.end_s))
    earlier = [x for x in times if x < at - 1e-9]
    later = [x for x in times if x > at + 1e-9]
    view = view_from_snapshot(state_at(timeline, at))
    trusted = state(request).city_key().public_jwk()
    checked = verify_decisions(folder, trusted=trusted, run=None)
    m = _map(run)
    context = {
        "run": run_json(run),
        "at": at,
        "end": timeline.end_s,
        "previous": earlier[-1] if earlier else None,
        "next": later[0] if later else None,
        "events": timeline.events,
        "choices": timeline.choices,
        "verified": checked.to_json(),
        "commands": state_at(timeline, at)["commands"],
        **_state_context(m, view, title=f"Replay of run {run.id} at {at:g} s"),
    }
    return render(request, "run_replay.html.j2", context, who=who)


__all__ = ["replay_page"]
