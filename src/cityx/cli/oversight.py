"""``cityx oversee`` and ``cityx decisions``: human oversight from the shell.

``cityx oversee run`` runs a scenario with every intersection under
oversight (modes, operator commands from a TOML script, the conflict
monitor, alerts, the signed decision log); ``cityx oversee drill`` runs a
scripted incident with a scripted operator and says whether the drill's
goals were met (exit 3 when not); ``cityx oversee replay`` re-runs a run
with its logged commands and reports differing choices. ``cityx decisions verify`` checks a
run's decision log (exit 3 when it is not intact and sealed) and
``cityx decisions show`` prints its records, filtered.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .common import EXIT_OK, EXIT_VERDICT, Subparsers, add_command, add_group, emit, seed
from .decisions import register_decisions
from .oversee_child import in_child
from .trust import add_trust_flags, trusted_by


def _common_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", required=True, metavar="NAME", help="a scenario name")
    parser.add_argument(
        "--controller",
        default="max-pressure",
        metavar="NAME|DIR",
        help="the adaptive controller: max-pressure, fixed (the network's plan) or a "
        "controller submission folder (default: max-pressure)",
    )
    parser.add_argument("--seconds", type=int, default=120, help="simulated seconds")
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default: 0)")
    parser.add_argument("--demand", type=float, default=1.0, help="demand scale (default: 1)")
    parser.add_argument("--out", type=Path, help="run folder (default: a temp folder)")
    parser.add_argument(
        "--stop-state",
        choices=("fixed-time", "flashing"),
        default="fixed-time",
        help="what a stopped intersection shows after all-red (default: fixed-time)",
    )
    parser.add_argument(
        "--sign-key",
        type=Path,
        metavar="KEY.jwk",
        help="the city's Ed25519 key (cityx interop keygen) that seals the decision log "
        "(default: a fresh per-run key, never written to disk)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def register(sub: Subparsers) -> None:
    """Add ``oversee`` and ``decisions`` (:mod:`.decisions`) to the ``cityx`` parser."""
    oversee = add_group(sub, "oversee", "Run the city's AI under human oversight.")
    run = add_command(
        oversee,
        "run",
        "Run a scenario with every intersection under oversight: operating modes, operator "
        "commands, the independent conflict monitor, alerts and the signed decision log.",
        "cityx oversee run --scenario cologne1 --seconds 60 --operator "
        "examples/oversight/operator.toml --out /tmp/ov --json",
        _oversee_run,
    )
    _common_run_args(run)
    add_trust_flags(run)
    run.add_argument(
        "--operator",
        "--commands",
        type=Path,
        metavar="FILE",
        help="a scripted operator: TOML [[command]] tables with at_s, intersection "
        "(or '*'), action (hold, phase, fixed-time, stop, resume), phase, reason",
    )
    run.add_argument(
        "--operator-key",
        type=Path,
        metavar="KEY.jwk",
        help="sign each scripted command with this operator key (its issuer becomes the "
        "operator) and verify it before it is queued",
    )
    run.add_argument(
        "--operator-trust",
        type=Path,
        metavar="FILE|DIR",
        help="trust document(s) of operator keys, whose topics oversight/<intersection> say "
        "who may command what (default: the --operator-key itself, every intersection)",
    )
    run.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        metavar="N",
        help="seal the decision log every N records (default: 500)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="kill the run after S wall-clock seconds (the log stays verifiable up to its "
        "last checkpoint)",
    )
    run.add_argument(
        "--in-process",
        action="store_true",
        help="run the simulation in this process, not in a child process (libsumo: one "
        "simulation per process)",
    )
    run.add_argument(
        "--store",
        metavar="URL",
        help="anchor each checkpoint of the decision log in this store's audit log "
        "(default: not anchored); env:NAME reads the URL from environment variable NAME, "
        "so that a password never shows in the process list",
    )
    run.add_argument(
        "--bus",
        metavar="memory|mqtt://HOST:PORT",
        help="publish the run's signed state each step on this bus, and (with "
        "--operator-trust) take signed operator commands from it",
    )
    run.add_argument("--city", default="city", help="the bus's city topic level (default: city)")
    run.add_argument(
        "--channel-timeout",
        type=float,
        metavar="S",
        help="fall back to the fixed-time plan when the operator channel is silent this many "
        "wall-clock seconds (needs --bus and --operator-trust)",
    )
    run.add_argument(
        "--pace",
        type=float,
        metavar="X",
        help="run at X times real time (1: real time); default: as fast as it goes. Over "
        "the bus, operators can also pause, continue and step the run",
    )
    run.add_argument(
        "--run-id",
        metavar="ID",
        help="the run's id (lowercase letters, digits, -); signed commands must then be "
        "bound to it (a server names its live runs so)",
    )
    run.add_argument(
        "--attack",
        action="append",
        default=[],
        metavar="ID[:START_S]",
        help="a sensor-path attack from the registry (e.g. world.blackout:40), repeatable",
    )

    drill = add_command(
        oversee,
        "drill",
        "An oversight drill: a sensor incident, a scripted operator that falls back to the "
        "fixed-time plan on alerts and stops the junctions; exit 3 if a goal is missed.",
        "cityx oversee drill --scenario cologne1 --seconds 150 --attack world.phantom-queue "
        "--attack-start 40 --stop-at 120",
        _oversee_drill,
    )
    _common_run_args(drill)
    add_trust_flags(drill)
    drill.add_argument(
        "--attack", default="world.blackout", metavar="ID", help="sensor attack (registry id)"
    )
    drill.add_argument(
        "--attack-start", type=float, default=60.0, help="seconds after the start (default: 60)"
    )
    drill.add_argument(
        "--stop-at", type=float, default=None, help="when the operator stops all junctions"
    )
    drill.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="K",
        help="run seeds SEED..SEED+K-1 and summarise (exit 3 unless every seed passes)",
    )

    again = add_command(
        oversee,
        "replay",
        "Re-run a run under oversight with the same seed and its logged operator commands; "
        "report every controller choice that differs (exit 3 if any).",
        "cityx oversee replay /tmp/ov --json",
        _oversee_replay,
    )
    again.add_argument("path", type=Path, metavar="RUN_DIR", help="a run folder under oversight")
    again.add_argument("--out", type=Path, help="the replay's run folder (default: a temp folder)")
    again.add_argument("--json", action="store_true", help="print one JSON object")
    register_decisions(sub)


def _spec(args: argparse.Namespace, hooks: tuple[tuple[str, dict[str, Any]], ...]) -> Any:
    # lazy: cityx --help stays fast
    from cityx.oversight import OversightSpec, StopState

    factory = None
    options: dict[str, Any] = {}
    folder = Path(args.controller)
    if folder.is_dir():
        # lazy: cityx --help stays fast
        from cityx.runs.submitted import FACTORY, check_trust, controller_manifest

        factory = FACTORY
        # Vendor code needs its opt-in: refused here, before the world starts, and again
        # in the factory, which records who gave it in the run folder.
        options["trusted_by"] = trusted_by(args)
        check_trust(folder, controller_manifest(folder), options["trusted_by"])
    return OversightSpec(
        scenario=args.scenario,
        controller=args.controller,
        seconds=args.seconds,
        seed=args.seed,
        demand=args.demand,
        out=args.out,
        stop_state=StopState(args.stop_state),
        controller_factory=factory,
        controller_options=options,
        hooks=hooks,
    )


def _key(args: argparse.Namespace) -> Any:
    if args.sign_key is None:
        return None
    # lazy: cityx --help stays fast
    from cityx.interop import load_signing_key

    return load_signing_key(args.sign_key)


def _attacks(values: list[str]) -> tuple[tuple[str, dict[str, Any]], ...]:
    # lazy: cityx --help stays fast
    from cityx.core import InputError

    hooks = []
    for value in values:
        name, _, start = value.partition(":")
        options: dict[str, Any] = {"intensity": 1.0, "share": 0.5}
        if start:
            try:
                options["start_s"] = float(start)
            except ValueError:
                where = f"--attack {value}"
                raise InputError(f"not a start time: {start!r}", where=where) from None
        hooks.append((f"attack:{name}", options))
    return tuple(hooks)


PARENT_PID_ENV = "CITYX_PARENT_PID"


def _die_with_parent() -> None:
    """A run started by a server (which sets ``CITYX_PARENT_PID``) dies with it: a paused run
    whose server is gone would otherwise wait forever. Killed, its log stays verifiable up
    to its last checkpoint, as for any kill."""
    # lazy: cityx --help stays fast
    import os
    import signal
    import threading
    import time

    wanted = os.environ.get(PARENT_PID_ENV, "")
    if not wanted.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(wanted):
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _oversee_run(args: argparse.Namespace) -> int:
    if not args.in_process:
        return in_child(args)
    _die_with_parent()
    # lazy: cityx --help stays fast
    from cityx.oversight import CommandQueue, load_operator_file, run_oversight

    queue = CommandQueue()
    commands = load_operator_file(args.operator) if args.operator is not None else []
    if args.operator_key is not None:
        # lazy: cityx --help stays fast
        from cityx.interop import StaticTrustStore, TrustedKey, load_signing_key, load_trust
        from cityx.oversight.signed import COMMAND_TYPE, CommandVerifier, sign_command

        key = load_signing_key(args.operator_key)
        trust = (
            load_trust(args.operator_trust)
            if args.operator_trust is not None
            else StaticTrustStore(
                [TrustedKey.of(key, types=(COMMAND_TYPE,), topics=("oversight/**",))]
            )
        )
        verifier = CommandVerifier(trust)
        for command in commands:
            queue.submit_signed(sign_command(command, key), verifier)
    else:
        queue.extend(commands)
    feed, close = _bus(args, queue)
    spec = _spec(args, _attacks(args.attack))
    # lazy: cityx --help stays fast
    from dataclasses import replace

    spec = replace(
        spec,
        channel_timeout_s=args.channel_timeout,
        checkpoint_every=args.checkpoint_every,
        pace=args.pace,
        run_id=args.run_id,
    )
    store = None
    if args.store is not None:
        # lazy: cityx --help stays fast
        from cityx.store import Store

        store = Store.open(_store_url(args.store))
    anchor = _anchor_to(store) if store is not None else None
    try:
        result = run_oversight(
            spec, commands=queue, key=_key(args), feed=feed, on_checkpoint=anchor
        )
    finally:
        if close is not None:
            close()
        if store is not None:
            store.close()
    obj = result.to_json()
    # lazy: cityx --help stays fast
    from cityx.runs.submitted import read_trust

    opted = read_trust(result.out)  # which opt-in let a submission's vendor code run, by whom
    if opted is not None:
        obj["trusted"] = opted
    o = obj["oversight"]
    lines = [
        f"{args.scenario} under oversight, {result.steps} s, "
        f"{'complete' if result.complete else 'NOT complete'}",
        f"violations: {o['violations']}",
        f"commands: {len(o['commands'])} "
        f"({sum(1 for c in o['commands'] if c['state'] == 'effective')} effective, "
        f"{sum(1 for c in o['commands'] if c['state'] == 'refused')} refused)",
        f"alerts: {o['alerts']}; modes now: {o['modes']}",
        f"decision log: {o['decisions']} (signer kid {o['signer']['kid']})",
    ]
    if opted is not None:
        lines.append(
            f"trusted: the {opted['format']} artifact ran vendor code because "
            f"{opted['given_by']} passed {opted['opt_in']}"
        )
    emit(args, obj, "\n".join(lines))
    return EXIT_OK if result.complete else EXIT_VERDICT


def _store_url(value: str) -> str:
    """``--store``'s URL; ``env:NAME`` names the environment variable holding it."""
    if not value.startswith("env:"):
        return value
    # lazy: cityx --help stays fast
    from cityx.core import InputError

    url = os.environ.get(value[4:])
    if not url:
        raise InputError(f"environment variable {value[4:]} is not set", where="--store")
    return url


