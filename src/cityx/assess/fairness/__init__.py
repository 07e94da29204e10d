"""Fairness and bias testing of predictors (by group) and controllers (by road user).

See :mod:`.summary` for the predictor metrics, :mod:`.controllers` for the
sandbox's controller runs and :mod:`.groups` for how sensitive features
become groups.
"""

from __future__ import annotations

from .groups import SEPARATOR, GroupCodes, encode_groups
from .rates import RATES, REGRESSION_METRICS
from .summary import (
    MIN_GROUP,
    GroupFairness,
    classification_fairness,
    regression_fairness,
    spread,
)
from .table import group_fairness

__all__ = [
    "MIN_GROUP",
    "RATES",
    "REGRESSION_METRICS",
    "SEPARATOR",
    "GroupCodes",
    "GroupFairness",
    "classification_fairness",
    "encode_groups",
    "group_fairness",
    "regression_fairness",
    "spread",
]
