"""The overseer's pages: live runs (the map, the AI's decision, alerts, commands) and replays.

Words as in :mod:`cityx.server.live` (live runs, commands, notes) and
:mod:`.netmap` (the map, views, queue levels). Pages:

- ``/console/runs``: the runs the caller may see, and (for those who may
  start one) a form to start a live run;
- ``/console/runs/{id}``: the *live view*. The server renders the newest
  verified state it holds, so reading works without JavaScript (the page
  reloads itself every :data:`NOSCRIPT_REFRESH_S`); with JavaScript the
  htmx SSE extension swaps in each new state from ``/console/runs/{id}/feed``
  (map, table, the AI's decision, alerts), the command list when a command
  changes state, and a *tick* every second saying how old the view is;
- ``/console/runs/{id}/replay?t=S``: a finished run read back from its
  decision log, step by step (:mod:`.replay`).

*Lag*: a state is *late* when more than :data:`LATE_S` passed between the
run signing it and the server sending it on; the feed is *silent* when the
browser has heard no tick for :data:`SILENT_S` (static/live.js). Either
shows a banner saying how old the view is.

Commands (:mod:`.commands`) are forms (CSRF and once tokens, like every console form) that call
:meth:`cityx.server.live.LiveRuns.command`, which signs them as the overseer
under the policy that authorises the page. Each asks for a reason, except
stop, which acts at once; its reason is asked for afterwards and sent as a
note (:meth:`~cityx.server.live.LiveRuns.annotate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Form, HTTPException, Request, Response
from fastapi.responses import StreamingResponse

from cityx.core.errors import CityxError, InputError
from cityx.oversight.commands import Action
from cityx.store import LiveRunRecord

from ..access import state
from ..identity import Principal
from ..live import LiveRuns
from ..live_api import LiveError, RunRequest, may_read, run_json
from ..policy import API, Role
from ..routes.runs import live_runs
from . import session as s
from .base import Needs, form_checks, permits, render, router, template
from .mapviews import StateView, view_from_snapshot
from .netmap import (
    NetworkMap,
    intersection_rows,
    net_of_run,
    net_of_scenario,
    read_map,
    render_svg,
)

LATE_S = 1.0
SILENT_S = 2.5
TICK_S = 1.0
_RANK = {"sent": 0, "accepted": 1, "refused": 2, "effective": 2}
MIN_FRAME_S = 0.2  # at most five state renderings a second, whatever the run's pace
NOSCRIPT_REFRESH_S = 5
SCENARIOS = ("cologne1", "cologne3", "ingolstadt1", "grid4x4")
# The signal commands of the page's buttons; run controls (pause, continue, step, pace)
# stay with the API (docs/server.md).
ACTIONS = {
    a.value: a for a in (Action.HOLD, Action.PHASE, Action.FIXED_TIME, Action.STOP, Action.RESUME)
}
NEEDS_REASON = frozenset({Action.HOLD, Action.PHASE, Action.FIXED_TIME, Action.RESUME})

READ = Needs("GET", f"{API}/runs/{{run_id}}")
COMMAND = Needs("POST", f"{API}/runs/{{run_id}}/commands")


def _live(request: Request) -> LiveRuns:
    return live_runs(state(request))


def _run(request: Request, who: Principal, run_id: str) -> LiveRunRecord:
    run = state(request).store.live_run(run_id)
    if run is None or not may_read(run, who.role, who.user):
        raise HTTPException(404, "No such run.")
    return run


def _map(run: LiveRunRecord) -> NetworkMap | None:
    """The run's own network copy once it exists, else the scenario's shipped one."""
    try:
        return read_map(net_of_run(Path(run.out_dir)))
    except Exception:  # absent, or still being copied (sumolib raises bare exceptions)
        pass
    try:
        net = net_of_scenario(run.scenario)
        return read_map(net) if net is not None else None
    except (CityxError, OSError):
        return None


def _may_command(who: Principal, run: LiveRunRecord) -> bool:
    return (
        permits(who, "POST", f"{API}/runs/{{run_id}}/commands")
        and who.user in run.overseers
        and not run.finished
    )


async def _hello(live: LiveRuns, run_id: str) -> Mapping[str, Any]:
    """The run's hello event: the run, its commands and the newest verified state."""
    events = live.subscribe(run_id)
    try:
        first = await events.__anext__()
    finally:
        close = getattr(events, "aclose", None)  # an async generator: leave the subscription
        if close is not None:
            await close()
    return first.data


