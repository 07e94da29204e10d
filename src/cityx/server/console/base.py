"""The console's machinery: templates, the page route class, the page guard, shared helpers.

Every page names the API route whose policy rule it needs (:class:`Needs`);
the rule comes from :func:`cityx.server.policy.rule_for`, so the console has
no authorization table of its own. Objects are read through the API's route
functions (:mod:`cityx.server.routes`), which apply tenancy: another tenant's
submission or trial is a 404 here exactly as it is there.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape

from ..access import state
from ..identity import Principal
from ..policy import API, rule_for
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
    "live.js": "text/javascript",
}

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


def template(name: str) -> Any:
    """A template of the console (for fragments sent outside a page, e.g. over SSE)."""
    return _ENV.get_template(name)


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
        ("/console/runs", "Live runs", "GET", f"{API}/runs"),
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


def form_checks(request: Request, csrf: str, once: str) -> str | None:
    """Refuse a form without the right CSRF field (403); None if ``once`` is new, else
    where its first submission led (the form must not act again)."""
    if not s.csrf_ok(request, csrf):
        raise HTTPException(403, "This form is stale or did not come from this site: reload it.")
    return s.ONCE.claim(once) if once else None


def permits(who: Principal, method: str, api_path: str) -> bool:
    return rule_for(method, api_path) in who.permissions


__all__ = [
    "PAGE_CSP",
    "REPORT_CSP",
    "STATIC",
    "HtmlRoute",
    "Needs",
    "form_checks",
    "permits",
    "render",
    "router",
    "template",
]
