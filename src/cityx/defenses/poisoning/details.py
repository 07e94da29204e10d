"""The ``poisoning.audit`` check's details, and its section of the report.

The details give the audit's *verdict* (clean, poisoned or undetermined)
and reasons, the compromised *sources*, what each detector found, the
flagged rows (positions in the training table), the *trigger candidate*
read off them, *coverage* (per kind of poisoning: could it be found here,
and why not), and *sanitising*: a reference model trained before and
after dropping the flagged rows, or a note saying why it was not.
Numbers are kept as recorded (rounded), so every reader sees the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from cityx.core import Details, Fields, Metric
from cityx.governance import Section, Table, fmt_value

from .sanitise import RetrainComparison
from .triggers import DataTrigger

_NAME = "poisoning.audit details"
# The before/after-sanitising table: rows (label, comparison field stem) and columns.
_SANITISING_MEASURES = (("Accuracy", "accuracy"), ("Attack success", "attack_success"))
_SANITISED = ("before", "after", "robust")


@dataclass(frozen=True, slots=True)
class Sanitising:
    """What dropping the flagged rows bought (``comparison``), or why it was not measured."""

    comparison: RetrainComparison | None = None
    model: str = ""
    holdout_rows: int = 0
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        if self.comparison is None:
            return {"note": self.note}
        return self.comparison.to_json() | {"model": self.model, "holdout_rows": self.holdout_rows}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Sanitising:
        f = Fields.of(data, where)
        if not f.has("accuracy_before"):
            return cls(note=f.text("note"))
        return cls(
            RetrainComparison.from_json(f.data, where),
            f.text("model"),
            f.integer("holdout_rows"),
        )


@dataclass(frozen=True, slots=True)
class PoisoningDetails(Details):
    """What the poisoning audit found; ``trigger`` and ``sanitising`` are None when the
    data was judged clean (or, for sanitising, there was no holdout to score on)."""

    verdict: str
    reasons: tuple[str, ...]
    sources: tuple[str, ...]
    detectors: Mapping[str, Mapping[str, Any]]
    source_columns: tuple[str, ...]
    flagged_rows: tuple[int, ...]
    trigger: DataTrigger | None = None
    sanitising: Sanitising | None = None
    # Per kind of poisoning (label flips, triggers, sources): could the detectors that
    # applied find it here, and why (not). Empty in results written before it existed.
    coverage: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "sources": list(self.sources),
            "detectors": {k: dict(v) for k, v in self.detectors.items()},
            "source_columns": list(self.source_columns),
            "flagged_rows": list(self.flagged_rows),
            "trigger": None if self.trigger is None else self.trigger.to_json(),
            "sanitising": None if self.sanitising is None else self.sanitising.to_json(),
            "coverage": {k: dict(v) for k, v in self.coverage.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, _NAME)
        detectors = f.field("detectors")
        trigger = f.obj_or_null("trigger")
        sanitising = f.obj_or_null("sanitising")
        coverage = f.field("coverage") if f.has("coverage") else None
        return cls(
            verdict=f.text("verdict"),
            reasons=f.texts("reasons"),
            sources=f.texts("sources"),
            detectors={k: detectors.obj(k) for k in detectors.data},
            source_columns=f.texts("source_columns"),
            flagged_rows=f.integers("flagged_rows"),
            trigger=None if trigger is None else DataTrigger.from_json(trigger, f"{_NAME}.trigger"),
            sanitising=None
            if sanitising is None
            else Sanitising.from_json(sanitising, f"{_NAME}.sanitising"),
            coverage={k: coverage.obj(k) for k in coverage.data} if coverage else {},
        )


def poisoning_section(
    details: PoisoningDetails, metrics: Mapping[str, Metric], key: str
) -> Section:
    """The trigger candidate's jumps, and the model before and after sanitising."""
    tables: list[Table] = []
    if details.coverage:
        tables.append(
            Table(
                f"What the audit could rule out (verdict: {details.verdict})",
                ("Kind of poisoning", "Covered", "Why"),
                tuple(
                    (kind, "yes" if c.get("covered") else "no", str(c.get("reason", "")))
                    for kind, c in details.coverage.items()
                ),
            )
        )
    trigger = details.trigger
    if trigger is not None:
        tables.append(
            Table(
                f"Trigger candidate towards {trigger.target!r}: median jump of the readings at "
                f"{fmt_value(trigger.rows)} flagged rows after an unflagged one",
                ("Reading", "Jump", "Robust spreads"),
                tuple(
                    (k, fmt_value(v), fmt_value(trigger.effects.get(k)))
                    for k, v in trigger.offsets.items()
                ),
                frozenset({1, 2}),
            )
        )
    sanitising = details.sanitising
    if sanitising is not None and sanitising.comparison is not None:
        measured = sanitising.comparison.to_json()
        tables.append(
            Table(
                f"Before and after sanitising ({fmt_value(sanitising.comparison.rows_dropped)} "
                f"flagged rows dropped): {sanitising.model}, scored on "
                f"{fmt_value(sanitising.holdout_rows)} holdout rows; attack success = "
                "share of other-label holdout rows the trigger candidate turns into its target",
                ("Measure", "Before", "After (flagged dropped)", "Robust (down-weighted)"),
                tuple(
                    (name, *(fmt_value(measured[f"{stem}_{when}"]) for when in _SANITISED))
                    for name, stem in _SANITISING_MEASURES
                ),
                frozenset({1, 2, 3}),
            )
        )
    elif sanitising is not None:
        tables.append(Table("Sanitising", ("Note",), ((sanitising.note,),)))
    return Section(
        tables=tuple(tables),
        shown=frozenset({"sanitising", "trigger", "flagged_rows", "coverage"}),
    )


__all__ = ["PoisoningDetails", "Sanitising", "poisoning_section"]
