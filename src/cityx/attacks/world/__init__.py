"""World-level attacks on signal controllers, through the sensor, world or message path.

A *world attack* never touches the controller's code. Sensor-path attacks
(:mod:`.sensor`) rewrite what the detectors report; the world-path attack
(:mod:`.phantom`) puts real vehicles on the road; message-path attacks
(:mod:`.message`) sit on the secure loop's bus. :func:`world_hook` is the
``"module:function"`` hook factory the sandbox calls in the world's child
process; :func:`message_transport` wraps a secure loop's transport.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cityx.core import InputError
from cityx.core.systems import WorldHook

from .message import AttackedTransport, Flood, Forge, MessageAttack, Replay, Tamper
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

HOOK_ATTACKS: dict[str, type[SensorAttack] | type[PhantomVehicles]] = {
    cls.spec.id: cls
    for cls in (
        PhantomQueue,
        HiddenVehicles,
        StuckAt,
        Blackout,
        Stale,
        ConnectedVehicleSpoof,
        PhantomVehicles,
    )
}
MESSAGE_ATTACKS: dict[str, type[MessageAttack]] = {
    cls.spec.id: cls for cls in (Forge, Replay, Tamper, Flood)
}
HOOK_FACTORY = f"{__name__}:world_hook"


def world_hook(
    network: Any,
    folder: Path,
    *,
    seed: int,
    attack: str,
    lanes: Sequence[str] | None = None,
    **params: Any,
) -> WorldHook:
    """The WorldHook of the sensor- or world-path attack ``attack`` with ``params``."""
    cls = HOOK_ATTACKS.get(attack)
    if cls is None:
        raise InputError(
            f"{attack!r} is not a sensor or world-path attack",
            hint=f"known: {', '.join(sorted(HOOK_ATTACKS))}",
        )
    return cls.hook(network, folder, seed=seed, lanes=lanes, **params)


def message_transport(inner: Any, *, seed: int, attack: str, **params: Any) -> AttackedTransport:
    """``inner`` with the message-path attack ``attack`` on it."""
    cls = MESSAGE_ATTACKS.get(attack)
    if cls is None:
        raise InputError(
            f"{attack!r} is not a message-path attack",
            hint=f"known: {', '.join(sorted(MESSAGE_ATTACKS))}",
        )
    return cls.transport(inner, seed=seed, **params)


__all__ = [
    "HOOK_ATTACKS",
    "HOOK_FACTORY",
    "MESSAGE_ATTACKS",
    "AttackedTransport",
    "Blackout",
    "ConnectedVehicleSpoof",
    "Flood",
    "Forge",
    "HiddenVehicles",
    "MessageAttack",
    "PhantomQueue",
    "PhantomVehicles",
    "Replay",
    "SensorAttack",
    "Stale",
    "StuckAt",
    "Tamper",
    "message_transport",
    "world_hook",
]
