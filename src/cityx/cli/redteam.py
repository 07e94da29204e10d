"""``cityx attacks`` and ``cityx redteam``: the red-team lab from the shell.

``cityx attacks list`` prints every registered attack with its goal,
target kind, MITRE ATLAS techniques and parameters (a JSON list with
``--json``). ``cityx redteam evade`` attacks a predictor through the
sensors a declared threat model lets the attacker control, in the model's
isolated worker, and prints the success rate, the queries it took, the
median change per feature, the constraint violations (always 0 by design,
re-checked) and each sensor's fragility.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .common import EXIT_OK, TRUST_CODE_HELP, Subparsers, add_command, add_group, emit, seed


def register(sub: Subparsers) -> Subparsers:
    """Add ``attacks`` and ``redteam`` to the ``cityx`` parser; returns the ``redteam`` group."""
    attacks = add_group(sub, "attacks", "The red-team attacks cityx knows.")
    listing = add_command(
        attacks,
        "list",
        "List the registered attacks: goal, target, MITRE ATLAS techniques and parameters.",
        "cityx attacks list --json",
        _attacks_list,
    )
    listing.add_argument("--json", action="store_true", help="print the list as JSON")

    redteam = add_group(sub, "redteam", "Attack a system under test.")
    evade = add_command(
        redteam,
        "evade",
        "Black-box evasion of a predictor under a threat model: change the sensors an "
        "attacker controls, within their physical constraints, until the prediction flips.",
        "cityx redteam evade --model examples/submissions/metro-congestion/model.onnx "
        "--data examples/submissions/metro-congestion/data/holdout.csv --label congestion_next "
        "--constraints examples/submissions/metro-congestion/threat-model.toml "
        "--budget 200 --samples 100 --seed 1 --json",
        _evade,
    )
    evade.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="FILE",
        help="the model artifact of a submission (its folder holds cityx.toml), the "
        "cityx.toml itself, or the submission folder",
    )
    evade.add_argument(
        "--data", type=Path, required=True, metavar="FILE", help="rows to attack (.csv/.parquet)"
    )
    evade.add_argument("--label", required=True, metavar="COL", help="the true-label column")
    evade.add_argument(
        "--constraints",
        type=Path,
        metavar="FILE",
        help="threat model TOML (default: threat-model.toml beside cityx.toml, else "
        "every feature controlled within its schema bounds)",
    )
    evade.add_argument(
        "--budget",
        type=int,
        default=200,
        metavar="QUERIES_PER_ROW",
        help="model queries per attacked row (default: 200)",
    )
    evade.add_argument(
        "--samples", type=int, default=100, metavar="N", help="rows to attack (default: 100)"
    )
    evade.add_argument("--seed", type=seed, default=0, help="random seed (default: 0)")
    evade.add_argument(
        "--no-fragility", action="store_true", help="skip the per-sensor fragility analysis"
    )
    evade.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="time limit of one call to the model, seconds (default: 30)",
    )
    evade.add_argument("--json", action="store_true", help="print one JSON object")
    evade.add_argument("--trust-code", action="store_true", help=TRUST_CODE_HELP)
    return redteam


def _attacks_list(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.attacks import describe_attacks
    from cityx.core import Registry

    rows = describe_attacks(Registry())
    if args.json:
        # The contract is a JSON list, not an object.
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        for row in rows:
            atlas = ",".join(row["atlas"])
            sys.stdout.write(f"{row['id']:<24} {row['target']:<13} {atlas:<20} {row['goal']}\n")
    return EXIT_OK


def _evade(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.attacks.evasion import evade

    started = time.perf_counter()
    report = evade(
        args.model,
        args.data,
        label=args.label,
        constraints=args.constraints,
        seed=args.seed,
        budget=args.budget,
        samples=args.samples,
        fragility=not args.no_fragility,
        timeout_s=args.timeout,
        trust_code=args.trust_code,
    )
    obj = report.to_json()
    obj["wall_s"] = round(time.perf_counter() - started, 3)
    emit(args, obj, _text(obj))
    return EXIT_OK


def _text(obj: dict[str, Any]) -> str:
    threat = obj["threat_model"]
    digest = f" (sha256 {threat['sha256'][:12]})" if threat.get("sha256") else ""
    lines = [
        f"threat model: {threat['source']}{digest}",
        f"success rate: {obj['success_rate']:.1%} of {obj['samples']} rows "
        f"({obj['queries_per_sample']:.0f} queries a row, budget {obj['budget']})",
        f"constraint violations: {obj['constraint_violations']}",
        "median change: "
        + (", ".join(f"{k} {v:g}" for k, v in obj["median_change"].items() if v) or "none"),
    ]
    for f in obj["fragility"]:
        small = ", ".join(f"{k} {v:g}" for k, v in f["smallest_change"].items() if v) or "-"
        lines.append(
            f"  sensor {f['sensor']:<6} alone: {f['success_rate']:.0%} flipped; smallest: {small}"
        )
    lines.append(f"({obj['wall_s']:.1f} s)")
    return "\n".join(lines)
