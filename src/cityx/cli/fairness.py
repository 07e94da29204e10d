"""``cityx fairness``, ``cityx aiverify`` and ``cityx checklist``.

``cityx fairness --model M --data D --label L --sensitive S`` measures a
predictor's group fairness (the model runs in an isolated worker);
``cityx fairness --world-run DIR [--baseline DIR]`` measures who waits in a
sandbox run. ``cityx aiverify export`` writes a trial's results in AI
Verify's formats; ``cityx checklist export|import`` moves the process
checklist to and from CSV, XLSX and JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cityx.core import InputError

from .common import EXIT_OK, TRUST_CODE_HELP, Subparsers, add_command, add_group, emit, seed

_SUFFIX_FORMATS = {".onnx": "onnx", ".skops": "skops", ".lgb": "lightgbm", ".txt": "lightgbm"}


def register(sub: Subparsers) -> None:
    """Add ``fairness``, ``aiverify`` and ``checklist`` to the ``cityx`` parser."""
    fair = add_command(
        sub,
        "fairness",
        "Measure group fairness: of a predictor on labelled data (--model), or of a "
        "controller's sandbox run (--world-run).",
        "cityx fairness --model examples/submissions/metro-congestion --data "
        "examples/submissions/metro-congestion/data/holdout.csv --label congestion_next "
        "--sensitive district --positive heavy --bootstrap 500 --seed 1",
        _fairness,
    )
    fair.add_argument(
        "--model",
        type=Path,
        metavar="FILE|DIR",
        help="a submission folder (with cityx.toml) or a bare model file (.onnx, .skops, .lgb)",
    )
    fair.add_argument("--data", type=Path, metavar="FILE", help="CSV or Parquet with labels")
    fair.add_argument("--label", metavar="COL", help="the column holding the truth")
    fair.add_argument(
        "--sensitive",
        metavar="COL[,COL...]",
        help="sensitive column(s); several make intersectional groups joined by '|'",
    )
    fair.add_argument(
        "--positive", metavar="LABEL", help="the label judged one-vs-rest (needed for 3+ labels)"
    )
    fair.add_argument(
        "--features",
        metavar="COL[,COL...]",
        help="for a bare model file: its input columns in order (default: every numeric "
        "column but the label and sensitive ones)",
    )
    fair.add_argument(
        "--task",
        choices=("classification", "regression"),
        default="classification",
        help="for a bare model file (default: classification)",
    )
    fair.add_argument(
        "--bootstrap", type=int, default=0, metavar="N", help="bootstrap resamples (default: 0)"
    )
    fair.add_argument("--seed", type=seed, default=0, help="random seed (default: 0)")
    fair.add_argument(
        "--min-group", type=int, default=30, metavar="N", help="warn below N rows (default: 30)"
    )
    fair.add_argument("--world-run", type=Path, metavar="DIR", help="a cityx world run folder")
    fair.add_argument("--baseline", type=Path, metavar="DIR", help="a baseline world run folder")
    fair.add_argument("--json", action="store_true", help="print one JSON object")
    fair.add_argument("--trust-code", action="store_true", help=TRUST_CODE_HELP)

    aiv = add_group(sub, "aiverify", "Speak AI Verify's formats.")
    export = add_command(
        aiv,
        "export",
        "Write a trial's fairness results as AI Verify test results (Fairness Metrics Toolbox "
        "for Classification), with AI Verify-style values beside ours, and the principle "
        "checklist.",
        "cityx aiverify export cityx-trials/t-20250101T000000Z-abc123 --out aiverify-out",
        _aiverify_export,
    )
    export.add_argument("trial", type=Path, metavar="TRIAL_DIR", help="a trial output folder")
    export.add_argument("--out", type=Path, required=True, help="the folder to write")
    export.add_argument("--json", action="store_true", help="print one JSON object")

    checklist = add_group(sub, "checklist", "The process checklist of the 11 principles.")
    cexport = add_command(
        checklist,
        "export",
        "Write the checklist, answered from a trial's evidence where it has some, as CSV, XLSX "
        "or JSON (by the file's suffix).",
        "cityx checklist export --trial cityx-trials/t-... --out checklist.xlsx",
        _checklist_export,
    )
    cexport.add_argument("--trial", type=Path, metavar="TRIAL_DIR", help="answer from this trial")
    cexport.add_argument("--out", type=Path, required=True, help=".csv, .xlsx or .json")
    cexport.add_argument("--json", action="store_true", help="print one JSON object")
    cimport = add_command(
        checklist,
        "import",
        "Read a filled-in checklist (CSV, XLSX or JSON), validate it and print each "
        "principle's status.",
        "cityx checklist import checklist.xlsx --json",
        _checklist_import,
    )
    cimport.add_argument("file", type=Path, help=".csv, .xlsx or .json")
    cimport.add_argument("--json", action="store_true", help="print one JSON object")


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _fairness(args: argparse.Namespace) -> int:
    if args.world_run is not None:
        if args.model is not None or args.data is not None:
            raise InputError("give either --world-run or --model/--data, not both")
        return _controller(args)
    if args.baseline is not None:
        raise InputError("--baseline goes with --world-run", where="--baseline")
    missing = [
        flag for flag, value in (("--model", args.model), ("--data", args.data)) if value is None
    ]
    if missing or not _split(args.sensitive):
        missing += [] if _split(args.sensitive) else ["--sensitive"]
        raise InputError(
            f"missing {', '.join(missing)}",
            hint="see: cityx fairness --help",
        )
    if args.bootstrap < 0:
        raise InputError("must be 0 or more", where="--bootstrap")
    return _predictor(args)


def _predictor(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.assess.fairness.table import read_data, table_fairness

    df = read_data(args.data)
    sensitive = _split(args.sensitive)
    predictor, label = _open_model(args, df, sensitive)
    try:  # the worker starts at the first call, after the inputs are checked
        result = table_fairness(
            predictor,
            df,
            label=label,
            sensitive=sensitive,
            positive=args.positive,
            bootstrap_n=args.bootstrap,
            seed=args.seed,
            min_group=args.min_group,
            where=str(args.data),
        )
    finally:
        predictor.close()
    obj = result.to_json()
    emit(args, obj, _predictor_text(obj))
    return EXIT_OK


def _open_model(args: argparse.Namespace, df: Any, sensitive: list[str]) -> tuple[Any, str]:
    """An isolated predictor for a submission folder or a bare model file, and the label."""
    # lazy: cityx --help stays fast
    # lazy: cityx --help stays fast
    from cityx.core import DataError, Feature, InputSchema, OutputSpec, Task
    from cityx.submissions import open_submission
    from cityx.targets import IsolatedPredictor, LoadRequest

    path: Path = args.model
    if path.is_dir() or path.name == "cityx.toml":
        # A submission: its artifact's digest is checked before anything loads.
        submission = open_submission(path)
        label = args.label or submission.manifest.outputs.label_column
        return submission.predictor(trust_code=args.trust_code), label
    if not path.is_file():
        raise InputError("no such model file or submission folder", where=str(path))
    if not args.label:
        raise InputError("a bare model file needs --label", where="--label")
    fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"cannot tell the model format from {path.suffix!r}",
            where=str(path),
            hint="use .onnx, .skops or .lgb, or give a submission folder with cityx.toml",
        )
    if args.features:
        features = _split(args.features)
    else:
        skip = {args.label, *sensitive}
        features = [str(c) for c in df.columns if c not in skip and df[c].dtype.kind in "biuf"]
    # lazy: cityx --help stays fast
    from cityx.assess.fairness.table import require_columns

    require_columns(df, features, what="feature", where=str(args.data))
    task = Task(args.task)
    labels: tuple[str, ...] = ()
    if task is Task.CLASSIFICATION:
        if args.label not in df.columns:
            raise DataError(f"label column {args.label!r} is missing", where=str(args.data))
        labels = tuple(sorted(df[args.label].astype(str).unique().tolist()))
    schema = InputSchema(tuple(Feature(name) for name in features))
    request = LoadRequest(
        artifact=path.resolve(),
        format=fmt,
        features=tuple(features),
        task=task,
        labels=labels,
    )
    return (
        IsolatedPredictor(
            request=request,
            schema=schema,
            outputs=OutputSpec(task, labels),
            cwd=path.resolve().parent,
        ),
        args.label,
    )


def _fmt(value: Any) -> str:
    return (
        "undefined" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
    )


def _predictor_text(obj: dict[str, Any]) -> str:
    metrics = (
        ("tpr", "fpr", "ppv", "selection_rate", "accuracy")
        if obj["task"] == "classification"
        else ("mae", "rmse", "mean_residual")
    )
    head = f"group fairness by {' | '.join(obj['sensitive'])}" + (
        f", positive label {obj['positive']!r} (one-vs-rest)" if obj["positive"] else ""
    )
    width = max(len("difference"), *(len(g) for g in obj["groups"])) + 2
    lines = [head, f"{'group':<{width}}{'n':>7}" + "".join(f"{m:>16}" for m in metrics)]
    for name, row in obj["groups"].items():
        lines.append(
            f"{name:<{width}}{row['n']:>7}" + "".join(f"{_fmt(row[m]):>16}" for m in metrics)
        )
    lines.append(
        f"{'ratio':<{width}}{'':>7}" + "".join(f"{_fmt(obj['ratios'][m]):>16}" for m in metrics)
    )
    lines.append(
        f"{'difference':<{width}}{'':>7}"
        + "".join(f"{_fmt(obj['differences'][m]):>16}" for m in metrics)
    )
    for name, value in obj["summary"].items():
        ci = obj["intervals"].get(name)
        extra = f"  (95% CI {_fmt(ci[0])} to {_fmt(ci[1])})" if ci else ""
        lines.append(f"{name}: {_fmt(value)}{extra}")
    lines += [f"warning: {w}" for w in obj["warnings"]]
    return "\n".join(lines)


def _controller(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.assess.fairness.controllers import controller_fairness

    obj = controller_fairness(args.world_run, args.baseline)
    lines = [f"{obj['scenario']} / {obj['controller']}: {obj['seconds']} s, seed {obj['seed']}"]
    w = obj["overall"]["waiting_s"]
    lines.append(
        f"  waiting: mean {_fmt(w['mean'])} s, p95 {_fmt(w['p95'])} s, max {_fmt(w['max'])} s, "
        f"Gini {_fmt(w['gini'])}, Jain {_fmt(w['jain'])}"
    )
    for kind, part in obj["by"].items():
        s = part["spread"]["waiting_s"]
        starve = part["starvation"]
        lines.append(
            f"  by {kind}: mean waiting ratio {_fmt(s['ratio'])}, difference "
            f"{_fmt(s['difference'])} s, worst {s['worst_group']}; starvation in "
            f"{starve['group']}: p95 {_fmt(starve['p95_waiting_s'])} s"
        )
    base = obj.get("baseline")
    if base is not None:
        d = base["delta_overall"]["waiting_s"]
        lines.append(f"  against {base['controller']}: mean waiting {_fmt(d)} s")
        for payer in base["who_pays"][:5]:
            lines.append(
                f"    pays: {payer['kind']} {payer['group']} waits "
                f"{_fmt(payer['delta_mean_waiting_s'])} s more"
            )
    lines += [f"  warning: {x}" for x in obj["warnings"]]
    emit(args, obj, "\n".join(lines))
    return EXIT_OK


def _aiverify_export(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.governance.aiverify import export_trial

    written = export_trial(args.trial, args.out)
    obj = {"out": str(args.out), "files": [str(p) for p in written]}
    emit(args, obj, "\n".join(f"wrote {p}" for p in written))
    return EXIT_OK


def _checklist_export(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.governance.checklist import answer_from_trial, load_checklist, write_answers

    answers = answer_from_trial(load_checklist(), args.trial)
    path = write_answers(answers, args.out)
    answered = sum(1 for a in answers if a.answer)
    obj = {"out": str(path), "items": len(answers), "answered_from_trial": answered}
    emit(args, obj, f"wrote {len(answers)} items ({answered} answered from the trial) to {path}")
    return EXIT_OK


def _checklist_import(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.governance.checklist import load_checklist, principle_summary, read_answers

    answers = read_answers(args.file, load_checklist())
    summary = principle_summary(answers)
    obj = {"file": str(args.file), "items": len(answers), "principles": summary}
    lines = [
        f"{p:<18} {s['status']:<14} {s['yes']} yes, {s['no']} no, {s['na']} n/a, {s['open']} open"
        for p, s in summary.items()
    ]
    emit(args, obj, "\n".join(lines))
    return EXIT_OK
