"""Trials, reports and rulings: the list, one trial (gate, findings, ruling and the
regulator's ruling form), the report, the review queue, versions side by side, the policy
in force."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import Depends, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from cityx.core import InputError
from cityx.governance.policy import default_policy_path
from cityx.governance.report import render_html

from ..access import state
from ..identity import Principal
from ..policy import API
from ..routes import submissions as api_submissions
from . import session as s
from .base import (
    REPORT_CSP,
    Needs,
    form_checks,
    permits,
    render,
    router,
)

DECISIONS = (
    ("approve", "Approve"),
    ("approve-with-conditions", "Approve with conditions"),
    ("reject", "Reject"),
)


@router.get("/console/trials")
def trials(
    request: Request, who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials"))]
) -> Response:
    listed = api_submissions.list_trials(who, request, limit=200)["trials"]
    rulings = {t["id"]: state(request).store.ruling(t["id"]) for t in listed}
    return render(request, "trials.html.j2", {"trials": listed, "rulings": rulings}, who=who)


def _ruling(request: Request, who: Principal, trial_id: str) -> dict[str, Any] | None:
    if not permits(who, "GET", f"{API}/trials/{{trial_id}}/ruling"):
        return None
    try:
        return api_submissions.get_ruling(trial_id, who, request)
    except HTTPException as exc:
        if exc.status_code == 404:
            return None
        raise


def _trial_page(
    request: Request,
    who: Principal,
    trial_id: str,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    trial = api_submissions.get_trial(trial_id, who, request)
    results = trial.get("results") or {}
    gate = results.get("gate") if isinstance(results, dict) else None
    ruling = _ruling(request, who, trial_id)
    may_rule = (
        ruling is None
        and trial["status"] == "complete"
        and permits(who, "POST", f"{API}/trials/{{trial_id}}/ruling")
    )
    return render(
        request,
        "trial.html.j2",
        {
            "trial": trial,
            "gate": gate if isinstance(gate, dict) else None,
            "findings": trial.get("findings") or [],
            "ruling": ruling,
            "may_rule": may_rule,
            "decisions": DECISIONS,
            "errors": errors or {},
            "form": form or {},
            "once": s.new_once(),
        },
        status=status,
        who=who,
    )


@router.get("/console/trials/{trial_id}")
def trial(
    trial_id: str,
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials/{{trial_id}}"))],
) -> Response:
    return _trial_page(request, who, trial_id)


@router.get("/console/trials/{trial_id}/report")
def report(
    trial_id: str,
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials/{{trial_id}}"))],
) -> Response:
    trial = api_submissions.get_trial(trial_id, who, request)
    if not trial.get("results"):
        raise HTTPException(404, "This trial has no results yet, so no report.")
    return HTMLResponse(
        _report_html(trial["results"]), headers={"content-security-policy": REPORT_CSP}
    )


_REPORTS: OrderedDict[str, str] = OrderedDict()
_REPORTS_LOCK = threading.Lock()


def _report_html(results: dict[str, Any]) -> str:
    """The report of ``results``, cached by their digest: the report is a pure function of
    the results (same document, same bytes), and drawing its plots takes most of a second."""
    key = hashlib.sha256(json.dumps(results, sort_keys=True, default=str).encode()).hexdigest()
    with _REPORTS_LOCK:
        if key in _REPORTS:
            _REPORTS.move_to_end(key)
            return _REPORTS[key]
    html = render_html(results)
    with _REPORTS_LOCK:
        _REPORTS[key] = html
        while len(_REPORTS) > 32:
            _REPORTS.popitem(last=False)
    return html


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@router.post("/console/trials/{trial_id}/ruling")
def rule(
    trial_id: str,
    request: Request,
    who: Annotated[Principal, Depends(Needs("POST", f"{API}/trials/{{trial_id}}/ruling"))],
    decision: Annotated[str, Form()] = "",
    reasons: Annotated[str, Form()] = "",
    conditions: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    once: Annotated[str, Form()] = "",
) -> Response:
    first = form_checks(request, csrf, once)
    if first is not None:
        return s.see_other(first)
    form = {"decision": decision, "reasons": reasons, "conditions": conditions}
    errors: dict[str, str] = {}
    if decision not in {d for d, _ in DECISIONS}:
        errors["decision"] = "Choose approve, approve with conditions, or reject."
    if not _lines(reasons):
        errors["reasons"] = "Give at least one reason, one per line."
    if decision == "approve-with-conditions" and not _lines(conditions):
        errors["conditions"] = "List the conditions, one per line."
    if decision in {"approve", "reject"} and _lines(conditions):
        errors["conditions"] = "Conditions go with 'approve with conditions' only."
    if not errors:
        body = api_submissions.RulingIn(
            decision=decision, reasons=_lines(reasons), conditions=_lines(conditions)
        )
        try:
            api_submissions.post_ruling(trial_id, body, who, request)
        except HTTPException as exc:
            if exc.status_code != 409:
                raise
            errors["form"] = str(exc.detail)
        except InputError as exc:  # the ruling's own checks: beside the form
            errors["decision"] = exc.message
        except BaseException:
            s.ONCE.release(once)  # it did not act (the store refuses a second ruling anyway)
            raise
    location = f"/console/trials/{trial_id}"
    if errors:
        s.ONCE.release(once)
        return _trial_page(request, who, trial_id, errors=errors, form=form, status=422)
    s.ONCE.finish(once, location)
    return s.see_other(location)


@router.get("/console/queue")
def queue(
    request: Request,
    who: Annotated[Principal, Depends(Needs("POST", f"{API}/trials/{{trial_id}}/ruling"))],
) -> Response:
    """Complete trials with no ruling yet, oldest first: the regulator's review queue."""
    store = state(request).store
    listed = api_submissions.list_trials(who, request, limit=1000)["trials"]
    waiting = [t for t in listed if t["status"] == "complete" and store.ruling(t["id"]) is None]
    waiting.sort(key=lambda t: t["finished_at"] or "")
    return render(request, "queue.html.j2", {"trials": waiting}, who=who)


