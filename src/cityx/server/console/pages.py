"""The console's pages: server-rendered HTML over the API's own route functions.

Every page names the API route whose policy rule it needs (:class:`Needs`);
the rule comes from :func:`cityx.server.policy.rule_for`, so the console has
no authorization table of its own. Objects are read through the API's route
functions (:mod:`cityx.server.routes`), which apply tenancy: another tenant's
submission or trial is a 404 here exactly as it is there.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from cityx.core import InputError
from cityx.governance import checklist
from cityx.governance.policy import default_policy_path
from cityx.governance.report import render_html

from ..access import state
from ..identity import Principal
from ..policy import API, ROLE_PERMISSIONS, Role, rule_for
from ..routes import identity as api_identity
from ..routes import submissions as api_submissions
from . import session as s

# Scripts and styles come from this site alone; nothing inline, nothing from a CDN.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# The trial report is one self-contained file: inline CSS and inline SVG, no script.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
STATIC = {
    "console.css": "text/css",
    "htmx.min.js": "text/javascript",
    "sse.min.js": "text/javascript",
}
DECISIONS = (
    ("approve", "Approve"),
    ("approve-with-conditions", "Approve with conditions"),
    ("reject", "Reject"),
)

_ENV = Environment(
    loader=PackageLoader("cityx.server.console", "templates"),
    autoescape=select_autoescape(("html", "j2")),
    trim_blocks=True,
    lstrip_blocks=True,
)


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


class HtmlRoute(APIRoute):
    """A page route: refusals and missing objects answer as HTML pages, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except _Redirect as exc:
                return s.see_other(exc.location)
            except HTTPException as exc:
                return render(
                    request,
                    "error.html.j2",
                    {"status": exc.status_code, "detail": exc.detail},
                    status=exc.status_code,
                )
            except RequestValidationError as exc:
                # A malformed id or query in the address: say which, as a page.
                where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
                return render(
                    request,
                    "error.html.j2",
                    {"status": 422, "detail": f"This address has a malformed part: {where}."},
                    status=422,
                )

        return handler


router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    who: Principal | None = None,
) -> HTMLResponse:
    who = who if who is not None else s.current(request)
    html = _ENV.get_template(template).render(
        who=who,
        csrf=s.csrf_for(request),
        path=request.url.path,
        nav=_nav(who),
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={"content-security-policy": PAGE_CSP})


def _nav(who: Principal | None) -> list[tuple[str, str]]:
    if who is None:
        return []
    links = [("/console", "Home")]
    for href, label, method, api_path in (
        ("/console/submissions", "Submissions", "GET", f"{API}/submissions"),
        ("/console/trials", "Trials", "GET", f"{API}/trials"),
        ("/console/queue", "Review queue", "POST", f"{API}/trials/{{trial_id}}/ruling"),
        ("/console/alerts", "Budgets and alerts", "GET", f"{API}/alerts"),
        ("/console/audit", "Audit log", "GET", f"{API}/audit/entries"),
        ("/console/users", "Users", "GET", f"{API}/users"),
    ):
        if rule_for(method, api_path) in who.permissions:
            links.append((href, label))
    if rule_for("GET", f"{API}/trials") in who.permissions:
        links.append(("/console/policy", "Policy in force"))
    return links


@dataclass(frozen=True)
class Needs:
    """The dependency of a page: a live console session allowed ``method api_path``."""

    method: str
    api_path: str

    def __call__(self, request: Request) -> Principal:
        rule = rule_for(self.method, self.api_path)
        who = s.current(request)
        if who is None:
            raise _Redirect(s.login_url(request))
        if rule is None or rule not in who.permissions:
            needed = "a policy rule" if rule is None else f"the {rule.value} permission"
            state(request).store.append_audit(
                actor=who.actor,
                action="access.denied",
                subject=request.url.path,
                payload={"method": request.method, "status": 403, "reason": f"needs {needed}"},
            )
            raise HTTPException(403, f"Your role ({who.role.value}) does not allow this page.")
        return who


def _form_checks(request: Request, csrf: str, once: str) -> str | None:
    """Refuse a form without the right CSRF field (403); None if ``once`` is new, else
    where its first submission led (the form must not act again)."""
    if not s.csrf_ok(request, csrf):
        raise HTTPException(403, "This form is stale or did not come from this site: reload it.")
    return s.ONCE.claim(once) if once else None


def _permits(who: Principal, method: str, api_path: str) -> bool:
    return rule_for(method, api_path) in who.permissions


# ---------------------------------------------------------------- login, home, static


@router.get("/")
def root() -> Response:
    return s.see_other(s.HOME)


