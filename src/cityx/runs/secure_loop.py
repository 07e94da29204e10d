"""The sandbox loop wired through the interop layer: signed observations and commands.

In a *secure loop* the controller under test never sees the detectors
directly. Every ``interval_s`` simulated seconds each intersection's
detectors publish one signed ``TrafficFlowObserved`` per detected lane
(vehicles counted over the interval, mean occupancy, mean speed; the
queue rides in the lane's ``congested`` flag and a ``queue`` extension
property); the controller's side verifies them with the full pipeline and
builds its observation from the *accepted* ones only (a lane whose
message was rejected or never came counts as empty and is reported as
missing). The controller's choice of phase for each intersection goes back
as a signed ``SignalPhaseCommand``, verified on the signals' side; only
accepted commands reach the safety envelope, and the previous verified
command holds in between. Keys are made per run; every verdict is counted
by reason and written to ``interop.json`` in the run folder.

The transport is the in-memory bus by default, or MQTT 5 to a broker.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np

from cityx.attacks import AttackedBus, MessageAttack, world_attack
from cityx.core import Action, Controller, InputError, Observation
from cityx.interop import (
    Catalog,
    InMemoryTransport,
    Message,
    Rejection,
    SecureChannel,
    Signer,
    StaticTrustStore,
    Transport,
    TrustedKey,
    Verifier,
    generate_key,
)
from cityx.interop.messages import signal_phase_command, traffic_flow_observed
from cityx.worlds.traffic import NetworkInfo
from cityx.worlds.traffic.choices import ControllerChoice, RecordsChoices

CITY = "sandbox"  # the issuer URNs' city; each loop's topics get a run tag of their own
SIGNALS = "urn:cityx:city:sandbox:signals"
_WAIT_S = 5.0  # how long to wait for a networked bus to deliver one interval's messages


def _urn_part(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"


class SecureLoop:
    """A controller wrapped so that its inputs and outputs cross the interop layer."""

    def __init__(
        self,
        inner: Controller,
        network: NetworkInfo,
        *,
        folder: Path,
        system_id: str = "controller",
        interval_s: int = 5,
        transport: Transport | None = None,
        close_transport: Callable[[], None] | None = None,
        message_attack: Mapping[str, Any] | None = None,
    ) -> None:
        if interval_s < 5:
            raise ValueError("interval_s must be at least 5 s (the shortest command duration)")
        self.inner = inner
        self.folder = folder
        self.interval_s = interval_s
        self.transport = transport or InMemoryTransport()
        # A red-team run puts a man in the middle on the bus: {"attack", "seed", params...}.
        self._attack: AttackedBus | None = None
        if message_attack:
            options = dict(message_attack)
            attack = world_attack(str(options.pop("attack")))
            if not isinstance(attack, MessageAttack):
                raise InputError(
                    f"{attack.meta.id!r} is not a message-path attack", where="message_attack"
                )
            self._attack = attack.transport(self.transport, **options)
            self.transport = self._attack
        self._close_transport = close_transport
        catalog = Catalog.builtin()
        # Topics unique to this run: runs sharing a broker must not hear each other.
        self.city = f"{CITY}-{secrets.token_hex(4)}"
        self.ids = tuple(i.id for i in network.intersections)
        self.lanes = tuple(lane for i in network.intersections for lane in i.lanes)
        self._lane_index = {lane: k for k, lane in enumerate(self.lanes)}
        self.controller_urn = f"urn:cityx:vendor:{_urn_part(system_id)}:controller"
        detector_keys = {
            tls: generate_key(f"urn:cityx:city:{CITY}:detectors:{_urn_part(tls)}")
            for tls in self.ids
        }
        controller_key = generate_key(self.controller_urn)
        trust = StaticTrustStore(
            [
                *(TrustedKey.of(k, types=("TrafficFlowObserved",)) for k in detector_keys.values()),
                TrustedKey.of(controller_key, types=("SignalPhaseCommand",)),
            ]
        )
        self.stats: dict[str, Counter[str]] = {"observations": Counter(), "commands": Counter()}
        self._lock = threading.Condition()
        self._detectors = {
            tls: SecureChannel(self.transport, city=self.city, signer=Signer(k, catalog=catalog))
            for tls, k in detector_keys.items()
        }
        self._controller = SecureChannel(
            self.transport,
            city=self.city,
            signer=Signer(controller_key, catalog=catalog),
            verifier=Verifier(trust, audience=self.controller_urn, catalog=catalog),
            on_reject=lambda r: self._rejected("observations", r),
        )
        self._signals = SecureChannel(
            self.transport,
            city=self.city,
            verifier=Verifier(trust, audience=SIGNALS, catalog=catalog),
            on_reject=lambda r: self._rejected("commands", r),
        )
        self._seen = np.zeros(len(self.lanes), dtype=bool)
        self._received = np.zeros((4, len(self.lanes)))  # counts, occupancy, halting, speed
        self._commands: dict[str, int] = {}
        self._pending = 0
        self._unsubscribe = [
            self._controller.subscribe(
                f"cityx/v1/{self.city}/TrafficFlowObserved/#", self._observed
            ),
            self._signals.subscribe(f"cityx/v1/{self.city}/SignalPhaseCommand/#", self._commanded),
        ]
        n = len(self.lanes)
        self._sum = np.zeros((3, n))  # counts, occupancy, speed (non-empty seconds)
        self._speed_n = np.zeros(n)
        self._seconds = 0
        self._action = Action(phases={})

    # -- the controller interface ----------------------------------------------------------

    def act(self, observation: Observation) -> Action:
        if self._attack is not None:
            self._attack.clock(observation.time_s)
        self._accumulate(observation)
        if self._seconds < self.interval_s and self._action.phases:
            return self._action
        self._publish_observations(observation)
        seen = self._seen.copy()
        self.stats["observations"]["missing"] += int((~seen).sum())
        received = self._received
        verified = replace(
            observation,
            counts=np.where(seen, received[0], 0.0),
            occupancy=np.where(seen, received[1], 0.0),
            halting=np.where(seen, received[2], 0.0),
            mean_speed=np.where(seen, received[3], -1.0),
        )
        wanted = self.inner.act(verified)
        self._publish_commands(wanted, observation)
        self._action = Action(phases=dict(self._commands))
        return self._action

    def take_choices(self) -> tuple[ControllerChoice, ...]:
        """The inner controller's choice records (made only on the steps it was asked)."""
        return self.inner.take_choices() if isinstance(self.inner, RecordsChoices) else ()

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()
        if self._close_transport is not None:
            self._close_transport()
        report = {
            "transport": type(self.transport).__name__,
            "interval_s": self.interval_s,
            **{k: dict(sorted(v.items())) for k, v in self.stats.items()},
        }
        if self._attack is not None:
            report["attack"] = self._attack.report()
        (self.folder / "interop.json").write_text(json.dumps(report, indent=1))

    # -- detectors -> controller -----------------------------------------------------------

    def _accumulate(self, obs: Observation) -> None:
        has_speed = obs.mean_speed >= 0
        self._sum[0] += obs.counts
        self._sum[1] += obs.occupancy
        self._sum[2] += np.where(has_speed, obs.mean_speed, 0.0)
        self._speed_n += has_speed
        self._seconds += 1

    def _publish_observations(self, obs: Observation) -> None:
        now = time.time()
        seconds = max(self._seconds, 1)
        counts = self._sum[0]
        occupancy = self._sum[1] / seconds / 100.0
        speed = np.where(self._speed_n > 0, self._sum[2] / np.maximum(self._speed_n, 1), -1.0)
        self._seen[:] = False
        self._expect(len(self.lanes))
        for k, tls in enumerate(self.ids):
            lo, hi = int(obs.lane_start[k]), int(obs.lane_start[k + 1])
            channel = self._detectors[tls]
            for j in range(lo, hi):
                lane = self.lanes[j]
                # SUMO numbers a lane from 0; the Smart Data Model's laneId starts at 1.
                entity = traffic_flow_observed(
                    f"{quote(lane, safe='')}-{int(obs.time_s)}",
                    road_segment=quote(lane.rsplit("_", 1)[0], safe=""),
                    lane_id=min(int(lane.rsplit("_", 1)[-1]) + 1, 63) if "_" in lane else 1,
                    observed_at=now,
                    period_s=seconds,
                    intensity=int(counts[j]),
                    occupancy=float(min(occupancy[j], 1.0)),
                    average_speed_kmh=float(speed[j] * 3.6) if speed[j] >= 0 else None,
                    congested=bool(obs.halting[j] > 0),
                )
                # Not in the Smart Data Model: the lane's queue, and which detector said it.
                entity["queue"] = {"type": "Property", "value": int(obs.halting[j])}
                entity["laneRef"] = {"type": "Property", "value": lane}
                channel.send(entity, audience=self.controller_urn)
        self._wait()
        self._sum[:] = 0.0
        self._speed_n[:] = 0
        self._seconds = 0

    def _observed(self, message: Message) -> None:
        entity = message.entity
        lane = entity.get("laneRef", {}).get("value")
        j = self._lane_index.get(str(lane))
        with self._lock:
            self._pending -= 1
            self._lock.notify_all()
            if j is None:
                self.stats["observations"]["unknown_lane"] += 1
                return
            speed = entity.get("averageVehicleSpeed", {}).get("value")
            self._received[:, j] = (
                entity["intensity"]["value"],
                100.0 * entity.get("occupancy", {}).get("value", 0.0),
                entity.get("queue", {}).get("value", 0),
                -1.0 if speed is None else speed / 3.6,
            )
            self._seen[j] = True
            self.stats["observations"]["accepted"] += 1

    # -- controller -> signals -------------------------------------------------------------

    def _publish_commands(self, wanted: Action, obs: Observation) -> None:
        now = time.time()
        phases = {tls: p for tls, p in wanted.phases.items() if tls in self._detectors}
        self._expect(len(phases))
        for tls, phase in phases.items():
            entity = signal_phase_command(
                f"{quote(tls, safe='')}-{int(obs.time_s)}",
                intersection=quote(tls, safe=""),
                phase_index=int(phase),
                duration_s=float(self.interval_s),
                reason="controller decision",
                issued_by=self.controller_urn,
                issued_at=now,
            )
            self._controller.send(entity, audience=SIGNALS)
        self._wait()

    def _commanded(self, message: Message) -> None:
        entity = message.entity
        # The id is percent-encoded (NGSI-LD ids allow few characters): decode it.
        tls = unquote(str(entity["refIntersection"]["object"]).rsplit(":", 1)[-1])
        with self._lock:
            self._pending -= 1
            self._lock.notify_all()
            if tls in self._detectors:
                self._commands[tls] = int(entity["phaseIndex"]["value"])
                self.stats["commands"]["accepted"] += 1
            else:
                self.stats["commands"]["unknown_intersection"] += 1

    # -- bookkeeping -----------------------------------------------------------------------

    def _rejected(self, kind: str, rejection: Rejection) -> None:
        with self._lock:
            self._pending -= 1
            self._lock.notify_all()
            self.stats[kind][f"rejected:{rejection.reason.value}"] += 1

    def _expect(self, n: int) -> None:
        with self._lock:
            # Injected messages (an attack on the bus) are delivered beyond those expected.
            self._pending = max(self._pending, 0) + n

    def _wait(self) -> None:
        # The in-memory bus delivers before publish returns; a broker needs a moment.
        with self._lock:
            if not self._lock.wait_for(lambda: self._pending <= 0, timeout=_WAIT_S):
                self.stats["observations"]["undelivered"] += self._pending
                self._pending = 0


__all__ = ["CITY", "SIGNALS", "SecureLoop"]
