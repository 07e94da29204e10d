"""Training-data poisoning attacks: label flips, backdoors, clean-label, compromised sensors.

Each is an attack plugin of target ``training-data``; ``poison(table, ...)``
returns the changed table and the truth (which rows changed), seeded.
"""

from ._common import PoisoningAttack, PoisonResult, source_codes
from .backdoor import SHAPES, Backdoor, CleanLabel
from .compromised import CompromisedSensors
from .demonstrations import DemonstrationPoison
from .label_flip import LabelFlip

__all__ = [
    "SHAPES",
    "Backdoor",
    "CleanLabel",
    "CompromisedSensors",
    "DemonstrationPoison",
    "LabelFlip",
    "PoisonResult",
    "PoisoningAttack",
    "source_codes",
]