def _anchor_to(store: Any) -> Any:
    """Each checkpoint into the store's audit log, as it is made."""
    # lazy: cityx --help stays fast
    from cityx.oversight.decisions import ANCHOR_ACTION

    def anchor(run: str, payload: Any) -> None:
        store.append_audit(
            actor="cityx.oversight", action=ANCHOR_ACTION, subject=run, payload=payload
        )

    return anchor


def _bus(args: argparse.Namespace, queue: Any) -> tuple[Any, Any]:
    """The state feed (and the command listener) on ``--bus``; (None, None) without."""
    # lazy: cityx --help stays fast
    from cityx.core import InputError

    if args.bus is None:
        if args.channel_timeout is not None:
            raise InputError("--channel-timeout needs --bus", where="--channel-timeout")
        return None, None
    # lazy: cityx --help stays fast
    from cityx.interop import InMemoryTransport, load_trust
    from cityx.interop.mqtt import MqttTransport
    from cityx.oversight.channel import StateFeed, listen
    from cityx.oversight.signed import CommandVerifier

    if args.bus == "memory":
        transport: Any = InMemoryTransport()
        close = None
    else:
        transport = MqttTransport(url=args.bus).connect()
        close = transport.close
    if args.operator_trust is not None:
        verifier = CommandVerifier(load_trust(args.operator_trust), run=args.run_id)
        listen(transport, queue, verifier, city=args.city)
    elif args.channel_timeout is not None:
        raise InputError("--channel-timeout needs --operator-trust", where="--channel-timeout")
    return StateFeed(transport, city=args.city), close


