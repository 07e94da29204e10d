"""A world run under human oversight.

:func:`run_oversight` runs one scenario in this process (libsumo: one
simulation at a time) with every intersection under a
:class:`~.modes.Supervisor`. Each simulated second:

1. attacks on the sensor path (world hooks) tamper with the observation,
   and the liveness guard reads it;
2. operator commands that are due are taken from the
   :class:`~.commands.CommandQueue` and accepted or refused;
3. the adaptive controller acts; its choices are recorded
   (``controller-choice/v1`` where it has scores), compared with a
   max-pressure baseline on the same observation, and alerts are raised;
4. an optional *operator policy* reacts to the alerts (drills);
5. the supervisor turns modes into requests, the envelope into signals,
   SUMO steps, and the independent conflict monitor reads what SUMO shows;
6. commands whose result is on the street become *effective*.

Everything goes to the signed decision log (:mod:`.decisions`). The run
is *complete* only when the simulation ran to its end and the monitor
counted no violation. The signing key is the city's (``key``) or a fresh
per-run key that is never written to disk (its public half is in the run
folder and in the result).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cityx.core import (
    Action,
    CityxError,
    Controller,
    InputError,
    Observation,
    PluginKind,
    Registry,
    WorldHook,
    check_seed,
    resolve,
)
from cityx.defenses.guards import RuntimeGuard
from cityx.defenses.liveness import LivenessGuard
from cityx.interop import SigningKey, generate_key
from cityx.worlds.traffic import (
    NetworkInfo,
    SignalMode,
    TrafficWorld,
    WorldOptions,
    compute_kpis,
    controller_plugin,
    get_scenario,
    prepare_run,
    trip_table,
)
from cityx.worlds.traffic.candidates import FEATURE_NAMES, PhaseCandidates
from cityx.worlds.traffic.choices import ControllerChoice, DecidedBy, choices_from_step
from cityx.worlds.traffic.controllers import MaxPressure
from cityx.worlds.traffic.kpis import Kpis

from .alerts import Alert, AlertBook, AlertLimits
from .art14 import art14_table
from .channel import StateFeed
from .commands import CommandQueue, CommandRecord, CommandState, RefusalCode
from .decisions import DecisionLog
from .modes import Mode, StopState, Supervisor
from .monitor import ConflictMonitor, MonitorReport

RESULT_SCHEMA = "oversight-run/v1"
PLAN = "fixed"  # the adaptive "controller" that is the network's own plan
_PRESSURE = FEATURE_NAMES.index("pressure")

# An operator policy sees the new alerts and the queue (and the time); it may submit commands.
OperatorPolicy = Callable[[float, tuple[Alert, ...], tuple[Alert, ...], CommandQueue], None]


@dataclass(frozen=True, slots=True)
class OversightSpec:
    """What to run under oversight.

    ``controller``: the adaptive controller: ``max-pressure`` (or another
    envelope-mode controller plugin), ``fixed`` (the network's plan), or
    what ``controller_factory`` (``"module:function"``, called with the
    controller string, the network, the run folder and
    ``controller_options``) opens. ``hooks``: world hooks (``"attack:ID"``
    with options) on the sensor path, as in a world run.
    """

    scenario: str
    controller: str = "max-pressure"
    seconds: int = 120
    seed: int = 0
    demand: float = 1.0
    out: Path | None = None
    min_green_s: float = 5.0
    max_green_s: float = 90.0
    stop_state: StopState = StopState.FIXED_TIME
    controller_factory: str | None = None
    controller_options: Mapping[str, Any] = field(default_factory=dict)
    hooks: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    checkpoint_every: int = 500
    alerts: AlertLimits = field(default_factory=AlertLimits)
    record_choices: bool = True
    # Wall-clock seconds the operator channel may stay silent before adaptive
    # intersections fall back to the fixed-time plan (None: no live channel).
    channel_timeout_s: float | None = None
    # Alert on the runtime guard's physics checks too (``sensor.implausible``).
    runtime_guard: bool = True

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if self.seconds <= 0:
            raise InputError(f"seconds must be positive, got {self.seconds}", where="seconds")
        if not self.demand > 0:
            raise InputError(f"demand must be a positive factor, got {self.demand}", where="demand")

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "controller": self.controller,
            "seconds": self.seconds,
            "seed": self.seed,
            "demand": self.demand,
            "min_green_s": self.min_green_s,
            "max_green_s": self.max_green_s,
            "stop_state": self.stop_state.value,
            "hooks": [[ref, dict(o)] for ref, o in self.hooks],
        }


@dataclass(frozen=True, slots=True)
class OversightResult:
    """What a run under oversight did; ``complete`` needs the end reached and 0 violations."""

    spec: OversightSpec
    run_id: str
    out: Path
    steps: int
    complete: bool
    kpis: Kpis
    monitor: MonitorReport
    commands: tuple[CommandRecord, ...]
    alerts: tuple[Alert, ...]
    alerts_suppressed: int
    modes: Mapping[str, str]
    mode_changes: int
    decisions: Path
    decision_records: Mapping[str, int]
    signer: Mapping[str, str]
    safety: Mapping[str, Any]
    wall_s: float
    failure: str | None = None
    unverified: tuple[Mapping[str, Any], ...] = ()  # signed commands refused before queueing
    alerts_acknowledged: int = 0
    sim_steps_per_s: float = 0.0  # the step loop alone (no setup, no KPIs)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": RESULT_SCHEMA,
            "run_id": self.run_id,
            "spec": self.spec.to_json(),
            "out": str(self.out),
            "steps": self.steps,
            "complete": self.complete,
            "failure": self.failure,
            "kpis": self.kpis.to_json(),
            "safety": dict(self.safety),
            "oversight": {
                "commands": [c.to_json() for c in self.commands],
                "unverified_commands": [dict(u) for u in self.unverified],
                "violations": self.monitor.counts(),
                "monitor": self.monitor.to_json(),
                "alerts": len(self.alerts),
                "alert_list": [a.to_json() for a in self.alerts],
                "alerts_suppressed": self.alerts_suppressed,
                "alerts_acknowledged": self.alerts_acknowledged,
                "modes": dict(self.modes),
                "mode_changes": self.mode_changes,
                "decisions": str(self.decisions),
                "decision_records": dict(self.decision_records),
                "signer": dict(self.signer),
                "art14": art14_table(self),
            },
            "wall_s": round(self.wall_s, 3),
            "sim_steps_per_s": round(self.sim_steps_per_s, 1),
        }


def _adaptive(spec: OversightSpec, network: NetworkInfo, out: Path) -> Controller | None:
    if spec.controller_factory is not None:
        factory = resolve(spec.controller_factory, where="controller_factory")
        controller: Controller = factory(spec.controller, network, out, **spec.controller_options)
        return controller
    if spec.controller == PLAN:
        return None
    plugin = controller_plugin(spec.controller, Registry())
    if plugin.mode is not SignalMode.ENVELOPE:
        raise InputError(
            f"controller {spec.controller!r} runs in SUMO ({plugin.mode.value} mode), "
            "not through the envelope, so it cannot be overseen",
            where="controller",
            hint="use max-pressure, fixed (the plan) or a submitted controller",
        )
    built = plugin.controller(network, seed=spec.seed, **spec.controller_options)
    assert built is not None
    return built


def _hooks(spec: OversightSpec, network: NetworkInfo) -> list[WorldHook]:
    registry = Registry()
    hooks: list[WorldHook] = []
    for reference, options in spec.hooks:
        kind, sep, plugin_id = reference.partition(":")
        if not sep or kind not in (PluginKind.ATTACK.value, PluginKind.GUARD.value):
            raise InputError(
                f"a world hook is named 'attack:ID' or 'guard:ID', got {reference!r}",
                where="hooks",
            )
        plugin = registry.load(PluginKind(kind), plugin_id)()
        hooks.append(plugin.hook(network, seed=spec.seed, **options))
    return hooks


class _Run:
    """One run's moving parts (private: :func:`run_oversight` is the interface)."""

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
        self.records: dict[tuple[int, str], CommandRecord] = {}  # the latest of each
        self.actor = f"controller:{spec.controller}"
        self.mode_changes = 0
        self.unverified: list[dict[str, Any]] = []  # signed commands refused unqueued
        self.channel_lost = False
        self.last_choices: dict[str, dict[str, Any]] = {}
        self.new_alerts: list[Alert] = []
        self.cleared_alerts: list[Alert] = []

    # -- logging ----------------------------------------------------------------------

    def record_command(self, record: CommandRecord) -> None:
        self.records[(record.id, record.intersection)] = record
        self.log.append("command", record.command.operator, record.intersection, record.to_json())

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

    def decide(self, observation: Observation, now: float) -> dict[str, int]:
        features = self.candidates.features(observation)
        pressure = features[:, _PRESSURE]
        baseline = self.candidates.choose(observation, pressure).phases
        wanted: dict[str, int] = {}
        if self.controller is not None:
            try:
                wanted = dict(self.controller.act(observation).phases)
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
                    self.supervisor.fall_back(tls, now, "controller failed")
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
        if self.spec.record_choices and self.controller is not None:
            if choices:
                for made in choices:
                    self.log.append("choice", self.actor, made.intersection, made.to_json())
            else:
                self.log.append(
                    "request", self.actor, "*", {"time_s": observation.time_s, "phases": wanted}
                )
        by_tls = {c.intersection: c for c in choices}
        self.last_choices = {
            c.intersection: {
                "chosen": c.chosen_phase,
                "runner_up": c.runner_up_phase,
                "margin": c.margin,
            }
            for c in choices
        }
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
        self, now: float, observation: Observation, shown: Mapping[str, str]
    ) -> dict[str, Any]:
        """What the state feed says about this step (small: a console's view, not the log)."""
        queues = np.bincount(
            self.lane_owner, weights=observation.halting, minlength=len(self.supervisor.ids)
        )
        envelope = self.world.envelope
        assert envelope is not None
        return {
            "time_s": now,
            "intersections": {
                tls: {
                    "mode": self.supervisor.modes[tls].value,
                    "signals": shown.get(tls, ""),
                    "green": envelope.phase(tls)[0],
                    "queue": float(queues[k]),
                    "choice": self.last_choices.get(tls),
                }
                for k, tls in enumerate(self.supervisor.ids)
            },
            "alerts": [
                {"id": a.id, "kind": a.kind, "intersection": a.intersection, "priority": a.priority}
                for a in self.book.active()
            ],
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


def run_oversight(
    spec: OversightSpec,
    *,
    commands: CommandQueue | None = None,
    key: SigningKey | None = None,
    operator_policy: OperatorPolicy | None = None,
    inject: Callable[[Any, float], None] | None = None,
    feed: StateFeed | None = None,
    on_checkpoint: Callable[[str, Mapping[str, Any]], None] | None = None,
) -> OversightResult:
    """Run ``spec`` under oversight in this process; commands come from ``commands``.

    ``inject(simulation, elapsed_s)`` is called before each step with the
    running simulator: tests use it to bypass the envelope (all-green, a
    short yellow) and check that the monitor counts it. ``feed`` publishes
    the run's signed state each step (:class:`~.channel.StateFeed`);
    ``on_checkpoint(run_id, anchor)`` receives each checkpoint as it is made
    (the CLI appends them to the store's audit log).
    """
    start = time.perf_counter()
    queue = commands or CommandQueue()
    out = (spec.out or Path(tempfile.mkdtemp(prefix="cityx-oversight-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    run = prepare_run(
        get_scenario(spec.scenario),
        out,
        seed=spec.seed,
        seconds=spec.seconds,
        demand=spec.demand,
        min_green_s=spec.min_green_s,
        max_green_s=spec.max_green_s,
        detector_period_s=300,
    )
    controller = _adaptive(spec, run.network, out)
    hooks = _hooks(spec, run.network)
    signer = key or generate_key("urn:cityx:city:oversight-run")
    run_id = f"{spec.scenario}-s{spec.seed}-{uuid.uuid4().hex[:12]}"
    world = TrafficWorld(
        run,
        WorldOptions(
            seconds=spec.seconds,
            mode=SignalMode.ENVELOPE,
            min_green_s=spec.min_green_s,
            max_green_s=spec.max_green_s,
        ),
    )
    log = DecisionLog(
        out,
        signer,
        run=run_id,
        checkpoint_every=spec.checkpoint_every,
        on_checkpoint=on_checkpoint,
    )
    failure: str | None = None
    observation = world.reset(spec.seed)
    sim = world.simulation
    monitor = ConflictMonitor()
    ids = tuple(i.id for i in run.network.intersections)
    monitor.attach(sim, ids)
    state = _Run(spec, world, log, queue, controller)
    log.append("mode", "oversight", "*", {"time_s": 0.0, "modes": dict(state.supervisor.modes)})
    if feed is not None:
        feed.start(signer, run_id)
    loop_start = time.perf_counter()
    try:
        while not world.done:
            assert observation is not None
            now = world.time_s - state.begin
            for hook in hooks:
                observation = hook.observe(observation)
                hook.before_step(sim, observation.time_s)
            state.read_sensors(observation)
            state.new_alerts, state.cleared_alerts = [], []
            timeout = spec.channel_timeout_s
            if timeout is not None and not state.channel_lost and queue.silent_for() > timeout:
                state.channel_lost = True
                for tls in ids:
                    state.supervisor.fall_back(tls, now, "operator channel lost")
                state.drain_modes()
            elif state.channel_lost and queue.silent_for() <= (timeout or 0.0):
                state.channel_lost = False  # heard again: the overseer decides when to resume
            state.commands(now)
            wanted = state.decide(observation, now)
            state.sensors(now)
            if operator_policy is not None:
                operator_policy(now, tuple(state.new_alerts), tuple(state.cleared_alerts), queue)
                state.commands(now)  # the policy's commands act at this step
            requests = state.supervisor.requests(wanted)
            if inject is not None:
                inject(sim, now)
            observation = world.step(Action(phases=requests))
            after = world.time_s - state.begin
            for v in monitor.observe(sim, world.time_s):
                log.append("violation", "monitor", v.intersection, v.to_json())
                state.alert(
                    "monitor.violation",
                    v.intersection,
                    True,
                    after,
                    message=f"{v.kind} violation: {v.detail}",
                    suggestion=f"stop {v.intersection} and inspect the controller",
                    evidence=v.to_json(),
                )
            shown = monitor.shown
            for record in state.supervisor.settle(after, shown):
                state.record_command(record)
            state.drain_modes()
            if feed is not None and observation is not None:
                feed.publish(state.snapshot(after, observation, shown))
        end = world.time_s - state.begin
        for cid, command in queue.remaining():
            for tls in state.supervisor.expand(command):
                state.record_command(
                    CommandRecord(
                        id=cid,
                        command=command,
                        intersection=tls,
                        state=CommandState.REFUSED,
                        reason_code=RefusalCode.AFTER_END.value,
                    )
                )
        for pending in state.supervisor.pending():
            log.append(
                "command",
                pending.command.operator,
                pending.intersection,
                {**pending.to_json(), "note": f"not effective by the end ({end:g} s)"},
            )
    except CityxError as exc:
        failure = exc.message
    finally:
        loop_s = time.perf_counter() - loop_start
        world.close()
        close = getattr(controller, "close", None)
        if callable(close):
            close()
    trips = trip_table(out, run.network)
    kpis = compute_kpis(out, run.network, trips)
    report = monitor.report()
    complete = kpis.complete and failure is None and report.ok
    log.close()
    latest = state.records
    safety = world.safety()
    result = OversightResult(
        spec=replace(spec, out=out),
        run_id=run_id,
        out=out,
        steps=world.steps,
        complete=complete,
        kpis=replace(kpis, complete=complete),
        monitor=report,
        commands=tuple(latest[k] for k in sorted(latest)),
        alerts=tuple(state.book.raised),
        alerts_suppressed=state.book.suppressed,
        modes={tls: m.value for tls, m in state.supervisor.modes.items()},
        mode_changes=state.mode_changes,
        decisions=log.path,
        decision_records=log.counts(),
        signer={"issuer": signer.issuer, "kid": signer.kid, "x": signer.public_jwk()["x"]},
        safety=safety.to_json() if safety is not None else {},
        wall_s=time.perf_counter() - start,
        failure=failure,
        unverified=tuple(state.unverified),
        alerts_acknowledged=len(state.book.acknowledged),
        sim_steps_per_s=world.steps / loop_s if loop_s > 0 else 0.0,
    )
    (out / "oversight.json").write_text(json.dumps(result.to_json(), indent=1, allow_nan=False))
    return result


__all__ = [
    "PLAN",
    "RESULT_SCHEMA",
    "OperatorPolicy",
    "OversightResult",
    "OversightSpec",
    "run_oversight",
]
