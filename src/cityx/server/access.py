"""Access: the one guard on every route, tenancy, hardening middleware, shared state.

Words:

- the *guard* is the one authorization dependency: it finds the route's rule
  in :data:`cityx.server.policy.ROUTE_RULES` (no rule: 403 for everyone),
  authenticates the caller (a bearer token, or a session cookie plus its
  CSRF token on unsafe methods; 401 otherwise) and checks the rule's
  permission (403). Object-level tenancy (404 for another tenant's object) is
  :func:`visible`, which every route that reads an object calls;
- the *server state* holds the store, the model workers, the extraction
  monitor, the login limiter and the city key, for the app's lifetime.

Everything is JSON under ``/api/v1``; the OpenAPI document is at
``/api/v1/openapi.json``; there are no HTML pages and no interactive docs.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from cityx.interop import SigningKey
from cityx.store import Store

from .config import ServerConfig
from .identity import API, SESSION, Principal, authenticate, csrf_token
from .live import LiveRuns
from .monitor import ExtractionMonitor, Reference
from .policy import API as PREFIX
from .policy import Permission, may_see, rule_for
from .queue import JobRunner
from .rulings import city_key
from .scoring import ModelPool

SESSION_COOKIE = "cityx_session"
UPLOADS = "/console/submissions"  # the console's upload form
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class LoginLimiter:
    """At most ``per_minute`` login attempts per source address in any 60 s."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, source: str) -> bool:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault(source, deque())
            while seen and now - seen[0] > 60.0:
                seen.popleft()
            if len(seen) >= self.per_minute:
                return False
            seen.append(now)
            return True


@dataclass
class ServerState:
    """What the app shares across requests; built by :func:`create_app`."""

    config: ServerConfig
    store: Store
    pool: ModelPool
    monitor: ExtractionMonitor
    limiter: LoginLimiter
    references: dict[int, Reference | None] = field(default_factory=dict)
    jobs: JobRunner | None = None  # started with the app (see cityx.server.queue)
    live: LiveRuns | None = None  # live runs under oversight (see cityx.server.live)
    _key: SigningKey | None = None
    _key_lock: threading.Lock = field(default_factory=threading.Lock)

    def city_key(self) -> SigningKey:
        with self._key_lock:
            if self._key is None:
                self._key = city_key(self.config.keys, self.config.city)
            return self._key


def state(request: Request) -> ServerState:
    found: ServerState = request.app.state.cityx
    return found


def _deny(st: ServerState, request: Request, who: str, status: int, reason: str) -> HTTPException:
    # Refusals are accesses too: they go into the audit log.
    st.store.append_audit(
        actor=who,
        action="access.denied",
        subject=request.url.path,
        payload={"method": request.method, "status": status, "reason": reason},
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return HTTPException(status, reason, headers=headers)


def guard(request: Request) -> Principal | None:
    """The authorization dependency of every route (see the module docstring)."""
    st = state(request)
    path = getattr(request.scope.get("route"), "path", None)
    rule = rule_for(request.method, path) if isinstance(path, str) else None
    if rule is None:
        raise _deny(st, request, "anonymous", 403, "no policy rule for this route")
    if rule is Permission.PUBLIC:
        return None
    principal = _authenticated(st, request)
    if rule not in principal.permissions:
        raise _deny(st, request, principal.actor, 403, f"needs the {rule.value} permission")
    return principal


def _authenticated(st: ServerState, request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        found = (
            authenticate(st.store, token.strip(), kind=API) if scheme.lower() == "bearer" else None
        )
        if found is None:
            raise _deny(st, request, "anonymous", 401, "invalid, expired or revoked token")
        return found
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = authenticate(st.store, cookie, kind=SESSION)
        if found is None:
            raise _deny(st, request, "anonymous", 401, "invalid or expired session")
        if request.method in UNSAFE and request.headers.get("x-csrf-token") != csrf_token(cookie):
            raise _deny(st, request, found.actor, 403, "missing or wrong X-CSRF-Token")
        return found
    raise _deny(st, request, "anonymous", 401, "no credentials: send Authorization: Bearer TOKEN")


def caller(principal: Annotated[Principal | None, Depends(guard)]) -> Principal:
    """The authenticated caller (the guard has run: FastAPI caches it per request)."""
    if principal is None:  # a public route asked for a caller: a bug, refuse
        raise HTTPException(403, "this route has no caller")
    return principal


Caller = Annotated[Principal, Depends(caller)]


def visible(st: ServerState, request: Request, who: Principal, owner: str, what: str) -> None:
    """404 unless ``who`` may see an object of ``owner``: another tenant's object does not
    exist for the caller, so ids leak nothing."""
    if not may_see(who.role, who.organisation, owner):
        raise _deny(st, request, who.actor, 404, f"no such {what}")


def owner_of(st: ServerState, system_id: str) -> str:
    """The organisation that owns a system (the city when none was recorded)."""
    return st.store.owners().get(system_id, st.config.city)


class Hardening:
    """ASGI middleware: security headers on every answer, and request size limits."""

    def __init__(self, app: Any, *, config: ServerConfig) -> None:
        self.app = app
        self.upload_bytes = config.max_upload_mb * 2**20
        self.other_bytes = config.max_request_kb * 2**10
        self.hsts = config.secure_cookies

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            self.upload_bytes
            if scope["method"] == "POST" and scope["path"] in (f"{PREFIX}/submissions", UPLOADS)
            else self.other_bytes
        )
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        seen = 0

        async def counted() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def secured(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                # A header the answer set itself (the console's page CSP) is kept.
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [h for h in SECURITY_HEADERS if h[0] not in present]
                if self.hsts:
                    extra.append((b"strict-transport-security", b"max-age=63072000"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, counted, secured)
        except _TooLarge:
            await _too_large(send, limit)


class _TooLarge(Exception):
    pass


async def _too_large(
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]], limit: int
) -> None:
    body = b'{"detail":"request too large: at most %d bytes"}' % limit
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), *SECURITY_HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = [
    "SESSION_COOKIE",
    "Caller",
    "Hardening",
    "LoginLimiter",
    "ServerState",
    "caller",
    "guard",
    "owner_of",
    "state",
    "visible",
]
