"""The audit's verdict, and what the evidence could and could not rule out.

Words used here:

- a poisoning *kind*: ``label-flips`` (labels changed, readings not),
  ``triggers`` (a pattern of readings planted with a label: backdoors and
  clean-label poisoning) and ``sources`` (every row of a few compromised
  sensors or providers);
- a kind is *covered* when detectors able to find it applied to this table:
  label flips need a direct check of the labels (the next interval measured
  them), or class labels so predictable from the other readings that flips
  would stand out (an out-of-fold model confidently contradicts
  at most :data:`LABEL_FLOOR` of them); triggers within the readings'
  ranges are covered by no detector today: the box search (:mod:`.boxes`)
  finds most but not all of them, and finding none is no proof (measured:
  see docs/poisoning.md); in a table of sources, a compromised sensor that
  misreports within the normal range is not covered either; a table without
  sources has none to compromise. So *clean* is out of reach until a
  detector covers triggers: the audit answers *poisoned* or *undetermined*;
- *clean* only when every kind is covered and the evidence
  found nothing beyond a clean table's noise; *poisoned* when the evidence
  is beyond doubt (a compromised source, readings no road produces, crowded
  single-label bands, or far more flagged rows than noise explains);
  *undetermined* otherwise, with what could not be ruled out and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

MIN_PER_CLASS = 10
# The smallest poisoning rate a kind must be findable at to count as covered.
SMALLEST_RATE = 0.03
MIN_SOURCES = 5
MIN_FLAGGED = 10
# Labels that disagree with every label detector this rarely leave no room for flips at
# the rates that matter (3 % and up) to hide.
LABEL_FLOOR = 0.01
# Single-label bands make a table poisoned when they hold this share of its rows and
# their strongest band is well past its threshold (clean tables show a few marginal ones).
TRIGGER_SHARE, TRIGGER_PEAK = 0.005, 1.5


class AuditVerdict(StrEnum):
    CLEAN = "clean"
    POISONED = "poisoned"
    UNDETERMINED = "undetermined"


class PoisonKind(StrEnum):
    LABEL_FLIPS = "label-flips"
    TRIGGERS = "triggers"
    SOURCES = "sources"


@dataclass(frozen=True, slots=True)
class Coverage:
    """Whether a kind of poisoning could be found in this table, and why (not)."""

    kind: PoisonKind
    covered: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"covered": self.covered, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Findings:
    """What the detectors found, summed up for the verdict."""

    flagged: np.ndarray  # per row
    bars: tuple[float, float]  # the clean and poisoned flagged shares for this table
    class_counts: np.ndarray
    bad_sources: tuple[str, ...]
    impossible: int  # rows past a physical ceiling or the declared range
    trigger_rows: int
    trigger_peak: float
    coverage: tuple[Coverage, ...]


def label_coverage(*, checked_share: float, noise: float, regression: bool) -> Coverage:
    """Whether label flips could be found: see *covered* in the module docstring.

    A trusted set alone does not cover them: it calibrates how often clean labels
    look wrong, but where that is often, flipped rows look no different (measured
    on the evaluation protocol's plain tables, docs/poisoning.md).
    """
    kind = PoisonKind.LABEL_FLIPS
    if checked_share >= 0.5:
        return Coverage(kind, True, f"the next interval checks {checked_share:.0%} of the labels")
    if regression:
        return Coverage(
            kind,
            False,
            "replaced label values cannot be ruled out: the label is a number, and a value "
            "within its normal spread looks natural where no next interval checks it",
        )
    if noise <= LABEL_FLOOR:
        return Coverage(
            kind,
            True,
            f"an out-of-fold model contradicts only {noise:.1%} of the labels",
        )
    return Coverage(
        kind,
        False,
        f"label flips up to about {max(noise, SMALLEST_RATE):.0%} cannot be ruled out: an "
        f"out-of-fold model contradicts {noise:.1%} of the labels anyway, and the table has "
        "no time structure to check labels against",
    )


def decide(found: Findings) -> tuple[AuditVerdict, tuple[str, ...]]:
    clean_share, poisoned_share = found.bars
    counts = found.class_counts
    reasons: list[str] = []
    if counts[counts > 0].min() < MIN_PER_CLASS:
        return AuditVerdict.UNDETERMINED, (
            f"a class has only {int(counts[counts > 0].min())} rows (need {MIN_PER_CLASS})",
        )
    share = float(found.flagged.mean())
    count = int(found.flagged.sum())
    summary = f"{count} rows ({share:.1%}) flagged"
    if found.bad_sources:
        bad = found.bad_sources
        return AuditVerdict.POISONED, (
            f"{len(bad)} source(s) look compromised: {', '.join(bad[:10])}",
            summary,
        )
    if found.impossible >= MIN_FLAGGED:
        # Readings no road produces are not noise, however few.
        return AuditVerdict.POISONED, (
            f"{found.impossible} rows hold readings no road produces (beyond a physical "
            "ceiling, or outside the declared range)",
            summary,
        )
    n = found.flagged.size
    if (
        found.trigger_rows >= max(MIN_FLAGGED, TRIGGER_SHARE * n)
        and found.trigger_peak >= TRIGGER_PEAK
    ):
        return AuditVerdict.POISONED, (
            f"{found.trigger_rows} rows sit in crowded narrow bands of a reading whose rows "
            "carry one label far more often than the rows around them (a trigger)",
            summary,
        )
    if share >= poisoned_share and count >= MIN_FLAGGED:
        return AuditVerdict.POISONED, (
            f"{summary}, more than the {poisoned_share:.0%} a clean table of this kind shows",
        )
    uncovered = [c for c in found.coverage if not c.covered]
    if share <= clean_share and not uncovered:
        return AuditVerdict.CLEAN, (f"{summary}, within noise", *reasons)
    if share > clean_share:
        reasons.append(
            f"{summary}: between the clean ({clean_share:.0%}) and poisoned "
            f"({poisoned_share:.0%}) levels"
        )
    else:
        reasons.append(f"{summary}, within noise, but not every kind could be checked")
    reasons += [c.reason for c in uncovered]
    return AuditVerdict.UNDETERMINED, tuple(reasons)


__all__ = [
    "LABEL_FLOOR",
    "MIN_FLAGGED",
    "SMALLEST_RATE",
    "AuditVerdict",
    "Coverage",
    "Findings",
    "PoisonKind",
    "decide",
    "label_coverage",
]
