"""Process checklist answers given in the console: who answered what, and when.

Words:

- an *answer* is one checklist item's answer (``yes``, ``no``, ``n/a`` or
  empty) for one system version (``system_id``, ``version``), with a comment,
  its *author* (the user who gave it), the author's organisation and the time;
- answers are *appended*, never updated: a later answer to the same item
  supersedes the earlier one for the report, and the history stays, each
  answer with its audit entry (action :data:`ANSWER_ACTION`).

What the answers mean (items, principles, validation) is
:mod:`cityx.governance.checklist`'s business; the store keeps plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from cityx.core import StoreError

from ._base import StoreBase, _now
from .models import ChecklistAnswerRow

ANSWER_ACTION = "checklist.answered"
_ANSWERS = ("yes", "no", "n/a", "")


@dataclass(frozen=True, slots=True)
class ChecklistAnswerRecord:
    """One stored answer."""

    system_id: str
    version: str
    item_id: str
    answer: str
    comment: str
    author: str
    organisation: str
    audit_seq: int
    answered_at: str


@dataclass(frozen=True, slots=True)
class AnswerIn:
    """An answer to record: the item, the answer and a comment."""

    item_id: str
    answer: str
    comment: str = ""


class ChecklistRows(StoreBase):
    """Checklist answers per system version."""

    def record_answers(
        self,
        *,
        system_id: str,
        version: str,
        answers: Sequence[AnswerIn],
        author: str,
        organisation: str,
        actor: str,
    ) -> list[ChecklistAnswerRecord]:
        """Append the answers that differ from the current ones, each with its audit entry.

        An answer equal to the item's current answer (same answer and comment)
        is not recorded again, so submitting the same form twice acts once.
        """
        for a in answers:
            if a.answer not in _ANSWERS:
                raise StoreError(f"answer {a.answer!r} to {a.item_id!r} is not yes, no, n/a or ''")
        recorded: list[ChecklistAnswerRecord] = []
        with self._write() as conn:
            current = {
                r.item_id: r for r in self._latest(conn, system_id=system_id, version=version)
            }
            at = _now()
            for a in answers:
                now = current.get(a.item_id)
                if now is None and not a.answer and not a.comment:
                    continue  # an item left open that was never answered
                if now is not None and (now.answer, now.comment) == (a.answer, a.comment):
                    continue
                entry = self._append(
                    conn,
                    actor=actor,
                    action=ANSWER_ACTION,
                    subject=f"{system_id}@{version}",
                    payload={"item": a.item_id, "answer": a.answer, "author": author},
                )
                conn.execute(
                    sa.insert(ChecklistAnswerRow).values(
                        system_id=system_id,
                        version=version,
                        item_id=a.item_id,
                        answer=a.answer,
                        comment=a.comment,
                        author=author,
                        organisation=organisation,
                        audit_seq=entry.seq,
                        answered_at=at,
                    )
                )
                recorded.append(
                    ChecklistAnswerRecord(
                        system_id,
                        version,
                        a.item_id,
                        a.answer,
                        a.comment,
                        author,
                        organisation,
                        entry.seq,
                        at,
                    )
                )
        return recorded

    def checklist_answers(self, *, system_id: str, version: str) -> list[ChecklistAnswerRecord]:
        """The current answer to each item answered for this system version."""
        with self._transaction(write=False) as conn:
            return self._latest(conn, system_id=system_id, version=version)

    def _latest(
        self, conn: sa.Connection, *, system_id: str, version: str
    ) -> list[ChecklistAnswerRecord]:
        rows = conn.execute(
            sa.select(ChecklistAnswerRow)
            .where(ChecklistAnswerRow.system_id == system_id, ChecklistAnswerRow.version == version)
            .order_by(ChecklistAnswerRow.id)
        ).all()
        latest = {
            r.item_id: ChecklistAnswerRecord(
                r.system_id,
                r.version,
                r.item_id,
                r.answer,
                r.comment,
                r.author,
                r.organisation,
                int(r.audit_seq),
                r.answered_at,
            )
            for r in rows
        }
        return sorted(latest.values(), key=lambda r: r.item_id)


__all__ = ["ANSWER_ACTION", "AnswerIn", "ChecklistAnswerRecord", "ChecklistRows"]
