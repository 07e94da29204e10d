"""Attacks on explanations: the scaffolded model of Slack et al. (AIES 2020)."""

from .attack import ENTRYPOINT, ScaffoldAttack, ScaffoldResult, pick_proxy, plant_scaffold
from .model import DETECTORS, ScaffoldParts, fit_scaffold

__all__ = [
    "DETECTORS",
    "ENTRYPOINT",
    "ScaffoldAttack",
    "ScaffoldParts",
    "ScaffoldResult",
    "fit_scaffold",
    "pick_proxy",
    "plant_scaffold",
]