def _state_context(m: NetworkMap | None, view: StateView | None, *, title: str) -> dict[str, Any]:
    return {
        "svg": render_svg(m, view, title=title) if m is not None else None,
        "rows": intersection_rows(m, view) if view is not None else [],
        "view": view,
    }


def _state_of(data: Mapping[str, Any] | None) -> tuple[StateView | None, float | None]:
    """The view of a state event's data, and when the run signed it (unix seconds)."""
    if not data or not isinstance(data.get("state"), Mapping):
        return None, None
    iat = data.get("iat")
    return view_from_snapshot(data["state"]), float(iat) if isinstance(iat, int | float) else None


# -- the list -------------------------------------------------------------------------


@router.get("/console/runs")
def runs_page(
    request: Request, who: Annotated[Principal, Depends(Needs("GET", f"{API}/runs"))]
) -> Response:
    found = [
        run_json(r)
        for r in state(request).store.live_runs(limit=200)
        if may_read(r, who.role, who.user)
    ]
    return render(
        request,
        "runs.html.j2",
        {
            "runs": found,
            "may_start": permits(who, "POST", f"{API}/runs"),
            "scenarios": SCENARIOS,
            "errors": {},
            "form": {"scenario": "cologne1", "seconds": 120, "pace": 1.0},
            "once": s.new_once(),
        },
        who=who,
    )


@router.post("/console/runs")
def start_run(
    request: Request,
    who: Annotated[Principal, Depends(Needs("POST", f"{API}/runs"))],
    scenario: Annotated[str, Form()] = "",
    seconds: Annotated[str, Form()] = "",
    pace: Annotated[str, Form()] = "",
    overseers: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    once: Annotated[str, Form()] = "",
) -> Response:
    first = form_checks(request, csrf, once)
    if first is not None:
        return s.see_other(first)
    errors: dict[str, str] = {}
    named = tuple(n for n in (x.strip() for x in overseers.split(",")) if n)
    if not named and who.role is Role.OVERSEER:
        named = (who.user,)  # an overseer who names none oversees alone
    if scenario not in SCENARIOS:
        errors["scenario"] = f"Choose one of {', '.join(SCENARIOS)}."
    try:
        secs = int(seconds)
        if not 1 <= secs <= 86_400:
            raise ValueError
    except ValueError:
        errors["seconds"] = "A whole number of simulated seconds, 1 to 86400."
        secs = 0
    try:
        speed = float(pace) if pace.strip() else None
        if speed is not None and not 0 < speed <= 1000:
            raise ValueError
    except ValueError:
        errors["pace"] = "Times real time: more than 0, at most 1000 (1 is real time)."
        speed = None
    run = None
    if not errors:
        try:
            run = _live(request).start(
                RunRequest(
                    scenario=scenario,
                    seconds=secs,
                    pace=speed,
                    overseers=named,
                ),
                actor=who.actor,
                organisation=who.organisation,
            )
        except LiveError as exc:
            errors["form"] = exc.message
        except InputError as exc:
            where = (
                exc.where if exc.where in ("scenario", "seconds", "pace", "overseers") else "form"
            )
            errors[where] = exc.message
    if run is None:
        s.ONCE.release(once)
        found = state(request).store.live_runs(limit=200)
        return render(
            request,
            "runs.html.j2",
            {
                "runs": [run_json(r) for r in found if may_read(r, who.role, who.user)],
                "may_start": True,
                "scenarios": SCENARIOS,
                "errors": errors,
                "form": {
                    "scenario": scenario,
                    "seconds": seconds,
                    "pace": pace,
                    "overseers": overseers,
                },
                "once": s.new_once(),
            },
            status=422,
            who=who,
        )
    location = f"/console/runs/{run.id}"
    s.ONCE.finish(once, location)
    return s.see_other(location)


