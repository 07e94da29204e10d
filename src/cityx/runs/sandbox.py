"""Running a submitted controller in the SUMO sandbox.

The world runs in a child process (see :mod:`cityx.worlds.traffic.runner`);
this module is the *controller factory* that child calls to open a
controller submission: it validates the submission, starts its model in
an isolated worker (:func:`cityx.targets.open_scorer`) and wraps it as a
:class:`~cityx.worlds.traffic.candidates.ScoredController`, so that each
simulated second costs one batched model call for all intersections. The
model's call timeout is the per-step timeout.

:class:`SandboxRunner` is the trial's :class:`~cityx.core.WorldRunner`: it
runs a trial's cells (controller x seed x demand) in parallel child
processes, each in its own folder under the trial's output folder, and
turns a crashed or failed run into an outcome with its error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from cityx.core import InputError, Manifest, SystemKind, WorldCell, WorldOutcome
from cityx.core.systems import Action, Controller, Observation
from cityx.submissions import validate_submission
from cityx.targets import IsolatedScorer, Limits, open_scorer
from cityx.worlds import WorldCrashed
from cityx.worlds.traffic import NetworkInfo, WorldResult, WorldSpec, run_world
from cityx.worlds.traffic.candidates import CONTRACT, FEATURE_NAMES, ScoredController

FACTORY = f"{__name__}:open_submitted_controller"
# One step's call for a few hundred candidate rows takes well under a
# millisecond; a model that needs seconds is hung, not slow.
STEP_LIMITS = Limits(call_timeout_s=5.0, load_timeout_s=60.0, memory_mb=2048)


class SubmittedController:
    """A controller submission's model behind the phase-candidate contract."""

    def __init__(self, network: NetworkInfo, scorer: IsolatedScorer) -> None:
        self._scorer = scorer
        self._inner = ScoredController(network, scorer.score, columns=scorer.columns)

    def act(self, observation: Observation) -> Action:
        return self._inner.act(observation)

    def close(self) -> None:
        self._scorer.close()


def controller_manifest(folder: Path) -> Manifest:
    """The validated manifest of a controller submission, or an InputError."""
    manifest = validate_submission(folder).raise_for_errors()
    if manifest.system.kind is not SystemKind.CONTROLLER:
        raise InputError(
            f"{manifest.system.id} is a {manifest.system.kind.value}, not a controller",
            where=str(folder),
            hint="a world runs controller submissions (kind = 'controller')",
        )
    unknown = [n for n in manifest.input_schema().names if n not in FEATURE_NAMES]
    if unknown:
        raise InputError(
            f"input feature(s) {', '.join(unknown)} are not in the {CONTRACT} observation",
            where=str(folder / "cityx.toml"),
            hint=f"known: {', '.join(FEATURE_NAMES)}",
        )
    return manifest


def open_submitted_controller(
    folder: str,
    network: NetworkInfo,
    run: Path,
    *,
    bus: str | None = None,
    message_attack: Mapping[str, Any] | None = None,
) -> Controller:
    """The controller factory the world's child process calls.

    With ``bus`` (``"memory"`` or ``"mqtt://host:port"``) the controller runs
    behind the secure loop (:mod:`.secure_loop`); ``message_attack``
    (``{"attack": ID, "seed": N, params...}``) puts a message-path attack
    on that bus.
    """
    path = Path(folder)
    manifest = controller_manifest(path)
    scorer = open_scorer(manifest, path, limits=STEP_LIMITS).start()
    controller = SubmittedController(network, scorer)
    if bus is None:
        return controller
    from .secure_loop import SecureLoop

    transport, close = _transport(bus)
    return SecureLoop(
        controller,
        network,
        folder=run,
        system_id=manifest.system.id,
        transport=transport,
        close_transport=close,
        message_attack=message_attack,
    )


