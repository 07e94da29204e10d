"""A submitted controller inside the SUMO sandbox's child process.

The world runs in a child process (see :mod:`cityx.worlds.traffic.runner`);
this module is the *controller factory* that child calls to open a
*controller submission* (a folder whose ``cityx.toml`` declares a
controller): it validates the submission, starts its model in an isolated
worker (:func:`cityx.targets.open_scorer`) and wraps it as a
:class:`~cityx.worlds.traffic.candidates.ScoredController`, so that each
simulated second costs one batched model call for all intersections. The
model's call timeout is the per-step timeout. :func:`.world.run_controller_world`
names this factory in the world's spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cityx.core import InputError, Manifest, SystemKind
from cityx.core.systems import Action, Controller, Observation
from cityx.interop.mqtt import MqttTransport
from cityx.submissions import validate_submission
from cityx.targets import IsolatedScorer, Limits, open_scorer
from cityx.worlds.traffic import NetworkInfo
from cityx.worlds.traffic.candidates import CONTRACT, FEATURE_NAMES, ScoredController
from cityx.worlds.traffic.choices import ControllerChoice

from .secure_loop import SecureLoop

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

    def take_choices(self) -> tuple[ControllerChoice, ...]:
        return self._inner.take_choices()

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
    plugins_allow: Sequence[str] | None = None,
) -> Controller:
    """The controller factory the world's child process calls.

    With ``bus`` (``"memory"`` or ``"mqtt://host:port"``) the controller runs
    behind the secure loop (:mod:`.secure_loop`); ``message_attack``
    (``{"attack": ID, "seed": N, params...}``) puts a message-path attack
    on that bus.
    """
    path = Path(folder)
    manifest = controller_manifest(path)
    scorer = open_scorer(manifest, path, limits=STEP_LIMITS, plugins_allow=plugins_allow).start()
    controller = SubmittedController(network, scorer)
    if bus is None:
        return controller
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
    transport = MqttTransport(url=bus).connect()
    return transport, transport.close


__all__ = [
    "FACTORY",
    "STEP_LIMITS",
    "SubmittedController",
    "controller_manifest",
    "open_submitted_controller",
]
