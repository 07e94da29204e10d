"""Who is calling: users, passwords, tokens and sessions.

Words:

- a *token* is ``cx_<id>_<secret>``: the id names the stored row, the secret
  (32 random bytes) is shown once and kept only as its SHA-256; it has a
  *kind* (``api`` for machines, ``session`` for a browser's cookie), *scopes*
  (permission names, ``*`` for all the role's), an expiry, and can be revoked;
- a *principal* is the authenticated caller of one request: user, role,
  organisation, and what its token lets it do;
- a *CSRF token* is derived from a session's secret (SHA-256 with a fixed
  prefix): the browser gets it in the login answer and sends it back in
  ``X-CSRF-Token`` on every unsafe request; a page on another site can make
  the browser send the cookie, but cannot read the answer that holds it.

Passwords are hashed with Argon2 (pwdlib). There is no default password, and
no default user: the first admin is made by ``cityx users add``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from cityx.core import InputError
from cityx.store import Store, TokenRecord

from .policy import Permission, Role, granted

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
TOKEN_RE = re.compile(r"cx_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})")
API, SESSION = "api", "session"
_HASHER = PasswordHash((Argon2Hasher(),))


@functools.cache
def _dummy_hash() -> str:
    # A valid Argon2 hash of nothing anyone knows: checked against when the user does not
    # exist, so that a login's timing does not tell which user names exist.
    return _HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request."""

    user: str
    role: Role
    organisation: str
    permissions: frozenset[Permission]
    token_id: str
    via: str  # "api" (a bearer token) or "session" (a cookie)
    budget: int | None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"user:{self.user}"


@dataclass(frozen=True, slots=True)
class Issued:
    """A token just made: the text to hand over (once) and its id."""

    token: str
    token_id: str
    expires_at: str


def check_name(text: str, what: str) -> str:
    if not NAME_RE.fullmatch(text):
        raise InputError(
            f"{what} {text!r} is not 1-64 lower-case letters, digits and ._- "
            "(starting with a letter or digit)",
            where=what,
        )
    return text


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise InputError("a password needs at least 12 characters", where="password")
    return _HASHER.hash(password)


def password_matches(password: str, stored: str | None) -> bool:
    """Constant-work check: an unknown user costs the same Argon2 verification."""
    ok = _HASHER.verify(password, stored or _dummy_hash())
    return ok and stored is not None


def _secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def csrf_token(session_token: str) -> str:
    """The CSRF token that goes with a session token."""
    return hashlib.sha256(b"cityx-csrf:" + session_token.encode("ascii")).hexdigest()


def issue_token(
    store: Store,
    user: str,
    *,
    kind: str = API,
    scopes: tuple[str, ...] = ("*",),
    lifetime: timedelta,
    actor: str,
) -> Issued:
    """Make and store a token for ``user``; the returned text is never stored."""
    unknown = [s for s in scopes if s != "*" and s not in {p.value for p in Permission}]
    if unknown:
        raise InputError(f"unknown scope(s) {', '.join(unknown)}", where="--scope")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    expires = (datetime.now(UTC) + lifetime).isoformat(timespec="microseconds")
    expires = expires.replace("+00:00", "Z")
    store.add_token(
        token_id,
        user_name=user,
        kind=kind,
        secret_sha256=_secret_sha256(secret),
        scopes=scopes,
        expires_at=expires,
        actor=actor,
    )
    return Issued(f"cx_{token_id}_{secret}", token_id, expires)


def add_user(
    store: Store,
    name: str,
    *,
    organisation: str,
    role: Role,
    city: str,
    budget: int | None = None,
    password: str | None = None,
    scopes: tuple[str, ...] = ("*",),
    token_days: int = 90,
    actor: str = "cityx-cli",
) -> Issued:
    """Add a user (and its organisation if new) and issue its first API token."""
    check_name(name, "user name")
    check_name(organisation, "organisation")
    if budget is not None and budget < 0:
        raise InputError(
            f"a budget is a number of query units >= 0, got {budget}", where="--budget"
        )
    if role is Role.VENDOR and organisation == city:
        raise InputError(
            f"a vendor cannot belong to the city's organisation {city!r}", where="--org"
        )
    if role is not Role.VENDOR and organisation != city:
        raise InputError(
            f"a {role.value} belongs to the city's organisation {city!r}, not {organisation!r}",
            where="--org",
        )
    digest = None if password is None else hash_password(password)
    store.ensure_organisation(
        organisation, kind="city" if organisation == city else "vendor", actor=actor
    )
    store.add_user(
        name,
        organisation=organisation,
        role=role.value,
        password_hash=digest,
        budget=budget,
        actor=actor,
    )
    return issue_token(store, name, scopes=scopes, lifetime=timedelta(days=token_days), actor=actor)


def authenticate(store: Store, token: str, *, kind: str) -> Principal | None:
    """The principal a token text stands for, or None: malformed, unknown, forged,
    expired, revoked, or of the other kind."""
    match = TOKEN_RE.fullmatch(token)
    if match is None:
        return None
    record = store.token(match.group(1))
    if record is None or not _live(record, kind):
        return None
    if not hmac.compare_digest(record.secret_sha256, _secret_sha256(match.group(2))):
        return None
    role = Role(record.user.role)
    return Principal(
        user=record.user.name,
        role=role,
        organisation=record.user.organisation,
        permissions=granted(role, record.scopes),
        token_id=record.token_id,
        via=kind,
        budget=record.user.budget,
    )


def _live(record: TokenRecord, kind: str) -> bool:
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return record.kind == kind and record.revoked_at is None and record.expires_at > now


__all__ = [
    "API",
    "SESSION",
    "Issued",
    "Principal",
    "add_user",
    "authenticate",
    "check_name",
    "csrf_token",
    "hash_password",
    "issue_token",
    "password_matches",
]