def _transport(bus: str) -> tuple[Any, Callable[[], None] | None]:
    if bus == "memory":
        return None, None
    from cityx.interop.mqtt import MqttTransport

    transport = MqttTransport(url=bus).connect()
    return transport, transport.close


def run_submitted_world(
    spec: WorldSpec,
    *,
    timeout_s: float | None = None,
    bus: str | None = None,
    message_attack: Mapping[str, Any] | None = None,
    on_spawn: Callable[[int], None] | None = None,
) -> WorldResult:
    """Run ``spec`` with ``spec.controller`` a controller submission folder.

    ``bus`` wires the run through signed messages (see :func:`open_submitted_controller`);
    ``message_attack`` attacks that bus and needs it.
    """
    folder = Path(spec.controller).resolve()
    if not folder.is_dir():
        raise InputError("no such submission folder", where=spec.controller)
    controller_manifest(folder)  # bad submissions fail here, before SUMO starts
    if bus is not None and bus != "memory" and not bus.startswith(("mqtt://", "mqtts://")):
        raise InputError(f"unknown bus {bus!r}", hint="memory or mqtt://HOST:PORT")
    if message_attack is not None and bus is None:
        raise InputError(
            "a message-path attack needs the secure loop",
            where=str(message_attack.get("attack", "message attack")),
            hint="run it with a bus (memory or mqtt://HOST:PORT)",
        )
    options: dict[str, Any] = {"bus": bus} if bus is not None else {}
    if message_attack is not None:
        options["message_attack"] = dict(message_attack)
    return run_world(
        replace(
            spec, controller=str(folder), controller_factory=FACTORY, controller_options=options
        ),
        timeout_s=timeout_s,
        on_spawn=on_spawn,
    )


class SandboxRunner:
    """Runs a trial's cells, ``workers`` at a time, under ``root``.

    The cell controller ``"submission"`` is the submission in ``submission``.
    A run that does not finish within ``timeout_s`` is killed and reported.
    """

    def __init__(
        self,
        submission: Path,
        root: Path,
        *,
        workers: int = 2,
        timeout_s: float | None = 1800.0,
    ) -> None:
        self.submission = submission
        self.root = root
        self.workers = workers
        self.timeout_s = timeout_s

    def run(self, cells: Sequence[WorldCell]) -> list[WorldOutcome]:
        from cityx.worlds.traffic import get_scenario

        for scenario in {c.scenario for c in cells}:
            get_scenario(scenario)  # a bad name fails before any run starts
        with ThreadPoolExecutor(max(1, self.workers)) as pool:
            return list(pool.map(self._one, cells))

    def _one(self, cell: WorldCell) -> WorldOutcome:
        name = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{cell.controller}-s{cell.seed}-d{cell.demand:g}")
        out = self.root / cell.scenario / name
        submitted = cell.controller == "submission"
        spec = WorldSpec(
            scenario=cell.scenario,
            controller=str(self.submission) if submitted else cell.controller,
            seconds=cell.seconds,
            seed=cell.seed,
            demand=cell.demand,
            out=out,
        )
        try:
            result = (
                run_submitted_world(spec, timeout_s=self.timeout_s)
                if submitted
                else run_world(spec, timeout_s=self.timeout_s)
            )
        except WorldCrashed as exc:
            partial = exc.partial
            return WorldOutcome(
                cell,
                kpis=dict(partial.kpis.overall) if partial else {},
                complete=False,
                error=exc.message,
                out=str(out),
                trips=partial.trips if partial else None,
            )
        report = result.to_json()
        return WorldOutcome(
            cell,
            kpis=dict(result.kpis.overall),
            by_group=report["kpis"]["by_group"],
            safety=report["safety"],
            complete=result.complete,
            out=str(out),
            trips=result.trips,
        )


__all__ = [
    "FACTORY",
    "STEP_LIMITS",
    "SandboxRunner",
    "SubmittedController",
    "controller_manifest",
    "open_submitted_controller",
    "run_submitted_world",
]
