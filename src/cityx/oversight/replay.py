"""Replay a run under oversight: same scenario, seed and operator commands; compare choices.

:func:`replay` reads a run folder's ``oversight.json`` (the spec) and its
decision log (the operator commands, whoever sent them: a script, a
console or a drill's operator), runs the scenario again into a new folder
with those commands at the times they were applied, and compares the
controller's records step by step: a *difference* is an intersection at a
time whose chosen phase (``choice``) or requested phases (``request``)
differ, or a record one run has and the other lacks. A deterministic
controller gives none; a difference says the controller, the scenario or
the software changed since, or that the log was not this run's.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityx.core.errors import InputError

from .commands import RUN_CONTROLS, Action, CommandQueue, OperatorCommand
from .decisions import read_entries
from .modes import StopState
from .session import OversightSpec, run_oversight

_FIRST = 20  # differences kept as evidence


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """How the replay's controller records compared with the original's."""

    original: Path
    replay: Path
    commands: int
    compared: int
    differences: int
    first: tuple[Mapping[str, Any], ...]

    @property
    def same(self) -> bool:
        return self.differences == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "original": str(self.original),
            "replay": str(self.replay),
            "commands": self.commands,
            "compared": self.compared,
            "differences": self.differences,
            "same": self.same,
            "first": [dict(d) for d in self.first],
        }


def _spec(folder: Path, out: Path) -> OversightSpec:
    try:
        obj = json.loads((folder / "oversight.json").read_text())["spec"]
        return OversightSpec(
            scenario=str(obj["scenario"]),
            controller=str(obj["controller"]),
            seconds=int(obj["seconds"]),
            seed=int(obj["seed"]),
            demand=float(obj["demand"]),
            min_green_s=float(obj["min_green_s"]),
            max_green_s=float(obj["max_green_s"]),
            stop_state=StopState(obj["stop_state"]),
            hooks=tuple((str(r), dict(o)) for r, o in obj["hooks"]),
            out=out,
        )
    except FileNotFoundError:
        where = str(folder)
        raise InputError("no oversight.json: not a run under oversight", where=where) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"oversight.json is not readable: {exc}", where=str(folder)) from exc


def _commands(folder: Path) -> list[OperatorCommand]:
    """Each command once per intersection, at the time the run applied it."""
    applied: dict[tuple[int, str], OperatorCommand] = {}
    for e in read_entries(folder):
        p = e.payload
        if e.action != "command" or "action" not in p or "id" not in p:
            continue
        if Action(p["action"]) in RUN_CONTROLS:
            continue  # pause, continue, step: wall-clock time only; the replay runs through
        at = p.get("at_s") if p.get("at_s") is not None else p.get("accepted_at_s")
        key = (int(p["id"]), str(p["intersection"]))
        if key in applied or at is None:
            continue
        applied[key] = OperatorCommand(
            intersection=str(p["intersection"]),
            action=Action(p["action"]),
            at_s=float(at),
            phase=p.get("phase"),
            reason=str(p.get("reason", "")),
            operator=str(p.get("operator", "")) or "urn:cityx:operator:replay",
        )
    return list(applied.values())


def _decisions(folder: Path) -> dict[tuple[float, str], Any]:
    out: dict[tuple[float, str], Any] = {}
    for e in read_entries(folder):
        p = e.payload
        if e.action == "choice":
            out[(float(p["time_s"]), e.subject)] = p["chosen_phase"]
        elif e.action == "request":
            for tls, phase in dict(p["phases"]).items():
                out[(float(p["time_s"]), str(tls))] = phase
    return out


def replay(folder: Path, *, out: Path | None = None) -> ReplayReport:
    """Re-run the run in ``folder`` with its logged commands; report differing choices."""
    target = out or Path(tempfile.mkdtemp(prefix="cityx-replay-"))
    spec = _spec(folder, target)
    commands = _commands(folder)
    queue = CommandQueue()
    queue.extend(commands)
    result = run_oversight(spec, commands=queue)
    before, after = _decisions(folder), _decisions(result.out)
    differences = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            differences.append(
                {
                    "time_s": key[0],
                    "intersection": key[1],
                    "original": before.get(key),
                    "replay": after.get(key),
                }
            )
    return ReplayReport(
        original=folder,
        replay=result.out,
        commands=len(commands),
        compared=len(set(before) | set(after)),
        differences=len(differences),
        first=tuple(differences[:_FIRST]),
    )


__all__ = ["ReplayReport", "replay"]
