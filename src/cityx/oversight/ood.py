"""Out-of-distribution flags on controller choices.

A choice is *out of distribution* (OOD) when what it was made on is not what
the controller, or the calibration of its confidence, can vouch for:

- *declared bounds*: a candidate feature outside the bounds its contract
  declares (``phase-candidates/v1``: :data:`cityx.worlds.traffic.candidates.FEATURES`,
  or a submission manifest's input schema), or not finite;
- *data range*: a value outside the range of the data something was fitted
  on: a controller's training data, or the dev runs a confidence calibration
  was fitted on (then the confidence is an extrapolation);
- *detectors*: a reading of the intersection came from a detector the guards
  call *stale* or *dead* (:mod:`cityx.defenses.liveness`) or *stuck* (the
  runtime guard's ``stuck`` rule, :mod:`cityx.defenses.guards`).

Each check that ran is named in the flag's ``checked``, so "in range" is
only said of what was looked at; a choice nobody checked has no flag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cityx.core.errors import InputError
from cityx.core.schema import FloatArray, InputSchema
from cityx.worlds.traffic.candidates import FEATURES as CANDIDATE_FEATURES
from cityx.worlds.traffic.choices import ChoiceOod, ControllerChoice

DETECTOR_RULES = ("dead", "stale", "stuck")


@dataclass(frozen=True, slots=True)
class InputBounds:
    """Lower and upper bounds per named column, and where they come from."""

    columns: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    source: str  # e.g. "declared:phase-candidates/v1", "data:calibration max-pressure/h20"
    kind: str = "bounds"  # "bounds" (declared) or "data_range"

    def __post_init__(self) -> None:
        if not len(self.columns) == len(self.lower) == len(self.upper):
            raise InputError(f"bounds {self.source!r}: columns, lower and upper must agree")
        if any(lo > hi for lo, hi in zip(self.lower, self.upper, strict=True)):
            raise InputError(f"bounds {self.source!r}: a lower bound is above its upper bound")

    @classmethod
    def candidates(cls) -> InputBounds:
        """The bounds the ``phase-candidates/v1`` contract declares."""
        return cls(
            columns=tuple(f.name for f in CANDIDATE_FEATURES),
            lower=tuple(float(f.min) for f in CANDIDATE_FEATURES),
            upper=tuple(float(f.max) for f in CANDIDATE_FEATURES),
            source="declared:phase-candidates/v1",
        )

    @classmethod
    def from_schema(cls, schema: InputSchema, *, source: str) -> InputBounds:
        """A manifest's declared bounds (a missing bound is unbounded)."""
        return cls(
            columns=schema.names,
            lower=tuple(schema.lower.tolist()),
            upper=tuple(schema.upper.tolist()),
            source=source,
        )

    @classmethod
    def from_data(cls, columns: Sequence[str], table: FloatArray, *, source: str) -> InputBounds:
        """The range of the data something was fitted on (rows x columns)."""
        data = np.asarray(table, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != len(columns) or data.shape[0] == 0:
            raise InputError(
                f"data range {source!r}: need a non-empty table with {len(columns)} columns, "
                f"got shape {data.shape}"
            )
        return cls(
            columns=tuple(columns),
            lower=tuple(np.nanmin(data, axis=0).tolist()),
            upper=tuple(np.nanmax(data, axis=0).tolist()),
            source=source,
            kind="data_range",
        )

    def outside(self, columns: Sequence[str], row: Sequence[float]) -> list[str]:
        """'name=value' for each of this row's values outside the bounds (or not finite)."""
        out = []
        index = {c: k for k, c in enumerate(self.columns)}
        for name, value in zip(columns, row, strict=True):
            k = index.get(name)
            if k is None:
                continue
            if not np.isfinite(value) or not self.lower[k] <= value <= self.upper[k]:
                out.append(f"{name}={value:g} outside [{self.lower[k]:g}, {self.upper[k]:g}]")
        return out


def detector_reasons(
    lanes: Sequence[str], flags: Mapping[str, Sequence[bool] | np.ndarray]
) -> list[str]:
    """'dead detector(s): lane, ...' for each rule with flagged lanes among ``lanes``."""
    out = []
    for rule in DETECTOR_RULES:
        mask = flags.get(rule)
        if mask is None:
            continue
        hit = [lane for lane, bad in zip(lanes, mask, strict=True) if bad]
        if hit:
            out.append(f"{rule} detector(s): {', '.join(hit)}")
    return out


def flag_choice(
    choice: ControllerChoice,
    *,
    row_bounds: Sequence[InputBounds] = (),
    feature_bounds: Sequence[tuple[InputBounds, Sequence[str], Sequence[float]]] = (),
    lanes: Sequence[str] | None = None,
    detector_flags: Mapping[str, Sequence[bool] | np.ndarray] | None = None,
) -> ChoiceOod:
    """The OOD flag of one choice.

    ``row_bounds`` are checked on every candidate row of the choice;
    ``feature_bounds`` are (bounds, columns, values) triples for derived inputs
    (a calibration's features); ``lanes`` with ``detector_flags`` (rule ->
    lane mask, same order) are the intersection's detectors and the guards'
    verdicts on them.
    """
    reasons: list[str] = []
    checked: list[str] = []
    for bounds in row_bounds:
        if bounds.kind not in checked:
            checked.append(bounds.kind)
        seen: set[str] = set()
        for phase, row in zip(choice.phases, choice.rows, strict=True):
            for why in bounds.outside(choice.columns, row):
                if why not in seen:
                    seen.add(why)
                    reasons.append(f"phase {phase}: {why} ({bounds.source})")
    for bounds, columns, values in feature_bounds:
        if bounds.kind not in checked:
            checked.append(bounds.kind)
        reasons += [f"{why} ({bounds.source})" for why in bounds.outside(columns, values)]
    if lanes is not None and detector_flags is not None:
        checked.append("detectors")
        reasons += detector_reasons(lanes, detector_flags)
    return ChoiceOod(flag=bool(reasons), reasons=tuple(reasons), checked=tuple(checked))


__all__ = ["DETECTOR_RULES", "InputBounds", "detector_reasons", "flag_choice"]
