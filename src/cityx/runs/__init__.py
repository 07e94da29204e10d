"""Trial and campaign plans and their execution; one world run with any controller."""

from .trial import TrialOutcome, TrialPlan, plan_checks, run_trial, versions
from .world import run_controller_world

__all__ = [
    "TrialOutcome",
    "TrialPlan",
    "plan_checks",
    "run_controller_world",
    "run_trial",
    "versions",
]
