"""Running one world in a child process: one simulation per process.

:func:`run_world` writes the :class:`WorldSpec` into the run folder and
starts ``python -m cityx.worlds.traffic._worker RUN_FOLDER``, which prepares
the scenario, runs the world to the end and writes ``result.json`` (or
``error.json`` for an error it raised on purpose). libsumo runs inside that
child, so a simulator crash kills only the child: the parent then raises
:class:`~cityx.worlds.WorldCrashed` carrying a result marked incomplete,
computed from the outputs SUMO had written, which stay in the run folder.
:func:`simulate` is the child's body, usable in-process too. Beside
``result.json`` the child writes the run's trip table (:mod:`.trips`),
which the parent reads back into :attr:`WorldResult.trips`.

A controller other than a baseline is opened in the child by a *controller
factory*, named in the spec as ``"module:function"`` so that this package
needs no import of the layer that knows how to open submissions. When the
controller fails (crash, per-step timeout, an answer the sandbox cannot
use) the simulation is ended, its outputs are kept, and the parent raises
:class:`~cityx.worlds.ControllerFailed` with the partial result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cityx.core import (
    CityxError,
    Controller,
    InputError,
    PluginKind,
    Registry,
    TripTable,
    WorldHook,
    check_seed,
    resolve,
)

from ..errors import ControllerFailed, ScenarioError, WorldCrashed, WorldError
from .choices import CHOICES_FILE, RecordsChoices, with_outcomes
from .controllers import controller_plugin, is_controller_plugin
from .kpis import Kpis, compute_kpis, trip_table
from .network import NetworkInfo
from .safety import SafetyReport
from .scenarios import get_scenario, prepare_run
from .sumo_env import sumo_tools
from .trips import TRIPS_FILE, load_trips, write_trips
from .world import SignalMode, TrafficWorld, WorldOptions

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class WorldSpec:
    """What to run: scenario (name or .sumocfg path), controller, length, seed.

    ``controller`` is a baseline's name, or what ``controller_factory``
    (``"module:function"``, called in the child with the controller string,
    the run's :class:`NetworkInfo`, the run folder and ``controller_options``
    as keywords) knows how to open, such as a submission folder.

    ``controller_options`` are the parameters of a controller plugin, or
    the keywords of ``controller_factory``.

    ``hooks`` are world hooks, each ``("KIND:ID", options)`` naming an
    attack or guard plugin (``"attack:world.stale"``, ``"guard:runtime"``)
    whose ``hook(network, seed=..., **options)`` the child calls;
    they run in order on the sensor path (attacks first, then guards) and
    before each step. ``plugins_allow`` is the allow-list of distributions
    whose entry-point plugins the child may load (None: any installed).
    """

    scenario: str
    controller: str = "fixed"
    seconds: int = 600
    seed: int = 0
    demand: float = 1.0
    out: Path | None = None
    min_green_s: float = 5.0
    max_green_s: float = 90.0
    emissions: bool = False
    detector_period_s: int = 300  # aggregation period of the e1/e2 output files
    detectors: bool = False  # keep the e1/e2 outputs even when no controller reads them
    controller_factory: str | None = None
    controller_options: Mapping[str, Any] = field(default_factory=dict)
    hooks: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    plugins_allow: tuple[str, ...] | None = None
    # Write each controller choice (controller-choice/v1) to choices.jsonl in the run folder.
    choices: bool = True

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if self.seconds <= 0:
            raise InputError(f"seconds must be positive, got {self.seconds}", where="seconds")
        if not self.demand > 0:
            raise InputError(f"demand must be a positive factor, got {self.demand}", where="demand")

    def to_json(self) -> dict[str, Any]:
        obj = asdict(self)
        obj["out"] = str(self.out) if self.out is not None else None
        obj["controller_options"] = dict(self.controller_options)
        obj["hooks"] = [[ref, dict(options)] for ref, options in self.hooks]
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> WorldSpec:
        values = dict(obj)
        values["out"] = Path(values["out"]) if values.get("out") else None
        values["hooks"] = tuple((str(r), dict(o)) for r, o in values.get("hooks", ()))
        allow = values.get("plugins_allow")
        values["plugins_allow"] = None if allow is None else tuple(allow)
        return cls(**values)

    def registry(self) -> Registry:
        """The plugin registry the run resolves its controller and hooks in."""
        return Registry(allow=self.plugins_allow)


@dataclass(frozen=True, slots=True)
class WorldResult:
    """A run's KPIs, safety report, speed and trips; ``complete`` is False after a crash.

    ``trips`` is the run's trip table (None when no output could be read);
    it lives in its own file beside ``result.json``, not in :meth:`to_json`.
    """

    spec: WorldSpec
    kpis: Kpis
    safety: SafetyReport | None
    steps: int
    wall_s: float
    sim_steps_per_s: float
    sumo_version: str
    out: Path
    complete: bool = True
    hooks: tuple[Mapping[str, Any], ...] = ()  # each hook's report, in order
    trips: TripTable | None = None

    def to_json(self) -> dict[str, Any]:
        safety = (
            {"enforced": True, **self.safety.to_json()}
            if self.safety is not None
            else {"enforced": False}
        )
        return {
            "schema_version": SCHEMA_VERSION,
            "scenario": self.spec.scenario,
            "controller": self.spec.controller,
            "seed": self.spec.seed,
            "seconds": self.spec.seconds,
            "demand": self.spec.demand,
            "complete": self.complete,
            "kpis": self.kpis.to_json(),
            "safety": safety,
            "steps": self.steps,
            "wall_s": round(self.wall_s, 3),
            "sim_steps_per_s": round(self.sim_steps_per_s, 1),
            "sumo_version": self.sumo_version,
            "out": str(self.out),
            "hooks": [dict(h) for h in self.hooks],
        }

    @classmethod
    def from_json(
        cls, obj: Mapping[str, Any], spec: WorldSpec, *, trips: TripTable | None = None
    ) -> WorldResult:
        safety = obj["safety"]
        return cls(
            spec=spec,
            kpis=Kpis.from_json(obj["kpis"], complete=bool(obj["complete"])),
            safety=SafetyReport.from_json(safety) if safety.get("enforced") else None,
            steps=int(obj["steps"]),
            wall_s=float(obj["wall_s"]),
            sim_steps_per_s=float(obj["sim_steps_per_s"]),
            sumo_version=str(obj["sumo_version"]),
            out=Path(obj["out"]),
            complete=bool(obj["complete"]),
            hooks=tuple(obj.get("hooks", ())),
            trips=trips,
        )


def check_controller(
    name: str, *, factory: str | None = None, registry: Registry | None = None
) -> None:
    """Refuse what is neither a controller plugin nor something ``factory`` opens."""
    if factory is not None or is_controller_plugin(name, registry):
        return
    if Path(name).is_dir():
        raise InputError(
            "a submitted controller runs through cityx.runs (cityx world run does that)",
            where=name,
            hint="from Python: cityx.runs.run_controller_world",
        )
    known = ", ".join((registry or Registry()).ids(PluginKind.CONTROLLER))
    raise InputError(
        f"unknown controller {name!r}",
        hint=f"a controller plugin ({known}) or a controller submission folder",
    )


def _hook(registry: Registry, reference: str, network: NetworkInfo, **kw: Any) -> WorldHook:
    kind, sep, plugin_id = reference.partition(":")
    if not sep or kind not in (PluginKind.ATTACK.value, PluginKind.GUARD.value):
        raise InputError(
            f"a world hook is named 'attack:ID' or 'guard:ID', got {reference!r}", where="hooks"
        )
    hook: WorldHook = registry.load(PluginKind(kind), plugin_id)().hook(network, **kw)
    return hook


def simulate(spec: WorldSpec) -> WorldResult:
    """Prepare and run the world in this process (libsumo: once per process).

    Raises :class:`ControllerFailed` with the partial result when the
    controller fails; the simulation is ended first so SUMO's outputs hold.
    """
    start = time.perf_counter()
    registry = spec.registry()
    check_controller(spec.controller, factory=spec.controller_factory, registry=registry)
    out = spec.out or Path(tempfile.mkdtemp(prefix="cityx-world-"))
    out.mkdir(parents=True, exist_ok=True)
    scenario = get_scenario(spec.scenario)
    run = prepare_run(
        scenario,
        out,
        seed=spec.seed,
        seconds=spec.seconds,
        demand=spec.demand,
        min_green_s=spec.min_green_s,
        max_green_s=spec.max_green_s,
        detector_period_s=spec.detector_period_s,
    )
    controller: Controller | None
    if spec.controller_factory is None:
        plugin = controller_plugin(spec.controller, registry)
        mode = plugin.mode
        controller = plugin.controller(run.network, seed=spec.seed, **spec.controller_options)
    else:
        mode = SignalMode.ENVELOPE
        factory = resolve(spec.controller_factory, where="controller_factory")
        controller = factory(spec.controller, run.network, out, **spec.controller_options)
    hooks: list[WorldHook] = [
        _hook(registry, ref, run.network, seed=spec.seed, **options) for ref, options in spec.hooks
    ]
    world = TrafficWorld(
        run,
        WorldOptions(
            seconds=spec.seconds,
            mode=mode,
            min_green_s=spec.min_green_s,
            max_green_s=spec.max_green_s,
            emissions=spec.emissions,
            observe=controller is not None,
            detectors=spec.detectors,
        ),
    )
    failure: str | None = None
    recorder = controller if isinstance(controller, RecordsChoices) and spec.choices else None
    choices_out = (out / CHOICES_FILE).open("w", encoding="utf-8") if recorder else None
    observation = world.reset(spec.seed)
    loop_start = time.perf_counter()
    try:
        if controller is None and not hooks:
            while not world.done:
                world.step()
        elif controller is None:
            while not world.done:
                for hook in hooks:
                    hook.before_step(world.simulation, world.time_s)
                world.step()
        else:
            while not world.done:
                assert observation is not None
                for hook in hooks:
                    observation = hook.observe(observation)
                    hook.before_step(world.simulation, observation.time_s)
                try:
                    action = controller.act(observation)
                except (CityxError, ValueError) as exc:
                    message = exc.message if isinstance(exc, CityxError) else str(exc)
                    failure = f"at t={observation.time_s:g} s: {message}"
                    break
                observation = world.step(action)
                if recorder is not None and choices_out is not None:
                    made = with_outcomes(recorder.take_choices(), world.envelope_outcomes())
                    choices_out.writelines(
                        json.dumps(c.to_json(), allow_nan=False) + "\n" for c in made
                    )
    finally:
        loop_s = time.perf_counter() - loop_start
        if choices_out is not None:
            choices_out.close()
        world.close()
        close = getattr(controller, "close", None)
        if callable(close):
            close()
    trips = trip_table(out, run.network)
    write_trips(trips, out / TRIPS_FILE)
    kpis = compute_kpis(out, run.network, trips)
    result = WorldResult(
        spec=replace(spec, out=out),
        kpis=replace(kpis, complete=kpis.complete and failure is None),
        safety=world.safety(),
        steps=world.steps,
        wall_s=time.perf_counter() - start,
        sim_steps_per_s=world.steps / loop_s if loop_s > 0 else 0.0,
        sumo_version=sumo_tools().version,
        out=out,
        complete=kpis.complete and failure is None,
        hooks=tuple(hook.report() for hook in hooks),
        trips=trips,
    )
    if failure is not None:
        raise ControllerFailed(
            f"the controller {spec.controller!r} failed {failure}",
            where=str(out),
            hint="the simulation was ended there; its partial outputs are kept in this folder",
            partial=result,
        )
    return result


def run_world(
    spec: WorldSpec,
    *,
    timeout_s: float | None = None,
    on_spawn: Callable[[int], None] | None = None,
) -> WorldResult:
    """Run ``spec`` in a child process and return its result.

    Raises :class:`ScenarioError`/:class:`InputError` for bad input and
    :class:`WorldCrashed` when the child dies or overruns ``timeout_s``.
    ``on_spawn`` is called with the child's process id (its own process group).
    """
    start = time.perf_counter()
    check_controller(spec.controller, factory=spec.controller_factory, registry=spec.registry())
    get_scenario(spec.scenario)  # bad names fail here, before a process is spent on them
    out = (spec.out or Path(tempfile.mkdtemp(prefix="cityx-world-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    spec = replace(spec, out=out)
    for stale in ("result.json", "error.json", TRIPS_FILE, CHOICES_FILE):
        (out / stale).unlink(missing_ok=True)
    (out / "spec.json").write_text(json.dumps(spec.to_json(), indent=1))
    env = dict(os.environ)
    env.setdefault("LIBSUMO_AS_TRACI", "quiet")
    with open(out / "child.log", "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "cityx.worlds.traffic._worker", str(out)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: killed as one
        )
        if on_spawn is not None:
            on_spawn(child.pid)
        try:
            code = child.wait(timeout=timeout_s)
            reason = f"exit code {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            code, reason = -signal.SIGKILL, f"no result after {timeout_s:g} s"
    result_file, error_file = out / "result.json", out / "error.json"
    if code == 0 and result_file.is_file():
        result = WorldResult.from_json(
            json.loads(result_file.read_text()), spec, trips=load_trips(out)
        )
        return replace(result, wall_s=time.perf_counter() - start)
    if error_file.is_file():
        raise _error_from_json(json.loads(error_file.read_text()), spec)
    partial = _partial(spec, out, time.perf_counter() - start)
    tail = " ".join((out / "child.log").read_text(errors="replace").split()[-30:])
    raise WorldCrashed(
        f"the simulation of {spec.scenario!r} with {spec.controller!r} died ({reason})"
        + (f": {tail}" if tail else ""),
        where=str(out),
        hint="partial outputs are kept in this folder",
        partial=partial,
    )


def _partial(spec: WorldSpec, out: Path, wall_s: float) -> WorldResult | None:
    try:
        network = NetworkInfo.from_json(json.loads((out / "network.json").read_text()))
    except (OSError, ValueError, KeyError):
        return None
    trips = trip_table(out, network)
    write_trips(trips, out / TRIPS_FILE)
    kpis = compute_kpis(out, network, trips)
    return WorldResult(
        spec=spec,
        kpis=replace(kpis, complete=False),
        safety=None,
        steps=0,
        wall_s=wall_s,
        sim_steps_per_s=0.0,
        sumo_version="unknown",
        out=out,
        complete=False,
        trips=trips,
    )


_ERRORS: dict[str, type[CityxError]] = {
    "ScenarioError": ScenarioError,
    "InputError": InputError,
    "WorldError": WorldError,
}


def _error_from_json(obj: Mapping[str, Any], spec: WorldSpec) -> CityxError:
    message, where, hint = str(obj["message"]), obj.get("where"), obj.get("hint")
    if obj.get("type") == "ControllerFailed":
        partial = obj.get("partial")
        return ControllerFailed(
            message,
            where=where,
            hint=hint,
            partial=WorldResult.from_json(partial, spec, trips=_trips_of(spec))
            if partial
            else None,
        )
    cls = _ERRORS.get(str(obj.get("type")), WorldError)
    if cls is WorldError and int(obj.get("exit_code", 1)) == 2:
        cls = InputError
    return cls(message, where=where, hint=hint)


def _trips_of(spec: WorldSpec) -> TripTable | None:
    return load_trips(spec.out) if spec.out is not None else None


def child_main(folder: Path) -> int:
    """The child's body: run the spec in ``folder``, write result.json or error.json."""
    spec = WorldSpec.from_json(json.loads((folder / "spec.json").read_text()))
    try:
        result = simulate(spec)
    except CityxError as exc:
        error: dict[str, Any] = {
            "type": type(exc).__name__,
            "message": exc.message,
            "where": exc.where,
            "hint": exc.hint,
            "exit_code": exc.exit_code,
        }
        if isinstance(exc, WorldCrashed) and exc.partial is not None:
            error["partial"] = exc.partial.to_json()
        (folder / "error.json").write_text(json.dumps(error, allow_nan=False))
        return 1
    # Written last and atomically: its presence means the run completed.
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps(result.to_json(), indent=1, allow_nan=False))
    tmp.replace(folder / "result.json")
    return 0


__all__ = [
    "SCHEMA_VERSION",
    "WorldResult",
    "WorldSpec",
    "check_controller",
    "run_world",
    "simulate",
]
