"""Poisoning detectors: the plugin contract, and the detectors cityx ships.

A *poisoning detector* (plugin kind ``poisoning-detector``) gives every row
of a training table a suspicion *level* against its own threshold (see
:mod:`.scores`): ``score(data, seed=)`` takes the audit's prepared arrays
(:class:`~._data.AuditData`) and returns a :class:`~.scores.DetectorScores`
named after the plugin's id, one level per row. Its *role* says how the
audit weighs it (:func:`cityx.defenses.poisoning.audit.audit`):

- ``label``: evidence that the label is wrong; a row needs every label
  detector to agree, since each alone is often wrong on clean data;
- ``label-check``: a direct check of the label where it applies (its
  ``checked`` rows); there it replaces the ``label`` evidence;
- ``feature``: unusual readings; one flags a row alone only far past its
  threshold;
- ``rule``: a hard physical rule; a row past it is flagged, and many such
  rows make the table poisoned;
- ``trigger``: a pattern of readings that goes with one label (a backdoor's
  signature); a row that carries it is flagged, and many such rows make the
  table poisoned;
- ``context``: weighs only in attributing poison to a source.

``label`` and ``feature`` thresholds are recalibrated on a trusted set when
one is given; ``label-check`` and ``rule`` levels are probabilities and
physical limits, and keep theirs. The same seed gives the same levels.
The evidence itself lives in :mod:`.label_evidence` and
:mod:`.feature_evidence`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import ClassVar, final

import numpy as np

from cityx.core import NistFunction, PluginError, PluginKind, PluginMeta, Principle, Tags

from ._data import AuditData
from .boxes import trigger_boxes
from .feature_evidence import (
    bounds,
    class_isolation,
    cross_sensor,
    declared_bounds,
    physical,
    spectral,
    temporal,
)
from .label_evidence import (
    confident_learning,
    label_consistency,
    next_interval,
    out_of_fold_proba,
)
from .readings import reading_consistency
from .scores import DetectorScores


class DetectorRole(StrEnum):
    LABEL = "label"
    LABEL_CHECK = "label-check"
    FEATURE = "feature"
    RULE = "rule"
    TRIGGER = "trigger"
    CONTEXT = "context"

    @property
    def calibrated(self) -> bool:
        """Whether a trusted set recalibrates this role's threshold."""
        return self not in (DetectorRole.LABEL_CHECK, DetectorRole.RULE, DetectorRole.TRIGGER)


class PoisoningDetector(ABC):
    """Base class of poisoning detectors; constructors take nothing and do no work."""

    meta: ClassVar[PluginMeta]
    role: ClassVar[DetectorRole]

    @final
    def score(self, data: AuditData, *, seed: int) -> DetectorScores:
        """Every row's level; a detector that breaks the contract is a PluginError."""
        found = self._score(data, seed=seed)
        if found.name != self.meta.id or found.level.shape != (data.n,):
            raise PluginError(
                f"detector {self.meta.id!r} returned scores named {found.name!r} of shape "
                f"{found.level.shape}, expected {self.meta.id!r} and ({data.n},)",
                where=f"poisoning-detector {self.meta.id}",
            )
        if not np.isfinite(found.level).all():
            raise PluginError(
                f"detector {self.meta.id!r} returned non-finite levels",
                where=f"poisoning-detector {self.meta.id}",
            )
        return found

    @abstractmethod
    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        """Score every row of ``data``."""


def _meta(plugin_id: str, summary: str, *, reference: str = "") -> PluginMeta:
    return PluginMeta(
        id=plugin_id,
        kind=PluginKind.POISONING_DETECTOR,
        version="1",
        summary=summary,
        tags=Tags(Principle.DATA_GOVERNANCE, NistFunction.MEASURE, ("AML.T0020",), ("Art. 10",)),
        supports=frozenset({"training-data"}),
        reference=reference,
    )


class LabelConsistency(PoisoningDetector):
    meta = _meta("label_consistency", "Share of a row's nearest neighbours with another label")
    role = DetectorRole.LABEL

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return label_consistency(data)


class ConfidentLearning(PoisoningDetector):
    meta = _meta(
        "confident_learning",
        "Label issues from out-of-fold class probabilities (confident learning)",
        reference="Northcutt, Jiang and Chuang, Confident learning, JAIR 2021",
    )
    role = DetectorRole.LABEL

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return confident_learning(data, out_of_fold_proba(data, seed=seed))


class NextInterval(PoisoningDetector):
    meta = _meta(
        "next_interval",
        "A next-interval label against the reading of that interval that explains it best",
    )
    role = DetectorRole.LABEL_CHECK

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return next_interval(data, seed=seed)


class ClassIsolation(PoisoningDetector):
    meta = _meta("class_isolation", "Outliers among the rows of each class (isolation forest)")
    role = DetectorRole.FEATURE

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return class_isolation(data, seed=seed)


class Spectral(PoisoningDetector):
    meta = _meta(
        "spectral",
        "Projection on each class's top singular vector (spectral signatures)",
        reference="Tran, Li and Madry, Spectral signatures in backdoor attacks, NeurIPS 2018",
    )
    role = DetectorRole.FEATURE

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return spectral(data)


class Temporal(PoisoningDetector):
    meta = _meta("temporal", "Readings that jump away from their neighbours in time")
    role = DetectorRole.FEATURE

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return temporal(data)


class Physical(PoisoningDetector):
    meta = _meta("physical", "Readings the row's other readings do not explain")
    role = DetectorRole.FEATURE

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return physical(data, seed=seed)


class Bounds(PoisoningDetector):
    meta = _meta("bounds", "Readings beyond a physical ceiling the data itself shows")
    role = DetectorRole.RULE

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return bounds(data)


class DeclaredBounds(PoisoningDetector):
    meta = _meta("declared_bounds", "Readings outside the range the submission's manifest declares")
    role = DetectorRole.RULE

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return declared_bounds(data)


class ReadingConsistency(PoisoningDetector):
    meta = _meta(
        "reading_consistency",
        "Readings of one detector that cannot go together (a queue on an unoccupied area, "
        "a slow speed on an empty road, occupancy without vehicles)",
    )
    role = DetectorRole.RULE

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return reading_consistency(data)


class TriggerBoxes(PoisoningDetector):
    meta = _meta(
        "trigger_boxes",
        "Rows of one label crowded into narrow ranges of a few readings (a trigger's box)",
    )
    role = DetectorRole.TRIGGER

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return trigger_boxes(data)


class CrossSensor(PoisoningDetector):
    meta = _meta("cross_sensor", "Readings far from the other sensors of the same place and time")
    role = DetectorRole.CONTEXT

    def _score(self, data: AuditData, *, seed: int) -> DetectorScores:
        return cross_sensor(data)


__all__ = [
    "Bounds",
    "ClassIsolation",
    "ConfidentLearning",
    "CrossSensor",
    "DeclaredBounds",
    "DetectorRole",
    "LabelConsistency",
    "NextInterval",
    "Physical",
    "PoisoningDetector",
    "ReadingConsistency",
    "Spectral",
    "Temporal",
    "TriggerBoxes",
]