@router.get("/console/compare")
def compare(
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials/{{trial_id}}"))],
    system: str = "",
) -> Response:
    """The newest complete trial of each version of one system, side by side."""
    listed = api_submissions.list_trials(who, request, limit=1000)["trials"]
    systems = sorted({t["system"] for t in listed})
    if system and system not in systems:
        raise HTTPException(404, "no such system")
    newest: dict[str, dict[str, Any]] = {}
    for t in listed:  # newest first: keep the first per version
        if t["system"] == system and t["status"] == "complete":
            newest.setdefault(t["version"], t)
    columns = []
    for version, t in sorted(newest.items()):
        full = api_submissions.get_trial(t["id"], who, request)
        results = full.get("results") or {}
        gate = results.get("gate") if isinstance(results, dict) else None
        columns.append(
            {
                "version": version,
                "trial": full,
                "gate": gate if isinstance(gate, dict) else {},
                "severities": _severity_counts(full.get("findings") or []),
                "ruling": _ruling(request, who, t["id"]),
            }
        )
    return render(
        request,
        "compare.html.j2",
        {"systems": systems, "system": system, "columns": columns},
        who=who,
    )


SEVERITIES = ("critical", "high", "medium", "low", "info")


def _severity_counts(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        sev = str(f.get("severity", "info")).lower()
        counts[sev] = counts.get(sev, 0) + 1
    return counts


@router.get("/console/policy")
def policy(
    request: Request, who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials"))]
) -> Response:
    """The gate policy file in force, with its digest (trials record the digest they ran on)."""
    path = default_policy_path()
    data = path.read_bytes()
    return render(
        request,
        "policy.html.j2",
        {
            "name": path.name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "text": data.decode("utf-8"),
        },
        who=who,
    )
