"""Confidence and out-of-distribution flags on a run's controller choices.

:class:`ChoiceAnnotator` fills the ``confidence`` and ``ood`` fields of the
``controller-choice/v1`` records a run under oversight makes (words as in
:mod:`.confidence` and :mod:`.ood`). It is built once per run: the
calibration covers one controller (max-pressure for the shipped one), so
choices of any other controller get no confidence ("not assessed"), while
the OOD checks (declared bounds, the calibration's dev range, detectors)
apply to every choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from cityx.worlds.traffic import NetworkInfo
from cityx.worlds.traffic.choices import ChoiceOod, ControllerChoice

from .confidence import FEATURES, Calibration, choice_features
from .ood import InputBounds, flag_choice


class ChoiceAnnotator:
    """Adds a calibrated confidence and an OOD flag to each choice record."""

    def __init__(
        self,
        network: NetworkInfo,
        *,
        calibration: Calibration | None,
        row_bounds: Sequence[InputBounds] = (),
    ) -> None:
        self.calibration = calibration
        self.row_bounds = tuple(row_bounds) or (InputBounds.candidates(),)
        self.feature_bounds = calibration.input_bounds() if calibration is not None else None
        self.lanes = {i.id: tuple(i.lanes) for i in network.intersections}
        start = 0
        self.slices: dict[str, slice] = {}
        for i in network.intersections:  # an observation's lanes, intersection by intersection
            self.slices[i.id] = slice(start, start + len(i.lanes))
            start += len(i.lanes)
        self.checked = tuple(
            dict.fromkeys(
                [b.kind for b in self.row_bounds]
                + (["data_range"] if self.feature_bounds is not None else [])
                + ["detectors"]
            )
        )
        self.flagged = 0  # choices flagged OOD so far
        self.annotated = 0
        self.confident = 0  # choices given a calibrated confidence

    def annotate(
        self,
        choices: Sequence[ControllerChoice],
        detector_flags: Mapping[str, NDArray[np.bool_]],
    ) -> tuple[ControllerChoice, ...]:
        """The records with ``confidence`` and ``ood`` filled in.

        ``detector_flags``: rule (``dead``, ``stale``, ``stuck``) -> a mask over
        the observation's lanes.
        """
        out = []
        cal = self.calibration
        for choice in choices:
            confidence = cal.confidence(choice) if cal is not None else None
            features = choice_features(choice)
            part = self.slices[choice.intersection]
            flags = {rule: mask[part] for rule, mask in detector_flags.items()}
            if self._clean(choice, features, flags):
                ood = ChoiceOod(flag=False, reasons=(), checked=self.checked)
            else:
                fb = self.feature_bounds
                ood = flag_choice(
                    choice,
                    row_bounds=self.row_bounds,
                    feature_bounds=[(fb, FEATURES, features)] if fb is not None else [],
                    lanes=self.lanes[choice.intersection],
                    detector_flags=flags,
                )
                self.flagged += ood.flag
            self.annotated += 1
            self.confident += confidence is not None
            out.append(replace(choice, confidence=confidence, ood=ood))
        return tuple(out)

    def counts(self) -> dict[str, int]:
        """Choices annotated, given a confidence, and flagged out of distribution."""
        return {"choices": self.annotated, "with_confidence": self.confident, "ood": self.flagged}

    def _clean(
        self,
        choice: ControllerChoice,
        features: tuple[float, ...],
        flags: Mapping[str, NDArray[np.bool_]],
    ) -> bool:
        """The fast path: no detector flagged and every value inside every bound."""
        if any(bool(m.any()) for m in flags.values()):
            return False
        rows = np.asarray(choice.rows, dtype=np.float64)
        for b in self.row_bounds:
            if b.columns != choice.columns:
                return False  # other columns: let the slow path match them by name
            if not (
                np.isfinite(rows).all() and (rows >= b.lower).all() and (rows <= b.upper).all()
            ):
                return False
        fb = self.feature_bounds
        if fb is not None:
            x = np.asarray(features)
            if not (np.isfinite(x).all() and (x >= fb.lower).all() and (x <= fb.upper).all()):
                return False
        return True


__all__ = ["ChoiceAnnotator"]
