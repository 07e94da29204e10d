"""A finished run read back from its decision log: the ledger as a timeline, its state at any time.

Words (the records are those of :mod:`.decisions`):

- an *event* is one record an overseer reads in a timeline: a mode change,
  an operator command's state (sent, accepted, refused with its reason code,
  effective), a reason given after a command, an alert raised, cleared,
  acknowledged or shelved, a violation the monitor saw. Controller choices
  (one per intersection and decision) and checkpoints are not events: the
  choices make the state, the checkpoints seal the log;
- the *time* of a record is the simulated second since the run began that
  it names (``time_s``, ``at_s``, ``accepted_at_s``, ``effective_at_s``;
  controller choices and requests name SUMO's clock, from which the
  scenario's begin is taken off); a record that names none (a live command
  as sent) takes the time of the record before it, since the log is written
  in time order;
- the *state at* ``t`` (:func:`state_at`) has the shape of the live state
  feed's message (:meth:`.steps.RunState.snapshot`), rebuilt from the
  records up to ``t``: modes, the phase shown at the last decision, the
  intersection's queue (the choice rows' ``queue_total``; unknown without
  scored choices), the AI's choice with its reasons, the alerts active and
  the latest state of each command. Queues per approach are not logged, so
  a replay has none.

Nothing here runs a simulation: it reads what the run wrote
(:func:`.replay.replay` is the one that runs it again).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityx.core.audit import AuditEntry
from cityx.core.errors import CityxError, InputError
from cityx.worlds.traffic.choices import ControllerChoice
from cityx.worlds.traffic.scenarios import config_files

from .decisions import CHECKPOINT, read_entries
from .steps import choice_view

SHOWN_COMMANDS = 20  # the newest commands a replayed state lists
_TIME_KEYS = ("time_s", "effective_at_s", "accepted_at_s", "at_s")


@dataclass(frozen=True, slots=True)
class Event:
    """One line of the timeline."""

    seq: int
    time_s: float
    kind: str  # the record's kind (mode, command, command.reason, alert, violation)
    subject: str
    actor: str
    summary: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """A run's decision log read back (records in log order, each with its time)."""

    run: str
    end_s: float
    intersections: tuple[str, ...]
    events: tuple[Event, ...]
    records: tuple[tuple[float, AuditEntry], ...]
    choices: int

    def times(self) -> tuple[float, ...]:
        """The distinct times something happened (steps of the replay)."""
        return tuple(sorted({e.time_s for e in self.events}))


def _time(payload: Mapping[str, Any]) -> float | None:
    for key in _TIME_KEYS:
        value = payload.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _summary(e: AuditEntry) -> str | None:
    p = e.payload
    if e.action == "mode":
        if "modes" in p:
            modes = sorted(set(map(str, dict(p["modes"]).values())))
            return f"start: every intersection {', '.join(modes)}"
        return f"mode {p.get('from')} → {p.get('to')} by {p.get('by')}: {p.get('reason')}"
    if e.action == "command":
        if "action" not in p:  # a signed command refused before it was queued
            return f"command #{p.get('id')} refused ({p.get('reason_code')}): {p.get('detail')}"
        what = str(p["action"]) + (f" {p['phase']}" if p.get("phase") is not None else "")
        state = str(p.get("state"))
        if state == "refused" and p.get("reason_code"):
            state += f" ({p['reason_code']})"
        elif p.get("reason_code"):  # e.g. superseded while pending
            state += f", {p['reason_code']}"
        reason = f": {p['reason']}" if p.get("reason") else ""
        note = f" ({p['note']})" if p.get("note") else ""
        return f"command #{p.get('id')} {what} {state}{reason}{note}"
    if e.action == "command.reason":
        return f"reason for command #{p.get('command')}: {p.get('reason')}"
    if e.action == "alert":
        if "cleared" in p:
            return f"alert #{p['cleared']} ({p.get('kind')}) cleared"
        if "acknowledged" in p:
            return f"alert #{p['acknowledged']} acknowledged by {e.actor}"
        if "shelved" in p:
            return f"{p['shelved']} alerts shelved until {p.get('until_s')} s by {e.actor}"
        return (
            f"alert #{p.get('id')} {p.get('kind')} ({p.get('priority', '')}): {p.get('message')}"
            f"; suggested: {p.get('suggestion')}"
        )
    if e.action == "violation":
        return f"violation {p.get('kind')}: {p.get('detail')}"
    return None


