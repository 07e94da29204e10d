"""Live runs: world runs under oversight that a server started, and the commands sent to them.

Words:

- a *live run* is one world run under oversight, started by the server in
  its own process and assigned to *overseers* (user names); its *status* is
  ``running``, then ``done`` (it ran to its end: its result says whether it
  is complete), ``incomplete`` (its process died or was killed: its decision
  log is verifiable up to its last checkpoint) or ``failed`` (it refused its
  input before the simulation began); never back;
- a *live command* is one operator command the server signed for an
  overseer and sent to the run (its id is the signed command's ``jti``); its
  *state* is what the run reported in its signed state feed: ``sent``, then
  ``accepted`` or ``refused`` (with a reason code), then ``effective``;
  ``records`` holds the state per intersection (a ``"*"`` command has one
  per intersection).

Starts, ends, commands and their late reasons are audited; state changes are
not (the run's own signed decision log records them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cityx.core import StoreError

from ._base import StoreBase, _now
from .models import LiveCommandRow, LiveRunRow

RUNNING, DONE, INCOMPLETE, FAILED = "running", "done", "incomplete", "failed"
_RUNS = LiveRunRow.__table__
_COMMANDS = LiveCommandRow.__table__


@dataclass(frozen=True, slots=True)
class LiveRunRecord:
    """A live run as stored."""

    id: str
    scenario: str
    controller: str
    seconds: int
    seed: int
    pace: float | None
    requested_by: str
    overseers: tuple[str, ...]
    status: str
    out_dir: str
    pid: int | None
    result: Mapping[str, Any] | None
    error: str | None
    created_at: str
    finished_at: str | None

    @property
    def finished(self) -> bool:
        return self.status != RUNNING


@dataclass(frozen=True, slots=True)
class LiveCommandRecord:
    """An operator command sent to a live run, with what the run reported of it."""

    id: str
    run_id: str
    operator: str
    issuer: str
    action: str
    intersection: str
    phase: int | None
    reason: str
    state: str
    reason_code: str | None
    records: Mapping[str, Any]
    note: str | None
    sent_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run": self.run_id,
            "operator": self.operator,
            "issuer": self.issuer,
            "action": self.action,
            "intersection": self.intersection,
            "phase": self.phase,
            "reason": self.reason,
            "state": self.state,
            "reason_code": self.reason_code,
            "records": dict(self.records),
            "note": self.note,
            "sent_at": self.sent_at,
            "updated_at": self.updated_at,
        }


class LiveRows(StoreBase):
    """The live_runs and live_commands tables."""

    def add_live_run(
        self,
        *,
        run_id: str,
        scenario: str,
        controller: str,
        seconds: int,
        seed: int,
        pace: float | None,
        overseers: Sequence[str],
        out_dir: str,
        actor: str,
    ) -> None:
        """Record a live run as running (``run.started`` audit entry)."""
        with self._write() as conn:
            conn.execute(
                sa.insert(LiveRunRow).values(
                    id=run_id,
                    scenario=scenario,
                    controller=controller,
                    seconds=seconds,
                    seed=seed,
                    pace=pace,
                    requested_by=actor,
                    overseers=list(overseers),
                    status=RUNNING,
                    out_dir=out_dir,
                    created_at=_now(),
                )
            )
            self._append(
                conn,
                actor=actor,
                action="run.started",
                subject=f"run {run_id}",
                payload={
                    "scenario": scenario,
                    "controller": controller,
                    "seconds": seconds,
                    "seed": seed,
                    "pace": pace,
                    "overseers": list(overseers),
                },
            )

    def live_run_pid(self, run_id: str, pid: int) -> None:
        with self._write() as conn:
            conn.execute(sa.update(LiveRunRow).where(LiveRunRow.id == run_id).values(pid=pid))

    def finish_live_run(
        self,
        run_id: str,
        *,
        status: str,
        result: Mapping[str, Any] | None,
        error: str | None,
        actor: str,
    ) -> bool:
        """End a running live run (``run.ended``); False if it had ended (the first wins)."""
        if status not in (DONE, INCOMPLETE, FAILED):
            raise StoreError(f"not an ending: {status!r}", where=self.display_url)
        with self._write() as conn:
            changed = conn.execute(
                sa.update(LiveRunRow)
                .where(LiveRunRow.id == run_id, LiveRunRow.status == RUNNING)
                .values(status=status, result=dict(result or {}), error=error, finished_at=_now())
            ).rowcount
            if not changed:
                return False
            self._append(
                conn,
                actor=actor,
                action="run.ended",
                subject=f"run {run_id}",
                payload={
                    "status": status,
                    "error": error,
                    "complete": (result or {}).get("complete"),
                },
            )
        return True

    def live_run(self, run_id: str) -> LiveRunRecord | None:
        found = self._live_runs(LiveRunRow.id == run_id, limit=1)
        return found[0] if found else None

    def live_runs(self, *, limit: int = 100, running: bool = False) -> list[LiveRunRecord]:
        """The newest live runs (only the running ones when asked)."""
        where = LiveRunRow.status == RUNNING if running else sa.true()
        return self._live_runs(where, limit=limit)

    def _live_runs(self, where: sa.ColumnElement[bool], *, limit: int) -> list[LiveRunRecord]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(_RUNS)
                .where(where)
                .order_by(LiveRunRow.created_at.desc(), LiveRunRow.id)
                .limit(limit)
            )
            return [
                LiveRunRecord(
                    id=r.id,
                    scenario=r.scenario,
                    controller=r.controller,
                    seconds=r.seconds,
                    seed=r.seed,
                    pace=r.pace,
                    requested_by=r.requested_by,
                    overseers=tuple(r.overseers or ()),
                    status=r.status,
                    out_dir=r.out_dir,
                    pid=r.pid,
                    result=r.result,
                    error=r.error,
                    created_at=r.created_at,
                    finished_at=r.finished_at,
                )
                for r in rows
            ]

    def add_live_command(
        self,
        *,
        command_id: str,
        run_id: str,
        issuer: str,
        action: str,
        intersection: str,
        phase: int | None,
        reason: str,
        actor: str,
    ) -> LiveCommandRecord:
        """Record a command as sent (``run.command`` audit entry)."""
        now = _now()
        with self._write() as conn:
            conn.execute(
                sa.insert(LiveCommandRow).values(
                    id=command_id,
                    run_id=run_id,
                    operator=actor,
                    issuer=issuer,
                    action=action,
                    intersection=intersection,
                    phase=phase,
                    reason=reason,
                    state="sent",
                    records={},
                    sent_at=now,
                    updated_at=now,
                )
            )
            self._append(
                conn,
                actor=actor,
                action="run.command",
                subject=f"run {run_id}",
                payload={
                    "command": command_id,
                    "issuer": issuer,
                    "action": action,
                    "intersection": intersection,
                    "phase": phase,
                    "reason": reason,
                },
            )
        found = self.live_command(command_id)
        assert found is not None
        return found

    def update_live_command(
        self, command_id: str, *, state: str, reason_code: str | None, records: Mapping[str, Any]
    ) -> None:
        """What the run reported of a command (not audited: the run's log holds it)."""
        with self._write() as conn:
            conn.execute(
                sa.update(LiveCommandRow)
                .where(LiveCommandRow.id == command_id)
                .values(
                    state=state, reason_code=reason_code, records=dict(records), updated_at=_now()
                )
            )

    def note_live_command(self, command_id: str, note: str, *, actor: str) -> None:
        """A command's reason, given after it was sent (``run.command.reason``)."""
        with self._write() as conn:
            changed = conn.execute(
                sa.update(LiveCommandRow)
                .where(LiveCommandRow.id == command_id)
                .values(note=note, updated_at=_now())
            ).rowcount
            if not changed:
                raise StoreError(f"no command {command_id}", where=self.display_url)
            self._append(
                conn,
                actor=actor,
                action="run.command.reason",
                subject=f"command {command_id}",
                payload={"reason": note},
            )

    def live_command(self, command_id: str) -> LiveCommandRecord | None:
        found = self._live_commands(LiveCommandRow.id == command_id)
        return found[0] if found else None

    def live_commands(self, run_id: str) -> list[LiveCommandRecord]:
        return self._live_commands(LiveCommandRow.run_id == run_id)

    def _live_commands(self, where: sa.ColumnElement[bool]) -> list[LiveCommandRecord]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(sa.select(_COMMANDS).where(where).order_by(LiveCommandRow.sent_at))
            return [
                LiveCommandRecord(
                    id=r.id,
                    run_id=r.run_id,
                    operator=r.operator,
                    issuer=r.issuer,
                    action=r.action,
                    intersection=r.intersection,
                    phase=r.phase,
                    reason=r.reason,
                    state=r.state,
                    reason_code=r.reason_code,
                    records=r.records or {},
                    note=r.note,
                    sent_at=r.sent_at,
                    updated_at=r.updated_at,
                )
                for r in rows
            ]


__all__ = [
    "DONE",
    "FAILED",
    "INCOMPLETE",
    "RUNNING",
    "LiveCommandRecord",
    "LiveRows",
    "LiveRunRecord",
]
