"""The overseer's command forms on a live run's page: a command, a stop's reason afterwards.

Words as in :mod:`cityx.server.live`. Each form carries CSRF and once tokens, like every
console form, and calls :meth:`cityx.server.live.LiveRuns.command` (or
:meth:`~cityx.server.live.LiveRuns.annotate` for a reason given after a stop); a refused
form shows the live view again with its errors (:mod:`.runs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request, Response

from cityx.core.errors import InputError
from cityx.oversight.commands import Action
from cityx.store import LiveCommandRecord, LiveRunRecord

from ..identity import Principal
from ..live import LiveRuns
from ..live_api import LiveError
from . import session as s
from .base import form_checks, render, router
from .runs import ACTIONS, COMMAND, NEEDS_REASON, _hello, _live, _live_context, _run


def _on_live_run(
    request: Request, once: str, act: Callable[[LiveRuns], LiveCommandRecord]
) -> tuple[LiveCommandRecord | None, str | None]:
    """Do one command form's act on the live run: its record, or the message that refused it.

    A 403 or 404 is the page's own answer, not a form error: it is raised (the once token
    freed, as nothing was done); any other refusal is said beside the form.
    """
    try:
        return act(_live(request)), None
    except LiveError as exc:
        if exc.status in (403, 404):
            s.ONCE.release(once)
            raise HTTPException(exc.status, exc.message) from exc
        return None, exc.message
    except InputError as exc:
        return None, exc.message


async def _live_form_again(
    request: Request,
    who: Principal,
    run: LiveRunRecord,
    once: str,
    *,
    errors: Mapping[str, str],
    typed: Mapping[str, str] | None = None,
    asked_reason: str | None = None,
) -> Response:
    """The live view again (422) with a command form's errors; its once token is freed, since
    nothing was done, so the corrected form may be sent."""
    s.ONCE.release(once)
    hello = await _hello(_live(request), run.id)
    context = _live_context(
        request, who, run, hello, errors=errors, typed=typed, asked_reason=asked_reason
    )
    return render(request, "run_live.html.j2", context, status=422, who=who)


@router.post("/console/runs/{run_id}/commands")
async def send_command(
    run_id: str,
    request: Request,
    who: Annotated[Principal, Depends(COMMAND)],
    action: Annotated[str, Form()] = "",
    intersection: Annotated[str, Form()] = "*",
    phase: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    once: Annotated[str, Form()] = "",
) -> Response:
    first = form_checks(request, csrf, once)
    if first is not None:
        return s.see_other(first)
    run = _run(request, who, run_id)
    errors: dict[str, str] = {}
    chosen = ACTIONS.get(action)
    if chosen is None:
        errors["action"] = f"Choose one of {', '.join(ACTIONS)}."
    if chosen in NEEDS_REASON and not reason.strip():
        errors["reason"] = f"Say why you {action} (only a stop acts first and asks afterwards)."
    number: int | None = None
    if chosen is Action.PHASE:
        if intersection == "*":
            errors["intersection"] = "A phase is asked of one intersection, not all."
        try:
            number = int(phase)
        except ValueError:
            errors["phase"] = "Choose the green phase to ask for."
    record = None
    if not errors:
        record, refused = _on_live_run(
            request,
            once,
            lambda live: live.command(
                run_id,
                who.user,
                action,
                intersection=intersection or "*",
                phase=number,
                reason=reason.strip(),
            ),
        )
        if refused is not None:
            errors["form"] = refused
    if record is None:
        typed = {"action": action, "intersection": intersection, "phase": phase, "reason": reason}
        return await _live_form_again(request, who, run, once, errors=errors, typed=typed)
    location = f"/console/runs/{run_id}"
    if chosen is Action.STOP and not reason.strip():
        location += f"?reason_for={record.id}"
    location += "#commands"
    s.ONCE.finish(once, location)
    return s.see_other(location)


@router.post("/console/runs/{run_id}/commands/{command_id}/reason")
async def give_reason(
    run_id: str,
    command_id: str,
    request: Request,
    who: Annotated[Principal, Depends(COMMAND)],
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    once: Annotated[str, Form()] = "",
) -> Response:
    first = form_checks(request, csrf, once)
    if first is not None:
        return s.see_other(first)
    run = _run(request, who, run_id)
    errors: dict[str, str] = {}
    if not reason.strip():
        errors["note"] = "Say why you stopped (the decision log keeps it)."
    else:
        _, refused = _on_live_run(
            request,
            once,
            lambda live: live.annotate(run_id, command_id, reason.strip(), who.user),
        )
        if refused is not None:
            errors["note"] = refused
    if errors:
        return await _live_form_again(
            request, who, run, once, errors=errors, asked_reason=command_id
        )
    location = f"/console/runs/{run_id}#commands"
    s.ONCE.finish(once, location)
    return s.see_other(location)


__all__ = ["give_reason", "send_command"]
