"""One world run with any controller: :func:`run_controller_world`.

A *controller* here is either a *controller plugin* (a baseline such as
``fixed``, ``actuated`` or ``max-pressure``, see
:mod:`cityx.worlds.traffic.controllers`) or a *controller submission*: a
folder whose ``cityx.toml`` declares a controller, opened in the world's
child process by :mod:`.submitted`'s controller factory. Only a submission can
run behind the *secure loop* (:mod:`.secure_loop`): detectors publish signed
messages on a *bus* and the controller's commands are signed and verified,
which is also where a *message attack* sits. *Hooks* (attacks on the sensor
or world path, guards) apply to either kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from cityx.core import InputError, PluginKind
from cityx.targets import Limits
from cityx.worlds.engine import SpawnHook
from cityx.worlds.traffic import WorldResult, WorldSpec, is_controller_plugin, run_world

from .submitted import FACTORY, check_trust, controller_manifest


def run_controller_world(
    scenario: str,
    controller: str | Path,
    *,
    seconds: int = 600,
    seed: int = 0,
    demand: float = 1.0,
    out: str | Path | None = None,
    hooks: Sequence[tuple[str, Mapping[str, Any]]] = (),
    bus: str | None = None,
    message_attack: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
    on_spawn: SpawnHook | None = None,
    emissions: bool = False,
    detectors: bool = False,
    plugins_allow: Sequence[str] | None = None,
    limits: Limits | None = None,
    trusted_by: Mapping[str, str] | None = None,
) -> WorldResult:
    """Run ``scenario`` for ``seconds`` with ``controller`` in a child process; its result.

    ``controller`` is a controller plugin's id or a controller submission
    folder. ``scenario`` is a scenario name or a ``.sumocfg`` path; ``seed``
    fixes the vehicles and ``demand`` scales them. ``out`` is the run folder
    (default: a temp folder), where SUMO's outputs, ``result.json`` and the
    trip table stay.

    ``hooks`` are ``("attack:ID" | "guard:ID", options)`` pairs, run in order
    on the sensor path. ``bus`` (``"memory"`` or ``"mqtt://HOST:PORT"``) runs a
    submission behind the secure loop; ``message_attack`` (``{"attack": ID,
    "seed": N, **params}``) attacks that bus, so it needs one. ``timeout_s``
    bounds the whole run; ``on_spawn`` hears the child's process id.
    ``emissions`` measures CO2; ``detectors`` keeps the detector output files.
    ``plugins_allow`` is the allow-list of distributions whose entry-point
    plugins (controllers, scenarios, hooks, the submission's target) the
    run may load; None allows every installed one. ``limits`` bound a
    submission's model worker (its call timeout is the step's; default
    :data:`.submitted.STEP_LIMITS`). ``trusted_by`` are the user's opt-ins
    (:func:`.submitted.opt_ins`): a submission whose artifact runs vendor code
    (an entry point, a pickle) runs only with ``--trust-code`` or
    ``--trust-pickle`` among them; they travel to the child with the spec.

    Raises InputError (or ScenarioError) for a bad controller, scenario or
    option before any simulation starts; WorldCrashed when the simulation
    dies or overruns ``timeout_s``, ControllerFailed when the submission
    fails, both with the partial result.
    """
    name = str(controller)
    spec = WorldSpec(
        scenario=scenario,
        controller=name,
        seconds=seconds,
        seed=seed,
        demand=demand,
        out=None if out is None else Path(out),
        emissions=emissions,
        detectors=detectors,
        hooks=tuple((ref, dict(options)) for ref, options in hooks),
        plugins_allow=None if plugins_allow is None else tuple(plugins_allow),
    )
    registry = spec.registry()
    if is_controller_plugin(name, registry):
        if bus is not None or message_attack is not None:
            raise InputError(
                "a bus and message attacks wire a submitted controller, not a baseline",
                where="bus" if bus is not None else "message_attack",
                hint="give a controller submission folder, or drop the bus",
            )
        return run_world(spec, timeout_s=timeout_s, on_spawn=on_spawn)
    folder = Path(name).resolve()
    if not folder.is_dir():
        known = ", ".join(registry.ids(PluginKind.CONTROLLER))
        raise InputError(
            f"unknown controller {name!r}",
            hint=f"a controller plugin ({known}) or a controller submission folder",
        )
    # A bad submission, or vendor code without its opt-in, fails here, before SUMO starts;
    # the child checks the opt-in again before it opens the model.
    check_trust(folder, controller_manifest(folder), trusted_by or {})
    if bus is not None and bus != "memory" and not bus.startswith(("mqtt://", "mqtts://")):
        raise InputError(f"unknown bus {bus!r}", where="bus", hint="memory or mqtt://HOST:PORT")
    if message_attack is not None and bus is None:
        raise InputError(
            "a message-path attack needs the secure loop",
            where=str(message_attack.get("attack", "message attack")),
            hint="run it with a bus (memory or mqtt://HOST:PORT)",
        )
    options: dict[str, Any] = {"bus": bus} if bus is not None else {}
    if plugins_allow is not None:
        options["plugins_allow"] = list(plugins_allow)
    if limits is not None:
        options["limits"] = asdict(limits)
    if trusted_by:
        options["trusted_by"] = dict(trusted_by)
    if message_attack is not None:
        options["message_attack"] = dict(message_attack)
    spec = replace(
        spec, controller=str(folder), controller_factory=FACTORY, controller_options=options
    )
    return run_world(spec, timeout_s=timeout_s, on_spawn=on_spawn)


__all__ = ["run_controller_world"]
