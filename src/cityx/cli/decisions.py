"""``cityx decisions verify``, ``show`` and ``prune``: a run's signed decision log from the shell.

:func:`register_decisions` adds the parsers (called with the oversight
commands, :mod:`.oversight`); the rest are their handlers. ``verify`` exits 0
when the log is intact and sealed (and matches the store's anchors with ``--store``), 3 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_OK, EXIT_VERDICT, Subparsers, add_command, add_group, emit


def register_decisions(sub: Subparsers) -> None:
    """Add ``decisions verify``, ``show`` and ``prune`` to the ``cityx`` parser."""
    decisions = add_group(sub, "decisions", "A run's signed decision log.")
    verify = add_command(
        decisions,
        "verify",
        "Verify a decision log: hash chain, signed checkpoints, final seal. Exit 0 when "
        "intact and sealed, 3 otherwise (naming the first bad record).",
        "cityx decisions verify /tmp/ov --json",
        decisions_verify,
    )
    verify.add_argument("path", type=Path, metavar="RUN_DIR", help="a run folder or its log")
    verify.add_argument(
        "--trust",
        type=Path,
        metavar="FILE|DIR",
        help="trust document(s) holding the signer's public key (else the run folder's "
        "copy, which proves nothing against someone who can write the folder)",
    )
    verify.add_argument("--run", metavar="ID", help="the run id the checkpoints must name")
    verify.add_argument(
        "--store",
        metavar="URL",
        help="also check the log against the checkpoints anchored in this store (the run id "
        "from --run or the run folder's oversight.json)",
    )
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    show = add_command(
        decisions,
        "show",
        "Print a decision log's records, optionally for one intersection or kind.",
        "cityx decisions show /tmp/ov --kind command",
        decisions_show,
    )
    show.add_argument("path", type=Path, metavar="RUN_DIR", help="a run folder or its log")
    show.add_argument("--intersection", metavar="ID", help="only this intersection's records")
    show.add_argument("--kind", metavar="KIND", help="only records of this kind")
    show.add_argument("--json", action="store_true", help="one JSON record per line")
    prune = add_command(
        decisions,
        "prune",
        "Retention: remove the whole sealed segments older than --keep-days from the start of "
        "a decision log, leaving a tombstone signed with the city's key that keeps the chain "
        "verifiable (cityx decisions verify then says what was pruned).",
        "cityx decisions prune /tmp/ov --keep-days 183 --sign-key keys/city.KID.key.jwk",
        decisions_prune,
    )
    prune.add_argument("path", type=Path, metavar="RUN_DIR", help="a run folder or its log")
    prune.add_argument(
        "--keep-days",
        type=float,
        required=True,
        metavar="N",
        help="keep records sealed in the last N days (at least 183, six months: Art. 26(6))",
    )
    prune.add_argument(
        "--sign-key",
        type=Path,
        required=True,
        metavar="KEY.jwk",
        help="the city's Ed25519 key (cityx interop keygen) that signs the tombstone",
    )
    prune.add_argument(
        "--allow-under-six-months",
        action="store_true",
        help="allow --keep-days under 183 (where the law allows a shorter retention)",
    )
    prune.add_argument("--json", action="store_true", help="print one JSON object")


def decisions_verify(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.oversight.decisions import DecisionsVerification, read_log, verify_decisions

    trust = None
    if args.trust is not None:
        # lazy: cityx --help stays fast
        from cityx.interop import load_trust

        store = load_trust(args.trust)
        tomb, entries = read_log(args.path)
        kids = [e.payload.get("kid") for e in entries if e.action == "checkpoint"]
        if tomb is not None and isinstance(tomb.body.get("seal"), dict):
            # A log pruned to its tombstone: the pruned last seal names the run's key.
            kids.append(tomb.body["seal"].get("payload", {}).get("kid"))
        kid = next((k for k in kids if k), None)
        key = store.key(str(kid)) if kid else None
        if key is None:
            # A verdict, not bad input: the log is sealed by nobody these documents trust.
            result = DecisionsVerification(
                False, 0, 0, None, f"signed by key {kid!r}, which {args.trust} does not hold"
            )
            emit(args, result.to_json(), f"NOT OK: {result.reason}")
            return EXIT_VERDICT
        trust = store  # the seals' key must have been valid when it sealed
    result = verify_decisions(args.path, trust=trust, run=args.run)
    if args.store is not None:
        result = _anchored(args, result)
    text = (
        f"ok: {result.entries} records, all sealed"
        + ("" if result.key_anchored else " (key from the run folder: not anchored)")
        if result.ok
        else f"NOT OK at record {result.first_bad}: {result.reason} "
        f"({result.sealed} of {result.entries} sealed)"
    )
    text = "".join(f"warning: {w}\n" for w in result.warnings) + text
    if result.pruned is not None:
        p = result.pruned
        text += (
            f"\npruned: records 1-{p['upto']} ({p['checkpoints']} sealed segments, "
            f"{p['first_at']} to {p['last_at']}), kept {p['keep_days']:g} days, "
            f"on {p['pruned_at']} by key {p['kid']}"
        )
    emit(args, result.to_json(), text)
    return EXIT_OK if result.ok else EXIT_VERDICT


def _anchored(args: argparse.Namespace, result: Any) -> Any:
    # lazy: cityx --help stays fast
    from cityx.core import InputError
    from cityx.oversight.decisions import ANCHOR_ACTION, check_anchors
    from cityx.store import Store

    run = args.run
    if run is None:
        folder = args.path if args.path.is_dir() else args.path.parent
        try:
            run = json.loads((folder / "oversight.json").read_text())["run_id"]
        except (OSError, ValueError, KeyError):
            raise InputError(
                "no run id: give --run ID (the run folder has no oversight.json)",
                where=str(args.path),
            ) from None
    with Store.open(args.store) as store:
        anchors = [
            dict(e.payload)
            for e in store.audit_entries()
            if e.action == ANCHOR_ACTION and e.subject == run
        ]
    return check_anchors(result, args.path, anchors)


def decisions_show(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.oversight.decisions import iter_records

    for e in iter_records(args.path, intersection=args.intersection, kind=args.kind):
        if args.json:
            sys.stdout.write(json.dumps(e.to_json(), allow_nan=False) + "\n")
        else:
            summary = json.dumps(dict(e.payload), allow_nan=False)
            if len(summary) > 160:
                summary = summary[:157] + "..."
            sys.stdout.write(f"{e.seq:>6} {e.action:<14} {e.subject:<24} {e.actor}  {summary}\n")
    return EXIT_OK


def decisions_prune(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.interop import load_signing_key
    from cityx.oversight.retention import prune_decisions

    result = prune_decisions(
        args.path,
        load_signing_key(args.sign_key),
        keep_days=args.keep_days,
        allow_short=args.allow_under_six_months,
    )
    text = (
        f"pruned {result.records} record(s); the tombstone now covers records 1-{result.upto}, "
        f"{result.kept} kept"
        if result.records
        else f"nothing sealed before {result.cutoff}: nothing pruned"
    )
    emit(args, result.to_json(), text)
    return EXIT_OK


__all__ = ["decisions_prune", "decisions_show", "decisions_verify", "register_decisions"]
