"""The *controller choice* record: what a scoring controller saw and chose at one step.

One record per intersection per decision. It is the one format for a
controller's decisions: the explanations read it ("why this phase and not
the runner-up") and the oversight decision log stores it. Words used here:

- *candidates*: the intersection's green phases, one feature row each
  (observation contract ``phase-candidates/v1``, :mod:`.candidates`);
- *chosen*: the phase the controller asked for (its best score, its current
  phase on a tie); *runner-up*: the best-scoring other phase, ``None`` when
  the intersection has one green phase;
- *decided by*: who produced the scores (a submitted model, or a rule such
  as max-pressure, whose score is the pressure itself);
- *envelope*: what the safety envelope then did with the request. The
  envelope, not the controller, decides while a minimum green is held, a
  clearance is running, or a maximum green forces the phase to end;
- *confidence*: the probability that the choice was right (the runner-up
  would not have done better), from a *calibration* fitted against
  roll-outs in the sandbox (:mod:`cityx.oversight.confidence`); it names
  that calibration (id and digest) and its error on held-out runs. ``None``
  when no calibration covers the controller ("not assessed");
- *out of distribution* (``ood``): the choice was made on inputs outside
  the declared bounds or the data the controller (or its calibration) was
  fitted on, or on readings of stale, dead or stuck detectors; ``None``
  when nobody checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from cityx.core.errors import InputError
from cityx.core.schema import FloatArray
from cityx.core.systems import Observation

if TYPE_CHECKING:  # candidates.py imports this module to make the records
    from .candidates import PhaseCandidates

CHOICE_SCHEMA = "controller-choice/v1"


class DecidedBy(StrEnum):
    MODEL = "model"  # a submitted controller's scores
    RULE = "rule"  # a baseline's rule (max-pressure: the pressure is the score)


class EnvelopeOutcome(StrEnum):
    KEPT = "kept"  # the controller chose the phase already shown or coming
    SWITCHED = "switched"  # the envelope honoured the request
    MIN_GREEN_HELD = "min_green_held"  # refused: the current green is younger than the minimum
    IN_TRANSITION = "in_transition"  # refused: a clearance is running
    FORCED_MAX_GREEN = "forced_max_green"  # the envelope ended a green at its maximum


@dataclass(frozen=True, slots=True)
class ChoiceConfidence:
    """How likely the choice was right, and which calibration says so."""

    p: float  # in [0, 1]
    calibration: str  # the calibration's id (controller, horizon)
    digest: str  # sha256 of the calibration file's canonical body
    method: str  # e.g. "logistic" (Platt on several features) or "isotonic-margin"
    heldout_ece: float | None  # its expected calibration error on held-out runs

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise InputError(f"a confidence is a probability in [0, 1], got {self.p}")

    def to_json(self) -> dict[str, Any]:
        return {
            "p": self.p,
            "calibration": self.calibration,
            "digest": self.digest,
            "method": self.method,
            "heldout_ece": self.heldout_ece,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ChoiceConfidence:
        ece = obj["heldout_ece"]
        return cls(
            p=float(obj["p"]),
            calibration=str(obj["calibration"]),
            digest=str(obj["digest"]),
            method=str(obj["method"]),
            heldout_ece=None if ece is None else float(ece),
        )


@dataclass(frozen=True, slots=True)
class ChoiceOod:
    """Whether the choice was made out of distribution, and why (empty reasons: in range)."""

    flag: bool
    reasons: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()  # which checks ran: "bounds", "data_range", "detectors"

    def to_json(self) -> dict[str, Any]:
        return {"flag": self.flag, "reasons": list(self.reasons), "checked": list(self.checked)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ChoiceOod:
        return cls(
            flag=bool(obj["flag"]),
            reasons=tuple(str(r) for r in obj["reasons"]),
            checked=tuple(str(c) for c in obj.get("checked", ())),
        )


@dataclass(frozen=True, slots=True)
class ControllerChoice:
    """One intersection's decision at one step, with everything needed to explain it."""

    time_s: float
    intersection: str
    decided_by: DecidedBy
    current_phase: int
    chosen_phase: int
    runner_up_phase: int | None
    phases: tuple[int, ...]  # candidate phases, in row order
    scores: tuple[float, ...]  # one per candidate
    columns: tuple[str, ...]  # the feature names of ``rows``
    rows: tuple[tuple[float, ...], ...]  # one feature row per candidate
    envelope: EnvelopeOutcome | None = None  # None until the envelope has stepped
    confidence: ChoiceConfidence | None = None  # None: no calibration covers it
    ood: ChoiceOod | None = None  # None: not checked

    def __post_init__(self) -> None:
        n = len(self.phases)
        if n == 0 or len(self.scores) != n or len(self.rows) != n:
            raise InputError(
                f"controller choice at {self.intersection!r}: {n} phases, "
                f"{len(self.scores)} scores and {len(self.rows)} rows must agree and be non-empty"
            )
        if any(len(r) != len(self.columns) for r in self.rows):
            raise InputError(
                f"controller choice at {self.intersection!r}: every row needs "
                f"{len(self.columns)} values, one per column"
            )
        if self.chosen_phase not in self.phases:
            raise InputError(
                f"controller choice at {self.intersection!r}: chosen phase "
                f"{self.chosen_phase} is not a candidate"
            )

    def row(self, phase: int) -> tuple[float, ...]:
        return self.rows[self.phases.index(phase)]

    def score(self, phase: int) -> float:
        return self.scores[self.phases.index(phase)]

    @property
    def margin(self) -> float | None:
        """Chosen score minus runner-up score (0 on a tie kept by the current phase)."""
        if self.runner_up_phase is None:
            return None
        return self.score(self.chosen_phase) - self.score(self.runner_up_phase)

    def with_envelope(self, outcome: EnvelopeOutcome) -> ControllerChoice:
        return replace(self, envelope=outcome)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": CHOICE_SCHEMA,
            "time_s": self.time_s,
            "intersection": self.intersection,
            "decided_by": self.decided_by.value,
            "current_phase": self.current_phase,
            "chosen_phase": self.chosen_phase,
            "runner_up_phase": self.runner_up_phase,
            "phases": list(self.phases),
            "scores": list(self.scores),
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "envelope": None if self.envelope is None else self.envelope.value,
            "confidence": None if self.confidence is None else self.confidence.to_json(),
            "ood": None if self.ood is None else self.ood.to_json(),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ControllerChoice:
        if obj.get("schema") != CHOICE_SCHEMA:
            raise InputError(
                f"not a {CHOICE_SCHEMA} record (schema {obj.get('schema')!r})",
                hint="controller choices are written by the sandbox's controller runs",
            )
        try:
            envelope = obj["envelope"]
            # Records written before confidence and ood existed have neither key.
            confidence, ood = obj.get("confidence"), obj.get("ood")
            return cls(
                time_s=float(obj["time_s"]),
                intersection=str(obj["intersection"]),
                decided_by=DecidedBy(obj["decided_by"]),
                current_phase=int(obj["current_phase"]),
                chosen_phase=int(obj["chosen_phase"]),
                runner_up_phase=(
                    None if obj["runner_up_phase"] is None else int(obj["runner_up_phase"])
                ),
                phases=tuple(int(p) for p in obj["phases"]),
                scores=tuple(float(s) for s in obj["scores"]),
                columns=tuple(str(c) for c in obj["columns"]),
                rows=tuple(tuple(float(v) for v in r) for r in obj["rows"]),
                envelope=None if envelope is None else EnvelopeOutcome(envelope),
                confidence=None if confidence is None else ChoiceConfidence.from_json(confidence),
                ood=None if ood is None else ChoiceOod.from_json(ood),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed {CHOICE_SCHEMA} record: {exc}") from exc


CHOICES_FILE = "choices.jsonl"  # a world run's controller choices, one record a line


@runtime_checkable
class RecordsChoices(Protocol):
    """A controller that keeps the choice records of its last decision until they are taken.

    Only the last decision is kept, so a caller that never takes them (a run that
    records nothing) holds no history; the sandbox takes them after every step.
    """

    def take_choices(self) -> tuple[ControllerChoice, ...]:
        """The last decision's records, once (an empty tuple when already taken)."""
        ...


def with_outcomes(
    choices: Sequence[ControllerChoice], outcomes: Mapping[str, str]
) -> tuple[ControllerChoice, ...]:
    """The records with the envelope's outcome of the step filled in (unknown ones stay None)."""
    known = {o.value for o in EnvelopeOutcome}
    return tuple(
        c.with_envelope(EnvelopeOutcome(outcomes[c.intersection]))
        if outcomes.get(c.intersection) in known
        else c
        for c in choices
    )


def choices_from_step(
    candidates: PhaseCandidates,
    observation: Observation,
    features: FloatArray,
    scores: FloatArray,
    chosen: Mapping[str, int],
    *,
    columns: Sequence[str],
    decided_by: DecidedBy,
) -> tuple[ControllerChoice, ...]:
    """The records of one step: each intersection's candidates, scores, choice and runner-up.

    ``features`` is the rows x ``columns`` matrix the scores were computed
    from and ``chosen`` the action's phases (from :meth:`PhaseCandidates.choose`).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    features = np.asarray(features, dtype=np.float64)
    out = []
    bounds = [*candidates.segment_start.tolist(), candidates.rows]
    for k, tls in enumerate(candidates.segment_ids):
        lo, hi = bounds[k], bounds[k + 1]
        phases = tuple(int(p) for p in candidates.row_phase[lo:hi])
        seg_scores = scores[lo:hi]
        pick = int(chosen[tls])
        others = [j for j, p in enumerate(phases) if p != pick]
        runner = phases[max(others, key=lambda j: seg_scores[j])] if others else None
        current = int(observation.phase[candidates.row_intersection[lo]])
        out.append(
            ControllerChoice(
                time_s=float(observation.time_s),
                intersection=tls,
                decided_by=decided_by,
                current_phase=current,
                chosen_phase=pick,
                runner_up_phase=runner,
                phases=phases,
                scores=tuple(float(s) for s in seg_scores),
                columns=tuple(columns),
                rows=tuple(tuple(float(v) for v in r) for r in features[lo:hi]),
            )
        )
    return tuple(out)


__all__ = [
    "CHOICES_FILE",
    "CHOICE_SCHEMA",
    "ChoiceConfidence",
    "ChoiceOod",
    "ControllerChoice",
    "DecidedBy",
    "EnvelopeOutcome",
    "RecordsChoices",
    "choices_from_step",
    "with_outcomes",
]
