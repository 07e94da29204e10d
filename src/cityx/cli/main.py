"""``cityx``: the command-line front end.

Every subcommand parses its arguments, calls one library function and
renders the result; anything it does is available from Python too. With
``--json`` standard output is exactly one JSON object. Exit status: 0 on
success, 2 for bad input (one line on standard error), 1 for an internal
error, 3 when a trial's gate is at or below ``--fail-on`` or an audit log
fails verification.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cityx import __version__
from cityx.core import CityxError, SystemKind
from cityx.core.audit import AuditHead

from . import campaign, explain, fairness, interop, poison, redteam, world
from . import governance as governance_cli
from . import oversight as oversight_cli
from . import server as server_cli
from .common import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_VERDICT,
    TRUST_CODE_HELP,
    Handler,
    add_command,
    add_group,
    emit,
    seed,
)


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    root = argparse.ArgumentParser(
        prog="cityx",
        formatter_class=fmt,
        description="CityXchange: test smart-city AI in a simulated city before it goes live.",
        epilog="examples:\n  cityx demo\n  cityx trial examples/submissions/metro-congestion\n"
        "  cityx submission validate my-submission\n  cityx audit verify --json",
    )
    root.add_argument("--version", action="version", version=f"cityx {__version__}")
    root.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = root.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str, help_text: str, example: str, handler: Handler, parent: Any = sub
    ) -> argparse.ArgumentParser:
        return add_command(parent, name, help_text, example, handler)

    demo = command(
        "demo",
        "Run the default trials on the embedded examples (a congestion predictor, a signal "
        "controller in SUMO) and print where the reports are.",
        "cityx demo --out cityx-demo",
        _demo,
    )
    demo.add_argument(
        "--out", type=Path, default=Path("cityx-demo"), help="output folder (default: cityx-demo)"
    )
    demo.add_argument("--store", help="store URL (default: SQLite in the user data folder)")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.add_argument(
        "--workers", type=int, default=2, metavar="N", help="parallel SUMO runs (default: 2)"
    )

    trial = command(
        "trial",
        "Run a trial of a submission under a policy and write results.json and report.html.",
        "cityx trial examples/submissions/metro-congestion --seed 1 --out out/t1 --fail-on fail",
        _trial,
    )
    trial.add_argument("submission", type=Path, metavar="SUBMISSION_DIR")
    trial.add_argument(
        "--data",
        type=Path,
        help="holdout data to score instead of the submission's own (.csv or .parquet)",
    )
    trial.add_argument(
        "--policy", type=Path, help="policy TOML (default: the built-in cityx.default policy)"
    )
    trial.add_argument("--seed", type=seed, default=0, help="random seed (default: 0)")
    trial.add_argument("--out", type=Path, help="output folder (default: cityx-trials/TRIAL_ID)")
    trial.add_argument(
        "--store",
        help="store URL: sqlite:///file.db or "
        "postgresql://user@host:port/db (default: SQLite in the user data folder)",
    )
    trial.add_argument("--json", action="store_true", help="print one JSON object")
    trial.add_argument(
        "--fail-on",
        choices=("fail", "conditional"),
        help="exit 3 when the gate decision is this or worse",
    )
    trial.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow pickle/joblib artifacts (they run arbitrary code, in the isolated worker)",
    )
    trial.add_argument(
        "--trust-code",
        action="store_true",
        help="allow a Python entry point artifact (the vendor's code runs, in the isolated "
        "worker); the report says who allowed it",
    )
    trial.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="time limit of one call to the model (a controller's: one step's), seconds "
        "(default: 30)",
    )
    trial.add_argument(
        "--memory-mb",
        type=int,
        default=4096,
        metavar="MB",
        help="memory limit of the model's worker process, a controller's too (default: 4096)",
    )
    trial.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="parallel SUMO runs of a controller trial (default: 2)",
    )

    ssub = add_group(sub, "submission", "Create or validate a submission folder.")
    init = command(
        "init",
        "Scaffold a submission folder with a commented cityx.toml.",
        "cityx submission init my-model --kind predictor",
        _submission_init,
        ssub,
    )
    init.add_argument("dir", type=Path, metavar="DIR")
    init.add_argument("--kind", choices=[k.value for k in SystemKind], required=True)
    validate = command(
        "validate",
        "Check a submission folder and list every problem with its file and field.",
        "cityx submission validate my-model --json",
        _submission_validate,
        ssub,
    )
    validate.add_argument("dir", type=Path, metavar="DIR")
    validate.add_argument("--json", action="store_true", help="print one JSON object")
    validate.add_argument(
        "--load",
        action="store_true",
        help="also load the model in its isolated worker and call it on a few rows that fit "
        "its input schema; a controller also gets a 60 s smoke run on the generated grid",
    )
    validate.add_argument(
        "--trust-pickle",
        action="store_true",
        help="with --load: allow pickle/joblib artifacts (they run arbitrary code, in the "
        "isolated worker)",
    )
    validate.add_argument(
        "--trust-code", action="store_true", help=f"with --load: {TRUST_CODE_HELP}"
    )
    upgrade = command(
        "upgrade",
        "Rewrite a version 1 cityx.toml as version 2 ([data].sensitive becomes "
        "[fairness].sensitive), keeping its comments, and say what is left to declare.",
        "cityx submission upgrade examples/submissions/acme-signals --json",
        _submission_upgrade,
        ssub,
    )
    upgrade.add_argument("dir", type=Path, metavar="DIR")
    upgrade.add_argument("--json", action="store_true", help="print one JSON object")

    asub = add_group(sub, "audit", "Verify the tamper-evident audit log.")
    verify = command(
        "verify",
        "Check the audit log's hash chain and name the first bad entry.",
        "cityx audit verify --store sqlite:///cityx.db --json",
        _audit_verify,
        asub,
    )
    verify.add_argument("--store", help="store URL (default: SQLite in the user data folder)")
    verify.add_argument(
        "--anchor",
        type=_anchor,
        metavar="N:HASH",
        help="a head printed earlier by 'cityx audit head': the log must still hold it "
        "(this is what reveals a truncated log)",
    )
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    head = command(
        "head",
        "Print the audit log's entry count and newest hash, to keep somewhere else.",
        "cityx audit head --json",
        _audit_head,
        asub,
    )
    head.add_argument("--store", help="store URL (default: SQLite in the user data folder)")
    head.add_argument("--json", action="store_true", help="print one JSON object")

    plugins = command(
        "plugins",
        "List the registered plugins (checks, targets, ...).",
        "cityx plugins --json",
        _plugins,
    )
    plugins.add_argument("--json", action="store_true", help="print one JSON object")
    world.register(sub)
    interop.register(sub)
    campaign.add_run_command(redteam.register(sub))
    fairness.register(sub)
    poison.register(sub)
    oversight_cli.register(sub)
    governance_cli.register(sub)
    server_cli.register(sub)
    explain.register(sub)
    return root


def _progress_bar(args: argparse.Namespace) -> Callable[[str, int, int], None] | None:
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return None
    # lazy: cityx --help stays fast
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(step: str, done: int, total: int) -> None:
        if "bar" not in bar:
            # shutil falls back to 80 columns where a terminal reports none.
            width = shutil.get_terminal_size().columns
            bar["bar"] = tqdm(total=total, desc="trial", unit="check", file=sys.stderr, ncols=width)
        bar["bar"].n = done
        bar["bar"].set_postfix_str(step)
        if done >= total:
            bar["bar"].close()

    return update


def _run_trial(
    args: argparse.Namespace, submission: Path, out: Path | None, *, seed: int = 0
) -> Any:
    # lazy: cityx --help stays fast
    from cityx.runs import TrialPlan, run_trial
    from cityx.targets import Limits

    limits = Limits(
        call_timeout_s=getattr(args, "timeout", 30.0), memory_mb=getattr(args, "memory_mb", 4096)
    )
    plan = TrialPlan(
        submission=submission,
        out=out,
        data=getattr(args, "data", None),
        policy=getattr(args, "policy", None),
        seed=seed,
        store=args.store,
        trust_pickle=getattr(args, "trust_pickle", False),
        trust_code=getattr(args, "trust_code", False),
        limits=limits,
        workers=getattr(args, "workers", 2),
    )
    return run_trial(plan, progress=_progress_bar(args))


def _trial(args: argparse.Namespace) -> int:
    outcome = _run_trial(args, args.submission, args.out, seed=args.seed)
    gate = outcome.gate
    obj = {
        "trial_id": outcome.trial_id,
        "decision": gate.decision.value,
        "reasons": list(gate.reasons),
        "results": str(outcome.results_path),
        "report": str(outcome.report_path),
    }
    emit(
        args,
        obj,
        f"gate: {gate.decision.value}\n"
        + "".join(f"  - {r}\n" for r in gate.reasons)
        + f"results: {outcome.results_path}\nreport: {outcome.report_path}",
    )
    order = ["pass", "conditional", "fail"]
    if args.fail_on and order.index(gate.decision.value) >= order.index(args.fail_on):
        return EXIT_VERDICT
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.runs.demo import run_demo

    demo = run_demo(args.out, store=args.store, workers=args.workers, progress=_progress_bar(args))
    lines = []
    for trial in demo.trials:
        lines += [f"{trial.name}: gate {trial.outcome.gate.decision.value}"]
        lines += [f"  report: {trial.outcome.report_path.resolve()}"]
        if trial.aiverify:
            lines += [f"  AI Verify export: {(trial.outcome.out / 'aiverify').resolve()}"]
    drill = demo.drill
    measured = drill.sanitising.comparison if drill.sanitising is not None else None

    def pair(a: float | None, b: float | None, robust: float | None) -> str:
        if a is None or b is None:
            return "n/a"
        return f"{a:.3f} -> {b:.3f}" + (
            f" ({robust:.3f} down-weighted)" if robust is not None else ""
        )

    accuracy, attack_success = (
        (
            pair(measured.accuracy_before, measured.accuracy_after, measured.accuracy_robust),
            pair(
                measured.attack_success_before,
                measured.attack_success_after,
                measured.attack_success_robust,
            ),
        )
        if measured is not None
        else ("n/a", "n/a")
    )
    lines += [
        f"poisoning drill (metro-congestion training data, {drill.attack} on "
        f"{drill.rate:.0%} of rows): audit {drill.details.verdict}, gate "
        f"{drill.outcome.gate.decision.value}",
        f"  flagged {drill.flagged_rows} rows, {drill.caught_rows} of the "
        f"{drill.poisoned_rows} poisoned (F1 {drill.f1:.2f})",
        f"  before -> after sanitising: accuracy {accuracy}, attack success {attack_success}",
        f"  report: {drill.outcome.report_path.resolve()}",
        f"(demo took {demo.wall_s:.1f} s)",
    ]
    emit(args, demo.to_json(), "\n".join(lines))
    return EXIT_OK


def _submission_init(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.submissions import scaffold_submission

    written = scaffold_submission(args.dir, kind=SystemKind(args.kind))
    sys.stdout.write(
        "".join(f"wrote {p}\n" for p in written)
        + f"next: add your artifact and data, then: cityx submission validate "
        f"{args.dir}\n"
    )
    return EXIT_OK


def _submission_validate(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.submissions import validate_submission

    smoke = None
    if args.load:
        # lazy: cityx --help stays fast
        from cityx.runs.smoke import validate_loaded

        # A controller also gets a short smoke run in the sandbox (cityx.runs.smoke).
        result, smoke = validate_loaded(
            args.dir, trust_code=args.trust_code, trust_pickle=args.trust_pickle
        )
    else:
        result = validate_submission(args.dir)
    lines = [f"{p.level.value}: {p}" for p in result.problems]
    if smoke is not None and smoke.problem is None:
        lines.append(
            f"smoke run: {smoke.seconds} s on {smoke.scenario} in {smoke.wall_s:.3g} s, "
            f"decision time p95 {smoke.decision_p95_ms} ms per step"
        )
    status = "valid" if result.ok else f"not valid: {len(result.errors)} error(s)"
    obj = result.to_json() | ({"smoke": smoke.to_json()} if smoke is not None else {})
    emit(args, obj, "\n".join([*lines, f"{args.dir}: {status}"]))
    return EXIT_OK if result.ok else EXIT_INPUT


def _submission_upgrade(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.submissions import upgrade_manifest

    done = upgrade_manifest(args.dir)
    head = (
        f"{done.path}: rewritten as schema version 2"
        if done.changed
        else f"{done.path}: already schema version {done.from_version}, nothing written"
    )
    emit(args, done.to_json(), "\n".join([head, *(f"to do: {t}" for t in done.todo)]))
    return EXIT_OK


def _audit_verify(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.store import Store

    with Store.open(args.store) as store:
        result = store.verify_audit(anchor=args.anchor)
    text = (
        f"audit log ok: {result.entries} entries"
        if result.ok
        else f"audit log BROKEN at entry {result.first_bad}: {result.reason}"
    )
    emit(args, result.to_json(), text)
    return EXIT_OK if result.ok else EXIT_VERDICT


def _anchor(text: str) -> AuditHead:
    entries, _, digest = text.partition(":")
    if not entries.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError("expected N:HASH, as printed by 'cityx audit head'")
    return AuditHead(int(entries), digest.lower())


def _audit_head(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.store import Store

    with Store.open(args.store) as store:
        head = store.head()
    emit(args, {"entries": head.entries, "hash": head.hash}, f"{head.entries}:{head.hash}")
    return EXIT_OK


def _plugins(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.core import Registry

    rows = Registry().describe()
    emit(
        args,
        {"plugins": rows},
        "\n".join(
            f"{r['kind']:<18} {r['id']:<24} {','.join(r['supports']):<22} {r['summary']}"
            for r in rows
        ),
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        code: int = args.handler(args)
        return code
    except CityxError as exc:
        return _fail(args, exc, exc.exit_code)
    except KeyboardInterrupt:
        return _fail(args, RuntimeError("interrupted"), 130)
    except Exception as exc:  # an internal error: one line unless asked for more
        if args.debug or os.environ.get("CITYX_DEBUG"):
            traceback.print_exc()
        return _fail(args, exc, EXIT_INTERNAL)


def _fail(args: argparse.Namespace, exc: BaseException, code: int) -> int:
    kind = "error" if code == EXIT_INPUT else "internal error"
    message = str(exc) if isinstance(exc, CityxError) else f"{type(exc).__name__}: {exc}"
    message = " ".join(message.split())
    sys.stderr.write(f"cityx: {kind}: {message}\n")
    if code == EXIT_INTERNAL and not args.debug:
        sys.stderr.write("cityx: run again with --debug for the traceback\n")
    if getattr(args, "json", False):
        sys.stdout.write(
            json.dumps(
                {"error": {"type": type(exc).__name__, "message": message, "exit_code": code}}
            )
            + "\n"
        )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
