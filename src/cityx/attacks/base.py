"""The attack contract: what every red-team technique declares, and how each sub-kind runs.

An *attack* is a plugin of kind ``attack``. Its *spec* says what it tries
to do (the *goal*), what it acts on (the *target kind*: a ``controller``
through its sensors, a ``predictor``'s inputs, the ``message`` path, or the
``training-data``), the MITRE ATLAS techniques it realises, its class in
NIST AI 100-2 (evasion, poisoning, privacy or misuse), the *access* an
attacker needs for it, and its *parameters*, each with bounds and a
default. :meth:`Attack.configure` checks parameters against those bounds
before anything runs, so a bad intensity is one clear error.

Every attack is one of six *sub-kinds*; each has one way to run, written
down by its base class:

- ``sensor-hook`` (:class:`HookAttack`): ``hook(network, seed=, lanes=,
  **params)`` returns a :class:`~cityx.core.WorldHook` whose ``observe``
  rewrites what the detectors report; the world calls it in its child
  process, between the detectors and the controller;
- ``world-insertion`` (:class:`HookAttack`): the same ``hook``, acting in
  ``before_step`` on the running simulation (real vehicles on the road);
- ``message-transport`` (:class:`MessageAttack`): ``transport(inner,
  seed=, **params)`` wraps the secure loop's bus as a man in the middle;
- ``poisoning`` (:class:`cityx.attacks.poisoning.PoisoningAttack`):
  ``poison(table, label=, source_cols=, params=, seed=)`` returns the
  changed training table and which rows changed;
- ``evasion`` (:class:`cityx.attacks.evasion.ConstrainedEvasion`):
  ``run(predictor, rows, truth, threat, seed=)`` searches inputs that flip
  a predictor's answers within a threat model;
- ``scaffold`` (:class:`cityx.attacks.scaffold.ScaffoldAttack`):
  ``build(table, features=, label=, out=, ...)`` writes a model artifact
  that behaves differently on explainers' queries than on real inputs.

Each sub-kind acts on one *path* (:class:`AttackPath`, :func:`attack_path`):
a ``sensor-hook`` only on the *observation* path, what the controller is
told (its hook must leave the simulation itself alone: ``before_step``
changes nothing); a ``world-insertion`` on the *world*; a
``message-transport`` on the *message* bus; poisoning on *training data*;
evasion on a predictor's *input*; a scaffold on the model *artifact* the
vendor submits. A campaign uses this to know which
controllers an attack cannot reach (see :mod:`cityx.runs.campaign`).

The same seed always gives the same result; a constructor stores nothing
and does no work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, final, runtime_checkable

from cityx.core import (
    NistFunction,
    Param,
    PluginError,
    PluginKind,
    PluginMeta,
    Principle,
    Registry,
    Tags,
    WorldHook,
    configure,
)
from cityx.core.taxonomy import ATLAS_NAMES
from cityx.interop import Transport
from cityx.worlds.traffic import NetworkInfo


class AttackTarget(StrEnum):
    """What an attack acts on."""

    CONTROLLER = "controller"
    PREDICTOR = "predictor"
    MESSAGE = "message"
    TRAINING_DATA = "training-data"


class AttackKind(StrEnum):
    """How an attack runs (see the module docstring for each contract)."""

    SENSOR_HOOK = "sensor-hook"
    WORLD_INSERTION = "world-insertion"
    MESSAGE_TRANSPORT = "message-transport"
    POISONING = "poisoning"
    EVASION = "evasion"
    SCAFFOLD = "scaffold"


class AttackPath(StrEnum):
    """Where an attack acts: what it changes, and so which systems it can reach.

    ``observation``: only what the controller is told (a controller that
    reads no observation is out of its reach); ``world``: the simulated
    road itself; ``message``: the secure loop's bus; ``training-data`` and
    ``input``: a predictor's training rows and its inputs; ``artifact``: the
    model file the vendor submits.
    """

    OBSERVATION = "observation"
    WORLD = "world"
    MESSAGE = "message"
    TRAINING_DATA = "training-data"
    INPUT = "input"
    ARTIFACT = "artifact"


# Each sub-kind's path: part of the sub-kind's contract, so a plugin cannot mis-declare it.
PATHS: Mapping[AttackKind, AttackPath] = {
    AttackKind.SENSOR_HOOK: AttackPath.OBSERVATION,
    AttackKind.WORLD_INSERTION: AttackPath.WORLD,
    AttackKind.MESSAGE_TRANSPORT: AttackPath.MESSAGE,
    AttackKind.POISONING: AttackPath.TRAINING_DATA,
    AttackKind.EVASION: AttackPath.INPUT,
    AttackKind.SCAFFOLD: AttackPath.ARTIFACT,
}


def attack_path(attack: type[Attack] | Attack) -> AttackPath:
    """The path ``attack`` acts on, from its sub-kind."""
    return PATHS[attack.subkind]


class NistClass(StrEnum):
    """The attack classes of NIST AI 100-2 (adversarial machine learning taxonomy)."""

    EVASION = "evasion"
    POISONING = "poisoning"
    PRIVACY = "privacy"
    MISUSE = "misuse"


class Access(StrEnum):
    """What the attacker must be able to do.

    ``query-label``/``query-score``: send inputs to the model and read its
    labels (or class scores) back, nothing else (black box); ``white-box``:
    read the model's parameters; ``sensor``: write the readings of the
    sensors it controls; ``message-path``: send or alter messages on the
    bus; ``training-data``: insert or edit training rows.
    """

    QUERY_LABEL = "query-label"
    QUERY_SCORE = "query-score"
    WHITE_BOX = "white-box"
    SENSOR = "sensor"
    MESSAGE_PATH = "message-path"
    TRAINING_DATA = "training-data"


@dataclass(frozen=True, slots=True)
class AttackSpec:
    """What an attack declares about itself; ``plugin_meta`` is its registry entry."""

    id: str
    version: str
    goal: str
    target: AttackTarget
    atlas: tuple[str, ...]
    nist_class: NistClass
    access: frozenset[Access]
    params: tuple[Param, ...] = ()
    principle: Principle = Principle.SECURITY
    reference: str = ""
    plugin_meta: PluginMeta = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", AttackTarget(self.target))
        object.__setattr__(self, "nist_class", NistClass(self.nist_class))
        object.__setattr__(self, "access", frozenset(Access(a) for a in self.access))
        if not self.goal.strip():
            raise ValueError(f"attack {self.id!r} needs a goal")
        if not self.atlas:
            raise ValueError(f"attack {self.id!r} names no MITRE ATLAS technique")
        # A sub-technique (AML.T0043.003) is known when its parent technique is.
        unknown = [t for t in self.atlas if t[:9] not in ATLAS_NAMES]
        if unknown:
            raise ValueError(
                f"attack {self.id!r}: ATLAS techniques {unknown} are not in the taxonomy"
            )
        if not self.access:
            raise ValueError(f"attack {self.id!r} must say what access the attacker needs")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"attack {self.id!r} declares a parameter twice")
        # Tags validates the ATLAS id format; PluginMeta validates the id.
        tags = Tags(self.principle, NistFunction.MEASURE, self.atlas, ("Art. 15",))
        object.__setattr__(
            self,
            "plugin_meta",
            PluginMeta(
                id=self.id,
                kind=PluginKind.ATTACK,
                version=self.version,
                summary=self.goal,
                tags=tags,
                supports=frozenset({self.target.value}),
                reference=self.reference,
            ),
        )

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The row ``cityx attacks list --json`` prints."""
        return {
            "id": self.id,
            "goal": self.goal,
            "target": self.target.value,
            "atlas": list(self.atlas),
            "nist_class": self.nist_class.value,
            "access": sorted(a.value for a in self.access),
            "params": {p.name: p.to_json() for p in self.params},
        }


