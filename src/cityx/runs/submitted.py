"""A submitted controller inside the SUMO sandbox's child process.

The world runs in a child process (see :mod:`cityx.worlds.traffic.runner`);
this module is the *controller factory* that child calls to open a
*controller submission* (a folder whose ``cityx.toml`` declares a
controller): it validates the submission, starts its model in an isolated
worker (:func:`cityx.targets.open_scorer`) and wraps it as a
:class:`~cityx.worlds.traffic.candidates.ScoredController`, so that each
simulated second costs one batched model call for all intersections. The
model's call timeout is the per-step timeout (the trial's ``--timeout``;
:data:`STEP_LIMITS` when none is given). :func:`.world.run_controller_world`
names this factory in the world's spec.

*Decision latency* is the wall time of one step's decision as the sandbox
sees it (observation in, phases out: the batched call to the isolated
worker included). The controller keeps every step's latency and, when the
run ends (completed or not), writes their p50, p95 and max to
``decisions.json`` in the run folder (:data:`LATENCY_FILE`).

*Opt-ins*: an artifact that runs the vendor's own code when it loads (a
Python entry point, a pickle) opens only when the user opted in:
``--trust-code`` for an entry point, ``--trust-pickle`` for a pickle. The
opt-ins travel with the world's spec to the child as ``trusted_by``
(``{flag: who gave it}``, see :func:`opt_ins`), are checked there before
the model's worker starts, and the child records which one allowed the run,
and who gave it, in ``trusted.json`` in the run folder (:data:`TRUST_FILE`),
as a trial's ``admission/trusted-code`` finding does.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cityx.core import InputError, Manifest, ManifestError, SystemKind
from cityx.core.systems import Action, Controller, Observation
from cityx.interop.mqtt import MqttTransport
from cityx.submissions import needs_code_trust, validate_submission
from cityx.targets import IsolatedScorer, Limits, open_scorer
from cityx.worlds.traffic import NetworkInfo
from cityx.worlds.traffic.candidates import CONTRACT, FEATURE_NAMES, ScoredController
from cityx.worlds.traffic.choices import ControllerChoice

from .secure_loop import SecureLoop

FACTORY = f"{__name__}:open_submitted_controller"
# One step's call for a few hundred candidate rows takes well under a
# millisecond; a model that needs seconds is hung, not slow.
STEP_LIMITS = Limits(call_timeout_s=5.0, load_timeout_s=60.0, memory_mb=2048)


LATENCY_FILE = "decisions.json"
TRUST_FILE = "trusted.json"
TRUST_CODE = "--trust-code"
TRUST_PICKLE = "--trust-pickle"


def opt_ins(
    *, trust_code: bool = False, trust_pickle: bool = False, operator: str | None = None
) -> dict[str, str]:
    """The opt-ins given (``{"--trust-code": who, ...}``); ``operator`` defaults to the
    OS user, who gave the flags on the command line."""
    who = operator or os_user()
    flags = {TRUST_CODE: trust_code, TRUST_PICKLE: trust_pickle}
    return {flag: who for flag, given in flags.items() if given}


def os_user() -> str:
    """The login name of whoever runs this process (its uid when there is none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return f"uid {os.getuid()}"


def required_opt_in(manifest: Manifest) -> str | None:
    """The flag that must be given before this controller's artifact may load, or None."""
    if manifest.artifact.format == "pickle":
        return TRUST_PICKLE
    return TRUST_CODE if needs_code_trust(manifest) else None


def check_trust(folder: Path, manifest: Manifest, trusted_by: Mapping[str, str]) -> str | None:
    """The opt-in that allows loading this artifact (None when it runs no vendor code);
    a ManifestError naming the missing flag when the user did not give it."""
    flag = required_opt_in(manifest)
    if flag is None or flag in trusted_by:
        return flag
    raise ManifestError(
        f"the {manifest.artifact.format!r} artifact runs the vendor's own code when it loads; "
        f"pass {flag} to allow it (it still runs only in the isolated worker)",
        where=f"{folder / 'cityx.toml'}: [artifact].format",
    )


def read_trust(run: Path) -> dict[str, Any] | None:
    """The opt-in a submitted controller's run was allowed by (None when none was needed)."""
    return _read_record(run / TRUST_FILE)


def _read_record(path: Path) -> dict[str, Any] | None:
    """A small JSON object a run's child process left behind; None when absent or unreadable
    (the child may have been killed before writing it)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """p50, p95 and max of per-step decision times, in milliseconds, and the step count."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.size == 0:
        return {"steps": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    p50, p95 = np.percentile(ms, [50, 95])
    return {
        "steps": int(ms.size),
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def read_latency(run: Path) -> dict[str, Any] | None:
    """The decision latency a submitted controller left in ``run`` (None when none)."""
    return _read_record(run / LATENCY_FILE)


class SubmittedController:
    """A controller submission's model behind the phase-candidate contract.

    With a ``run`` folder, it writes its decision latency there when closed.
    """

    def __init__(
        self, network: NetworkInfo, scorer: IsolatedScorer, run: Path | None = None
    ) -> None:
        self._scorer = scorer
        self._inner = ScoredController(network, scorer.score, columns=scorer.columns)
        self._run = run
        self._times: list[float] = []

    def act(self, observation: Observation) -> Action:
        start = time.perf_counter()
        try:
            return self._inner.act(observation)
        finally:
            self._times.append(time.perf_counter() - start)

    def take_choices(self) -> tuple[ControllerChoice, ...]:
        return self._inner.take_choices()

    def close(self) -> None:
        try:
            self._scorer.close()
        finally:
            if self._run is not None:
                (self._run / LATENCY_FILE).write_text(
                    json.dumps(latency_summary(self._times)) + "\n"
                )


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
    limits: Mapping[str, Any] | None = None,
    trusted_by: Mapping[str, str] | None = None,
) -> Controller:
    """The controller factory the world's child process calls.

    With ``bus`` (``"memory"`` or ``"mqtt://host:port"``) the controller runs
    behind the secure loop (:mod:`.secure_loop`); ``message_attack``
    (``{"attack": ID, "seed": N, params...}``) puts a message-path attack
    on that bus. ``limits`` are the model worker's :class:`~cityx.targets.Limits`
    as keywords (default :data:`STEP_LIMITS`): its call timeout is the step's.
    ``trusted_by`` are the user's opt-ins (:func:`opt_ins`): an entry point
    opens only with ``--trust-code``, a pickle only with ``--trust-pickle``.
    """
    path = Path(folder)
    manifest = controller_manifest(path)
    given = dict(trusted_by or {})
    flag = check_trust(path, manifest, given)
    if flag is not None:
        record = {"format": manifest.artifact.format, "opt_in": flag, "given_by": given[flag]}
        (run / TRUST_FILE).write_text(json.dumps(record) + "\n")
    chosen = Limits(**limits) if limits else STEP_LIMITS
    scorer = open_scorer(
        manifest,
        path,
        limits=chosen,
        plugins_allow=plugins_allow,
        trust_pickle=flag == TRUST_PICKLE,
    ).start()
    controller = SubmittedController(network, scorer, run)
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
    "LATENCY_FILE",
    "STEP_LIMITS",
    "TRUST_CODE",
    "TRUST_FILE",
    "TRUST_PICKLE",
    "SubmittedController",
    "check_trust",
    "controller_manifest",
    "latency_summary",
    "open_submitted_controller",
    "opt_ins",
    "os_user",
    "read_latency",
    "read_trust",
    "required_opt_in",
]
