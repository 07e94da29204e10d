"""Controller plugins: what drives a world's signals, the baselines included.

A *controller plugin* (kind ``controller``) declares its *signal mode*
(:class:`~.world.SignalMode`) and, for the ``envelope`` mode, builds a
:class:`~cityx.core.Controller` for a run's network; the world then asks
it for an action every second and passes each through the safety
envelope. Its contract:

- ``meta``: a :class:`~cityx.core.PluginMeta` of kind ``controller`` whose
  ``supports`` is ``{mode}``;
- ``mode``: the signal mode; ``params``: its :class:`~cityx.core.Param`\\ s;
- ``build(network, *, seed, **params)``: the controller (``None`` for a
  mode SUMO runs itself); parameters are checked by :meth:`configure`
  before anything is built, and every random choice uses ``seed``;
- ``reads_observations``: whether its decisions depend on the world's
  observation (what our detectors report to the controller). A controller
  that reads none (fixed time; SUMO's actuated logic, which reads SUMO's
  own loops) cannot be reached by an attack on the observation path, so
  its KPIs under such an attack are its clean KPIs for the same scenario
  and seed. Default True: only a plugin that is sure says otherwise.

The built-in *baselines*, which a controller under test is compared with:

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

from abc import ABC, abstractmethod
from typing import Any, ClassVar, final

from cityx.core import (
    Action,
    Controller,
    NistFunction,
    Observation,
    Parameterised,
    PluginKind,
    PluginMeta,
    Principle,
    Registry,
    Tags,
)

from .candidates import FEATURE_NAMES, PhaseCandidates
from .choices import ControllerChoice, DecidedBy, choices_from_step
from .network import NetworkInfo
from .world import SignalMode

BASELINE_IDS = ("fixed", "actuated", "max-pressure")


class ControllerPlugin(Parameterised, ABC):
    """Base class of controller plugins; constructors take nothing and do no work."""

    meta: ClassVar[PluginMeta]
    mode: ClassVar[SignalMode]
    reads_observations: ClassVar[bool] = True

    @final
    def controller(self, network: NetworkInfo, *, seed: int, **params: Any) -> Controller | None:
        """The controller for ``network`` (None when SUMO runs the signals itself)."""
        return self.build(network, seed=seed, **self.configure(params))

    @abstractmethod
    def build(self, network: NetworkInfo, *, seed: int, **params: float) -> Controller | None:
        """Build the controller from checked parameters."""


def _baseline(plugin_id: str, mode: SignalMode, summary: str) -> PluginMeta:
    return PluginMeta(
        id=plugin_id,
        kind=PluginKind.CONTROLLER,
        version="1",
        summary=summary,
        tags=Tags(Principle.SAFETY, NistFunction.MEASURE),
        supports=frozenset({mode.value}),
    )


class FixedTime(ControllerPlugin):
    meta = _baseline(
        "fixed", SignalMode.PROGRAM, "The network's own fixed-time program, run by SUMO"
    )
    mode = SignalMode.PROGRAM
    reads_observations = False  # SUMO runs the static program; no observation is read

    def build(self, network: NetworkInfo, *, seed: int, **params: float) -> None:
        return None


class Actuated(ControllerPlugin):
    meta = _baseline(
        "actuated",
        SignalMode.ACTUATED,
        "The network's phases run by SUMO's gap-based actuated logic within min/max greens",
    )
    mode = SignalMode.ACTUATED
    reads_observations = False  # SUMO's own logic on SUMO's own loops, not our observation

    def build(self, network: NetworkInfo, *, seed: int, **params: float) -> None:
        return None


class MaxPressure:
    """Max-pressure signal control over all intersections at once (vectorised).

    Each green phase's pressure is a row of the candidates' incidence matrix
    times the queues; :meth:`PhaseCandidates.choose` picks each
    intersection's best, keeping the current phase on a tie.
    """

    def __init__(self, network: NetworkInfo) -> None:
        self.network = network
        self._candidates: PhaseCandidates | None = None
        self._choices: list[ControllerChoice] = []

    def act(self, observation: Observation) -> Action:
        c = self._candidates
        if c is None:
            c = self._candidates = PhaseCandidates.from_network(self.network)
        pressure = c.incidence @ observation.halting
        action = c.choose(observation, pressure)
        # The rule's score is the pressure column itself: the record explains it in the
        # same form as a model's.
        # The last decision only: a caller that never takes them keeps no history.
        self._choices = list(
            choices_from_step(
                c,
                observation,
                c.features(observation),
                pressure,
                action.phases,
                columns=FEATURE_NAMES,
                decided_by=DecidedBy.RULE,
            )
        )
        return action

    def take_choices(self) -> tuple[ControllerChoice, ...]:
        """The controller-choice/v1 records of the last decision, if not taken yet."""
        taken, self._choices = tuple(self._choices), []
        return taken


class MaxPressurePlugin(ControllerPlugin):
    meta = _baseline(
        "max-pressure",
        SignalMode.ENVELOPE,
        "Max-pressure control from the lane-area queues, through the safety envelope",
    )
    mode = SignalMode.ENVELOPE

    def build(self, network: NetworkInfo, *, seed: int, **params: float) -> MaxPressure:
        return MaxPressure(network)


def controller_plugin(name: str, registry: Registry | None = None) -> ControllerPlugin:
    """The controller plugin registered as ``name`` (a PluginError names the known ones)."""
    cls: type[ControllerPlugin] = (registry or Registry()).load(PluginKind.CONTROLLER, name)
    return cls()


def is_controller_plugin(name: str, registry: Registry | None = None) -> bool:
    return name in (registry or Registry()).ids(PluginKind.CONTROLLER)


def reads_observations(name: str, registry: Registry | None = None) -> bool:
    """Whether controller ``name`` reads observations (a submitted controller always does)."""
    if not is_controller_plugin(name, registry):
        return True
    return controller_plugin(name, registry).reads_observations


__all__ = [
    "BASELINE_IDS",
    "Actuated",
    "ControllerPlugin",
    "FixedTime",
    "MaxPressure",
    "MaxPressurePlugin",
    "controller_plugin",
    "is_controller_plugin",
    "reads_observations",
]
