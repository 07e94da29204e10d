"""Login, logout, the home page and the vendored static files."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request, Response
from pydantic import ValidationError

from ..access import state
from ..identity import Principal
from ..policy import API
from ..routes import identity as api_identity
from . import session as s
from .base import (
    STATIC,
    Needs,
    render,
    router,
)


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