@router.get("/login")
def login_page(request: Request, next: str = s.HOME) -> Response:
    if s.current(request) is not None:
        return s.see_other(s.safe_next(next))
    value = s.login_csrf_value(request)
    response = render(
        request, "login.html.j2", {"next": s.safe_next(next), "errors": {}, "login_csrf": value}
    )
    s.set_login_csrf(response, request, value)
    return response


@router.post("/login")
def login_submit(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = s.HOME,
) -> Response:
    target = s.safe_next(next)
    errors: dict[str, str] = {}
    if not username.strip():
        errors["username"] = "Enter your user name."
    if not password:
        errors["password"] = "Enter your password."
    if not errors and not s.csrf_ok(request, csrf):
        errors["form"] = "The form expired: please log in again."
    token = None
    if not errors:
        answer = Response()
        try:
            body = api_identity.Login(name=username.strip(), password=password)
            api_identity.login(body, request, answer)
            token = s.session_from_login(answer)
        except ValidationError:
            errors["username"] = "A user name has at most 64 characters."
        except HTTPException as exc:
            errors["password" if exc.status_code == 401 else "form"] = str(exc.detail)
    if token is None:
        errors = errors or {"form": "Login failed."}
        value = s.login_csrf_value(request)
        page = render(
            request,
            "login.html.j2",
            {"next": target, "errors": errors, "username": username, "login_csrf": value},
            status=401 if "password" in errors else 422,
            who=None,
        )
        s.set_login_csrf(page, request, value)
        return page
    done = s.see_other(target)
    s.set_console_cookie(done, state(request), token)
    # The API's cookie too (path /api/v1): the page's scripts may call the API as this user.
    for raw in answer.headers.getlist("set-cookie"):
        done.headers.append("set-cookie", raw)
    return done


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    who = s.current(request)
    if who is not None:
        if not s.csrf_ok(request, csrf):
            raise HTTPException(403, "This form is stale: reload the page and log out again.")
        state(request).store.revoke_tokens(actor=who.actor, token_id=who.token_id)
    response = s.see_other("/login")
    response.delete_cookie(s.CONSOLE_COOKIE, path="/")
    response.delete_cookie("cityx_session", path=API)
    return response


