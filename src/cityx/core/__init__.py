"""Contracts and value types shared by every layer. No I/O happens here.

Nothing in ``cityx.core`` imports another part of ``cityx``.
"""

from .checks import (
    Check,
    CheckContext,
    Direction,
    LabelledBatch,
    Problem,
    Threshold,
    status_from,
    target_failure,
)
from .errors import (
    AuditError,
    CityxError,
    DataError,
    InputError,
    ManifestError,
    PluginError,
    PolicyError,
    RunError,
    StoreError,
    TargetCrashed,
    TargetError,
    TargetLoadError,
    TargetOutputError,
    TargetTimeout,
)
from .findings import CheckResult, CheckStatus, Evidence, Finding, Metric, Severity
from .manifest import MANIFEST_FILE, ArtifactFormat, Manifest, SystemKind, manifest_json_schema
from .registry import ENTRY_POINT_GROUP, PluginKind, PluginMeta, Registry
from .schema import Feature, FeatureType, FloatArray, InputSchema, OutputSpec, Task
from .seeding import check_seed, derive_seed, stream
from .systems import (
    Action,
    Controller,
    IntersectionObservation,
    Observation,
    Prediction,
    Predictor,
)
from .taxonomy import NistFunction, Principle, Tags

__all__ = [
    "ENTRY_POINT_GROUP",
    "MANIFEST_FILE",
    "Action",
    "ArtifactFormat",
    "AuditError",
    "Check",
    "CheckContext",
    "CheckResult",
    "CheckStatus",
    "CityxError",
    "Controller",
    "DataError",
    "Direction",
    "Evidence",
    "Feature",
    "FeatureType",
    "Finding",
    "FloatArray",
    "InputError",
    "InputSchema",
    "IntersectionObservation",
    "LabelledBatch",
    "Manifest",
    "ManifestError",
    "Metric",
    "NistFunction",
    "Observation",
    "OutputSpec",
    "PluginError",
    "PluginKind",
    "PluginMeta",
    "PolicyError",
    "Prediction",
    "Predictor",
    "Principle",
    "Problem",
    "Registry",
    "RunError",
    "Severity",
    "StoreError",
    "SystemKind",
    "Tags",
    "TargetCrashed",
    "TargetError",
    "TargetLoadError",
    "TargetOutputError",
    "TargetTimeout",
    "Task",
    "Threshold",
    "check_seed",
    "derive_seed",
    "manifest_json_schema",
    "status_from",
    "stream",
    "target_failure",
]
