"""Evidence a trial folder does not hold: the regulator's ruling and runs under oversight.

A trial folder holds what the trial measured. Two more things bear on the
report, and are gathered by the caller (``cityx.runs.report_inputs``), which
reads the store and verifies signatures; this module only holds their values:

- the *ruling*: the regulator's signed decision on the trial (``approve``,
  ``approve-with-conditions`` or ``reject``), from the store. Its
  *signature check* is the long-lived signature profile's verdict
  (:mod:`cityx.interop.longterm`) against a trust store: ``verified``,
  ``failed`` (with the reason), or ``not checked`` when no trust store was
  given. The ruling's body is shown as stored; a signature that does not
  verify is said beside it, never hidden.
- an *oversight run*: a run under human oversight (``cityx oversee run`` or
  ``drill``) of the same system, with its *decision log* verification
  (chain and seals, :mod:`cityx.oversight.decisions`), its EU AI Act Art.
  14(4) table (what each point's features showed in the run), and, for a
  drill, the drill's measures and whether it met its goals. A run is
  evidence about the trial's system only when its *controller* is the
  trial's submission (the same submission folder); a run of another
  controller (a baseline such as ``max-pressure``) is shown, and its rows
  say it is about another controller, but it is never counted as evidence.

Both become :class:`~.requirements.ExternalCheck` rows of evidence:
``oversight.drill``, ``oversight.decision-log`` and ``oversight.art14(4)(x)``
for each point x of Art. 14(4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .requirements import ExternalCheck

RULING_PURPOSE = "server.ruling"
"""The long-lived signature purpose of a ruling (the server signs with it)."""

VERIFIED = "verified"
FAILED = "failed"
NOT_CHECKED = "not checked"


@dataclass(frozen=True, slots=True)
class Ruling:
    """The regulator's ruling on a trial, as stored, with its signature check."""

    trial_id: str
    decision: str
    reasons: tuple[str, ...]
    conditions: tuple[str, ...]
    regulator: str
    ruled_at: str
    signature: str
    audit_seq: int
    signature_check: str = NOT_CHECKED
    signature_detail: str = ""
    kid: str = ""
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.trial_id,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "conditions": list(self.conditions),
            "regulator": self.regulator,
            "ruled_at": self.ruled_at,
            "signature": self.signature,
            "audit_seq": self.audit_seq,
            "signature_check": self.signature_check,
            "signature_detail": self.signature_detail or None,
            "kid": self.kid or None,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class DecisionLogCheck:
    """A decision log's verification: chain, seals, and whether the key came from outside."""

    ok: bool
    entries: int
    sealed: int
    reason: str = ""
    key_anchored: bool = False
    kid: str = ""
    warnings: tuple[str, ...] = ()

    def text(self) -> str:
        if not self.ok:
            return f"NOT intact: {self.reason}"
        anchor = "key from a trust store" if self.key_anchored else "key from the run folder only"
        return f"intact: {self.sealed} of {self.entries} records sealed ({anchor})"


@dataclass(frozen=True, slots=True)
class OversightRun:
    """A run under oversight offered as evidence."""

    run_id: str
    folder: str
    scenario: str
    seconds: float | None
    complete: bool
    decision_log: DecisionLogCheck
    controller: str = ""
    same_system: bool = True
    art14: tuple[Mapping[str, Any], ...] = ()
    drill: Mapping[str, Any] | None = None
    violations: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "folder": self.folder,
            "scenario": self.scenario,
            "seconds": self.seconds,
            "controller": self.controller,
            "same_system": self.same_system,
            "complete": self.complete,
            "violations": self.violations,
            "decision_log": {
                "ok": self.decision_log.ok,
                "entries": self.decision_log.entries,
                "sealed": self.decision_log.sealed,
                "reason": self.decision_log.reason or None,
                "key_anchored": self.decision_log.key_anchored,
                "kid": self.decision_log.kid or None,
                "warnings": list(self.decision_log.warnings),
            },
            "art14": [dict(r) for r in self.art14],
            "drill": None if self.drill is None else dict(self.drill),
        }

    def checks(self) -> tuple[ExternalCheck, ...]:
        """This run's evidence rows: the decision log, the drill, and each Art. 14(4) point."""
        ref = f"oversight run {self.run_id}"
        if not self.same_system:
            ref += f" of controller {self.controller or '?'}, not the trial's submission"
        log = self.decision_log
        out = [
            ExternalCheck(
                "oversight.decision-log",
                "decision log",
                ref,
                "passed" if log.ok else "failed",
                f"decision log {log.text()}",
            )
        ]
        if self.drill is not None:
            d = self.drill
            measures = ", ".join(
                f"{name.removesuffix('_s').replace('_', ' ')} {_seconds(d.get(name))}"
                for name in ("time_to_alert_s", "time_to_fallback_s", "stop_to_safe_s")
            )
            out.append(
                ExternalCheck(
                    "oversight.drill",
                    "check",
                    ref,
                    "passed" if d.get("passed") else "failed",
                    f"drill {d.get('attack', '?')}: {'passed' if d.get('passed') else 'failed'}; "
                    f"{measures}; {self.violations} monitor violation(s)",
                    "an alert and a fallback, a stop within clearance, 0 violations",
                )
            )
        for row in self.art14:
            point = str(row.get("point", "?"))
            shown = row.get("status") == "shown"
            evidence = row.get("evidence")
            detail = _evidence_text(evidence) if isinstance(evidence, Mapping) else ""
            out.append(
                ExternalCheck(
                    f"oversight.art14{point.removeprefix('14')}",
                    "check",
                    ref,
                    "passed" if shown else "skipped",
                    f"Art. {point} shown in the run: {detail}" if shown else "did not exercise it",
                )
            )
        if not self.same_system:
            # Shown, never counted: the run says nothing about this trial's system.
            return tuple(
                replace(c, status="skipped", detail="is about another controller") for c in out
            )
        return tuple(out)


def _seconds(value: Any) -> str:
    return "not reached" if value is None else f"{float(value):.1f} s"


def _evidence_text(evidence: Mapping[str, Any], *, limit: int = 4) -> str:
    parts = []
    for key, value in list(evidence.items())[:limit]:
        unit = ""
        if key.endswith("_s"):
            key, unit = key.removesuffix("_s"), " s"
        if value is None:
            value, unit = "not measured", ""
        elif isinstance(value, float):
            value = f"{value:.1f}"
        elif isinstance(value, Mapping):
            value = sum(v for v in value.values() if isinstance(v, int))
        elif isinstance(value, Sequence) and not isinstance(value, str):
            value = ", ".join(str(v) for v in value) or "none"
        parts.append(f"{key.replace('_', ' ')} {value}{unit}")
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class ExternalEvidence:
    """Everything from outside the trial folder, for one report."""

    ruling: Ruling | None = None
    ruling_note: str = "no store given: the regulator's ruling is not shown"
    oversight: tuple[OversightRun, ...] = ()
    answers_note: str = ""
    extra: tuple[ExternalCheck, ...] = field(default=())

    def checks(self) -> tuple[ExternalCheck, ...]:
        return tuple(c for run in self.oversight for c in run.checks()) + self.extra


__all__ = [
    "FAILED",
    "NOT_CHECKED",
    "RULING_PURPOSE",
    "VERIFIED",
    "DecisionLogCheck",
    "ExternalEvidence",
    "OversightRun",
    "Ruling",
]
