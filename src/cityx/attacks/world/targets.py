"""Which sensors an attacker controls: the *target set* of a world attack.

An *approach* is one incoming edge of one signalised intersection; its
*lanes* are the detected incoming lanes on that edge. A target set is
either a *share* of all approaches, drawn by the attack's seed (at least
one when the share is positive), or lanes named outright. The set is a
boolean *mask* over the observation's lane columns, so an attack tampers
with all its lanes in one numpy operation per step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from cityx.core import InputError, stream
from cityx.worlds.traffic import NetworkInfo

BoolArray = NDArray[np.bool_]
JAM_SPACING_M = 7.5  # one queued car per 7.5 m: 5 m of car and 2.5 m of gap


def approaches(network: NetworkInfo) -> list[tuple[str, str]]:
    """Every (intersection, incoming edge) pair with a detected lane, in a fixed order."""
    return list(
        dict.fromkeys(
            (i.id, lane.rsplit("_", 1)[0]) for i in network.intersections for lane in i.lanes
        )
    )


def target_mask(
    network: NetworkInfo,
    *,
    share: float,
    seed: int,
    label: str,
    lanes: Sequence[str] | None = None,
) -> BoolArray:
    """The lanes the attacker controls, as a mask over the network's observed lanes.

    ``lanes`` names them outright (an unknown name is an InputError);
    otherwise ``share`` of the approaches is drawn with the stream ``label``.
    """
    columns = network.lanes
    if lanes:
        unknown = sorted(set(lanes) - set(columns))
        if unknown:
            raise InputError(
                f"unknown lane(s) {', '.join(unknown)}",
                where=f"attack {label} lanes",
                hint="detected lanes: "
                + ", ".join(columns[:8])
                + (" ..." if len(columns) > 8 else ""),
            )
        wanted = set(lanes)
        return np.fromiter((lane in wanted for lane in columns), bool, len(columns))
    pairs = approaches(network)
    if share <= 0 or not pairs:
        return np.zeros(len(columns), dtype=bool)
    k = min(len(pairs), max(1, math.ceil(share * len(pairs) - 1e-9)))
    picked = stream(seed, "attack-targets", label).choice(len(pairs), size=k, replace=False)
    chosen = {pairs[int(j)] for j in picked}
    owner = [i.id for i in network.intersections for _ in i.lanes]
    return np.fromiter(
        ((tls, lane.rsplit("_", 1)[0]) in chosen for tls, lane in zip(owner, columns, strict=True)),
        bool,
        len(columns),
    )


__all__ = [
    "JAM_SPACING_M",
    "approaches",
    "target_mask",
]
