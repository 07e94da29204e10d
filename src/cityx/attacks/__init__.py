"""Red-team techniques: attacks on predictors, controllers, messages and training data.

Every attack is a plugin (kind ``attack``) that declares an
:class:`AttackSpec`; ``cityx attacks list`` prints them. See
:mod:`cityx.attacks.base` for the contract and :mod:`cityx.attacks.evasion`
for constrained evasion of predictors.
"""

from .base import (
    Access,
    Attack,
    AttackedBus,
    AttackKind,
    AttackPath,
    AttackSpec,
    AttackTarget,
    HookAttack,
    MessageAttack,
    NistClass,
    attack_path,
    describe_attacks,
    world_attack,
    world_attack_ids,
)

__all__ = [
    "Access",
    "Attack",
    "AttackKind",
    "AttackPath",
    "AttackSpec",
    "AttackTarget",
    "AttackedBus",
    "HookAttack",
    "MessageAttack",
    "NistClass",
    "attack_path",
    "describe_attacks",
    "world_attack",
    "world_attack_ids",
]