def read_timeline(folder: Path) -> Timeline:
    """The timeline of the run in ``folder`` (its ``decisions.jsonl`` and ``oversight.json``)."""
    entries = read_entries(folder)
    end_s, run = 0.0, folder.name
    try:
        result = json.loads((folder / "oversight.json").read_text(encoding="utf-8"))
        end_s = float(result["spec"]["seconds"])
        run = str(result.get("run_id", run))
    except FileNotFoundError:
        pass  # a run still going, or one that crashed: the log alone says what happened
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"oversight.json is not readable: {exc}", where=str(folder)) from exc
    try:
        begin = config_files(folder / "scenario.sumocfg").begin
    except CityxError:
        begin = 0.0  # no scenario copy: choices' times are taken as they are
    now = 0.0
    timed: list[tuple[float, AuditEntry]] = []
    events: list[Event] = []
    intersections: list[str] = []
    choices = 0
    for e in entries:
        if e.action == CHECKPOINT:
            continue
        if e.action == "mode" and "modes" in e.payload and not intersections:
            intersections = sorted(map(str, dict(e.payload["modes"])))
        at = _time(e.payload)
        if at is not None and e.action in ("choice", "request"):
            at -= begin
        now = max(now, at) if at is not None else now
        when = at if at is not None else now
        timed.append((when, e))
        if e.action == "choice":
            choices += 1
            continue
        said = _summary(e)
        if said is not None:
            events.append(Event(e.seq, when, e.action, e.subject, e.actor, said))
    return Timeline(
        run=run,
        end_s=max(end_s, now),
        intersections=tuple(intersections),
        events=tuple(events),
        records=tuple(timed),
        choices=choices,
    )


def state_at(timeline: Timeline, t: float) -> dict[str, Any]:
    """The run's state at simulated second ``t``, shaped like a live state message."""
    modes: dict[str, str] = {}
    choice: dict[str, ControllerChoice] = {}
    alerts: dict[int, dict[str, Any]] = {}
    commands: dict[tuple[int, str], dict[str, Any]] = {}
    reasons: dict[int, str] = {}
    for when, e in timeline.records:
        if when > t + 1e-9:
            break
        p = e.payload
        if e.action == "mode":
            if "modes" in p:
                modes.update({str(k): str(v) for k, v in dict(p["modes"]).items()})
            else:
                modes[str(p.get("intersection", e.subject))] = str(p.get("to"))
        elif e.action == "choice":
            try:
                choice[e.subject] = ControllerChoice.from_json(p)
            except InputError:
                continue  # a request without scores: nothing to explain
        elif e.action == "alert":
            if "cleared" in p:
                alerts.pop(int(p["cleared"]), None)
            elif "id" in p and "kind" in p:
                alerts[int(p["id"])] = dict(p)
        elif e.action == "command" and "action" in p and "id" in p:
            commands[(int(p["id"]), str(p.get("intersection", e.subject)))] = dict(p)
        elif e.action == "command.reason":
            reasons[int(p.get("command", 0))] = str(p.get("reason", ""))
    ids = timeline.intersections or tuple(sorted(modes))
    out: dict[str, Any] = {}
    for tls in ids:
        c = choice.get(tls)
        queue = None
        if c is not None and "queue_total" in c.columns:
            queue = c.row(c.chosen_phase)[c.columns.index("queue_total")]
        out[tls] = {
            "mode": modes.get(tls, "unknown"),
            "signals": "",
            "green": None if c is None else c.current_phase,
            "queue": queue,
            "choice": None if c is None else choice_view(c),
        }
    newest = sorted(commands, key=lambda k: -k[0])[:SHOWN_COMMANDS]
    listed = []
    for key in sorted(newest):
        record = dict(commands[key])
        if key[0] in reasons and not record.get("reason"):
            record["reason"] = reasons[key[0]]
        listed.append(record)
    return {
        "time_s": t,
        "intersections": out,
        "alerts": [
            {
                "id": a["id"],
                "kind": a["kind"],
                "intersection": a.get("intersection", ""),
                "priority": a.get("priority", ""),
                "message": a.get("message", ""),
                "suggestion": a.get("suggestion", ""),
                "evidence": a.get("evidence") or {},
            }
            for a in alerts.values()
        ],
        "commands": listed,
    }


__all__ = ["Event", "Timeline", "read_timeline", "state_at"]
