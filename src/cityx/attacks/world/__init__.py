"""World-level attacks on signal controllers, through the sensor, world or message path.

A *world attack* never touches the controller's code. Sensor-path attacks
(:mod:`.sensor`) rewrite what the detectors report; the world-path attack
(:mod:`.phantom`) puts real vehicles on the road; message-path attacks
(:mod:`.message`) sit on the secure loop's bus. Each is an attack plugin;
:func:`cityx.attacks.world_attack` finds one by id.
"""

from __future__ import annotations

from .message import AttackedTransport, Flood, Forge, Replay, Tamper, TransportAttack
from .phantom import PhantomVehicles
from .sensor import (
    Blackout,
    ConnectedVehicleSpoof,
    HiddenVehicles,
    PhantomQueue,
    SensorAttack,
    Stale,
    StuckAt,
)

__all__ = [
    "AttackedTransport",
    "Blackout",
    "ConnectedVehicleSpoof",
    "Flood",
    "Forge",
    "HiddenVehicles",
    "PhantomQueue",
    "PhantomVehicles",
    "Replay",
    "SensorAttack",
    "Stale",
    "StuckAt",
    "Tamper",
    "TransportAttack",
]
