"""The defence side of the red-team lab.

:mod:`cityx.defenses.guards` holds the runtime guards: plausibility and
cross-sensor consistency checks on what a controller is about to see.
"""

from .guards import CHECKS, GUARD_FACTORY, RuntimeGuard, runtime_guard

__all__ = ["CHECKS", "GUARD_FACTORY", "RuntimeGuard", "runtime_guard"]