class Attack:
    """Base class of attack plugins: a spec, a sub-kind, parameters checked before a run.

    Subclasses set ``spec``, ``meta = spec.plugin_meta`` and ``subkind``
    (their sub-kind's base class sets it); the constructor takes no
    arguments and does no work.
    """

    spec: ClassVar[AttackSpec]
    meta: ClassVar[PluginMeta]
    subkind: ClassVar[AttackKind]

    @final
    @classmethod
    def configure(cls, values: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Every declared parameter, from ``values`` or its default, checked against its bounds."""
        return configure(cls.spec.params, values, where=f"attack {cls.spec.id}")


class HookAttack(Attack, ABC):
    """A sensor-hook or world-insertion attack: a WorldHook made in the world's process."""

    subkind: ClassVar[AttackKind] = AttackKind.SENSOR_HOOK

    @final
    def hook(
        self,
        network: NetworkInfo,
        *,
        seed: int,
        lanes: Sequence[str] | None = None,
        **params: Any,
    ) -> WorldHook:
        """The hook for a run on ``network``; ``lanes`` names the attacked lanes outright."""
        return self._hook(network, seed=seed, lanes=lanes, params=self.configure(params))

    @abstractmethod
    def _hook(
        self,
        network: NetworkInfo,
        *,
        seed: int,
        lanes: Sequence[str] | None,
        params: dict[str, float],
    ) -> WorldHook:
        """Build the hook from checked parameters."""


@runtime_checkable
class AttackedBus(Transport, Protocol):
    """The transport a message attack returns: the bus, a clock and a report.

    ``clock(time_s)`` tells it the simulated time of the messages about to
    be published (an attack starts at ``start_s``); ``report()`` says what
    it did, with its ``cost``, as a world hook's report does.
    """

    def clock(self, time_s: float) -> None: ...

    def report(self) -> Mapping[str, Any]: ...


class MessageAttack(Attack, ABC):
    """A message-path attack: a man in the middle on the secure loop's transport."""

    subkind: ClassVar[AttackKind] = AttackKind.MESSAGE_TRANSPORT

    @final
    def transport(self, inner: Transport, *, seed: int, **params: Any) -> AttackedBus:
        """``inner`` with this attack on it."""
        return self._transport(inner, seed=seed, params=self.configure(params))

    @abstractmethod
    def _transport(self, inner: Transport, *, seed: int, params: dict[str, float]) -> AttackedBus:
        """Wrap ``inner`` with checked parameters."""


WORLD_KINDS = frozenset(
    {AttackKind.SENSOR_HOOK, AttackKind.WORLD_INSERTION, AttackKind.MESSAGE_TRANSPORT}
)


def world_attack_ids(registry: Registry | None = None) -> tuple[str, ...]:
    """The attacks that act on a running world: sensor hooks, world insertions, messages."""
    registry = registry or Registry()
    return tuple(
        a
        for a in registry.ids(PluginKind.ATTACK)
        if registry.load(PluginKind.ATTACK, a).subkind in WORLD_KINDS
    )


def world_attack(attack_id: str, registry: Registry | None = None) -> HookAttack | MessageAttack:
    """The world attack registered as ``attack_id``, ready to configure and run."""
    registry = registry or Registry()
    cls = registry.load(PluginKind.ATTACK, attack_id)
    if not issubclass(cls, HookAttack | MessageAttack):
        raise PluginError(
            f"{attack_id!r} is a {cls.subkind.value} attack, not one on a running world",
            where="attacks",
            hint=f"world attacks: {', '.join(world_attack_ids(registry))} (cityx attacks list)",
        )
    attack: HookAttack | MessageAttack = cls()
    return attack


def describe_attacks(registry: Registry) -> list[dict[str, Any]]:
    """One ``{"id", "goal", "target", "atlas", "params", ...}`` row per registered attack."""
    rows = []
    for plugin_id in registry.ids(PluginKind.ATTACK):
        plugin = registry.load(PluginKind.ATTACK, plugin_id)
        spec = getattr(plugin, "spec", None)
        if not isinstance(spec, AttackSpec) or spec.id != plugin_id:
            raise PluginError(
                f"attack {plugin_id!r} must declare spec = AttackSpec(id={plugin_id!r}, ...)",
                where=f"attack {plugin_id!r}",
            )
        rows.append(spec.to_json())
    return rows


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
    "Param",
    "attack_path",
    "describe_attacks",
    "world_attack",
    "world_attack_ids",
]
