"""Operator commands: what a human overseer can tell an intersection, and what became of it.

An *operator command* names an intersection (or ``"*"``: every one), an
*action* and the operator's reason:

- ``hold``: keep the green shown now (manual mode);
- ``phase``: ask for green phase ``phase`` (its index in the network's
  program, as controllers and the envelope use it), then hold it;
- ``fixed-time``: run the network's own fixed-time plan;
- ``stop``: clear to all-red, then the city's *stop state* (the fixed-time
  plan or flashing); a stop acts at once and its reason may follow later
  (:meth:`CommandQueue.annotate`);
- ``resume``: back to adaptive control (the controller under oversight).

Four more actions are *run controls*: they act on the run, not on an
intersection, and always name ``"*"``: ``pause`` stops simulated time where
it is (the signals keep what they show: nothing changes while no time
passes), ``continue`` lets it run again, ``step`` advances a paused run
by one simulated second, and ``pace`` sets its pace (``pace``: simulated
seconds per wall-clock second, ``0`` as fast as it goes; see :mod:`.pacing`).
They come over the live channel (or a server's queue), never from an
operator script, where a pause could never end.

Each command goes through states: *sent* (queued), then *accepted* or
*refused* with a *reason code* (:class:`RefusalCode`), then *effective*
once the signals show its result: at the next step, or as soon as a
minimum green or a clearance allows, which ``effective_at_s`` records.
Commands arrive through a :class:`CommandQueue`: a scripted operator file
(TOML, :func:`load_operator_file`) fills it before the run; a server or a
bus subscriber may feed it while the run goes (it is thread-safe).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from cityx.core.errors import InputError

ALL = "*"
DEFAULT_OPERATOR = "urn:cityx:operator:scripted"


class Action(StrEnum):
    HOLD = "hold"
    PHASE = "phase"
    FIXED_TIME = "fixed-time"
    STOP = "stop"
    RESUME = "resume"
    PAUSE = "pause"
    CONTINUE = "continue"
    STEP = "step"
    PACE = "pace"


RUN_CONTROLS = frozenset({Action.PAUSE, Action.CONTINUE, Action.STEP, Action.PACE})
"""Actions on the run itself (simulated time), not on an intersection's signals."""


class CommandState(StrEnum):
    SENT = "sent"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    EFFECTIVE = "effective"


class RefusalCode(StrEnum):
    UNKNOWN_INTERSECTION = "unknown_intersection"
    UNKNOWN_PHASE = "unknown_phase"
    NOT_GREEN = "not_green"  # a yellow or all-red phase cannot be asked for
    STOPPED = "stopped"  # hold/phase at a stopped intersection: resume or fixed-time first
    NOT_PERMITTED = "not_permitted"  # the operator may not command this intersection
    AFTER_END = "after_end"  # the run ended before the command's time
    SUPERSEDED = "superseded"  # a later command replaced it before it took effect
    FORGED = "forged"  # unknown key, bad signature or malformed (signed commands)
    KEY_NOT_VALID = "key_not_valid"  # the operator's key is revoked or out of its window
    EXPIRED = "expired"  # signed too long ago (or in the future)
    REPLAYED = "replayed"  # a signed command seen before
    OTHER_RUN = "other_run"  # signed for another run (a live run's commands name it)
    NOT_PAUSED = "not_paused"  # continue or step while the run is not paused


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    """What an operator asked for; ``at_s`` is seconds since the run began (None: now)."""

    intersection: str
    action: Action
    at_s: float | None = None
    phase: int | None = None
    reason: str = ""
    operator: str = DEFAULT_OPERATOR
    pace: float | None = None  # a "pace" command's pace (0: as fast as it goes)

    def __post_init__(self) -> None:
        if (self.action is Action.PACE) != (self.pace is not None):
            raise InputError("a 'pace' command, and only it, takes a pace", where="pace")
        if self.pace is not None and not 0 <= self.pace <= 1e6:
            raise InputError(f"pace must be >= 0 (0: as fast as it goes), got {self.pace}")
        if self.action is Action.PHASE and self.phase is None:
            raise InputError("a 'phase' command needs a phase", where="phase")
        if self.action is not Action.PHASE and self.phase is not None:
            raise InputError(f"only a 'phase' command takes a phase, not {self.action.value!r}")
        if self.at_s is not None and not self.at_s >= 0:
            raise InputError(f"at_s must be >= 0, got {self.at_s}", where="at_s")
        if self.action in RUN_CONTROLS and self.intersection != ALL:
            raise InputError(
                f"{self.action.value!r} acts on the whole run: its intersection is '*'",
                where="intersection",
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "at_s": self.at_s,
            "intersection": self.intersection,
            "action": self.action.value,
            "phase": self.phase,
            "reason": self.reason,
            "operator": self.operator,
        } | ({} if self.pace is None else {"pace": self.pace})


