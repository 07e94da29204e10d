"""The console's browser session, CSRF and once-only forms, on the server's identity layer.

Words:

- the *console cookie* holds the same session token the API's login issues
  (:func:`cityx.server.routes.identity.login`), with path ``/`` so that pages
  outside ``/api/v1`` see it; logging out revokes the token, which ends both
  cookies at once. It is HttpOnly and SameSite=Strict, Secure when the server
  says TLS ends in front of it;
- the *CSRF field* of every form is :func:`cityx.server.identity.csrf_token` of
  the session (before login: a random value double-submitted in a cookie);
- a *once token* is a random hidden field of every form that changes state;
  the first submission of a token acts, a repeat (a double click, a reload
  that re-posts) is sent to the first one's result without acting again;
- *next*: the page asked for before login; only a same-origin path is
  followed (``/x``, never ``//host`` or ``https://host``), so login is no
  open redirect.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import OrderedDict
from http.cookies import SimpleCookie
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from ..access import ServerState, state
from ..identity import SESSION, Principal, authenticate, csrf_token

CONSOLE_COOKIE = "cityx_console"
LOGIN_CSRF_COOKIE = "cityx_login_csrf"
HOME = "/console"


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the console's home."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(c in target for c in "\r\n\t\\"):
        return HOME
    return target


def login_url(request: Request) -> str:
    """The login page, keeping the page asked for."""
    asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(safe_next(asked), safe='')}"


def session_token(request: Request) -> str | None:
    return request.cookies.get(CONSOLE_COOKIE) or None


def current(request: Request) -> Principal | None:
    """The principal of the browser's console session, or None (none, expired, revoked)."""
    token = session_token(request)
    if token is None:
        return None
    return authenticate(state(request).store, token, kind=SESSION)


def csrf_for(request: Request) -> str:
    token = session_token(request)
    return csrf_token(token) if token else request.cookies.get(LOGIN_CSRF_COOKIE, "")


def csrf_ok(request: Request, sent: str | None) -> bool:
    expected = csrf_for(request)
    return bool(expected and sent) and hmac.compare_digest(expected, str(sent))


def session_from_login(answer: Response) -> str | None:
    """The session token the API's login set as its cookie on ``answer``."""
    for raw in answer.headers.getlist("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(raw)
        for morsel in jar.values():
            if morsel.value:
                return morsel.value
    return None


def set_console_cookie(response: Response, st: ServerState, token: str) -> None:
    response.set_cookie(
        CONSOLE_COOKIE,
        token,
        max_age=st.config.session_hours * 3600,
        path="/",
        secure=st.config.secure_cookies,
        httponly=True,
        samesite="strict",
    )


def login_csrf_value(request: Request) -> str:
    """The double-submitted CSRF value of the login form (made once per browser)."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def set_login_csrf(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        path="/login",
        secure=state(request).config.secure_cookies,
        httponly=True,
        samesite="strict",
    )


class OnceForms:
    """Once tokens already used, and where their first submission led (bounded memory).

    Kept in the web process: a console served by several processes would keep
    them in the store instead (see docs/console.md).
    """

    def __init__(self, size: int = 10_000) -> None:
        self._done: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def claim(self, token: str) -> str | None:
        """None if ``token`` is new (it is now taken), else where its first use led."""
        with self._lock:
            if token in self._done:
                return self._done[token] or HOME
            self._done[token] = ""
            while len(self._done) > self._size:
                self._done.popitem(last=False)
            return None

    def finish(self, token: str, location: str) -> None:
        with self._lock:
            if token in self._done:
                self._done[token] = location

    def release(self, token: str) -> None:
        """The first use failed (a form error): the form may be sent again."""
        with self._lock:
            self._done.pop(token, None)


ONCE = OnceForms()


def new_once() -> str:
    return secrets.token_urlsafe(16)


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


__all__ = [
    "CONSOLE_COOKIE",
    "HOME",
    "ONCE",
    "OnceForms",
    "csrf_for",
    "csrf_ok",
    "current",
    "login_csrf_value",
    "login_url",
    "new_once",
    "safe_next",
    "see_other",
    "session_from_login",
    "set_console_cookie",
    "set_login_csrf",
]
