"""Which kinds of poisoning the detectors that applied to a table could find, and why (not).

See *covered* in :mod:`.verdict`; the evidence behind each choice is in
docs/poisoning.md ("Verdicts").
"""

from __future__ import annotations

import numpy as np

from ._data import AuditData, FloatArray
from .detectors import DetectorRole
from .scores import DetectorScores
from .verdict import MIN_SOURCES, Coverage, PoisonKind, label_coverage


def kinds_covered(
    data: AuditData,
    results: list[DetectorScores],
    roles: list[DetectorRole],
    levels: FloatArray,
    checked: np.ndarray,
) -> tuple[Coverage, ...]:
    """Which kinds of poisoning the detectors that applied here could find."""
    # Label noise: the share of labels an out-of-fold model confidently contradicts, at its
    # own thresholds (calibrated ones hold a trusted set's share at 0.5 % by construction).
    n = levels.shape[0]
    learned = [r.level[:n] for r in results if r.name == "confident_learning" and r.applicable]
    noise = float((np.max(learned, axis=0) >= 1.0).mean()) if learned else 1.0
    boxes = [r for r, role in zip(results, roles, strict=True) if role is DetectorRole.TRIGGER]
    candidates = [c for r in boxes for c in r.candidates]
    if not any(r.applicable for r in boxes):
        triggers = Coverage(
            PoisonKind.TRIGGERS,
            False,
            "triggers cannot be ruled out: no trigger detector applied ("
            + "; ".join(r.note for r in boxes)
            + ")",
        )
    elif candidates:
        triggers = Coverage(
            PoisonKind.TRIGGERS,
            False,
            "a trigger cannot be ruled out: "
            + "; ".join(candidates[:3])
            + (f" (and {len(candidates) - 3} more)" if len(candidates) > 3 else "")
            + ". A trigger leaves rows like these, and so does natural traffic at times; "
            "a trusted set would tell them apart",
        )
    else:
        # Measured on the evaluation protocol (docs/poisoning.md): the search misses some
        # triggers within the readings' ranges (a clean-label trigger of the majority class,
        # jitter spread over several bins), also with a trusted set. Finding no box is not
        # evidence of no trigger, so this kind stays open, and no table is called clean.
        triggers = Coverage(
            PoisonKind.TRIGGERS,
            False,
            "no box of rows of one label crowded in a few readings was found, but a trigger "
            "within the readings' ranges cannot be ruled out: the search does not find "
            "every one (see docs/poisoning.md)",
        )
    if len(data.sources) < MIN_SOURCES:
        # No sources to single out: rows planted through a sensor matter only through the
        # labels or readings they carry, which the two kinds above cover.
        sources = Coverage(
            PoisonKind.SOURCES,
            True,
            f"not applicable: {len(data.sources)} source(s), none to single out",
        )
    else:
        sources = _sources()
    return (
        label_coverage(
            checked_share=float(checked.mean()), noise=noise, regression=data.regression
        ),
        triggers,
        sources,
    )


def _sources() -> Coverage:
    # Measured on the evaluation protocol (docs/poisoning.md): a sensor that misreports one
    # kind of reading within its normal range, labels untouched, is found by its offsets
    # against its peers only where they are observed over the same runs, and not always;
    # without time structure natural differences between sensors are as large as its traces.
    return Coverage(
        PoisonKind.SOURCES,
        False,
        "a sensor misreporting one kind of reading (a gain, an offset, frozen values or "
        "noise) within the normal range cannot be ruled out: the audit finds such sensors "
        "only when they drift, move static readings, break a physical rule, or relate their "
        "readings unlike their peers by far more than sensors differ by nature",
    )


__all__ = ["kinds_covered"]
