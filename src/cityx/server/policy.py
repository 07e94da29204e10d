"""The server's authorization policy: one typed table, default deny.

Words:

- a *role* is what a user is for (``regulator``, ``vendor``, ``red-teamer``,
  ``overseer``, ``auditor``, ``admin``); each user holds exactly one;
- a *permission* is one thing the API lets a caller do; a role grants a fixed
  set (:data:`ROLE_PERMISSIONS`), and a token's *scopes* can only narrow it;
- a *route rule* (:data:`ROUTE_RULES`) names the one permission each route
  needs; a route without a rule is refused to everyone (default deny), and a
  test walks the app's routes to keep the table complete;
- *tenancy*: a vendor is *scoped* to its organisation and sees only objects its
  organisation owns; every other role sees objects of every organisation. An
  object the caller may not see is answered as if it did not exist (404).

Why a typed table rather than Casbin or Cedar: the whole policy is six roles,
a dozen permissions and one tenancy rule; as Python values it is checked by
mypy, read in one screen, and the route-walk test compares it with the app
directly. An engine would add a second language and a model file to keep in
step, for no rule we cannot state here.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    REGULATOR = "regulator"
    VENDOR = "vendor"
    RED_TEAMER = "red-teamer"
    OVERSEER = "overseer"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    PUBLIC = "public"  # no identity needed (login, the OpenAPI document)
    SELF = "self"  # read one's own identity and budgets, log out
    SUBMISSION_UPLOAD = "submission.upload"
    SUBMISSION_READ = "submission.read"
    ARTIFACT_READ = "artifact.read"
    TRIAL_READ = "trial.read"
    MODEL_QUERY = "model.query"
    MODEL_SCORES = "model.scores"  # scores and probabilities: far cheaper extraction
    RULING_WRITE = "ruling.write"
    RULING_READ = "ruling.read"
    AUDIT_READ = "audit.read"
    ALERTS_READ = "alerts.read"
    USERS_READ = "users.read"
    TRIAL_REQUEST = "trial.request"  # queue a trial job of a submission
    JOB_READ = "job.read"
    JOB_CANCEL = "job.cancel"
    RUN_START = "run.start"  # start a live world run under oversight
    RUN_READ = "run.read"  # a live run, its state stream, its commands (overseers: their own)
    RUN_COMMAND = "run.command"  # command a live run (only the overseers assigned to it)


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.REGULATOR: frozenset(
        {
            P.SELF,
            P.SUBMISSION_READ,
            P.TRIAL_READ,
            P.MODEL_QUERY,
            P.MODEL_SCORES,
            P.RULING_WRITE,
            P.RULING_READ,
            P.AUDIT_READ,
            P.ALERTS_READ,
            P.TRIAL_REQUEST,
            P.JOB_READ,
            P.JOB_CANCEL,
            P.RUN_START,
            P.RUN_READ,
        }
    ),
    # Scoped to its organisation: the same permissions reach only its own objects.
    Role.VENDOR: frozenset(
        {
            P.SELF,
            P.SUBMISSION_UPLOAD,
            P.SUBMISSION_READ,
            P.ARTIFACT_READ,
            P.TRIAL_READ,
            P.MODEL_QUERY,
            P.MODEL_SCORES,
            P.RULING_READ,
            P.TRIAL_REQUEST,
            P.JOB_READ,
            P.JOB_CANCEL,
        }
    ),
    # Finds its targets and queries them within budget; labels only.
    Role.RED_TEAMER: frozenset({P.SELF, P.SUBMISSION_READ, P.MODEL_QUERY}),
    # Starts live runs, sees the ones assigned to it, commands them (cityx.server.live).
    Role.OVERSEER: frozenset({P.SELF, P.RUN_START, P.RUN_READ, P.RUN_COMMAND}),
    # Reads everything, the audit log included, and changes nothing.
    Role.AUDITOR: frozenset(
        {
            P.SELF,
            P.SUBMISSION_READ,
            P.TRIAL_READ,
            P.RULING_READ,
            P.AUDIT_READ,
            P.ALERTS_READ,
            P.JOB_READ,
            P.RUN_READ,
        }
    ),
    # Manages identities (through `cityx users`), sees no tenant's data.
    Role.ADMIN: frozenset({P.SELF, P.USERS_READ}),
}

SCOPED_ROLES = frozenset({Role.VENDOR})
"""Roles that see only their own organisation's objects."""

