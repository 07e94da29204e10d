"""Real phantom vehicles: slow vehicles the attacker puts on the road itself.

Unlike a spoofed reading, a *phantom vehicle* is a real SUMO vehicle
inserted on an attacked approach (the world path, ``before_step``): it
crawls at ``speed_ms`` to the end of the approach and leaves there, so
every detector sees it and every real vehicle behind it waits. Each
attacked approach gets one with probability ``intensity * rate_per_min /
60`` per second. It acts on every controller, the in-SUMO baselines too.
Phantom vehicles (ids ``cityx.phantom.N``) are trips in SUMO's outputs,
so they count in the run's KPIs like the cars of the 2020 handcart stunt
counted on the navigation map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from cityx.core import Observation, Param, PluginMeta, stream
from cityx.worlds.traffic import NetworkInfo

from ..base import Access, AttackKind, AttackSpec, AttackTarget, HookAttack, NistClass
from .sensor import COMMON
from .targets import target_mask

PREFIX = "cityx.phantom."


class PhantomVehiclesHook:
    """Inserts phantom vehicles on the attacked approaches before each step."""

    attack_id = "world.phantom-vehicles"

    def __init__(
        self,
        network: NetworkInfo,
        *,
        seed: int,
        params: Mapping[str, float],
        lanes: Sequence[str] | None = None,
    ) -> None:
        self.params = dict(params)
        self.intensity = float(params["intensity"])
        columns = network.lanes
        mask = target_mask(
            network, share=float(params["share"]), seed=seed, label="sensor", lanes=lanes
        )
        self.lanes = [lane for lane, m in zip(columns, mask, strict=True) if m]
        self.edges = sorted({lane.rsplit("_", 1)[0] for lane in self.lanes})
        self.rng = stream(seed, "attack", self.attack_id)
        self._t0: float | None = None
        self.active_from_s: float | None = None
        self.active_steps = 0
        self.inserted = 0
        self.refused = 0
        self._routes: dict[str, str] = {}

    def observe(self, observation: Observation) -> Observation:
        return observation

    def before_step(self, simulation: Any, time_s: float) -> None:
        if self._t0 is None:
            self._t0 = time_s
        if time_s - self._t0 < self.params["start_s"] or not self.edges:
            return
        if self.active_from_s is None:
            self.active_from_s = time_s
            for k, edge in enumerate(self.edges):
                self._routes[edge] = f"{PREFIX}route.{k}"
                simulation.route.add(self._routes[edge], [edge])
        self.active_steps += 1
        p = self.intensity * self.params["rate_per_min"] / 60.0
        hits = np.flatnonzero(self.rng.random(len(self.edges)) < p)
        for k in hits.tolist():
            vid = f"{PREFIX}{self.inserted + self.refused}"
            try:
                simulation.vehicle.add(
                    vid,
                    self._routes[self.edges[k]],
                    departLane="random",
                    departPos="random_free",
                    departSpeed="0",
                )
                simulation.vehicle.setMaxSpeed(vid, self.params["speed_ms"])
                self.inserted += 1
            except Exception:  # libsumo's TraCIException: the approach refuses it (full, closed)
                self.refused += 1

    def report(self) -> Mapping[str, Any]:
        return {
            "kind": "attack",
            "attack": self.attack_id,
            "params": self.params,
            "lanes": self.lanes,
            "active_from_s": self.active_from_s,
            "active_steps": self.active_steps,
            "inserted": self.inserted,
            "refused": self.refused,
            "cost": {
                "sensors": 0,
                "magnitude": self.inserted,
                "unit": "phantom vehicles inserted",
            },
        }


class PhantomVehicles(HookAttack):
    spec = AttackSpec(
        id="world.phantom-vehicles",
        version="1",
        goal="Put real slow phantom vehicles on chosen approaches to make a real jam that "
        "every detector sees",
        target=AttackTarget.CONTROLLER,
        atlas=("AML.T0043", "AML.T0015"),
        nist_class=NistClass.EVASION,
        access=frozenset({Access.SENSOR}),
        params=(
            *COMMON,
            Param(
                "rate_per_min", 6, 0.5, 60, "vehicles/min", "insertions per approach at intensity 1"
            ),
            Param("speed_ms", 2.0, 0.5, 15.0, "m/s", "the phantom vehicles' top speed"),
        ),
        reference="Weckert, Google Maps Hacks (99 phones in a handcart), Berlin 2020",
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta
    subkind = AttackKind.WORLD_INSERTION

    def _hook(
        self,
        network: NetworkInfo,
        *,
        seed: int,
        lanes: Sequence[str] | None,
        params: dict[str, float],
    ) -> PhantomVehiclesHook:
        return PhantomVehiclesHook(network, seed=seed, params=params, lanes=lanes)


__all__ = ["PREFIX", "PhantomVehicles", "PhantomVehiclesHook"]
