"""Physical constraints on sensor readings and the threat model (see :mod:`.model`).

Shared by the red team's evasion attacks (:mod:`cityx.attacks.evasion`) and
by explanations that must stay physically possible.
"""

from .checks import check_against_data, previous_rows
from .model import (
    DEFAULT_THREAT_MODEL,
    Consistency,
    Ratio,
    Sensor,
    Temporal,
    ThreatModel,
    ThreatModelError,
)
from .projection import consistency_gap, feasible_box, project, ratio_gap, violations
from .reading import load_threat_model, parse_threat_model, schema_threat_model

__all__ = [
    "DEFAULT_THREAT_MODEL",
    "Consistency",
    "Ratio",
    "Sensor",
    "Temporal",
    "ThreatModel",
    "ThreatModelError",
    "check_against_data",
    "consistency_gap",
    "feasible_box",
    "load_threat_model",
    "parse_threat_model",
    "previous_rows",
    "project",
    "ratio_gap",
    "schema_threat_model",
    "violations",
]
