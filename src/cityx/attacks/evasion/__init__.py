"""Model-level evasion of predictors under a declared threat model.

>>> threat = load_threat_model(Path("threat-model.toml"), predictor.schema)  # doctest: +SKIP
>>> report = ConstrainedEvasion().run(predictor, rows, truth, threat, seed=1)  # doctest: +SKIP
"""

from .attack import ConstrainedEvasion, EvasionReport, SensorFragility
from .evade import THREAT_MODEL_FILE, evade
from .projection import consistency_gap, project, ratio_gap, violations
from .search import SearchOutcome, search
from .threat_model import (
    Consistency,
    Ratio,
    Sensor,
    Temporal,
    ThreatModel,
    ThreatModelError,
    check_against_data,
    load_threat_model,
    parse_threat_model,
    previous_rows,
    schema_threat_model,
)

__all__ = [
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
