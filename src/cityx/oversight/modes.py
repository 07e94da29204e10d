"""Operating modes per intersection, and operator commands applied through the envelope.

Each intersection is in one *mode*:

- ``adaptive``: the controller under oversight (a submission or a
  baseline) asks for phases;
- ``fixed-time``: the network's own fixed-time plan: each green is kept
  for its program duration, then the program's next green is asked for;
- ``manual``: an operator holds the green shown, or asked for a phase
  (then holds it);
- ``stopping`` / ``stopped``: a safe stop: the envelope clears to all-red
  (never cutting a minimum green or a clearance), then the city's *stop
  state*: the fixed-time plan (the intersection then changes to
  ``fixed-time``) or flashing (it stays ``stopped``).

Every mode only *asks* the safety envelope
(:class:`~cityx.worlds.traffic.SafetyEnvelope`) for phases, stops and
releases: the envelope decides what the signals show, so no mode change
can shorten a minimum green or a clearance. The :class:`Supervisor` turns
commands into modes, says when each took effect, and logs mode changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cityx.worlds.traffic import NetworkInfo, SafetyEnvelope, StopStatus

from .commands import (
    ALL,
    Action,
    CommandRecord,
    CommandState,
    OperatorCommand,
    RefusalCode,
)


class Mode(StrEnum):
    ADAPTIVE = "adaptive"
    FIXED_TIME = "fixed-time"
    MANUAL = "manual"
    STOPPING = "stopping"
    STOPPED = "stopped"


class StopState(StrEnum):
    """What a stopped intersection shows after its all-red."""

    FIXED_TIME = "fixed-time"
    FLASHING = "flashing"


@dataclass(frozen=True, slots=True)
class ModeChange:
    time_s: float
    intersection: str
    before: Mode
    after: Mode
    by: str  # an operator's URN, or "oversight" for automatic changes
    reason: str
    command: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "time_s": self.time_s,
            "intersection": self.intersection,
            "from": self.before.value,
            "to": self.after.value,
            "by": self.by,
            "reason": self.reason,
            "command": self.command,
        }


class Supervisor:
    """Holds each intersection's mode and turns it into envelope requests."""

    def __init__(
        self,
        network: NetworkInfo,
        envelope: SafetyEnvelope,
        *,
        stop_state: StopState = StopState.FIXED_TIME,
        initial: Mode = Mode.ADAPTIVE,
    ) -> None:
        self.envelope = envelope
        self.stop_state = stop_state
        self._programs = {i.id: i.phases for i in network.intersections}
        self.ids = tuple(i.id for i in network.intersections)
        self.modes: dict[str, Mode] = dict.fromkeys(self.ids, initial)
        self._manual: dict[str, int | None] = dict.fromkeys(self.ids)
        self._pending: dict[str, list[CommandRecord]] = {t: [] for t in self.ids}
        self.changes: list[ModeChange] = []  # drained by the caller
        self.superseded: list[CommandRecord] = []  # drained by the caller

    # -- commands -------------------------------------------------------------------

    def expand(self, command: OperatorCommand) -> tuple[str, ...]:
        return self.ids if command.intersection == ALL else (command.intersection,)

    def apply(self, cid: int, command: OperatorCommand, tls: str, now: float) -> CommandRecord:
        """Accept or refuse ``command`` for ``tls`` at ``now``; accepted ones change the mode."""
        record = CommandRecord(id=cid, command=command, intersection=tls)
        refusal = self._refusal(command, tls)
        if refusal is not None:
            return replace(record, state=CommandState.REFUSED, reason_code=refusal.value)
        record = replace(record, state=CommandState.ACCEPTED, accepted_at_s=now)
        for old in self._pending[tls]:  # a newer command replaces what has not acted yet
            self.superseded.append(replace(old, reason_code=RefusalCode.SUPERSEDED.value))
        self._pending[tls] = [record]
        by, why = command.operator, command.reason or command.action.value
        action = command.action
        if action is Action.HOLD:
            green, _, _ = self.envelope.phase(tls)
            self._manual[tls] = green
            self._set(tls, Mode.MANUAL, now, by, why, cid)
        elif action is Action.PHASE:
            self._manual[tls] = command.phase
            self._set(tls, Mode.MANUAL, now, by, why, cid)
        elif action is Action.FIXED_TIME:
            self._leave_stop(tls)
            self._set(tls, Mode.FIXED_TIME, now, by, why, cid)
        elif action is Action.RESUME:
            self._leave_stop(tls)
            self._set(tls, Mode.ADAPTIVE, now, by, why, cid)
        else:  # STOP
            self.envelope.stop(tls, flashing=self.stop_state is StopState.FLASHING)
            if self.modes[tls] is not Mode.STOPPED:
                self._set(tls, Mode.STOPPING, now, by, why, cid)
        return record

    def _refusal(self, command: OperatorCommand, tls: str) -> RefusalCode | None:
        if tls not in self.modes:
            return RefusalCode.UNKNOWN_INTERSECTION
        if command.action is Action.PHASE:
            program = self._programs[tls]
            assert command.phase is not None
            if not 0 <= command.phase < len(program):
                return RefusalCode.UNKNOWN_PHASE
            if not program[command.phase].is_green:
                return RefusalCode.NOT_GREEN
        if command.action in (Action.HOLD, Action.PHASE) and self.modes[tls] in (
            Mode.STOPPING,
            Mode.STOPPED,
        ):
            return RefusalCode.STOPPED
        return None

    def _leave_stop(self, tls: str) -> None:
        if self.envelope.stop_status(tls) is not StopStatus.NONE or self.modes[tls] in (
            Mode.STOPPING,
            Mode.STOPPED,
        ):
            green, _, _ = self.envelope.phase(tls)
            self.envelope.release(tls, green)

    def _set(self, tls: str, mode: Mode, now: float, by: str, reason: str, cid: int | None) -> None:
        before = self.modes[tls]
        if before is mode:
            return
        self.modes[tls] = mode
        self.changes.append(ModeChange(now, tls, before, mode, by, reason, cid))

    def fall_back(self, tls: str, now: float, reason: str, *, manual_too: bool = True) -> None:
        """Automatic fallback to the fixed-time plan (a failed controller, a lost channel).

        ``manual_too``: also an operator's manual hold (orphaned when the
        operator's channel is lost; kept when only the controller failed).
        """
        if self.modes[tls] is Mode.ADAPTIVE or (manual_too and self.modes[tls] is Mode.MANUAL):
            self._set(tls, Mode.FIXED_TIME, now, "oversight", reason, None)

    # -- each step ------------------------------------------------------------------

    def requests(self, wanted: Mapping[str, int]) -> dict[str, int]:
        """The phases to ask the envelope for, given the controller's ``wanted`` ones."""
        out: dict[str, int] = {}
        for tls, mode in self.modes.items():
            if mode is Mode.ADAPTIVE:
                if tls in wanted:
                    out[tls] = int(wanted[tls])
            elif mode is Mode.FIXED_TIME:
                out[tls] = self.plan_phase(tls)
            elif mode is Mode.MANUAL:
                phase = self._manual[tls]
                out[tls] = self.envelope.phase(tls)[0] if phase is None else phase
        return out

    def plan_phase(self, tls: str) -> int:
        """The fixed-time plan's phase: keep each green its program time, then the next."""
        green, age, clearing = self.envelope.phase(tls)
        program = self._programs[tls]
        if clearing or age < program[green].duration:
            return green
        n = len(program)
        for step in range(1, n + 1):
            k = (green + step) % n
            if program[k].is_green:
                return k
        return green

    def settle(self, now: float, shown: Mapping[str, str]) -> list[CommandRecord]:
        """After a step (``shown``: the states SUMO showed), the commands that took effect."""
        done: list[CommandRecord] = []
        for tls in self.ids:
            status = self.envelope.stop_status(tls)
            if self.modes[tls] is Mode.STOPPING and _all_red(shown.get(tls, "")):
                self._set(tls, Mode.STOPPED, now, "oversight", "all-red reached", None)
            if (
                self.modes[tls] is Mode.STOPPED
                and self.stop_state is StopState.FIXED_TIME
                and status is StopStatus.STOPPED
            ):
                green, _, _ = self.envelope.phase(tls)
                self.envelope.release(tls, green)
                self._set(tls, Mode.FIXED_TIME, now, "oversight", "stop state: fixed-time", None)
            keep = []
            for record in self._pending[tls]:
                if self._effective(record, tls, shown.get(tls, "")):
                    done.append(replace(record, state=CommandState.EFFECTIVE, effective_at_s=now))
                else:
                    keep.append(record)
            self._pending[tls] = keep
        return done

    def _effective(self, record: CommandRecord, tls: str, state: str) -> bool:
        action = record.command.action
        if action is Action.STOP:
            return _all_red(state) or self.modes[tls] is Mode.STOPPED
        if action is Action.PHASE:
            green, _, clearing = self.envelope.phase(tls)
            return green == record.command.phase and not clearing
        return True  # hold, fixed-time, resume: in force from the next step

    def pending(self) -> list[CommandRecord]:
        return [r for records in self._pending.values() for r in records]


def _all_red(state: str) -> bool:
    return bool(state) and all(c in "rs" for c in state)


__all__ = ["Mode", "ModeChange", "StopState", "Supervisor"]
