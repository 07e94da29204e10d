"""Query budgets, regulator rulings and submission look-ups for the server.

Words:

- a *budget* is a number of query *units* granted to a *holder* (``user:NAME``
  or ``org:NAME``) for one system id; it is kept per system, not per version,
  so it carries across the system's versions;
- a *charge* spends units from several budgets at once (the user's and its
  organisation's): all of them, or none when any would go over, in one write
  transaction with its audit entry, so concurrent callers never overrun a
  budget (writers queue, see :mod:`._base`);
- a *ruling* is a regulator's decision on a trial (``approve``,
  ``approve-with-conditions``, ``reject``), signed by the server; at most one
  per trial, chained into the audit log: the row keeps the seq of its entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cityx.core import StoreError

from ._base import StoreBase, _now
from .models import BudgetRow, RulingRow, SubmissionRow, TrialRow


@dataclass(frozen=True, slots=True)
class Charge:
    """The outcome of a charge: whether it was spent, and what remains in the tightest budget.

    ``remaining`` is None when no budget applies (no cap).
    """

    spent: bool
    units: int
    remaining: int | None


@dataclass(frozen=True, slots=True)
class SubmissionRecord:
    """A submission as stored, with its store id."""

    id: int
    system_id: str
    version: str
    vendor: str
    kind: str
    sha256: str
    path: str
    manifest: Mapping[str, Any]
    recorded_at: str


@dataclass(frozen=True, slots=True)
class RulingRecord:
    """A stored ruling; ``signature`` is the compact JWS of its body."""

    trial_id: str
    decision: str
    reasons: tuple[str, ...]
    conditions: tuple[str, ...]
    regulator: str
    signature: str
    audit_seq: int
    ruled_at: str


class MeteringRows(StoreBase):
    """Budgets, rulings and submissions by id."""

    def charge(
        self,
        *,
        grants: Mapping[str, int],
        system_id: str,
        units: int,
        actor: str,
        payload: Mapping[str, Any],
    ) -> Charge:
        """Spend ``units`` from every holder's budget in ``grants`` (holder -> units granted).

        A holder's row is created at its grant the first time; afterwards the
        stored grant holds. Refused whole when any budget would go over; the
        refusal is audited too (``model.query.refused``).
        """
        if units < 0:
            raise ValueError(f"units must be >= 0, got {units}")
        with self._write() as conn:
            remaining: list[int] = []
            for holder, granted in sorted(grants.items()):
                row = conn.execute(
                    sa.select(BudgetRow.granted, BudgetRow.spent).where(
                        BudgetRow.holder == holder, BudgetRow.system_id == system_id
                    )
                ).first()
                if row is None:
                    conn.execute(
                        sa.insert(BudgetRow).values(
                            holder=holder, system_id=system_id, granted=granted, spent=0
                        )
                    )
                    remaining.append(granted)
                else:
                    remaining.append(int(row.granted) - int(row.spent))
            left = min(remaining) if remaining else None
            ok = left is None or units <= left
            if ok:
                for holder in grants:
                    conn.execute(
                        sa.update(BudgetRow)
                        .where(BudgetRow.holder == holder, BudgetRow.system_id == system_id)
                        .values(spent=BudgetRow.spent + units)
                    )
            after = None if left is None else (left - units if ok else left)
            self._append(
                conn,
                actor=actor,
                action="model.query" if ok else "model.query.refused",
                subject=system_id,
                payload={**payload, "units": units, "remaining": after},
            )
        return Charge(ok, units, after)

    def budgets(self, holder: str) -> dict[str, tuple[int, int]]:
        """A holder's budgets: system id -> (granted, spent)."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(BudgetRow.system_id, BudgetRow.granted, BudgetRow.spent).where(
                    BudgetRow.holder == holder
                )
            ).all()
        return {r.system_id: (int(r.granted), int(r.spent)) for r in rows}

    def submissions(self) -> list[SubmissionRecord]:
        """Every submission, newest first."""
        return self._submissions(sa.true())

    def submission(self, submission_id: int) -> SubmissionRecord | None:
        """The submission with this store id, or None."""
        found = self._submissions(SubmissionRow.id == submission_id)
        return found[0] if found else None

    def _submissions(self, where: sa.ColumnElement[bool]) -> list[SubmissionRecord]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(
                    SubmissionRow.id,
                    SubmissionRow.system_id,
                    SubmissionRow.version,
                    SubmissionRow.vendor,
                    SubmissionRow.kind,
                    SubmissionRow.sha256,
                    SubmissionRow.path,
                    SubmissionRow.manifest,
                    SubmissionRow.recorded_at,
                )
                .where(where)
                .order_by(SubmissionRow.id.desc())
            ).all()
        return [SubmissionRecord(*r) for r in rows]

    def submission_id(self, system_id: str, version: str, sha256: str) -> int | None:
        """The store id of a recorded submission, or None."""
        with self._transaction(write=False) as conn:
            found = conn.execute(
                sa.select(SubmissionRow.id).where(
                    SubmissionRow.system_id == system_id,
                    SubmissionRow.version == version,
                    SubmissionRow.sha256 == sha256,
                )
            ).scalar()
        return None if found is None else int(found)

    def record_ruling(
        self,
        *,
        trial_id: str,
        decision: str,
        reasons: Sequence[str],
        conditions: Sequence[str],
        regulator: str,
        ruled_at: str,
        signature: str,
        kid: str,
        actor: str,
    ) -> RulingRecord:
        """Store a signed ruling and its audit entry; a second ruling on a trial is refused."""
        with self._write() as conn:
            if not conn.execute(
                sa.select(TrialRow.trial_id).where(TrialRow.trial_id == trial_id)
            ).first():
                raise StoreError(f"trial {trial_id} is not in this store", where=self.display_url)
            if conn.execute(
                sa.select(RulingRow.trial_id).where(RulingRow.trial_id == trial_id)
            ).first():
                raise StoreError(
                    f"trial {trial_id} already has a ruling",
                    where=self.display_url,
                    hint="a ruling is final; run a new trial to rule again",
                )
            entry = self._append(
                conn,
                actor=actor,
                action="ruling.recorded",
                subject=trial_id,
                payload={
                    "decision": decision,
                    "regulator": regulator,
                    "kid": kid,
                    "signature": signature,
                },
            )
            conn.execute(
                sa.insert(RulingRow).values(
                    trial_id=trial_id,
                    decision=decision,
                    reasons=list(reasons),
                    conditions=list(conditions),
                    regulator=regulator,
                    signature=signature,
                    audit_seq=entry.seq,
                    ruled_at=ruled_at,
                )
            )
        return RulingRecord(
            trial_id,
            decision,
            tuple(reasons),
            tuple(conditions),
            regulator,
            signature,
            entry.seq,
            ruled_at,
        )

    def ruling(self, trial_id: str) -> RulingRecord | None:
        """The ruling on a trial, or None."""
        with self._transaction(write=False) as conn:
            row = conn.execute(sa.select(RulingRow).where(RulingRow.trial_id == trial_id)).first()
        if row is None:
            return None
        return RulingRecord(
            row.trial_id,
            row.decision,
            tuple(row.reasons),
            tuple(row.conditions),
            row.regulator,
            row.signature,
            int(row.audit_seq),
            row.ruled_at,
        )


def now_text() -> str:
    """The store's current time text (ISO-8601 UTC with microseconds)."""
    return _now()


__all__ = ["Charge", "MeteringRows", "RulingRecord", "SubmissionRecord", "now_text"]