# -- the live view --------------------------------------------------------------------


def _live_context(
    request: Request,
    who: Principal,
    run: LiveRunRecord,
    hello: Mapping[str, Any],
    *,
    errors: Mapping[str, str] | None = None,
    typed: Mapping[str, str] | None = None,
    asked_reason: str | None = None,
) -> dict[str, Any]:
    view, iat = _state_of(hello.get("last_state"))
    m = _map(run)
    commands = [c.to_json() for c in _live(request).commands(run.id)]
    mine = f"user:{who.user}"
    awaiting = [
        c
        for c in commands
        if c["action"] == Action.STOP.value
        and c["operator"] == mine
        and not (c.get("reason") or c.get("note"))
    ]
    return {
        "run": run_json(run),
        "age": None if iat is None else max(0.0, time.time() - iat),
        "late_s": LATE_S,
        "silent_s": SILENT_S,
        "refresh": NOSCRIPT_REFRESH_S if not run.finished else None,
        "may_command": _may_command(who, run),
        "intersections": [i.id for i in m.intersections] if m is not None else [],
        "greens": {i.id: i.greens for i in m.intersections} if m is not None else {},
        "commands": commands,
        "awaiting": awaiting if _may_command(who, run) else [],
        "errors": dict(errors or {}),
        "typed": dict(typed or {}),
        "asked_reason": asked_reason,
        "once": s.new_once(),
        "new_once": s.new_once,
        "signed_at": iat,
        "changed_at": None,
        **_state_context(m, view, title=f"Run {run.id}: {run.scenario}"),
    }


@router.get("/console/runs/{run_id}")
async def live_page(
    run_id: str,
    request: Request,
    who: Annotated[Principal, Depends(READ)],
    reason_for: str = "",
) -> Response:
    run = _run(request, who, run_id)
    hello = await _hello(_live(request), run_id)
    context = _live_context(request, who, run, hello, asked_reason=reason_for or None)
    return render(request, "run_live.html.j2", context, who=who)


def _frame(event: str, template_name: str, context: Mapping[str, Any]) -> str:
    """One SSE event: an HTML fragment, each line prefixed for the SSE framing."""
    html = template(template_name).render(**context)
    data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{data}\n"