def _oversee_drill(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from dataclasses import replace

    # lazy: cityx --help stays fast
    from cityx.core import InputError
    from cityx.oversight import run_drill
    from cityx.oversight.drills import drill_summary

    if args.seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {args.seeds}", where="--seeds")
    base = _spec(args, ())
    outcomes = []
    for k in range(args.seeds):
        spec = replace(base, seed=args.seed + k)
        if base.out is not None and args.seeds > 1:
            spec = replace(spec, out=base.out / f"seed-{args.seed + k}")
        outcomes.append(
            run_drill(
                spec,
                attack=args.attack,
                attack_start_s=args.attack_start,
                stop_at_s=args.stop_at,
            )
        )
    passed = all(o.passed for o in outcomes)
    if len(outcomes) == 1:
        outcome = outcomes[0]
        obj = outcome.to_json()
        text = (
            f"drill {args.attack} on {args.scenario}: {'PASSED' if passed else 'FAILED'}\n"
            f"time to alert: {outcome.time_to_alert_s} s; to fallback: "
            f"{outcome.time_to_fallback_s} s; stop to all-red: {outcome.stop_to_safe_s} s\n"
            f"violations: {outcome.result.monitor.counts()}\n"
            + "\n".join(f"Art. {r['point']}: {r['status']}" for r in obj["art14"])
        )
    else:
        summary = drill_summary(outcomes)
        obj = {"summary": summary, "drills": [o.to_json() for o in outcomes]}
        text = (
            f"drill {args.attack} on {args.scenario}: {summary['passed']} of "
            f"{len(outcomes)} seeds passed; violations {summary['violations']}\n"
            f"time to alert (min/median/max): {summary['time_to_alert_s']}\n"
            f"time to fallback: {summary['time_to_fallback_s']}\n"
            f"stop to all-red: {summary['stop_to_safe_s']}"
        )
    emit(args, obj, text)
    return EXIT_OK if passed else EXIT_VERDICT


def _oversee_replay(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.oversight.replay import replay

    report = replay(args.path, out=args.out)
    text = (
        f"replayed {report.commands} command(s): {report.compared} controller decisions "
        f"compared, {report.differences} differ"
        + "".join(
            f"\n  t={d['time_s']:g} {d['intersection']}: {d['original']} -> {d['replay']}"
            for d in report.first
        )
    )
    emit(args, report.to_json(), text)
    return EXIT_OK if report.same else EXIT_VERDICT
