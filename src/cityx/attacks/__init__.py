"""Red-team techniques: attacks on predictors, controllers, messages and training data.

Every attack is a plugin (kind ``attack``) that declares an
:class:`AttackSpec`; ``cityx attacks list`` prints them. See
:mod:`cityx.attacks.base` for the contract and :mod:`cityx.attacks.evasion`
for constrained evasion of predictors.
"""

from .base import Access, Attack, AttackSpec, AttackTarget, NistClass, Param, describe_attacks

__all__ = [
    "Access",
    "Attack",
    "AttackSpec",
    "AttackTarget",
    "NistClass",
    "Param",
    "describe_attacks",
]
