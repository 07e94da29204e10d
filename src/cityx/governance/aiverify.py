"""Export a trial's results in AI Verify's formats.

An AI Verify *test result* is what one of its plugins' algorithms writes:
``gid`` (the plugin), ``cid`` (the algorithm), ``version``, ``startTime``,
``timeTaken``, ``testArguments``, ``output`` and ``artifacts``; AI Verify's
portal reads it. A check that has an AI Verify counterpart *exports* to it
(:class:`ExportsToAIVerify`): from its own typed details and the trial's
results it gives an :class:`AIVerifyResult`, and this module adds the
trial's timing and writes the file (named after the algorithm, ``CID.json``)
with any *companion* files the check adds beside it. The export finds the
checks through the plugin registry and knows none of their details.

Beside the test results it writes ``principles.json`` (each AI Verify
principle: what the trial tested and what the process checklist says) and
``checklist.json`` (the checklist, answered from the trial where it can be).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from cityx.core import (
    DataError,
    Details,
    InputError,
    PluginKind,
    Principle,
    Registry,
    TrialResults,
)

from .checklist import answer_from_trial, load_checklist, principle_summary, write_answers

PRINCIPLES_FILE = "principles.json"
CHECKLIST_FILE = "checklist.json"
# Statuses of a check that measured something.
_EXPORTED = ("passed", "failed", "undetermined")


@dataclass(frozen=True, slots=True)
class AIVerifyResult:
    """One AI Verify test result as a check gives it; the export adds when and how long.

    ``companions`` are other files to write beside it, by file name.
    """

    gid: str
    cid: str
    version: str
    arguments: Mapping[str, Any]
    output: Mapping[str, Any]
    artifacts: tuple[str, ...] = ()
    companions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"{self.cid}.json"

    def to_json(self, *, start_time: str, time_taken: float) -> dict[str, Any]:
        return {
            "gid": self.gid,
            "cid": self.cid,
            "version": self.version,
            "startTime": start_time,
            "timeTaken": time_taken,
            "testArguments": dict(self.arguments),
            "output": dict(self.output),
            "artifacts": list(self.artifacts),
        }


@runtime_checkable
class ExportsToAIVerify(Protocol):
    """A check class whose results AI Verify has a plugin for."""

    details_type: ClassVar[type[Details]]

    @staticmethod
    def aiverify_result(details: Any, trial: TrialResults) -> AIVerifyResult:
        """The test result for ``details`` (of the class's ``details_type``) in ``trial``."""
        ...


def file_uri(path: str | None) -> str:
    """A ``file://`` URI for a recorded path, as AI Verify's test arguments want; "" for none."""
    return Path(path).resolve().as_uri() if path else ""


def export_trial(trial: Path, out: Path, *, registry: Registry | None = None) -> list[Path]:
    """Write the AI Verify test results, their companions, principles and checklist into ``out``."""
    trial = Path(trial)
    try:
        document = json.loads((trial / "results.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("not a trial folder: results.json is missing", where=str(trial)) from None
    except ValueError as exc:
        raise DataError(f"results.json is not valid JSON: {exc}", where=str(trial)) from None
    registry = registry or Registry()
    results = TrialResults.from_json(document, registry=registry)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for check in results.checks or ():
        if check.id is None or check.details is None or check.status not in _EXPORTED:
            continue
        try:
            cls = registry.load(PluginKind.CHECK, check.id)
        except InputError:
            continue  # not installed here: nothing knows its AI Verify counterpart
        if not isinstance(cls, ExportsToAIVerify):
            continue
        details = check.details
        if not isinstance(details, cls.details_type):
            # Details that do not fit its type: the type's reader raises a DataError saying how.
            details = cls.details_type.from_json(details.to_json())
        result = cls.aiverify_result(details, results)
        written.append(
            _write(
                out / result.file_name,
                result.to_json(
                    start_time=_start_time(results.created_at),
                    time_taken=round(check.wall_s or 0.0, 4),
                ),
            )
        )
        written += [_write(out / name, doc) for name, doc in result.companions.items()]
    answers = answer_from_trial(load_checklist(), trial)
    written.append(write_answers(answers, out / CHECKLIST_FILE))
    summary = principle_summary(answers)
    tested = results.principles or {}
    principles = {
        p.value: {
            "name": p.display_name,
            "tested": tested[p.value].status if p.value in tested else "not_tested",
            "checklist": summary[p.value]["status"],
        }
        for p in Principle
    }
    written.append(
        _write(out / PRINCIPLES_FILE, {"trial_id": results.trial_id, "principles": principles})
    )
    return written


def _start_time(created: str | None) -> str:
    if not created:
        return datetime.now().isoformat()
    return datetime.fromisoformat(created.replace("Z", "+00:00")).isoformat()


def _write(path: Path, obj: Mapping[str, Any]) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


__all__ = [
    "CHECKLIST_FILE",
    "PRINCIPLES_FILE",
    "AIVerifyResult",
    "ExportsToAIVerify",
    "export_trial",
    "file_uri",
]
