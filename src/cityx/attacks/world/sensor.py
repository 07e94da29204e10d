"""Attacks on the sensor path: what the controller's detectors report, tampered.

Each attack here is a :class:`~cityx.core.WorldHook` whose ``observe``
rewrites the observation's lane columns for its *target set* (see
:mod:`.targets`) from ``start_s`` seconds after the run's first
observation onwards. The *intensity* (0..1) scales how far it goes. A
baseline that runs inside SUMO (fixed, actuated) never reads these
observations, so these attacks cannot touch it: a correct result.

- *phantom queue*: the loop reports nothing leaving and the lane-area
  detector a queue of up to ``vehicles`` more halting cars, with the
  occupancy and crawling speed such a queue would give;
- *hidden vehicles*: each counted, halting vehicle is dropped with
  probability ``intensity`` (binomial thinning, seeded);
- *stuck-at*: the detectors read a constant: ``intensity`` of full scale
  (0 is a dead detector, 1 a full one);
- *blackout*: the detectors go dark (empty readings) for the first
  ``intensity`` share of every ``period_s``;
- *stale*: the readings arrive ``intensity * max_delay_s`` seconds late;
- *connected-vehicle spoof* (I-SIG style): one fake connected vehicle
  reports itself ``intensity`` of the detector's length from the stop line,
  crawling; a queue estimator then takes everything up to it as queued.
  The loops are not fooled, which a consistency guard can notice.

*Cost* is the number of sensors (lanes) controlled and the *magnitude*:
the mean absolute change, in vehicles, per attacked lane and second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from cityx.core import Observation, Param, PluginMeta, stream
from cityx.worlds.traffic import NetworkInfo

from ..base import Access, AttackSpec, AttackTarget, HookAttack, NistClass
from .targets import JAM_SPACING_M, target_mask

INTENSITY = Param("intensity", 0.5, 0.0, 1.0, "", "how far the attack goes, 0 (off) to 1 (full)")
SHARE = Param("share", 0.25, 0.0, 1.0, "", "share of the signalised approaches controlled")
START = Param("start_s", 0.0, 0.0, 86400.0, "s", "seconds after the run starts that it begins")
COMMON = (INTENSITY, SHARE, START)
_SENSOR = frozenset({Access.SENSOR})
_SPOOF = ("AML.T0043", "AML.T0015")
_DENY = ("AML.T0029", "AML.T0015")


class SensorHook:
    """The shared part of every sensor-path attack: targets, timing and cost."""

    attack_id: ClassVar[str] = ""

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
        self.start_s = float(params["start_s"])
        self.lanes = network.lanes
        # One stream for every sensor attack: at one seed and share they hit the same lanes,
        # so a campaign compares attacks on equal footing.
        self.mask = target_mask(
            network, share=float(params["share"]), seed=seed, label="sensor", lanes=lanes
        )
        self.e2_m = network.detector_lengths()
        self.capacity = np.floor(self.e2_m / JAM_SPACING_M)
        self.rng = stream(seed, "attack", self.attack_id)
        self._t0: float | None = None
        self.active_from_s: float | None = None
        self.active_steps = 0
        self._changed = 0.0

    def observe(self, observation: Observation) -> Observation:
        if self._t0 is None:
            self._t0 = observation.time_s
        if observation.time_s - self._t0 < self.start_s or not self.mask.any():
            return observation
        if self.active_from_s is None:
            self.active_from_s = observation.time_s
        self.active_steps += 1
        tampered = self.tamper(observation)
        m = self.mask
        self._changed += float(
            np.abs(tampered.counts[m] - observation.counts[m]).sum()
            + np.abs(tampered.halting[m] - observation.halting[m]).sum()
        )
        return tampered

    def tamper(self, observation: Observation) -> Observation:
        raise NotImplementedError

    def before_step(self, simulation: Any, time_s: float) -> None:
        return None

    def report(self) -> Mapping[str, Any]:
        sensors = int(self.mask.sum())
        lane_steps = max(1, sensors * self.active_steps)
        return {
            "kind": "attack",
            "attack": self.attack_id,
            "params": self.params,
            "lanes": [lane for lane, m in zip(self.lanes, self.mask, strict=True) if m],
            "active_from_s": self.active_from_s,
            "active_steps": self.active_steps,
            "cost": {
                "sensors": sensors,
                "magnitude": round(self._changed / lane_steps, 4),
                "unit": "vehicles per attacked lane-second",
            },
        }


class PhantomQueueHook(SensorHook):
    attack_id = "world.phantom-queue"

    def tamper(self, o: Observation) -> Observation:
        m = self.mask
        extra = np.round(self.intensity * self.params["vehicles"])
        if extra < 1:
            return o
        halting = np.where(m, np.minimum(o.halting + extra, self.capacity), o.halting)
        occupancy = np.where(
            m,
            np.maximum(o.occupancy, np.minimum(100.0, 100 * halting * 5.0 / self.e2_m)),
            o.occupancy,
        )
        speed = np.where(
            m, np.where(o.mean_speed < 0, 0.05, np.minimum(o.mean_speed, 0.05)), o.mean_speed
        )
        counts = np.where(m, 0.0, o.counts)
        return replace(o, counts=counts, occupancy=occupancy, halting=halting, mean_speed=speed)


class HiddenVehiclesHook(SensorHook):
    attack_id = "world.hidden-vehicles"

    def tamper(self, o: Observation) -> Observation:
        m, keep = self.mask, 1.0 - self.intensity
        counts = np.where(m, self.rng.binomial(o.counts.astype(np.int64), keep), o.counts)
        halting = np.where(m, self.rng.binomial(o.halting.astype(np.int64), keep), o.halting)
        occupancy = np.where(m, o.occupancy * keep, o.occupancy)
        empty = m & (halting == 0) & (occupancy <= 0)
        speed = np.where(empty, -1.0, o.mean_speed)
        return replace(
            o,
            counts=counts.astype(np.float64),
            occupancy=occupancy,
            halting=halting.astype(np.float64),
            mean_speed=speed,
        )


class StuckAtHook(SensorHook):
    attack_id = "world.stuck-at"

    def tamper(self, o: Observation) -> Observation:
        m, level = self.mask, self.intensity
        return replace(
            o,
            counts=np.where(m, 0.0, o.counts),
            occupancy=np.where(m, 100.0 * level, o.occupancy),
            halting=np.where(m, np.round(level * self.capacity), o.halting),
            mean_speed=np.where(m, 0.0 if level > 0 else -1.0, o.mean_speed),
        )


class BlackoutHook(SensorHook):
    attack_id = "world.blackout"

    def tamper(self, o: Observation) -> Observation:
        assert self.active_from_s is not None
        period = self.params["period_s"]
        if (o.time_s - self.active_from_s) % period >= self.intensity * period:
            return o
        m = self.mask
        return replace(
            o,
            counts=np.where(m, 0.0, o.counts),
            occupancy=np.where(m, 0.0, o.occupancy),
            halting=np.where(m, 0.0, o.halting),
            mean_speed=np.where(m, -1.0, o.mean_speed),
        )


class StaleHook(SensorHook):
    attack_id = "world.stale"

    def __init__(self, network: NetworkInfo, **kwargs: Any) -> None:
        super().__init__(network, **kwargs)
        self.delay = round(self.intensity * self.params["max_delay_s"])
        # The last delay + 1 readings; the oldest is what the attacked lanes show.
        self._history: deque[np.ndarray[Any, np.dtype[np.float64]]] = deque(maxlen=self.delay + 1)

    def observe(self, observation: Observation) -> Observation:
        # Readings are kept from the first second, so the delay holds from the start.
        self._history.append(
            np.stack(
                [
                    observation.counts,
                    observation.occupancy,
                    observation.halting,
                    observation.mean_speed,
                ]
            )
        )
        return super().observe(observation)

    def tamper(self, o: Observation) -> Observation:
        old, m = self._history[0], self.mask
        return replace(
            o,
            counts=np.where(m, old[0], o.counts),
            occupancy=np.where(m, old[1], o.occupancy),
            halting=np.where(m, old[2], o.halting),
            mean_speed=np.where(m, old[3], o.mean_speed),
        )


class ConnectedVehicleSpoofHook(SensorHook):
    attack_id = "world.cv-spoof"

    def tamper(self, o: Observation) -> Observation:
        m = self.mask
        distance = self.intensity * self.e2_m
        queued = np.minimum(np.ceil(distance / JAM_SPACING_M), self.capacity)
        halting = np.where(m, np.maximum(o.halting, queued), o.halting)
        fake = self.params["speed_ms"]
        n = np.maximum(o.halting, 1.0)
        blended = np.where(o.mean_speed < 0, fake, (o.mean_speed * n + fake) / (n + 1))
        speed = np.where(m & (distance > 0), blended, o.mean_speed)
        return replace(o, halting=halting, mean_speed=speed)


def _spec(
    attack_id: str,
    goal: str,
    atlas: tuple[str, ...],
    *extra: Param,
    reference: str = "",
) -> AttackSpec:
    return AttackSpec(
        id=attack_id,
        version="1",
        goal=goal,
        target=AttackTarget.CONTROLLER,
        atlas=atlas,
        nist_class=NistClass.EVASION,
        access=_SENSOR,
        params=(*COMMON, *extra),
        reference=reference,
    )


class SensorAttack(HookAttack):
    """A sensor-path attack: its hook rewrites what the detectors report."""

    hook_class: ClassVar[type[SensorHook]]

    def _hook(
        self,
        network: NetworkInfo,
        *,
        seed: int,
        lanes: Sequence[str] | None,
        params: dict[str, float],
    ) -> SensorHook:
        return self.hook_class(network, seed=seed, params=params, lanes=lanes)


class PhantomQueue(SensorAttack):
    spec = _spec(
        "world.phantom-queue",
        "Make chosen approaches look jammed: spoofed loop counts and lane-area "
        "queue, occupancy and speed",
        _SPOOF,
        Param("vehicles", 10, 1, 30, "vehicles", "phantom queue at intensity 1", integer=True),
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta
    hook_class = PhantomQueueHook


class HiddenVehicles(SensorAttack):
    spec = _spec(
        "world.hidden-vehicles",
        "Hide vehicles from the controller: suppressed counts, queue and occupancy",
        _SPOOF,
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta
    hook_class = HiddenVehiclesHook


class StuckAt(SensorAttack):
    spec = _spec(
        "world.stuck-at",
        "Freeze chosen detectors at a constant reading (intensity = share of full scale)",
        _DENY,
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta
    hook_class = StuckAtHook


class Blackout(SensorAttack):
    spec = _spec(
        "world.blackout",
        "Black out chosen detectors for a share of every period",
        _DENY,
        Param("period_s", 60, 5, 3600, "s", "length of one blackout cycle", integer=True),
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta
    hook_class = BlackoutHook


class Stale(SensorAttack):
    spec = _spec(
        "world.stale",
        "Deliver chosen detectors' readings late (intensity x max_delay_s seconds)",
        _DENY,
        Param("max_delay_s", 60, 1, 600, "s", "delay at intensity 1", integer=True),
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta
    hook_class = StaleHook


class ConnectedVehicleSpoof(SensorAttack):
    spec = _spec(
        "world.cv-spoof",
        "Falsified connected-vehicle reports: one fake slow vehicle far up an approach "
        "makes it look queued (I-SIG style)",
        _SPOOF,
        Param("speed_ms", 0.5, 0.0, 20.0, "m/s", "the fake vehicle's reported speed"),
        reference="Chen et al., Exposing congestion attack on emerging connected vehicle "
        "based traffic signal control, NDSS 2018",
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta
    hook_class = ConnectedVehicleSpoofHook


__all__ = [
    "COMMON",
    "Blackout",
    "ConnectedVehicleSpoof",
    "HiddenVehicles",
    "PhantomQueue",
    "SensorAttack",
    "SensorHook",
    "Stale",
    "StuckAt",
]
