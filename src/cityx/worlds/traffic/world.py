"""The world loop: one SUMO simulation driven one second at a time.

A :class:`TrafficWorld` runs a :class:`~.scenarios.PreparedRun` in this
process with libsumo. Each :meth:`TrafficWorld.step` shows the signals for
one simulated second and returns the :class:`~cityx.core.Observation` at
its end. Per intersection and incoming lane the observation holds:

- ``counts``: vehicles that crossed the lane's induction loop (e1) during
  the last step;
- ``occupancy``: percent of the last step the lane-area detector (e2) was
  covered by vehicles;
- ``halting``: vehicles on the e2 area slower than 0.1 m/s (the *queue*);
- ``mean_speed``: mean speed on the e2 area, m/s (-1 when it is empty,
  SUMO's convention);

and the current ``phase`` with its age in seconds. The *signal mode* says
who drives the signals: ``program`` (the network's own static program,
untouched), ``actuated`` (the same phases as SUMO actuated programs) or
``envelope`` (a controller's actions through the :mod:`.safety` envelope;
``phase`` is then the green shown or coming and its age is 0 during a
clearance). SUMO writes its own outputs into the run folder; KPIs are
computed from them after :meth:`TrafficWorld.close` (see :mod:`.kpis`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from cityx.core.seeding import check_seed, derive_seed
from cityx.core.systems import Action, Observation

from ..errors import WorldError
from .network import e1_id, e2_id
from .safety import SafetyEnvelope, SafetyReport
from .scenarios import ACTUATED_PROGRAM, PreparedRun
from .sumo_env import load_libsumo

# TraCI variable ids (stable in the TraCI protocol); importing traci.constants
# would pull in the whole traci package for five integers.
_VEHICLE_NUMBER = 0x10
_MEAN_SPEED = 0x11
_OCCUPANCY = 0x13
_HALTING = 0x14
_CURRENT_PHASE = 0x28
_DAY_S = 86400.0

OUTPUTS = {
    "tripinfo": "tripinfo.xml",
    "vehroute": "vehroutes.xml",
    "statistics": "statistics.xml",
    "collisions": "collisions.xml",
    "pending": "pending.json",
    "log": "sumo.log",
}


class SignalMode(StrEnum):
    PROGRAM = "program"
    ACTUATED = "actuated"
    ENVELOPE = "envelope"


@dataclass(frozen=True, slots=True)
class WorldOptions:
    """How long to simulate and how the envelope is set."""

    seconds: int
    mode: SignalMode = SignalMode.PROGRAM
    min_green_s: float = 5.0
    max_green_s: float = 90.0
    emissions: bool = False
    # Without a controller nobody reads observations: skip the subscriptions.
    observe: bool = True
    # The e1/e2 detectors cost SUMO 10-15 % of a step: attached when observing,
    # or with this when something else reads their output files.
    detectors: bool = False

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")


class TrafficWorld:
    """``reset(seed)``, ``step(action)``, ``close()``; one per process (libsumo is global)."""

    def __init__(self, run: PreparedRun, options: WorldOptions) -> None:
        self.run = run
        self.options = options
        self._sumo: Any = None
        self._envelope: SafetyEnvelope | None = None
        self._time = 0.0
        self._end = 0.0
        self._steps = 0
        self._phase: dict[str, int] = {}
        self._phase_since: dict[str, float] = {}
        intersections = run.network.intersections
        self._ids = tuple(i.id for i in intersections)
        self._lanes = tuple(lane for i in intersections for lane in i.lanes)
        self._lane_start = np.cumsum([0, *(len(i.lanes) for i in intersections)], dtype=np.int64)
        self._e1 = tuple(map(e1_id, self._lanes))
        self._e2 = tuple(map(e2_id, self._lanes))

    # -- lifecycle ----------------------------------------------------------------

    def command(self, seed: int) -> list[str]:
        """The SUMO command line of this run (also written to ``command.json``)."""
        folder = self.run.folder.resolve()
        additional = list(self.run.additional)
        if self.options.observe or self.options.detectors:
            additional.append(self.run.detectors)
        if self.options.mode is SignalMode.ACTUATED:
            additional.append(self.run.actuated)
        seconds = self.options.seconds
        command = [
            "sumo",
            "--configuration-file",
            str(self.run.config.resolve()),
            # SUMO's seed is a 32-bit integer; derive it so any cityx seed works.
            "--seed",
            str(derive_seed(seed, "sumo") % 2**31),
            "--step-length",
            "1",
            "--end",
            f"{self.run.begin + seconds:g}",
            "--scale",
            f"{self.run.demand:g}",
            # Waiting time counts over the whole run, not SUMO's 100 s window.
            "--waiting-time-memory",
            str(seconds + 1),
            "--no-step-log",
            "true",
            "--log",
            str(folder / OUTPUTS["log"]),
            "--tripinfo-output",
            str(folder / OUTPUTS["tripinfo"]),
            "--device.tripinfo.probability",
            "1",
            "--tripinfo-output.write-unfinished",
            "true",
            "--vehroute-output",
            str(folder / OUTPUTS["vehroute"]),
            "--vehroute-output.write-unfinished",
            "true",
            "--statistic-output",
            str(folder / OUTPUTS["statistics"]),
            "--collision.action",
            "warn",
            "--collision-output",
            str(folder / OUTPUTS["collisions"]),
        ]
        if additional:
            command += ["--additional-files", ",".join(str(Path(p).resolve()) for p in additional)]
        if self.options.emissions:
            command += ["--device.emissions.probability", "1"]
        return command

    def reset(self, seed: int | None = None) -> Observation | None:
        """Start SUMO (a fresh simulation) and return the first observation."""
        seed = check_seed(self.run.seed if seed is None else seed)
        if self._sumo is not None:
            self.close()
        sumo = load_libsumo()
        command = self.command(seed)
        (self.run.folder / "command.json").write_text(json.dumps(command, indent=1))
        try:
            sumo.start(command)
        except Exception as exc:  # libsumo raises its own TraCIException/FatalTraCIError
            raise WorldError(
                f"SUMO did not start: {' '.join(str(exc).split())}",
                where=str(self.run.folder / OUTPUTS["log"]),
            ) from exc
        self._sumo = sumo
        self._time = float(sumo.simulation.getTime())
        self._end = self.run.begin + self.options.seconds
        self._steps = 0
        network = self.run.network
        observe = self.options.observe
        for intersection in network.intersections:
            if observe:
                for lane in intersection.lanes:
                    sumo.inductionloop.subscribe(e1_id(lane), [_VEHICLE_NUMBER])
                    sumo.lanearea.subscribe(e2_id(lane), [_OCCUPANCY, _HALTING, _MEAN_SPEED])
                if self.options.mode is not SignalMode.ENVELOPE:  # else the envelope knows
                    sumo.trafficlight.subscribe(intersection.id, [_CURRENT_PHASE])
            if self.options.mode is SignalMode.ACTUATED:
                sumo.trafficlight.setProgram(intersection.id, ACTUATED_PROGRAM)
        # Subscriptions answer from the next step; read the start state directly.
        self._phase = {i.id: int(sumo.trafficlight.getPhase(i.id)) for i in network.intersections}
        self._phase_since = dict.fromkeys(self._phase, self._time)
        if self.options.mode is SignalMode.ENVELOPE:
            self._envelope = SafetyEnvelope(
                network.intersections,
                min_green_s=self.options.min_green_s,
                max_green_s=self.options.max_green_s,
            )
            self._envelope.reset(self._phase)
        else:
            self._envelope = None
        return self._observe(first=True) if observe else None

    @property
    def time_s(self) -> float:
        """Simulated seconds (SUMO's clock, which starts at the scenario's begin)."""
        return self._time

    @property
    def simulation(self) -> Any:
        """The running libsumo module (None when closed), for world-path hooks."""
        return self._sumo

    @property
    def done(self) -> bool:
        return self._sumo is None or self._time >= self._end - 1e-9

    @property
    def steps(self) -> int:
        return self._steps

    def step(self, action: Action | None = None) -> Observation | None:
        """Show the signals for one second (through the envelope) and observe.

        Returns None when the world was made with ``observe=False``.
        """
        sumo = self._sumo
        if sumo is None:
            raise WorldError("the world is not running: call reset() first")
        if self._envelope is not None:
            changes = self._envelope.step(action.phases if action is not None else {})
            for tls, state in changes.items():
                sumo.trafficlight.setRedYellowGreenState(tls, state)
        sumo.simulationStep()
        self._steps += 1
        self._time = float(sumo.simulation.getTime())
        return self._observe() if self.options.observe else None

    def close(self) -> None:
        """End the simulation; SUMO then writes its remaining outputs."""
        sumo, self._sumo = self._sumo, None
        if sumo is None:
            return
        try:
            self._write_pending(sumo)
        finally:
            sumo.close()

    def safety(self) -> SafetyReport | None:
        return self._envelope.report() if self._envelope is not None else None

    @property
    def envelope(self) -> SafetyEnvelope | None:
        """The running safety envelope (``envelope`` mode), for oversight's stops and releases."""
        return self._envelope

    def envelope_outcomes(self) -> dict[str, str]:
        """What the safety envelope did at the last step, per intersection ({} without one)."""
        return self._envelope.outcomes() if self._envelope is not None else {}

    # -- internals ----------------------------------------------------------------

    def _write_pending(self, sumo: Any) -> None:
        # Vehicles still waiting to enter (the backlog) have no tripinfo; keep
        # their type and departure edge so the backlog can be split by group.
        signals = self.run.network.approach_edges
        rows = []
        for vid in sumo.simulation.getPendingVehicles():
            try:
                route = sumo.vehicle.getRoute(vid)
                first = next((e for e in route if e in signals), "none")
                rows.append([vid, sumo.vehicle.getTypeID(vid), route[0] if route else "", first])
            except Exception:  # a vehicle SUMO cannot describe yet: count it untyped
                rows.append([vid, "", "", "none"])
        (self.run.folder / OUTPUTS["pending"]).write_text(json.dumps(rows))

    def _observe(self, *, first: bool = False) -> Observation:
        sumo = self._sumo
        now = self._time
        if first:
            loops: dict[str, Any] = {}
            areas: dict[str, Any] = {}
            phases: dict[str, Any] = {}
        else:
            loops = sumo.inductionloop.getAllSubscriptionResults()
            areas = sumo.lanearea.getAllSubscriptionResults()
            phases = {} if self._envelope else sumo.trafficlight.getAllSubscriptionResults()
        envelope = self._envelope
        if envelope is not None:
            phase_age = [envelope.phase(tls)[:2] for tls in self._ids]
        else:
            phase_age = []
            empty_phase: dict[int, int] = {}
            for tls in self._ids:
                phase = int(phases.get(tls, empty_phase).get(_CURRENT_PHASE, self._phase[tls]))
                if phase != self._phase[tls]:
                    self._phase[tls], self._phase_since[tls] = phase, now - 1.0
                phase_age.append((phase, now - self._phase_since[tls]))
        # The hot path: one lookup per detector into flat lists, then arrays.
        empty: dict[int, float] = {}
        e1 = [loops.get(k, empty) for k in self._e1]
        e2 = [areas.get(k, empty) for k in self._e2]
        n = len(self._lanes)
        return Observation(
            time_s=now,
            time_of_day_s=now % _DAY_S,
            intersection_ids=self._ids,
            lanes=self._lanes,
            lane_start=self._lane_start,
            phase=np.fromiter((p for p, _ in phase_age), np.int64, len(phase_age)),
            phase_age_s=np.fromiter((a for _, a in phase_age), np.float64, len(phase_age)),
            counts=np.fromiter((r.get(_VEHICLE_NUMBER, 0) for r in e1), np.float64, n),
            occupancy=np.fromiter((r.get(_OCCUPANCY, 0.0) for r in e2), np.float64, n),
            halting=np.fromiter((r.get(_HALTING, 0) for r in e2), np.float64, n),
            mean_speed=np.fromiter((r.get(_MEAN_SPEED, -1.0) for r in e2), np.float64, n),
        )


__all__ = ["OUTPUTS", "SignalMode", "TrafficWorld", "WorldOptions"]
