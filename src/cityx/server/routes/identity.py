"""Routes about callers and the record: sessions, who am I, budgets, users, the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import HTTPException, Request, Response
from pydantic import BaseModel, Field

from cityx.store import now_text

from ..access import SESSION_COOKIE, Caller, state
from ..identity import SESSION, csrf_token, issue_token, password_matches
from ..policy import API, ROLE_PERMISSIONS
from ._router import router

ALERT_ACTIONS = ("extraction.alert", "extraction.probe")


class Login(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


@router.post("/session")
def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
    """Log in with a password: sets the session cookie and returns its CSRF token."""
    st = state(request)
    source = request.client.host if request.client else "unknown"
    if not st.limiter.allow(source):
        raise HTTPException(429, "too many login attempts from this address; wait a minute")
    user = st.store.user(body.name)
    now = now_text()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise HTTPException(429, f"this user is locked until {user.locked_until}")
    ok = password_matches(body.password, st.store.password_hash(body.name))
    locked_until = (datetime.now(UTC) + timedelta(seconds=st.config.login_lock_s)).isoformat(
        timespec="microseconds"
    )
    st.store.record_login(
        body.name,
        ok=ok,
        lock_after=st.config.login_lock_after,
        locked_until=locked_until.replace("+00:00", "Z"),
        source=source,
    )
    if not ok or user is None:
        raise HTTPException(401, "wrong user name or password")
    issued = issue_token(
        st.store,
        user.name,
        kind=SESSION,
        lifetime=timedelta(hours=st.config.session_hours),
        actor=f"user:{user.name}",
    )
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=st.config.session_hours * 3600,
        path=API,
        secure=st.config.secure_cookies,
        httponly=True,
        samesite="strict",
    )

    return {
        "user": user.name,
        "role": user.role,
        "organisation": user.organisation,
        "csrf_token": csrf_token(issued.token),
        "expires_at": issued.expires_at,
    }


@router.delete("/session")
def logout(who: Caller, request: Request, response: Response) -> dict[str, Any]:
    """End the caller's session (a bearer token is revoked with `cityx users revoke`)."""
    if who.via != SESSION:
        raise HTTPException(422, "not a browser session: revoke API tokens with cityx users revoke")
    state(request).store.revoke_tokens(actor=who.actor, token_id=who.token_id)
    response.delete_cookie(SESSION_COOKIE, path=API)
    return {"ended": True}


@router.get("/me")
def me(who: Caller) -> dict[str, Any]:
    """The caller: user, role, organisation and what its credentials allow."""
    return {
        "user": who.user,
        "role": who.role.value,
        "organisation": who.organisation,
        "permissions": sorted(p.value for p in who.permissions),
        "role_permissions": sorted(p.value for p in ROLE_PERMISSIONS[who.role]),
        "via": who.via,
    }


@router.get("/budgets")
def budgets(who: Caller, request: Request) -> dict[str, Any]:
    """The caller's query budgets, per system: units granted, spent and remaining."""
    rows = state(request).store.budgets(f"user:{who.user}")
    return {
        "budgets": [
            {"system": system, "granted": g, "spent": s, "remaining": g - s}
            for system, (g, s) in sorted(rows.items())
        ]
    }


@router.get("/users")
def users(who: Caller, request: Request) -> dict[str, Any]:
    """Every user (admin): names, organisations, roles, budgets; never a secret."""
    return {
        "users": [
            {
                "name": u.name,
                "organisation": u.organisation,
                "role": u.role,
                "budget": u.budget,
                "has_password": u.has_password,
                "locked_until": u.locked_until,
            }
            for u in state(request).store.users()
        ]
    }


@router.get("/audit/verify")
def audit_verify(who: Caller, request: Request) -> dict[str, Any]:
    """The audit chain's verification: the same JSON as `cityx audit verify --json`."""
    result: dict[str, Any] = state(request).store.verify_audit().to_json()
    return result


@router.get("/walls")
def walls_status(who: Caller, request: Request) -> dict[str, Any]:
    """How the model workers are contained: each wall, or why it is missing."""
    return state(request).pool.status()


@router.get("/audit/entries")
def audit_entries(
    who: Caller, request: Request, after: int = 0, limit: int = 200
) -> dict[str, Any]:
    """Audit entries after seq ``after`` (at most ``limit``, up to 1000)."""
    st = state(request)
    limit = max(1, min(limit, 1000))
    entries = [e for e in st.store.audit_entries() if e.seq > after][:limit]
    st.store.append_audit(
        actor=who.actor, action="audit.read", subject="audit_log", payload={"after": after}
    )
    return {
        "entries": [
            {
                "seq": e.seq,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "payload": dict(e.payload),
                "hash": e.hash,
            }
            for e in entries
        ]
    }


@router.get("/alerts")
def alerts(who: Caller, request: Request) -> dict[str, Any]:
    """Extraction alerts, and red-teamers' authorised probing recorded as such."""
    entries = state(request).store.audit_entries()
    return {
        "alerts": [
            {"seq": e.seq, "at": e.at, "kind": e.action, "caller": e.actor, "model": e.subject}
            | dict(e.payload)
            for e in entries
            if e.action in ALERT_ACTIONS
        ]
    }