@router.get("/console/runs/{run_id}/feed")
async def feed(run_id: str, request: Request, who: Annotated[Principal, Depends(READ)]) -> Response:
    """Server-sent events for htmx: ``state``, ``commands``, ``tick`` and ``end`` fragments."""
    run = _run(request, who, run_id)
    live = _live(request)
    m = _map(run)
    title = f"Run {run.id}: {run.scenario}"
    csrf = s.csrf_for(request)
    may = _may_command(who, run)

    # The commands as the stream tells them: a change reaches the stream before the store
    # (h/liverun writes it on its own thread), so the store alone could show a stale state.
    known: dict[str, dict[str, Any]] = {}

    def merge(found: Any) -> bool:
        """Take newer command records (states only move forward); True if any changed."""
        changed = False
        for c in found:
            c = dict(c)
            old = known.get(str(c.get("id")))
            if old is None or (
                _RANK.get(str(c.get("state")), 0) >= _RANK.get(str(old.get("state")), 0)
                and c != old
            ):
                known[str(c.get("id"))] = c
                changed = True
        return changed

    def unsettled() -> bool:
        return any(c.get("state") in ("sent", "accepted") for c in known.values())

    # When the run signed the state of each recent step (simulated s -> unix s): a command's
    # row says when the simulation made it effective, whichever frame brings the row.
    signed: dict[float, float] = {}

    def applied(c: Mapping[str, Any]) -> float | None:
        times = [
            r.get("effective_at_s")
            for r in dict(c.get("records") or {}).values()
            if isinstance(r, Mapping)
        ]
        known_times = [float(t) for t in times if isinstance(t, int | float)]
        return signed.get(max(known_times)) if known_times else None

    def commands(changed_at: float | None) -> dict[str, Any]:
        rows = sorted(known.values(), key=lambda c: str(c.get("sent_at", "")))
        return {
            "commands": [{**c, "applied_at": applied(c)} for c in rows],
            "may_command": may,
            "csrf": csrf,
            "new_once": s.new_once,
            "run": {"id": run_id},
            "who": who,
            "changed_at": changed_at,
        }

    async def stream() -> AsyncIterator[str]:
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        async def pump() -> None:
            # The subscription is read in its own task: a timeout below must never cancel it.
            try:
                # As this user: an assigned overseer watching keeps the run's channel alive.
                async for event in live.subscribe(run_id, who.user):
                    await inbox.put(event)
            finally:
                await inbox.put(None)

        task = asyncio.create_task(pump())
        pending: Mapping[str, Any] | None = None
        last_frame = last_tick = 0.0
        last_iat: float | None = None  # when the run signed the newest state shown
        heard_iat: float | None = None  # ... the newest state received (its commands' step)
        try:
            while True:
                wait = MIN_FRAME_S if pending is not None else TICK_S
                try:
                    event = await asyncio.wait_for(inbox.get(), wait)
                except TimeoutError:
                    event = False  # nothing came: a tick, or a throttled state now due
                if event is None:
                    return
                if event:
                    if event.kind == "hello":
                        # A command may have moved on between the page and this subscription.
                        merge(event.data.get("commands") or ())
                        yield _frame("commands", "run_commands.html.j2", commands(None))
                        pending = event.data.get("last_state") or pending
                    elif event.kind == "state":
                        pending = event.data
                        heard_iat = _state_of(pending)[1] or heard_iat
                        at = pending.get("state", {}).get("time_s")
                        if heard_iat is not None and isinstance(at, int | float):
                            signed[float(at)] = heard_iat
                            if len(signed) > 600:  # ten minutes of steps is plenty
                                del signed[next(iter(signed))]
                    elif event.kind == "command":
                        # A change the run reported comes right after the state of its step.
                        merge([event.data])
                        yield _frame("commands", "run_commands.html.j2", commands(heard_iat))
                    elif event.kind == "end":
                        ended = state(request).store.live_run(run_id)
                        shown_run = run_json(ended) if ended else {"id": run_id}
                        yield _frame("end", "run_end.html.j2", {"run": shown_run})
                        return
                now = time.time()
                shown = False
                if pending is not None and now - last_frame >= MIN_FRAME_S:
                    view, iat = _state_of(pending)
                    last_iat = iat if iat is not None else last_iat
                    pending, last_frame, shown = None, now, True
                    ctx = {**_state_context(m, view, title=title), "signed_at": iat}
                    yield _frame("state", "run_state.html.j2", ctx)
                if shown or now - last_tick >= TICK_S:
                    last_tick = now
                    # A change that reached the store before this subscription began, but
                    # after the hello read it: the store has caught up by the next tick.
                    if unsettled() and merge(c.to_json() for c in live.commands(run_id)):
                        yield _frame("commands", "run_commands.html.j2", commands(None))
                    age = None if last_iat is None else max(0.0, now - last_iat)
                    yield _frame("tick", "run_lag.html.j2", {"age": age, "late_s": LATE_S})
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


__all__ = ["feed", "live_page", "runs_page", "start_run"]
