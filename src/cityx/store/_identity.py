"""Identities in the store: organisations, users, API tokens and who owns a system.

Words (the tables are in :mod:`.models`):

- an *organisation* is the city or one vendor; a *user* belongs to exactly one
  and holds one *role* (what the server's policy lets it do);
- a *token* is a bearer credential: its id is public, its random secret is
  kept only as a SHA-256 (a 256-bit random secret needs no slow hash; Argon2
  is for passwords, which are guessable);
- a system's *owner* is the organisation that uploaded it; a system with no
  owner row belongs to the city.

The store holds values only: minting tokens and hashing passwords is the
server's business (:mod:`cityx.server.identity`). Every change appends its
audit entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from cityx.core import StoreError

from ._base import StoreBase, _now
from .models import OrganisationRow, SystemOwnerRow, TokenRow, UserRow


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as stored (no password hash: see :meth:`IdentityRows.password_hash`)."""

    name: str
    organisation: str
    role: str
    budget: int | None
    has_password: bool
    failed_logins: int
    locked_until: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as stored, with its user; ``secret_sha256`` is compared, never shown."""

    token_id: str
    kind: str
    secret_sha256: str
    scopes: tuple[str, ...]
    created_at: str
    expires_at: str
    revoked_at: str | None
    user: UserRecord


_USER_COLUMNS = (
    UserRow.name,
    UserRow.organisation,
    UserRow.role,
    UserRow.budget,
    UserRow.password_hash.is_not(None),
    UserRow.failed_logins,
    UserRow.locked_until,
    UserRow.created_at,
)


class IdentityRows(StoreBase):
    """Organisations, users, tokens and system owners, each change with its audit entry."""

    def ensure_organisation(
        self, name: str, *, kind: str, actor: str, budget: int | None = None
    ) -> bool:
        """Create the organisation unless it exists; True if it was created."""
        with self._write() as conn:
            found = conn.execute(
                sa.select(OrganisationRow.kind).where(OrganisationRow.name == name)
            ).first()
            if found is not None:
                return False
            conn.execute(
                sa.insert(OrganisationRow).values(
                    name=name, kind=kind, budget=budget, created_at=_now()
                )
            )
            self._append(
                conn,
                actor=actor,
                action="organisation.created",
                subject=name,
                payload={"kind": kind, "budget": budget},
            )
            return True

    def organisation_budget(self, name: str) -> int | None:
        """The query units granted to each of the organisation's models, or None (no cap)."""
        with self._transaction(write=False) as conn:
            found = conn.execute(
                sa.select(OrganisationRow.budget).where(OrganisationRow.name == name)
            ).scalar()
        return None if found is None else int(found)

    def add_user(
        self,
        name: str,
        *,
        organisation: str,
        role: str,
        password_hash: str | None,
        budget: int | None,
        actor: str,
    ) -> None:
        """Add a user; a name already taken is a StoreError (users are never overwritten)."""
        with self._write() as conn:
            if conn.execute(sa.select(UserRow.name).where(UserRow.name == name)).first():
                raise StoreError(
                    f"user {name!r} already exists",
                    where=self.display_url,
                    hint="pick another name, or revoke and re-issue the user's tokens",
                )
            if not conn.execute(
                sa.select(OrganisationRow.name).where(OrganisationRow.name == organisation)
            ).first():
                raise StoreError(f"no organisation {organisation!r}", where=self.display_url)
            conn.execute(
                sa.insert(UserRow).values(
                    name=name,
                    organisation=organisation,
                    role=role,
                    password_hash=password_hash,
                    budget=budget,
                    failed_logins=0,
                    locked_until=None,
                    created_at=_now(),
                )
            )
            self._append(
                conn,
                actor=actor,
                action="user.created",
                subject=name,
                payload={
                    "organisation": organisation,
                    "role": role,
                    "budget": budget,
                    "password": password_hash is not None,
                },
            )

    def user(self, name: str) -> UserRecord | None:
        """The user with this name, or None."""
        with self._transaction(write=False) as conn:
            row = conn.execute(sa.select(*_USER_COLUMNS).where(UserRow.name == name)).first()
        return None if row is None else UserRecord(*row)

    def users(self) -> list[UserRecord]:
        """Every user, by name."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(sa.select(*_USER_COLUMNS).order_by(UserRow.name)).all()
        return [UserRecord(*r) for r in rows]

    def password_hash(self, name: str) -> str | None:
        """The stored password hash of a user (None: no such user, or no password)."""
        with self._transaction(write=False) as conn:
            found = conn.execute(
                sa.select(UserRow.password_hash).where(UserRow.name == name)
            ).scalar()
        return None if found is None else str(found)

    def record_login(
        self, name: str, *, ok: bool, lock_after: int, locked_until: str, source: str
    ) -> None:
        """Count a failed login (locking the user at ``lock_after``), or clear the count."""
        with self._write() as conn:
            row = conn.execute(sa.select(UserRow.failed_logins).where(UserRow.name == name)).first()
            if row is None:
                self._append(
                    conn,
                    actor=f"anonymous@{source}",
                    action="login.failed",
                    subject=name,
                    payload={"reason": "unknown user"},
                )
                return
            failed = 0 if ok else int(row.failed_logins) + 1
            values: dict[str, object] = {"failed_logins": failed}
            if failed >= lock_after:
                values["locked_until"] = locked_until
            elif ok:
                values["locked_until"] = None
            conn.execute(sa.update(UserRow).where(UserRow.name == name).values(**values))
            self._append(
                conn,
                actor=f"user:{name}" if ok else f"anonymous@{source}",
                action="login.ok" if ok else "login.failed",
                subject=name,
                payload={"failed_logins": failed, "locked": failed >= lock_after},
            )

    def add_token(
        self,
        token_id: str,
        *,
        user_name: str,
        kind: str,
        secret_sha256: str,
        scopes: Sequence[str],
        expires_at: str,
        actor: str,
    ) -> None:
        """Store a new token's id and secret hash (the secret itself is never stored)."""
        with self._write() as conn:
            conn.execute(
                sa.insert(TokenRow).values(
                    token_id=token_id,
                    user_name=user_name,
                    kind=kind,
                    secret_sha256=secret_sha256,
                    scopes=list(scopes),
                    created_at=_now(),
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
            self._append(
                conn,
                actor=actor,
                action="token.issued",
                subject=user_name,
                payload={
                    "token_id": token_id,
                    "kind": kind,
                    "scopes": list(scopes),
                    "expires_at": expires_at,
                },
            )

    def token(self, token_id: str) -> TokenRecord | None:
        """The token with this id and its user, or None."""
        with self._transaction(write=False) as conn:
            row = conn.execute(
                sa.select(
                    TokenRow.token_id,
                    TokenRow.kind,
                    TokenRow.secret_sha256,
                    TokenRow.scopes,
                    TokenRow.created_at,
                    TokenRow.expires_at,
                    TokenRow.revoked_at,
                    *_USER_COLUMNS,
                )
                .join(UserRow, UserRow.name == TokenRow.user_name)
                .where(TokenRow.token_id == token_id)
            ).first()
        if row is None:
            return None
        user = UserRecord(
            row.name,
            row.organisation,
            row.role,
            row.budget,
            bool(row[11]),
            row.failed_logins,
            row.locked_until,
            row[14],
        )
        return TokenRecord(
            row.token_id,
            row.kind,
            row.secret_sha256,
            tuple(row.scopes),
            row[4],
            row.expires_at,
            row.revoked_at,
            user,
        )

    def revoke_tokens(
        self, *, actor: str, user_name: str | None = None, token_id: str | None = None
    ) -> int:
        """Revoke a user's live tokens, or one token; returns how many were revoked."""
        if (user_name is None) == (token_id is None):
            raise ValueError("give exactly one of user_name and token_id")
        where = (
            TokenRow.user_name == user_name if token_id is None else TokenRow.token_id == token_id
        )
        now = _now()
        with self._write() as conn:
            revoked = conn.execute(
                sa.update(TokenRow)
                .where(where, TokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(TokenRow.token_id)
            ).all()
            if revoked:
                self._append(
                    conn,
                    actor=actor,
                    action="token.revoked",
                    subject=user_name or token_id or "",
                    payload={"token_ids": sorted(r.token_id for r in revoked)},
                )
        return len(revoked)

    def set_owner(self, system_id: str, organisation: str, *, actor: str) -> None:
        """Record which organisation owns ``system_id``; it never changes hands."""
        with self._write() as conn:
            found = conn.execute(
                sa.select(SystemOwnerRow.organisation).where(SystemOwnerRow.system_id == system_id)
            ).scalar()
            if found is not None:
                if found != organisation:
                    raise StoreError(
                        f"system {system_id!r} belongs to another organisation",
                        where=self.display_url,
                    )
                return
            conn.execute(
                sa.insert(SystemOwnerRow).values(system_id=system_id, organisation=organisation)
            )
            self._append(
                conn,
                actor=actor,
                action="system.owner",
                subject=system_id,
                payload={"organisation": organisation},
            )

    def owners(self) -> dict[str, str]:
        """Every system id that has an owner, with its organisation."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(sa.select(SystemOwnerRow.system_id, SystemOwnerRow.organisation))
            return {r.system_id: r.organisation for r in rows}


__all__ = ["IdentityRows", "TokenRecord", "UserRecord"]
