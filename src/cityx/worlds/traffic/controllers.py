"""The baseline controllers a controller under test is compared with.

- ``fixed``: the network's own static program, untouched (signal mode
  ``program``; no Python runs per step).
- ``actuated``: the same phases run by SUMO's actuated logic, which extends
  a green while its own detectors see a steady stream of vehicles, within
  each green's min/max duration (signal mode ``actuated``).
- ``max-pressure``: ours, in Python, through the safety envelope. The
  *pressure* of a green phase is the sum over the movements it gives green
  of (queue on the incoming lane - queue on the outgoing lane); the queue is
  the lane-area detector's halting count, and an outgoing lane without a
  detector (one that does not lead to another signal) counts as empty. Each
  step every intersection asks for its highest-pressure green, keeping the
  current one on a tie; the envelope holds minimum greens and clearances.
"""

from __future__ import annotations

from collections.abc import Mapping

from cityx.core.errors import InputError
from cityx.core.systems import Action, Controller, Observation

from .candidates import PhaseCandidates
from .network import NetworkInfo
from .world import SignalMode

BASELINES: Mapping[str, SignalMode] = {
    "fixed": SignalMode.PROGRAM,
    "actuated": SignalMode.ACTUATED,
    "max-pressure": SignalMode.ENVELOPE,
}


class MaxPressure:
    """Max-pressure signal control over all intersections at once (vectorised).

    Each green phase's pressure is a row of the candidates' incidence matrix
    times the queues; :meth:`PhaseCandidates.choose` picks each
    intersection's best, keeping the current phase on a tie.
    """

    def __init__(self, network: NetworkInfo) -> None:
        self.network = network
        self._candidates: PhaseCandidates | None = None

    def act(self, observation: Observation) -> Action:
        c = self._candidates
        if c is None:
            c = self._candidates = PhaseCandidates.from_network(self.network)
        return c.choose(observation, c.incidence @ observation.halting)


def make_controller(name: str, network: NetworkInfo) -> tuple[SignalMode, Controller | None]:
    """The signal mode and (for Python controllers) the controller of a baseline."""
    if name not in BASELINES:
        raise InputError(f"unknown controller {name!r}", hint=f"known: {', '.join(BASELINES)}")
    mode = BASELINES[name]
    return mode, (MaxPressure(network) if name == "max-pressure" else None)


__all__ = ["BASELINES", "MaxPressure", "make_controller"]
