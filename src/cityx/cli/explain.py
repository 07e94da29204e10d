"""``cityx explain``: why a predictor decided, or why a controller chose a phase.

``cityx explain --model M --data D [--rows 0,5,9 | --all | --where COL=VALUE]``
explains a predictor's decisions on a table (the model runs in an isolated
worker, which describes it for exact attributions); ``cityx explain
--world-run DIR [--intersection ID] [--at SECONDS]`` explains a sandbox run's
controller choices.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cityx.core import InputError

from .common import EXIT_OK, TRUST_CODE_HELP, Subparsers, add_command, emit, seed
from .fairness import _open_model, _split

EXAMPLE = "examples/submissions/metro-congestion"


def register(sub: Subparsers) -> None:
    """Add ``explain`` to the ``cityx`` parser."""
    p = add_command(
        sub,
        "explain",
        "Explain decisions: a predictor's on a table (--model, --data), exactly on the submitted "
        "artifact where it is a tree ensemble or linear model; or a controller's phase choices "
        "in a sandbox run (--world-run).",
        f"cityx explain --model {EXAMPLE} --data {EXAMPLE}/data/holdout.csv --rows 0,5 --json",
        _explain,
    )
    p.add_argument("--model", type=Path, metavar="FILE|DIR", help="a submission or model file")
    p.add_argument("--data", type=Path, metavar="FILE", help="CSV or Parquet with the inputs")
    p.add_argument("--rows", metavar="I[,I...]", help="row numbers (0-based) to explain")
    p.add_argument("--all", action="store_true", help="explain every row")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COL=VALUE",
        help="explain the rows where COL equals VALUE (repeatable: all must hold)",
    )
    p.add_argument("--class", dest="klass", metavar="C", help="explain this class's output")
    p.add_argument(
        "--output",
        choices=("margin", "probability"),
        default="margin",
        help="margin (exact, default) or probability (approximate through softmax/logistic)",
    )
    p.add_argument("--label", metavar="COL", help="for a bare model file: the label column")
    p.add_argument(
        "--features", metavar="COL[,COL...]", help="for a bare model file: its input columns"
    )
    p.add_argument(
        "--task",
        choices=("classification", "regression"),
        default="classification",
        help="for a bare model file (default: classification)",
    )
    p.add_argument("--trust-code", action="store_true", help=TRUST_CODE_HELP)
    p.add_argument("--seed", type=seed, default=0, help="random seed (default: 0)")
    p.add_argument("--world-run", type=Path, metavar="DIR", help="a cityx world run folder")
    p.add_argument("--intersection", metavar="ID", help="with --world-run: one intersection")
    p.add_argument(
        "--at", type=float, metavar="SECONDS", help="with --world-run: the decision in force then"
    )
    p.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="with --world-run: also write a page with a decision timeline chart per intersection",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _explain(args: argparse.Namespace) -> int:
    if args.world_run is not None:
        if args.model is not None or args.data is not None:
            raise InputError("give either --world-run or --model/--data, not both")
        return _world(args)
    missing = [f for f, v in (("--model", args.model), ("--data", args.data)) if v is None]
    if missing:
        raise InputError(f"missing {', '.join(missing)}", hint="see: cityx explain --help")
    return _predictor(args)


def _rows(args: argparse.Namespace, df: Any) -> list[int]:
    rows: list[int] = []
    for part in _split(args.rows):
        try:
            rows.append(int(part))
        except ValueError:
            raise InputError(f"not a row number: {part!r}", where="--rows") from None
    if args.where:
        mask = None
        for clause in args.where:
            column, sep, value = clause.partition("=")
            if not sep or column not in df.columns:
                raise InputError(
                    f"{clause!r} is not COLUMN=VALUE with a column of the table", where="--where"
                )
            hit = df[column].astype(str) == value
            mask = hit if mask is None else mask & hit
        assert mask is not None
        found = [int(i) for i in mask.to_numpy().nonzero()[0]]
        if not found:
            raise InputError(f"no row matches {' and '.join(args.where)}", where="--where")
        rows += found
    return rows


def _predictor(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.assess.explain.predictor import explain_predictor
    from cityx.data import read_table
    from cityx.data.constraints import load_threat_model, schema_threat_model

    df = read_table(Path(args.data))
    rows = _rows(args, df)
    predictor, _ = _open_model(args, df, [])
    folder = args.model if args.model.is_dir() else args.model.parent
    declared = folder / "threat-model.toml"
    try:
        limits = (
            load_threat_model(declared, predictor.schema)
            if declared.is_file() and args.model.is_dir()
            else schema_threat_model(predictor.schema)
        )
        if declared.is_file() and args.model.is_dir():
            # Physical limits, not an attacker's reach: every sensor may change.
            limits = limits.restricted_to([s.name for s in limits.sensors])
        result = explain_predictor(
            predictor,
            df,
            rows=rows,
            all_rows=args.all,
            klass=args.klass,
            output=args.output,
            seed=args.seed,
            threat_model=limits,
            where=str(args.data),
        )
    finally:
        predictor.close()
    obj = result.to_json()
    emit(args, obj, _predictor_text(obj))
    return EXIT_OK


def _predictor_text(obj: dict[str, Any]) -> str:
    head = (
        f"{obj['method']} ({'exact' if obj['exact'] else 'approximate'}) on the {obj['output']}, "
        f"background {obj['background_rows']} rows"
    )
    lines = [head]
    if obj["note"]:
        lines.append(f"note: {obj['note']}")
    lines.append(f"global view: mean |attribution| over {obj['global']['rows']} rows")
    for klass, values in obj["global"]["mean_abs"].items():
        top = sorted(values.items(), key=lambda kv: -kv[1])[:5]
        lines.append(f"  {klass}: " + ", ".join(f"{f} {v:.3g}" for f, v in top))
    for row in obj["rows"]:
        lines.append(
            f"row {row['row']}: {row['prediction']} ({row['class']} {obj['output']} "
            f"{row['output']:.4g} = base {row['base_value']:.4g} + contributions)"
        )
        top = sorted(row["contributions"].items(), key=lambda kv: -abs(kv[1]))[:5]
        lines += [f"  {f:<24}{v:+.4g}" for f, v in top]
        cf = row["counterfactual"]
        if cf is not None:
            lines.append(f"  counterfactual: {cf['sentence']}")
    f = obj["fidelity"]

    def fmt(v: Any) -> str:
        return "not assessed" if v is None else f"{v:.3g}"

    lines.append(
        f"fidelity: additivity error {fmt(f['additivity_max_error'])}, vs artifact "
        f"{fmt(f['artifact_max_error'])}, deletion {fmt(f['deletion_auc'])} (random "
        f"{fmt(f['random_deletion_auc'])}), stability {fmt(f['stability'])}, agreement "
        f"{fmt(f['method_agreement'])}"
    )
    return "\n".join(lines)


def _world(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.assess.explain.charts import run_report_html
    from cityx.assess.explain.controller import explain_world_run, timeline

    result = explain_world_run(args.world_run, intersection=args.intersection, at=args.at)
    if args.html is not None:
        if not args.html.parent.is_dir():
            raise InputError(f"no folder {args.html.parent}", where="--html")
        args.html.write_text(run_report_html(result, timeline(result)), encoding="utf-8")
    obj = result.to_json()
    lines = [
        f"{obj['controller']}: {obj['decisions']} decisions, {obj['method']} "
        f"(margin in {obj['unit'] or 'n/a'})"
    ]
    if obj["note"]:
        lines.append(f"note: {obj['note']}")
    for tls, items in timeline(result).items():
        lines.append(f"{tls}:")
        lines += [f"  {line}" for line in items]
    emit(args, obj, "\n".join(lines))
    return EXIT_OK
