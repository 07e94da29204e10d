"""Governance: policies, the deployment gate, AI Verify principles and the report."""

from .gate import Decision, GateDecision, decide, principle_status
from .policy import CheckPolicy, Policy, default_policy_path, load_policy

__all__ = [
    "CheckPolicy",
    "Decision",
    "GateDecision",
    "Policy",
    "decide",
    "default_policy_path",
    "load_policy",
    "principle_status",
]
