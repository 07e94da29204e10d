"""``cityx oversee run`` in a child process: a simulator crash kills only the child.

The parent runs the same command again with ``--in-process`` in a new
process group and forwards its output and exit code. When the child dies
(a signal, or ``--timeout``), the parent says so and reports how far the
run's decision log is sealed (``cityx decisions verify`` names the rest).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import emit

# The options of "oversee run" a child process gets again, as (flag, attribute).
_CHILD_OPTIONS = (
    ("--scenario", "scenario"),
    ("--controller", "controller"),
    ("--seconds", "seconds"),
    ("--seed", "seed"),
    ("--demand", "demand"),
    ("--out", "out"),
    ("--stop-state", "stop_state"),
    ("--sign-key", "sign_key"),
    ("--operator", "operator"),
    ("--operator-key", "operator_key"),
    ("--operator-trust", "operator_trust"),
    ("--checkpoint-every", "checkpoint_every"),
    ("--store", "store"),
    ("--bus", "bus"),
    ("--city", "city"),
    ("--channel-timeout", "channel_timeout"),
    ("--pace", "pace"),
    ("--run-id", "run_id"),
)


def in_child(args: argparse.Namespace) -> int:
    """Run "oversee run" again in a child process: a simulator crash kills only the child."""
    # lazy: cityx --help stays fast
    from cityx.oversight import load_operator_file
    from cityx.oversight.decisions import verify_decisions

    if args.operator is not None:
        load_operator_file(args.operator)  # bad input fails here, before a process is spent
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="cityx-oversight-"))
    argv = [sys.executable, "-m", "cityx.cli.main", "oversee", "run", "--in-process"]
    for flag, name in _CHILD_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            argv += [flag, str(value)]
    for attack in args.attack:
        argv += ["--attack", attack]
    if args.json:
        argv.append("--json")
    for flag, name in (("--trust-code", "trust_code"), ("--trust-pickle", "trust_pickle")):
        if getattr(args, name, False):
            argv.append(flag)
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = child.communicate(timeout=args.timeout)
        reason = None if child.returncode >= 0 else signal.Signals(-child.returncode).name
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, err = child.communicate()
        reason = f"killed after {args.timeout:g} s"
    if reason is None:
        sys.stdout.write(out.decode("utf-8", "replace"))
        sys.stderr.write(err.decode("utf-8", "replace"))
        return child.returncode
    log = args.out / "decisions.jsonl"
    check = verify_decisions(args.out) if log.is_file() else None
    sealed = check.sealed if check is not None else 0
    obj = {
        "complete": False,
        "crashed": reason,
        "out": str(args.out),
        "decisions": None if check is None else check.to_json(),
    }
    emit(
        args,
        obj,
        f"the run died ({reason}); its decision log is sealed up to record {sealed}: "
        f"cityx decisions verify {args.out}",
    )
    return 1


__all__ = ["in_child"]