@router.get("/console/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, "no such file")
    data = resources.files("cityx.server.console").joinpath("static", name).read_bytes()
    return Response(data, media_type=STATIC[name], headers={"cache-control": "max-age=3600"})


@router.get("/console")
def home(
    request: Request, who: Annotated[Principal, Depends(Needs("GET", f"{API}/me"))]
) -> Response:
    return render(request, "home.html.j2", {"role": who.role.value}, who=who)


# ---------------------------------------------------------------- submissions (vendor)


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
            "may_upload": _permits(who, "POST", f"{API}/submissions"),
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
    first = _form_checks(request, csrf, once)
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
    sub = api_submissions.get_submission(submission_id, who, request)
    trials = []
    if _permits(who, "GET", f"{API}/trials"):
        trials = [
            t
            for t in api_submissions.list_trials(who, request, limit=1000)["trials"]
            if t["system"] == sub["system"]
        ]
    return render(request, "submission.html.j2", {"sub": sub, "trials": trials}, who=who)


# ---------------------------------------------------------------- trials, reports, rulings


@router.get("/console/trials")
def trials(
    request: Request, who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials"))]
) -> Response:
    listed = api_submissions.list_trials(who, request, limit=200)["trials"]
    rulings = {t["id"]: state(request).store.ruling(t["id"]) for t in listed}
    return render(request, "trials.html.j2", {"trials": listed, "rulings": rulings}, who=who)


def _ruling(request: Request, who: Principal, trial_id: str) -> dict[str, Any] | None:
    if not _permits(who, "GET", f"{API}/trials/{{trial_id}}/ruling"):
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
        and _permits(who, "POST", f"{API}/trials/{{trial_id}}/ruling")
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
    first = _form_checks(request, csrf, once)
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


def _checklist(results: dict[str, Any]) -> list[checklist.Answer]:
    """Every checklist item, answered from the trial's results where they hold the evidence
    (through the library's own reader, which takes a trial folder)."""
    items = checklist.load_checklist()
    if not results:
        return checklist.answer_from_trial(items, None)
    with tempfile.TemporaryDirectory(prefix="cityx-checklist-") as tmp:
        Path(tmp, "results.json").write_text(json.dumps(results, default=str), encoding="utf-8")
        return checklist.answer_from_trial(items, Path(tmp))


def _checklist_page(
    request: Request,
    who: Principal,
    trial_id: str,
    *,
    given: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    trial = api_submissions.get_trial(trial_id, who, request)
    answers = _checklist(dict(trial.get("results") or {}))
    return render(
        request,
        "checklist.html.j2",
        {
            "trial": trial,
            "answers": answers,
            "summary": checklist.principle_summary(answers),
            "given": given or {},
            "errors": errors or {},
            "choices": checklist.ANSWERS,
        },
        status=status,
        who=who,
    )


@router.get("/console/trials/{trial_id}/checklist")
def checklist_page(
    trial_id: str,
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials/{{trial_id}}"))],
) -> Response:
    return _checklist_page(request, who, trial_id)


@router.post("/console/trials/{trial_id}/checklist")
async def checklist_answers(
    trial_id: str,
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/trials/{{trial_id}}"))],
) -> Response:
    """The answered checklist as the JSON ``cityx checklist import`` reads (nothing is kept
    on the server: it changes nothing, so it needs no once token)."""
    form = await request.form()
    given = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    if not s.csrf_ok(request, given.get("csrf")):
        raise HTTPException(403, "This form is stale or did not come from this site: reload it.")
    # The store and the report code block: off the event loop, as sync routes are.
    return await run_in_threadpool(_checklist_download, request, who, trial_id, given)


def _checklist_download(
    request: Request, who: Principal, trial_id: str, given: dict[str, str]
) -> Response:
    trial = api_submissions.get_trial(trial_id, who, request)
    answers = _checklist(dict(trial.get("results") or {}))
    errors = {}
    out = []
    for a in answers:
        if a.source == "trial":
            out.append(a)
            continue
        value = given.get(f"answer-{a.id}", "")
        comment = given.get(f"comment-{a.id}", "")[:2000]
        if value not in checklist.ANSWERS:
            errors[f"answer-{a.id}"] = "Choose yes, no, n/a or leave it open."
        if value == "no" and not comment.strip():
            errors[f"comment-{a.id}"] = "Say why in a comment when the answer is no."
        out.append(replace(a, answer=value, comment=comment))
    if errors:
        return _checklist_page(request, who, trial_id, given=given, errors=errors, status=422)
    with tempfile.TemporaryDirectory(prefix="cityx-checklist-") as tmp:
        data = checklist.write_answers(out, Path(tmp) / "checklist.json").read_bytes()
    return Response(
        data,
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="checklist-{trial_id}.json"'},
    )


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


# ---------------------------------------------------------------- budgets, alerts, audit, users


@router.get("/console/alerts")
def alerts(
    request: Request, who: Annotated[Principal, Depends(Needs("GET", f"{API}/alerts"))]
) -> Response:
    store = state(request).store
    found = api_identity.alerts(who, request)["alerts"]
    budgets = []
    for user in store.users():
        for system, (granted, spent) in sorted(store.budgets(f"user:{user.name}").items()):
            budgets.append(
                {
                    "user": user.name,
                    "role": user.role,
                    "system": system,
                    "granted": granted,
                    "spent": spent,
                    "remaining": granted - spent,
                }
            )
    model = request.query_params.get("model", "")
    if model:
        found = [a for a in found if a.get("model") == model]
        budgets = [b for b in budgets if b["system"] == model]
    return render(
        request,
        "alerts.html.j2",
        {"alerts": found, "budgets": budgets, "model": model},
        who=who,
    )


@router.get("/console/audit")
def audit(
    request: Request,
    who: Annotated[Principal, Depends(Needs("GET", f"{API}/audit/entries"))],
    after: int = 0,
    verify: int = 0,
) -> Response:
    page = api_identity.audit_entries(who, request, after=max(0, after), limit=50)["entries"]
    verified = None
    if verify and _permits(who, "GET", f"{API}/audit/verify"):
        verified = api_identity.audit_verify(who, request)
    return render(
        request,
        "audit.html.j2",
        {
            "entries": page,
            "after": after,
            "next_after": page[-1]["seq"] if len(page) == 50 else None,
            "verified": verified,
        },
        who=who,
    )


@router.get("/console/users")
def users(
    request: Request, who: Annotated[Principal, Depends(Needs("GET", f"{API}/users"))]
) -> Response:
    listed = api_identity.users(who, request)["users"]
    store = state(request).store
    for u in listed:
        u["budgets"] = sorted(store.budgets(f"user:{u['name']}").items())
    roles = [(r.value, sorted(p.value for p in ROLE_PERMISSIONS[r])) for r in Role]
    return render(request, "users.html.j2", {"users": listed, "roles": roles}, who=who)


__all__ = ["PAGE_CSP", "router"]
