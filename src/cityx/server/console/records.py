"""The record: query budgets and extraction alerts, the audit log and its verification,
users and roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from ..access import state
from ..identity import Principal
from ..policy import API, ROLE_PERMISSIONS, Role
from ..routes import identity as api_identity
from .base import (
    Needs,
    permits,
    render,
    router,
)


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
    if verify and permits(who, "GET", f"{API}/audit/verify"):
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