class Verifier(Protocol):
    """What checks a signed command (:class:`~.signed.CommandVerifier`)."""

    def verify(self, token: str) -> tuple[OperatorCommand | None, RefusalCode | None, str]: ...


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command for one intersection and what became of it (times: seconds since the start)."""

    id: int
    command: OperatorCommand
    intersection: str
    state: CommandState = CommandState.SENT
    reason_code: str | None = None
    accepted_at_s: float | None = None
    effective_at_s: float | None = None

    @property
    def accepted(self) -> bool:
        return self.state in (CommandState.ACCEPTED, CommandState.EFFECTIVE)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at_s": self.command.at_s if self.command.at_s is not None else self.accepted_at_s,
            "intersection": self.intersection,
            "action": self.command.action.value,
            "phase": self.command.phase,
            "operator": self.command.operator,
            "reason": self.command.reason,
            "state": self.state.value,
            "accepted": self.accepted,
            "reason_code": self.reason_code,
            "accepted_at_s": self.accepted_at_s,
            "effective_at_s": self.effective_at_s,
        } | ({} if self.command.pace is None else {"pace": self.command.pace})


@dataclass(slots=True)
class CommandQueue:
    """Thread-safe inbox of operator commands; the run takes them when they are due."""

    _pending: list[tuple[int, OperatorCommand]] = field(default_factory=list)
    _notes: list[tuple[int, str, str]] = field(default_factory=list)
    _rejected: list[tuple[int, str, str]] = field(default_factory=list)
    _heard: float = field(default_factory=time.monotonic)  # when the channel last spoke
    _alarm_actions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _controls: list[tuple[int, OperatorCommand]] = field(default_factory=list)
    # A signed command's jti (the sender's id for it) by queue id, and back.
    _refs: dict[int, str] = field(default_factory=dict)
    _by_ref: dict[str, tuple[int, str]] = field(default_factory=dict)
    _next: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Set on every arrival, so that a paused or pacing run wakes at once.
    _arrived: threading.Event = field(default_factory=threading.Event)

    def touch(self) -> None:
        """The operator's channel is alive (an authenticated heartbeat, or any command)."""
        with self._lock:
            self._heard = time.monotonic()

    def silent_for(self) -> float:
        """Wall-clock seconds since the channel last spoke."""
        with self._lock:
            return time.monotonic() - self._heard

    def submit(self, command: OperatorCommand, *, ref: str | None = None) -> int:
        """Queue ``command``; returns its id (state *sent*). ``ref``: the sender's id."""
        with self._lock:
            self._heard = time.monotonic()
            cid, self._next = self._next, self._next + 1
            if command.action in RUN_CONTROLS:
                self._controls.append((cid, command))
            else:
                self._pending.append((cid, command))
            if ref is not None:
                self._refs[cid] = ref
                self._by_ref.setdefault(ref, (cid, command.operator))
        self._arrived.set()
        return cid

    def submit_signed(self, token: str, verifier: Verifier) -> int:
        """Queue a signed command if it verifies; else keep its refusal for the log."""
        command, code, detail = verifier.verify(token)
        ref = token_ref(token)  # the jti; of a refused token only a label, never trusted
        if command is not None:
            return self.submit(command, ref=ref)
        return self.refuse(str(code), detail, ref=ref)

    def refuse(self, code: str, detail: str, *, ref: str | None = None) -> int:
        """Keep a signed message refused before it was queued (for the log); its id."""
        with self._lock:
            cid, self._next = self._next, self._next + 1
            self._rejected.append((cid, code, detail))
            if ref is not None:
                self._refs[cid] = ref
        self._arrived.set()
        return cid

    def submit_note(self, about: str, reason: str, operator: str) -> int | None:
        """A verified reason for the command the sender calls ``about`` (its jti); the
        queue id it names, or None when no command of that operator has that ref."""
        with self._lock:
            found = self._by_ref.get(about)
            if found is None or found[1] != operator:
                return None
            self._notes.append((found[0], reason, operator))
        self._arrived.set()
        return found[0]

    def ref(self, command_id: int) -> str | None:
        """The sender's id of a command (its jti), when it came signed."""
        with self._lock:
            return self._refs.get(command_id)

    def controls(self) -> list[tuple[int, OperatorCommand]]:
        """Remove and return the run controls (pause, continue, step) in arrival order."""
        with self._lock:
            out, self._controls = self._controls, []
        return out

    def wait(self, timeout_s: float) -> bool:
        """Sleep until something arrives or ``timeout_s`` passes; whether something came."""
        came = self._arrived.wait(max(0.0, timeout_s))
        self._arrived.clear()
        return came

    def rejected(self) -> list[tuple[int, str, str]]:
        """Signed commands refused before they were queued: (id, reason code, detail)."""
        with self._lock:
            out, self._rejected = self._rejected, []
        return out

    def extend(self, commands: Iterable[OperatorCommand]) -> list[int]:
        return [self.submit(c) for c in commands]

    def annotate(self, command_id: int, reason: str, *, operator: str = DEFAULT_OPERATOR) -> None:
        """Give a command (a stop, typically) its reason after it was sent."""
        with self._lock:
            self._notes.append((command_id, reason, operator))

    def due(self, elapsed_s: float) -> list[tuple[int, OperatorCommand]]:
        """Remove and return the commands due at ``elapsed_s`` (live ones at once), in order."""
        with self._lock:
            ready = [
                (cid, c) for cid, c in self._pending if c.at_s is None or c.at_s <= elapsed_s + 1e-9
            ]
            self._pending = [p for p in self._pending if p not in ready]
        ready.sort(key=lambda p: (p[1].at_s or 0.0, p[0]))
        return ready

    def acknowledge(self, alert_id: int, *, operator: str = DEFAULT_OPERATOR) -> None:
        """Acknowledge an alert (ISA-18.2): it stays until it clears, but it is known."""
        with self._lock:
            self._alarm_actions.append(("ack", {"alert": alert_id, "operator": operator}))

    def shelve(
        self, kind: str, intersection: str, for_s: float, *, operator: str = DEFAULT_OPERATOR
    ) -> None:
        """Shelve alerts of ``kind`` at ``intersection`` for ``for_s`` simulated seconds."""
        with self._lock:
            self._alarm_actions.append(
                (
                    "shelve",
                    {
                        "kind": kind,
                        "intersection": intersection,
                        "for_s": for_s,
                        "operator": operator,
                    },
                )
            )

    def alarm_actions(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            out, self._alarm_actions = self._alarm_actions, []
        return out

    def notes(self) -> list[tuple[int, str, str]]:
        with self._lock:
            out, self._notes = self._notes, []
        return out

    def remaining(self) -> list[tuple[int, OperatorCommand]]:
        with self._lock:
            out, self._pending = self._pending, []
        return out


_KEYS = {"at_s", "intersection", "action", "phase", "reason", "operator", "pace"}


def parse_commands(obj: Mapping[str, Any], *, where: str) -> list[OperatorCommand]:
    """Commands from an operator script's parsed TOML (``[[command]]`` tables)."""
    extra = set(obj) - {"command"}
    if extra:
        raise InputError(
            f"unknown top-level key(s) {', '.join(sorted(extra))}; only [[command]] tables",
            where=where,
        )
    rows = obj.get("command", [])
    if not isinstance(rows, list):
        raise InputError("'command' must be an array of tables ([[command]])", where=where)
    out = []
    for k, row in enumerate(rows, start=1):
        at = f"{where}: command {k}"
        if not isinstance(row, dict):
            raise InputError("a command must be a table", where=at)
        unknown = set(row) - _KEYS
        if unknown:
            raise InputError(
                f"unknown key(s) {', '.join(sorted(unknown))}",
                where=at,
                hint=f"known: {', '.join(sorted(_KEYS))}",
            )
        for key in ("at_s", "intersection", "action"):
            if key not in row:
                raise InputError(f"missing {key!r}", where=at)
        try:
            action = Action(row["action"])
        except ValueError:
            raise InputError(
                f"unknown action {row['action']!r}",
                where=at,
                hint=f"one of {', '.join(a.value for a in Action)}",
            ) from None
        at_s, phase = row["at_s"], row.get("phase")
        if isinstance(at_s, bool) or not isinstance(at_s, int | float):
            raise InputError(f"at_s must be a number of seconds, got {at_s!r}", where=at)
        if phase is not None and (isinstance(phase, bool) or not isinstance(phase, int)):
            raise InputError(f"phase must be an integer, got {phase!r}", where=at)
        if not isinstance(row["intersection"], str) or not row["intersection"]:
            raise InputError("intersection must be an id or '*'", where=at)
        pace = row.get("pace")
        if pace is not None and (isinstance(pace, bool) or not isinstance(pace, int | float)):
            raise InputError(f"pace must be a number, got {pace!r}", where=at)
        try:
            out.append(
                OperatorCommand(
                    intersection=row["intersection"],
                    action=action,
                    at_s=float(at_s),
                    phase=phase,
                    reason=str(row.get("reason", "")),
                    operator=str(row.get("operator", DEFAULT_OPERATOR)),
                    pace=None if pace is None else float(pace),
                )
            )
        except InputError as exc:
            raise replace_where(exc, at) from None
    return out


def replace_where(exc: InputError, where: str) -> InputError:
    return InputError(exc.message, where=where, hint=exc.hint)


def token_ref(token: str) -> str | None:
    """The ``jti`` claim of a compact JWS, unverified (a label to match records by)."""
    try:
        body = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        jti = claims.get("jti") if isinstance(claims, dict) else None
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    return jti[:64] if isinstance(jti, str) and jti else None


def load_operator_file(path: Path) -> list[OperatorCommand]:
    """An operator script: TOML with ``[[command]]`` tables (see the module docstring)."""
    try:
        obj = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such operator file", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the operator file: {exc}", where=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", where=str(path)) from exc
    commands = parse_commands(obj, where=str(path))
    for k, command in enumerate(commands, start=1):
        if command.action in RUN_CONTROLS:
            raise InputError(
                f"{command.action.value!r} is a live run control, not a scripted command",
                where=f"{path}: command {k}",
                hint="pause, continue and step come over the live channel (--bus)",
            )
    return commands


def with_state(record: CommandRecord, **changes: Any) -> CommandRecord:
    return replace(record, **changes)


__all__ = [
    "ALL",
    "DEFAULT_OPERATOR",
    "RUN_CONTROLS",
    "Action",
    "CommandQueue",
    "CommandRecord",
    "CommandState",
    "OperatorCommand",
    "RefusalCode",
    "load_operator_file",
    "parse_commands",
    "token_ref",
]
