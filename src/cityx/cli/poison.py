"""``cityx poison`` and ``cityx data``: poison data, audit it, scan models, sign datasets.

``poison audit`` exits 3 when the verdict is ``poisoned``, 0 when it is
``clean`` or ``undetermined`` (the JSON says which, with its reasons);
``poison scan`` exits 3 when a trigger is suspected; ``data verify`` exits
3 when the data changed after signing or the signature is not trusted.
Bad input exits 2 with one line saying what and where.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import (
    EXIT_OK,
    EXIT_VERDICT,
    TRUST_CODE_HELP,
    Subparsers,
    add_command,
    add_group,
    emit,
    seed,
)

_DATA = "grid3x3.parquet"


def _sources(values: list[str] | None) -> list[str]:
    # --source-col may repeat or hold a comma-separated list.
    return [c for v in values or [] for c in v.split(",") if c]


def register(sub: Subparsers) -> None:
    """Add ``cityx poison simulate|audit|scan`` and ``cityx data sign|verify``."""
    group = add_group(sub, "poison", "Poison training data, audit it, scan a model for backdoors.")
    simulate = add_command(
        group,
        "simulate",
        "Apply a poisoning attack to a data file; write the poisoned file and, beside it, "
        "OUT.truth.json naming the poisoned rows (0-based positions).",
        f"cityx poison simulate --data {_DATA} --label congestion_next --attack "
        "poisoning.backdoor --rate 0.05 --source-col intersection,approach --seed 1 "
        "--out poisoned.parquet",
        _simulate,
    )
    simulate.add_argument("--data", type=Path, required=True, metavar="FILE", help="CSV or Parquet")
    simulate.add_argument("--label", required=True, metavar="COL", help="the label column")
    simulate.add_argument("--attack", required=True, metavar="ID", help="a poisoning attack id")
    simulate.add_argument("--rate", type=float, required=True, metavar="R", help="share of rows")
    simulate.add_argument(
        "--source-col", action="append", metavar="COL", help="source column(s), repeatable"
    )
    simulate.add_argument(
        "--param", action="append", default=[], metavar="NAME=X", help="other attack parameter"
    )
    simulate.add_argument("--seed", type=seed, default=0, help="seed (default: 0)")
    simulate.add_argument("--out", type=Path, required=True, metavar="FILE", help="output file")
    simulate.add_argument("--json", action="store_true", help="print one JSON object")

    audit = add_command(
        group,
        "audit",
        "Score every row for poisoning with an ensemble of detectors, rank rows and sources, "
        "and give a verdict: clean, poisoned (exit 3) or undetermined.",
        f"cityx poison audit --data {_DATA} --label congestion_next "
        "--source-col intersection,approach --json",
        _audit,
    )
    audit.add_argument("--data", type=Path, required=True, metavar="FILE", help="CSV or Parquet")
    audit.add_argument("--label", required=True, metavar="COL", help="the label column")
    audit.add_argument("--source-col", action="append", metavar="COL", help="source column(s)")
    audit.add_argument(
        "--trusted", type=Path, metavar="FILE", help="rows known to be clean, to set thresholds"
    )
    audit.add_argument("--seed", type=seed, default=0, help="seed (default: 0)")
    audit.add_argument("--json", action="store_true", help="print one JSON object")

    scan = add_command(
        group,
        "scan",
        "Search a submission's model (run isolated) for small input patterns that flip many "
        "predictions to one class; exit 3 when a trigger is suspected.",
        "cityx poison scan --model examples/submissions/metro-congestion "
        "--data examples/submissions/metro-congestion/data/holdout.csv --json",
        _scan,
    )
    scan.add_argument("--model", type=Path, required=True, metavar="DIR", help="submission folder")
    scan.add_argument("--data", type=Path, required=True, metavar="FILE", help="rows to perturb")
    scan.add_argument("--seed", type=seed, default=0, help="seed (default: 0)")
    scan.add_argument("--json", action="store_true", help="print one JSON object")
    scan.add_argument("--trust-code", action="store_true", help=TRUST_CODE_HELP)

    data = add_group(sub, "data", "Sign and verify dataset manifests (provenance).")
    sign = add_command(
        data,
        "sign",
        "Write a signed manifest of a data file: its digest and one digest per source.",
        f"cityx data sign --data {_DATA} --source-col intersection,approach "
        "--key keys/urn_cityx_vendor_acme_data.AbCdEfGhIjKl.key.jwk --out grid3x3.manifest.jws",
        _sign,
    )
    sign.add_argument("--data", type=Path, required=True, metavar="FILE", help="CSV or Parquet")
    sign.add_argument("--key", type=Path, required=True, metavar="KEYFILE", help="private JWK")
    sign.add_argument("--source-col", action="append", metavar="COL", help="source column(s)")
    sign.add_argument("--out", type=Path, metavar="FILE", help="default: FILE.manifest.jws")
    sign.add_argument("--json", action="store_true", help="print one JSON object")
    verify = add_command(
        data,
        "verify",
        "Check a signed dataset manifest against the signer's trust document and the data; "
        "exit 3 when the data changed or the signature is not trusted.",
        f"cityx data verify --data {_DATA} --manifest grid3x3.manifest.jws --trust keys --json",
        _verify,
    )
    verify.add_argument("--data", type=Path, required=True, metavar="FILE", help="the data file")
    verify.add_argument("--manifest", type=Path, required=True, metavar="FILE", help="the JWS")
    verify.add_argument(
        "--trust", type=Path, required=True, metavar="JWKS_OR_DIR", help="trust document or folder"
    )
    verify.add_argument("--json", action="store_true", help="print one JSON object")


def _params(args: argparse.Namespace) -> dict[str, Any]:
    # lazy: cityx --help stays fast
    from cityx.core import InputError

    values: dict[str, Any] = {"rate": args.rate}
    for item in args.param:
        name, sep, text = item.partition("=")
        try:
            values[name] = float(text)
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"expected NAME=NUMBER, got {item!r}", where="--param")
    return values


def _simulate(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    # lazy: cityx --help stays fast
    from cityx.attacks.poisoning import PoisoningAttack
    from cityx.core import InputError, PluginKind, Registry
    from cityx.data import read_table

    registry = Registry()
    if args.attack not in registry.ids(PluginKind.ATTACK):
        raise InputError(f"unknown attack {args.attack!r}", where="--attack")
    cls = registry.load(PluginKind.ATTACK, args.attack)
    if not (isinstance(cls, type) and issubclass(cls, PoisoningAttack)):
        raise InputError(f"{args.attack!r} is not a poisoning attack", where="--attack")
    table = read_table(args.data)
    result = cls().poison(
        table,
        label=args.label,
        source_cols=_sources(args.source_col),
        params=_params(args),
        seed=args.seed,
    )
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in {".parquet", ".pq"}:
        result.table.to_parquet(out, index=False)
    else:
        result.table.to_csv(out, index=False)
    truth_path = out.with_name(out.name + ".truth.json")
    truth = result.truth_json()
    truth_path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    n = len(truth["poisoned"])
    emit(
        args,
        {
            "out": str(out),
            "truth": str(truth_path),
            "rows": truth["rows"],
            "poisoned": n,
            "attack": result.attack,
            "params": truth["params"],
            "seed": result.seed,
        },
        f"{out}: {n} of {truth['rows']} rows poisoned by {result.attack}; truth in {truth_path}",
    )
    return EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.data import read_table
    from cityx.defenses.poisoning import AuditVerdict, audit

    trusted = read_table(args.trusted) if args.trusted else None
    report = audit(
        read_table(args.data),
        label=args.label,
        source_cols=_sources(args.source_col),
        trusted=trusted,
        seed=args.seed,
    )
    obj = report.to_json()
    bad = [s["source"] for s in obj["sources"] if s["flagged"]]
    text = "\n".join(
        [
            f"verdict: {report.verdict.value} ({len(obj['flagged'])} of {len(obj['rows'])} rows "
            f"flagged, {report.wall_s:.1f} s)",
            *(f"  {r}" for r in report.reasons),
            *([f"compromised sources: {', '.join(bad)}"] if bad else []),
        ]
    )
    emit(args, obj, text)
    return EXIT_VERDICT if report.verdict is AuditVerdict.POISONED else EXIT_OK


def _scan(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.defenses.poisoning.model_scan import scan_submission

    report = scan_submission(args.model, args.data, seed=args.seed, trust_code=args.trust_code)
    obj = report.to_json()
    lines = [f"{obj['verdict']} ({report.rows} rows, {len(report.candidates)} candidates)"]
    lines += [
        f"  {c.target} <- {c.pattern} flips {c.flip_rate:.0%} (z {c.anomaly_z:.1f})"
        for c in report.suspicious
    ]
    emit(args, obj, "\n".join(lines))
    return EXIT_VERDICT if report.suspicious else EXIT_OK


def _sign(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.defenses.poisoning import dataset_manifest, sign_manifest

    manifest = dataset_manifest(args.data, _sources(args.source_col))
    token = sign_manifest(manifest, args.key)
    out: Path = args.out or args.data.with_name(args.data.name + ".manifest.jws")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(token + "\n", encoding="utf-8")
    emit(
        args,
        {
            "out": str(out),
            "sha256": manifest["sha256"],
            "rows": manifest["rows"],
            "sources": len(manifest["sources"]),
        },
        f"{out}: signed manifest of {args.data} ({len(manifest['sources'])} sources)",
    )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.core import InputError
    from cityx.defenses.poisoning import verify_manifest

    try:
        token = args.manifest.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the manifest: {exc}", where=str(args.manifest)) from exc
    check = verify_manifest(token, args.data, args.trust)
    lines = [f"{'ok' if check.ok else 'FAILED'}: {check.reason}"]
    for what, names in (
        ("changed", check.changed),
        ("added", check.added),
        ("removed", check.removed),
    ):
        if names:
            lines.append(f"  {what} source(s): {', '.join(names)}")
    emit(args, check.to_json(), "\n".join(lines))
    return EXIT_OK if check.ok else EXIT_VERDICT
