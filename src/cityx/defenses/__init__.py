"""Defenses: runtime guards on the sensor path, and the poisoning audit of training data."""

from .guards import RULES, Guard, RuntimeGuard, RuntimeGuardPlugin

__all__ = ["RULES", "Guard", "RuntimeGuard", "RuntimeGuardPlugin"]
