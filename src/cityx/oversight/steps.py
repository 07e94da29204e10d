"""The moving parts of one run under oversight, one step at a time.

:class:`RunState` holds what :func:`~.session.run_oversight` needs between
steps: the supervisor (modes), the guards on the sensor path, the alert
book, the controller and its choice records, the decision log; its
methods are the loop's stages (commands, the controller's decision, the
sensor alerts, the state snapshot). Words as in :mod:`.session`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from cityx.core import CityxError, Controller, Observation
from cityx.defenses.guards import RuntimeGuard
from cityx.defenses.liveness import LivenessGuard
from cityx.worlds.traffic import TrafficWorld
from cityx.worlds.traffic.candidates import FEATURE_NAMES, PhaseCandidates
from cityx.worlds.traffic.choices import ControllerChoice, DecidedBy, choices_from_step
from cityx.worlds.traffic.controllers import MaxPressure
from cityx.worlds.traffic.network import lane_edge

from .alerts import Alert, AlertBook
from .annotate import ChoiceAnnotator
from .commands import (
    ALL,
    CommandQueue,
    CommandRecord,
    CommandState,
    OperatorCommand,
    RefusalCode,
)
from .confidence import load_calibration
from .decisions import DecisionLog
from .modes import Mode, Supervisor

if TYPE_CHECKING:
    from .session import OversightSpec

_PRESSURE = FEATURE_NAMES.index("pressure")
# Features that differ between a choice's rows (the others are the same for every phase).
_REASON_FEATURES = frozenset(FEATURE_NAMES) - {"queue_total", "hour", "phase_age_s"}


def choice_reasons(choice: ControllerChoice, *, top: int = 3) -> list[str]:
    """Why the chosen phase and not the runner-up, in words: the scores first, then the
    features that differ most between the two rows."""
    chosen, runner = choice.chosen_phase, choice.runner_up_phase
    if runner is None:
        return ["the intersection has one green phase"]
    by = "max-pressure: pressure" if choice.decided_by is DecidedBy.RULE else "model score"
    out = [
        f"{by} {choice.score(chosen):.3g} for phase {chosen} vs {choice.score(runner):.3g}"
        f" for phase {runner}"
    ]
    won, lost = choice.row(chosen), choice.row(runner)
    diffs = [
        (name, a, b)
        for name, a, b in zip(choice.columns, won, lost, strict=True)
        if name in _REASON_FEATURES
        and a != b
        and not (by.endswith("pressure") and name == "pressure")
    ]
    diffs.sort(key=lambda d: -abs(d[1] - d[2]))
    out += [f"{name} {a:.3g} vs {b:.3g}" for name, a, b in diffs[: top - 1]]
    if choice.score(chosen) == choice.score(runner):
        out.append("a tie: the current phase is kept")
    return out


def choice_view(choice: ControllerChoice) -> dict[str, Any]:
    """A choice as an intersection's state shows it (its ``choice`` block): the same for the
    live state a run publishes and the state a replay rebuilds from the decision log."""
    return {
        "chosen": choice.chosen_phase,
        "runner_up": choice.runner_up_phase,
        "margin": choice.margin,
        "reasons": choice_reasons(choice),
        "confidence": None if choice.confidence is None else choice.confidence.p,
        "ood": None if choice.ood is None else choice.ood.flag,
    }


class RunState:
    """One run's moving parts, step by step (:func:`~.session.run_oversight` drives it)."""

    def __init__(
        self,
        spec: OversightSpec,
        world: TrafficWorld,
        log: DecisionLog,
        queue: CommandQueue,
        controller: Controller | None,
    ) -> None:
        network = world.run.network
        envelope = world.envelope
        assert envelope is not None
        self.spec = spec
        self.world = world
        self.log = log
        self.queue = queue
        self.controller = controller
        self.begin = world.run.begin
        self.supervisor = Supervisor(
            network,
            envelope,
            stop_state=spec.stop_state,
            initial=Mode.FIXED_TIME if controller is None else Mode.ADAPTIVE,
        )
        self.candidates = PhaseCandidates.from_network(network)
        self.book = AlertBook(spec.alerts)
        self.liveness = LivenessGuard(network)
        self.runtime = RuntimeGuard(network) if spec.runtime_guard else None
        self.implausible = np.zeros(len(network.lanes), dtype=bool)
        self.implausible_rules: list[str] = []
        self.lane_owner = np.fromiter(
            (k for k, i in enumerate(network.intersections) for _ in i.lanes),
            np.int64,
            len(network.lanes),
        )
        self.lanes = network.lanes
        self.lane_edges = tuple(lane_edge(lane) for lane in network.lanes)
        self.records: dict[tuple[int, str], CommandRecord] = {}  # the latest of each
        self.actor = f"controller:{spec.controller}"
        self.mode_changes = 0
        self.unverified: list[dict[str, Any]] = []  # signed commands refused unqueued
        self.channel_lost = False
        self.last_choices: dict[str, dict[str, Any]] = {}
        self.new_alerts: list[Alert] = []
        self.cleared_alerts: list[Alert] = []
        # What changed since the last state message: command records (with the sender's
        # ref) and notes; the state feed carries them, so a console sees each transition.
        self.changed: list[dict[str, Any]] = []
        self.noted: list[dict[str, Any]] = []
        # Confidence (the shipped calibration covers max-pressure only) and OOD flags.
        self.annotator = ChoiceAnnotator(
            network,
            calibration=load_calibration() if isinstance(controller, MaxPressure) else None,
        )

    # -- logging ----------------------------------------------------------------------

    def record_command(self, record: CommandRecord) -> None:
        self.records[(record.id, record.intersection)] = record
        self.log.append("command", record.command.operator, record.intersection, record.to_json())
        self.changed.append({**record.to_json(), "ref": self.queue.ref(record.id)})

    def take_changes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The command records and notes since the last call (then forgotten here)."""
        changed, noted = self.changed, self.noted
        self.changed, self.noted = [], []
        return changed, noted

    def control(
        self, cid: int, command: OperatorCommand, refusal: RefusalCode | None, now: float
    ) -> None:
        """Record a run control (pause, continue, step): it acts when taken, or is refused."""
        sent = CommandRecord(id=cid, command=command, intersection=ALL)
        self.log.append("command", command.operator, ALL, sent.to_json())
        if refusal is not None:
            done = replace(sent, state=CommandState.REFUSED, reason_code=refusal.value)
        else:
            done = replace(
                sent, state=CommandState.EFFECTIVE, accepted_at_s=now, effective_at_s=now
            )
        self.record_command(done)

    def drain_modes(self) -> None:
        for change in self.supervisor.changes:
            self.mode_changes += 1
            self.log.append("mode", change.by, change.intersection, change.to_json())
        self.supervisor.changes.clear()
        for old in self.supervisor.superseded:
            self.record_command(old)
        self.supervisor.superseded.clear()

    def alert(self, kind: str, tls: str, condition: bool, now: float, **kw: Any) -> None:
        raised, cleared = self.book.update(kind, tls, condition, now, **kw)
        if raised is not None:
            self.new_alerts.append(raised)
            self.log.append("alert", "oversight", tls, raised.to_json())
        if cleared is not None:
            self.cleared_alerts.append(cleared)
            self.log.append(
                "alert", "oversight", tls, {"cleared": cleared.id, "time_s": now, "kind": kind}
            )

    # -- one step ---------------------------------------------------------------------

    def commands(self, now: float) -> None:
        for cid, command in self.queue.due(now):
            for tls in self.supervisor.expand(command):
                sent = CommandRecord(id=cid, command=command, intersection=tls)
                self.log.append("command", command.operator, tls, sent.to_json())
                record = self.supervisor.apply(cid, command, tls, now)
                self.record_command(record)
                self.drain_modes()
        for cid, code, detail in self.queue.rejected():
            self.log.append(
                "command",
                "unverified",
                "*",
                {"id": cid, "state": "refused", "reason_code": code, "detail": detail, "at_s": now},
            )
            self.unverified.append({"id": cid, "reason_code": code, "detail": detail, "at_s": now})
            self.changed.append(
                {
                    "id": cid,
                    "intersection": ALL,
                    "state": "refused",
                    "reason_code": code,
                    "detail": detail,
                    "ref": self.queue.ref(cid),
                }
            )
        for action, args in self.queue.alarm_actions():
            if action == "ack":
                known = self.book.acknowledge(int(args["alert"]), str(args["operator"]), now)
                self.log.append(
                    "alert",
                    str(args["operator"]),
                    "*",
                    {"acknowledged": args["alert"], "known": known, "time_s": now},
                )
            else:
                until = now + float(args["for_s"])
                self.book.shelve(str(args["kind"]), str(args["intersection"]), until)
                self.log.append(
                    "alert",
                    str(args["operator"]),
                    str(args["intersection"]),
                    {"shelved": args["kind"], "until_s": until, "time_s": now},
                )
        for cid, reason, operator in self.queue.notes():
            self.log.append("command.reason", operator, "*", {"command": cid, "reason": reason})
            self.noted.append({"command": cid, "ref": self.queue.ref(cid), "reason": reason})

    def decide(self, observation: Observation, now: float) -> dict[str, int]:
        features = self.candidates.features(observation)
        pressure = features[:, _PRESSURE]
        baseline = self.candidates.choose(observation, pressure).phases
        wanted: dict[str, int] = {}
        if self.controller is not None:
            try:
                wanted = {k: int(v) for k, v in self.controller.act(observation).phases.items()}
            except (CityxError, ValueError) as exc:
                message = exc.message if isinstance(exc, CityxError) else str(exc)
                for tls in self.supervisor.ids:
                    self.alert(
                        "ai.failed",
                        tls,
                        True,
                        now,
                        message=f"the controller failed: {message}",
                        suggestion="fixed-time plan (applied automatically)",
                        evidence={"error": message},
                    )
                    self.supervisor.fall_back(tls, now, "controller failed", manual_too=False)
                self.controller = None
                self.drain_modes()
                return {}
        choices: tuple[ControllerChoice, ...] = ()
        if isinstance(self.controller, MaxPressure):
            choices = choices_from_step(
                self.candidates,
                observation,
                features,
                pressure,
                wanted,
                columns=FEATURE_NAMES,
                decided_by=DecidedBy.RULE,
            )
            choices = self.annotator.annotate(choices, self.detector_flags())
        if self.spec.record_choices and self.controller is not None:
            if choices:
                for made in choices:
                    self.log.append("choice", self.actor, made.intersection, made.to_json())
            else:
                self.log.append(
                    "request", self.actor, "*", {"time_s": observation.time_s, "phases": wanted}
                )
        by_tls = {c.intersection: c for c in choices}
        self.last_choices = {c.intersection: choice_view(c) for c in choices}
        for tls in self.supervisor.ids:
            if self.supervisor.modes[tls] is not Mode.ADAPTIVE or tls not in wanted:
                continue
            if not isinstance(self.controller, MaxPressure) and tls in baseline:
                over, share, n = self.book.disagreement(tls, wanted[tls] != baseline[tls])
                self.alert(
                    "ai.disagreement",
                    tls,
                    over,
                    now,
                    message=f"the AI disagreed with max-pressure in {share:.0%} of {n} decisions",
                    suggestion=f"check the AI's recent choices at {tls}; fall back to the "
                    "fixed-time plan if they look wrong",
                    evidence={"share": share, "decisions": n, "baseline": "max-pressure"},
                )
            choice = by_tls.get(tls)
            if choice is not None and choice.chosen_phase != choice.current_phase:
                thin, margins = self.book.low_margin(tls, now, choice.margin)
                self.alert(
                    "ai.low_margin",
                    tls,
                    thin,
                    now,
                    message=f"{len(margins)} phase switches on margins under "
                    f"{self.spec.alerts.low_margin:g} in the last "
                    f"{self.spec.alerts.low_margin_window_s:g} s",
                    suggestion=f"hold the current phase at {tls} if switching looks needless",
                    evidence={"margins": [[t, m] for t, m in margins]},
                )
        return wanted

    def detector_flags(self) -> dict[str, Any]:
        """The guards' lane masks of this step: dead, stale (liveness), stuck (runtime)."""
        flags = dict(self.liveness.current)
        if self.runtime is not None and "stuck" in self.runtime.last:
            flags["stuck"] = self.runtime.last["stuck"]
        return flags

    def read_sensors(self, observation: Observation) -> None:
        self.liveness.observe(observation)
        self.liveness.before_step(self.world.simulation, observation.time_s)
        guard = self.runtime
        if guard is not None:
            # The runtime guard counts flags per lane and rule; this step's are the increments.
            lanes, rules = guard.by_lane.copy(), dict(guard.by_check)
            guard.observe(observation)
            self.implausible = guard.by_lane > lanes
            self.implausible_rules = sorted(
                r for r, k in guard.by_check.items() if k > rules.get(r, 0)
            )

    def snapshot(
        self,
        now: float,
        observation: Observation,
        shown: Mapping[str, str],
        *,
        run: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """What the state feed says about this step (small: a console's view, not the log):
        also the command records and notes since the last snapshot, and ``run`` (pace,
        paused) when given."""
        changed, noted = self.take_changes()
        queues = np.bincount(
            self.lane_owner, weights=observation.halting, minlength=len(self.supervisor.ids)
        )
        envelope = self.world.envelope
        assert envelope is not None
        # Halting vehicles per incoming edge (an approach), per intersection: the map's colours.
        approaches: list[dict[str, float]] = [{} for _ in self.supervisor.ids]
        for j, halting in enumerate(observation.halting.tolist()):
            edges = approaches[int(self.lane_owner[j])]
            edges[self.lane_edges[j]] = edges.get(self.lane_edges[j], 0.0) + float(halting)
        return {
            "time_s": now,
            "intersections": {
                tls: {
                    "mode": self.supervisor.modes[tls].value,
                    "signals": shown.get(tls, ""),
                    "green": envelope.phase(tls)[0],
                    "queue": float(queues[k]),
                    "choice": self.last_choices.get(tls),
                    "approaches": approaches[k],
                }
                for k, tls in enumerate(self.supervisor.ids)
            },
            "alerts": [
                {
                    "id": a.id,
                    "kind": a.kind,
                    "intersection": a.intersection,
                    "priority": a.priority,
                    "message": a.message,
                    "suggestion": a.suggestion,
                    "evidence": dict(a.evidence),
                }
                for a in self.book.active()
            ],
            "commands": changed,
            "notes": noted,
            "run": dict(run or {}),
        }

    def sensors(self, now: float) -> None:
        n = len(self.supervisor.ids)
        checks: list[tuple[str, Any, str, dict[str, Any]]] = [
            ("sensor.dead", self.liveness.current["dead"], "dead", {"rule": "dead"})
        ]
        checks.append(("sensor.stale", self.liveness.current["stale"], "stale", {"rule": "stale"}))
        if self.runtime is not None:
            checks.append(
                (
                    "sensor.implausible",
                    self.implausible,
                    "break physics",
                    {"rules": self.implausible_rules},
                )
            )
        for kind, mask, what, extra in checks:
            # Per intersection at once; lane lists only where an alert may change.
            hits = np.bincount(self.lane_owner, weights=mask, minlength=n) > 0
            for k, tls in enumerate(self.supervisor.ids):
                if not hits[k] and not self.book.is_active(kind, tls):
                    continue
                lanes = [
                    self.lanes[j] for j in np.flatnonzero(mask & (self.lane_owner == k)).tolist()
                ]
                self.alert(
                    kind,
                    tls,
                    bool(lanes),
                    now,
                    message=f"{len(lanes)} detector(s) {what} at {tls}",
                    suggestion=f"fall back to the fixed-time plan at {tls}",
                    evidence={"lanes": lanes, **extra},
                )


__all__ = ["RunState"]
