"""Training-data poisoning countermeasures: detect, sanitise, scan models, prove provenance.

:func:`audit` runs an ensemble of model-agnostic detectors over a training
table and ranks rows and sources, with a verdict (clean, poisoned or
undetermined); :func:`find_data_trigger` reads a backdoor's trigger off the
flagged rows; :func:`sanitise` and :func:`retrain_and_compare` drop the
flagged rows and measure what that buys; :func:`scan_model` searches a
trained model for small trigger patterns; :func:`sign_manifest` and
:func:`verify_manifest` sign and check a per-source dataset manifest.
"""

from ._data import AuditData, prepare, robust_z
from .audit import AuditReport, SourceScore, audit
from .provenance import (
    ProvenanceCheck,
    dataset_manifest,
    sign_manifest,
    source_digests,
    verify_manifest,
)
from .sanitise import RetrainComparison, retrain_and_compare, robust_weights, sanitise
from .scan import ScanReport, TriggerCandidate, scan_model
from .scores import DetectorScores
from .triggers import DataTrigger, find_data_trigger
from .verdict import AuditVerdict, Coverage, PoisonKind

__all__ = [
    "AuditData",
    "AuditReport",
    "AuditVerdict",
    "Coverage",
    "DataTrigger",
    "DetectorScores",
    "PoisonKind",
    "ProvenanceCheck",
    "RetrainComparison",
    "ScanReport",
    "SourceScore",
    "TriggerCandidate",
    "audit",
    "dataset_manifest",
    "find_data_trigger",
    "prepare",
    "retrain_and_compare",
    "robust_weights",
    "robust_z",
    "sanitise",
    "scan_model",
    "sign_manifest",
    "source_digests",
    "verify_manifest",
]
