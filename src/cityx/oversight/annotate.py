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
from cityx.worlds.traffic.choices import ChoiceConfidence, ChoiceOod, ControllerChoice

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
        # Per step, not per choice: the calibration's digest and bounds as arrays, once.
        self._digest = calibration.digest if calibration is not None else ""
        ece = calibration.provenance.get("heldout", {}).get("ece") if calibration else None
        self._ece = None if ece is None else float(ece)
        self._rows = [
            (b.columns, np.asarray(b.lower), np.asarray(b.upper)) for b in self.row_bounds
        ]
        fb = self.feature_bounds
        self._features = None if fb is None else (np.asarray(fb.lower), np.asarray(fb.upper))
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
        if not choices:
            return ()
        features = [choice_features(c) for c in choices]
        x = np.asarray(features)
        p = cal.predict(x) if cal is not None else None
        clean = self._clean(choices, x)
        for k, choice in enumerate(choices):
            confidence = None
            if cal is not None and p is not None and choice.runner_up_phase is not None:
                confidence = ChoiceConfidence(
                    p=min(max(float(p[k]), 0.0), 1.0),
                    calibration=cal.id,
                    digest=self._digest,
                    method=cal.method,
                    heldout_ece=self._ece,
                )
            part = self.slices[choice.intersection]
            flags = {rule: mask[part] for rule, mask in detector_flags.items()}
            if clean[k] and not any(bool(m.any()) for m in flags.values()):
                ood = ChoiceOod(flag=False, reasons=(), checked=self.checked)
            else:
                fb = self.feature_bounds
                ood = flag_choice(
                    choice,
                    row_bounds=self.row_bounds,
                    feature_bounds=[(fb, FEATURES, features[k])] if fb is not None else [],
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
        self, choices: Sequence[ControllerChoice], features: NDArray[np.float64]
    ) -> NDArray[np.bool_]:
        """Per choice: every value inside every bound (the fast path; the step at once)."""
        sizes = [len(c.rows) for c in choices]
        rows = np.asarray([r for c in choices for r in c.rows], dtype=np.float64)
        ok_rows = np.isfinite(rows).all(axis=1)
        for columns, lo, hi in self._rows:
            if any(c.columns != columns for c in choices):
                return np.zeros(len(choices), dtype=bool)  # the slow path matches by name
            ok_rows &= ((rows >= lo) & (rows <= hi)).all(axis=1)
        starts = np.cumsum([0, *sizes[:-1]])
        ok = np.logical_and.reduceat(ok_rows, starts)
        if self._features is not None:
            lo, hi = self._features
            ok &= np.isfinite(features).all(axis=1) & ((features >= lo) & (features <= hi)).all(
                axis=1
            )
        return np.asarray(ok, dtype=bool)


__all__ = ["ChoiceAnnotator"]