API = "/api/v1"
ROUTE_RULES: dict[tuple[str, str], Permission] = {
    ("GET", f"{API}/openapi.json"): P.PUBLIC,
    ("POST", f"{API}/session"): P.PUBLIC,
    ("DELETE", f"{API}/session"): P.SELF,
    ("GET", f"{API}/me"): P.SELF,
    ("GET", f"{API}/budgets"): P.SELF,
    ("POST", f"{API}/submissions"): P.SUBMISSION_UPLOAD,
    ("GET", f"{API}/submissions"): P.SUBMISSION_READ,
    ("GET", f"{API}/submissions/{{submission_id}}"): P.SUBMISSION_READ,
    ("GET", f"{API}/submissions/{{submission_id}}/artifact"): P.ARTIFACT_READ,
    ("GET", f"{API}/trials"): P.TRIAL_READ,
    ("GET", f"{API}/trials/{{trial_id}}"): P.TRIAL_READ,
    ("POST", f"{API}/trials/{{trial_id}}/ruling"): P.RULING_WRITE,
    ("GET", f"{API}/trials/{{trial_id}}/ruling"): P.RULING_READ,
    ("POST", f"{API}/models/{{model_id}}/predict"): P.MODEL_QUERY,
    ("GET", f"{API}/audit/verify"): P.AUDIT_READ,
    ("GET", f"{API}/audit/entries"): P.AUDIT_READ,
    ("GET", f"{API}/alerts"): P.ALERTS_READ,
    ("GET", f"{API}/walls"): P.AUDIT_READ,  # how vendor code is contained (cityx.server.walls)
    ("GET", f"{API}/users"): P.USERS_READ,
    ("POST", f"{API}/submissions/{{submission_id}}/trials"): P.TRIAL_REQUEST,
    ("GET", f"{API}/jobs"): P.JOB_READ,
    ("GET", f"{API}/jobs/{{job_id}}"): P.JOB_READ,
    ("GET", f"{API}/jobs/{{job_id}}/events"): P.JOB_READ,
    ("POST", f"{API}/jobs/{{job_id}}/cancel"): P.JOB_CANCEL,
    ("POST", f"{API}/runs"): P.RUN_START,
    ("GET", f"{API}/runs"): P.RUN_READ,
    ("GET", f"{API}/runs/{{run_id}}"): P.RUN_READ,
    ("GET", f"{API}/runs/{{run_id}}/state"): P.RUN_READ,
    ("GET", f"{API}/runs/{{run_id}}/commands"): P.RUN_READ,
    ("POST", f"{API}/runs/{{run_id}}/commands"): P.RUN_COMMAND,
    ("POST", f"{API}/runs/{{run_id}}/commands/{{command_id}}/reason"): P.RUN_COMMAND,
}
"""(method, route path) -> the permission it needs. A route not here is refused."""


def rule_for(method: str, path: str) -> Permission | None:
    """The permission a route needs, or None: no rule, so nobody may call it."""
    # HEAD is answered like GET by the framework; it needs what GET needs.
    return ROUTE_RULES.get(("GET" if method == "HEAD" else method, path))


def granted(role: Role, scopes: tuple[str, ...]) -> frozenset[Permission]:
    """What a caller of ``role`` holding a token with ``scopes`` may do ("*": all the role's)."""
    allowed = ROLE_PERMISSIONS[role]
    if "*" in scopes:
        return allowed
    return frozenset(p for p in allowed if p.value in scopes)


def may_see(role: Role, organisation: str, owner: str) -> bool:
    """Whether a caller of ``role`` in ``organisation`` may see an object ``owner`` owns."""
    return role not in SCOPED_ROLES or organisation == owner


__all__ = [
    "API",
    "ROLE_PERMISSIONS",
    "ROUTE_RULES",
    "SCOPED_ROLES",
    "Permission",
    "Role",
    "granted",
    "may_see",
    "rule_for",
]
