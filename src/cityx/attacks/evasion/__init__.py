"""Model-level evasion of predictors under a declared threat model.

The threat model and the physical constraints it holds live in
:mod:`cityx.data.constraints` (explanations share them); they are
re-exported here, where the attack uses them.

>>> threat = load_threat_model(Path("threat-model.toml"), predictor.schema)  # doctest: +SKIP
>>> report = ConstrainedEvasion().run(predictor, rows, truth, threat, seed=1)  # doctest: +SKIP
"""

from cityx.data.constraints import (
    DEFAULT_THREAT_MODEL,
    Consistency,
    Ratio,
    Sensor,
    Temporal,
    ThreatModel,
    ThreatModelError,
    check_against_data,
    consistency_gap,
    load_threat_model,
    parse_threat_model,
    previous_rows,
    project,
    ratio_gap,
    schema_threat_model,
    violations,
)

from .attack import ConstrainedEvasion, EvasionReport, SensorFragility
from .evade import THREAT_MODEL_FILE, evade
from .search import SearchOutcome, search

__all__ = [
    "DEFAULT_THREAT_MODEL",
    "THREAT_MODEL_FILE",
    "Consistency",
    "ConstrainedEvasion",
    "EvasionReport",
    "Ratio",
    "SearchOutcome",
    "Sensor",
    "SensorFragility",
    "Temporal",
    "ThreatModel",
    "ThreatModelError",
    "check_against_data",
    "consistency_gap",
    "evade",
    "load_threat_model",
    "parse_threat_model",
    "previous_rows",
    "project",
    "ratio_gap",
    "schema_threat_model",
    "search",
    "violations",
]
