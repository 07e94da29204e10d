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

Before each step the :class:`~.pacing.Pacer` waits for the step's turn:
at once (as fast as it goes), at ``pace`` times real time, or, while the
run is paused, until an operator continues or steps it.

Everything goes to the signed decision log (:mod:`.decisions`). The run
is *complete* only when the simulation ran to its end and the monitor
counted no violation. The signing key is the city's (``key``) or a fresh
per-run key that is never written to disk (its public half is in the run
folder and in the result).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cityx.core import (
    Action,
    CityxError,
    Controller,
    InputError,
    PluginKind,
    Registry,
    WorldHook,
    check_seed,
    resolve,
)
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
from cityx.worlds.traffic.candidates import FEATURE_NAMES
from cityx.worlds.traffic.kpis import Kpis

from .alerts import Alert, AlertLimits
from .art14 import art14_table
from .channel import StateFeed
from .commands import CommandQueue, CommandRecord, CommandState, RefusalCode
from .decisions import DecisionLog
from .modes import StopState
from .monitor import ConflictMonitor, MonitorReport
from .pacing import Pacer, check_pace
from .steps import RunState

RESULT_SCHEMA = "oversight-run/v1"
_RUN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
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
    # Simulated seconds per wall-clock second (1: real time); None: as fast as it goes.
    pace: float | None = None
    # The run's id (a server names its live runs); None: made up from scenario and seed.
    run_id: str | None = None

    def __post_init__(self) -> None:
        check_seed(self.seed)
        check_pace(self.pace)
        if self.run_id is not None and not _RUN_ID.fullmatch(self.run_id):
            raise InputError(
                f"a run id is 1-64 lowercase letters, digits and -, got {self.run_id!r}",
                where="run_id",
            )
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
            "pace": self.pace,
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
    # Choices annotated, with a calibrated confidence, flagged out of distribution.
    choice_flags: Mapping[str, int] = field(default_factory=dict)

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
                "choice_flags": dict(self.choice_flags),
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
    run_id = spec.run_id or f"{spec.scenario}-s{spec.seed}-{uuid.uuid4().hex[:12]}"
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
    state = RunState(spec, world, log, queue, controller)
    log.append("mode", "oversight", "*", {"time_s": 0.0, "modes": dict(state.supervisor.modes)})
    if feed is not None:
        feed.start(signer, run_id)
    pacer = Pacer(spec.pace, queue)

    def run_info() -> dict[str, Any]:
        return {"paused": pacer.paused, "pace": pacer.pace, "seconds": spec.seconds}

    last = observation
    loop_start = time.perf_counter()
    try:
        while not world.done:
            assert observation is not None
            now = world.time_s - state.begin
            last = observation

            def idle(now: float = now, seen: Any = observation) -> None:
                # Paused: commands are still accepted (they act at the next step), and the
                # feed keeps saying where the run stands.
                state.commands(now)
                if feed is not None:
                    feed.publish(state.snapshot(now, seen, monitor.shown, run=run_info()))
                else:
                    state.take_changes()

            def control(cid: int, c: Any, refusal: Any, now: float = now) -> None:
                state.control(cid, c, refusal, now)

            pacer.wait_turn(control, idle)
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
                feed.publish(state.snapshot(after, observation, shown, run=run_info()))
            else:
                state.take_changes()
        end = world.time_s - state.begin
        for cid, command in queue.controls():
            state.control(cid, command, RefusalCode.AFTER_END, end)
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
        if feed is not None and last is not None:
            # The last word: commands refused after the end, and that the run ended.
            done = {**run_info(), "ended": True}
            feed.publish(state.snapshot(end, last, monitor.shown, run=done))
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
        choice_flags=state.annotator.counts(),
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
