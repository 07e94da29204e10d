"""Trial (and later campaign) plans and their execution."""

from .trial import TrialOutcome, TrialPlan, plan_checks, run_trial, versions

__all__ = ["TrialOutcome", "TrialPlan", "plan_checks", "run_trial", "versions"]
