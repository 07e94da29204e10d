#!/usr/bin/env python3
"""Build the metro-congestion example submission from SUMO runs of the sandbox.

Metro Analytics Ltd (a fictional vendor) sells a *congestion predictor*: from
the last *interval* (3 minutes, two cycles of the signals) of detector
readings on one *approach* of a signalised intersection it predicts the
*congestion state* of that approach in the next interval. This script makes
every file of its CityXchange submission:

    data/train.csv, data/holdout.csv   rows of detector features and next-interval labels
    model.onnx                         a gradient-boosted classifier, exported to ONNX
    cityx.toml                         the manifest, with the model's SHA-256
    datasheet.md                       the datasheet, filled in with measured numbers

The data come from :func:`cityx.worlds.traffic.dataset.build_dataset` (what
``cityx world dataset`` runs): SUMO simulations of the built-in ``grid3x3``
scenario under fixed-time signals, over several seeds and demand levels, with
the features and the label defined there (delay per vehicle on the last 100 m
before the stop line, graded with the Highway Capacity Manual's level-of-service
bands). Training rows come from some seeds, holdout rows from another seed,
so the holdout is a different random city day, not a resample of the same one.
Domain words (*run*, *place*, *interval*, *delay*, *congestion state*) are
those of the dataset module's docstring.

The same seeds give byte-identical CSV files (the simulations and the dataset
are deterministic). Run ``python make_submission.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import string
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cityx.worlds.traffic.dataset import (
    FREE_AT_OR_BELOW_S,
    HEAVY_ABOVE_S,
    LABELS,
    DatasetSpec,
    build_dataset,
    read_metadata,
)

HERE = Path(__file__).resolve().parent

# What to simulate. 2700 s is 15 intervals of 180 s; demand levels are SUMO
# --scale factors of the grid's base demand (about 2,250 cars/h): at 1 and 2
# the grid flows, at 3 queues start to outlast a cycle, at 3.5 they spill back.
SCENARIO = "grid3x3"
CONTROLLER = "fixed"
SECONDS = 2700
INTERVAL_S = 180  # two cycles of the grid's 90 s fixed-time plan: no cycle aliasing
DEMANDS = (1.0, 2.0, 3.0, 3.5)
TRAIN_SEEDS = (0, 1)
HOLDOUT_SEEDS = (2,)
MODEL_SEED = 7
LABEL_COLUMN = "congestion_next"
KEY_COLUMNS = ("district", "intersection", "approach", "seed", "demand", "interval_start_s")


@dataclass(frozen=True, slots=True)
class FeatureDef:
    """A model input: a dataset column, with its manifest type, unit and bounds."""

    name: str
    type: str
    unit: str
    min: float
    max: float
    description: str


FEATURES: tuple[FeatureDef, ...] = (
    FeatureDef("lanes", "int", "lanes", 1, 8, "Lanes of the approach with detectors"),
    FeatureDef(
        "flow_veh_h", "float", "veh/h", 0, 12000,
        "Vehicles counted by the approach's stop-line loops (5 m before the line) in the "
        "interval, as an hourly rate",
    ),
    FeatureDef(
        "occupancy_pct", "float", "%", 0, 100,
        "Share of the interval a stop-line loop was covered, mean over the lanes",
    ),
    FeatureDef(
        "area_occupancy_pct", "float", "%", 0, 100,
        "Share of the last 100 m before the stop line covered by vehicles, mean over the "
        "interval and the lanes",
    ),
    FeatureDef(
        "mean_speed_kmh", "float", "km/h", 0, 150,
        "Mean speed on the last 100 m before the stop line, weighted by vehicle-seconds "
        "(the free-flow speed when no vehicle was there)",
    ),
    FeatureDef(
        "free_flow_kmh", "float", "km/h", 5, 150,
        "Speed limit of the approach, mean over its lanes",
    ),
    FeatureDef(
        "speed_ratio", "float", "", 0, 3,
        "mean_speed_kmh / free_flow_kmh (vehicles may drive a little above the limit)",
    ),
    FeatureDef(
        "halting_veh", "float", "veh", 0, 200,
        "Mean number of halting vehicles on the last 100 m, summed over the lanes",
    ),
    FeatureDef(
        "max_jam_m", "float", "m", 0, 100,
        "Longest queue seen on any lane's last 100 m during the interval",
    ),
    FeatureDef(
        "delay_s", "float", "s/veh", 0, INTERVAL_S,
        "Mean time loss per vehicle on the last 100 m in the interval (the control delay "
        "the label grades, for the current interval)",
    ),
)  # fmt: skip
FEATURE_NAMES = tuple(f.name for f in FEATURES)
DECIMALS = 3  # CSV precision: far below the detectors' own resolution, small files


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def dataset_spec(workers: int) -> DatasetSpec:
    seeds = max((*TRAIN_SEEDS, *HOLDOUT_SEEDS)) + 1
    return DatasetSpec(
        scenario=SCENARIO,
        seconds=SECONDS,
        seeds=seeds,
        demands=DEMANDS,
        controller=CONTROLLER,
        interval_s=INTERVAL_S,
        workers=workers,
    )


def make_dataset(path: Path, *, workers: int, reuse: bool) -> dict[str, Any]:
    """Simulate into ``path`` (or reuse it when it was made with the same inputs)."""
    spec = dataset_spec(workers)
    if reuse and path.is_file():
        meta = read_metadata(path)
        wanted = {
            "scenario": spec.scenario,
            "controller": spec.controller,
            "seconds": spec.seconds,
            "interval_s": spec.interval_s,
            "seeds": list(range(spec.seeds)),
            "demand": list(spec.demands),
        }
        if all(meta.get(k) == v for k, v in wanted.items()):
            return meta
        raise SystemExit(f"{path} was made with other inputs; delete it or drop --reuse")

    def progress(done: int, total: int) -> None:
        print(f"run {done}/{total} done", file=sys.stderr, flush=True)

    build_dataset(spec, path, progress=progress)
    return read_metadata(path)


def split(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows from TRAIN_SEEDS, holdout rows from HOLDOUT_SEEDS, CSV-ready."""
    frame = table[[*FEATURE_NAMES, LABEL_COLUMN, *KEY_COLUMNS]].copy()
    floats = [f.name for f in FEATURES if f.type == "float"] + ["demand"]
    frame[floats] = frame[floats].round(DECIMALS) + 0.0  # + 0.0: no "-0.0" in the file
    order = ["seed", "demand", "intersection", "approach", "interval_start_s"]
    frame = frame.sort_values(order, kind="mergesort", ignore_index=True)
    seeds = frame["seed"].to_numpy()
    train = frame[np.isin(seeds, TRAIN_SEEDS)].reset_index(drop=True)
    holdout = frame[np.isin(seeds, HOLDOUT_SEEDS)].reset_index(drop=True)
    return train, holdout


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write with fixed formatting so the same data give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


def train(frame: pd.DataFrame, seed: int) -> Any:
    """Fit the gradient-boosted classifier (100 trees of depth 3 per class)."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.utils.class_weight import compute_sample_weight

    model = GradientBoostingClassifier(
        n_estimators=100, max_depth=3, learning_rate=0.1, random_state=seed
    )
    # float32, as the ONNX graph will see it, so split thresholds match exactly.
    x = frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float32)
    y = frame[LABEL_COLUMN].to_numpy()
    # Classes weighted inversely to their frequency: most intervals are free, and
    # unweighted the model would buy accuracy with the rare congested classes.
    model.fit(x, y, sample_weight=compute_sample_weight("balanced", y))
    return model


def export_onnx(model: Any) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, len(FEATURE_NAMES)]))],
        # Probabilities as a plain (n, 3) tensor rather than a list of dicts.
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    # skl2onnx names the graph with a random UUID and lists opsets in set order;
    # fixing both makes the file (and its SHA-256) repeat for the same library versions.
    onx.graph.name = "metro_congestion"
    opsets = sorted(onx.opset_import, key=lambda o: o.domain)
    del onx.opset_import[:]
    onx.opset_import.extend(opsets)
    return bytes(onx.SerializeToString())


@dataclass(frozen=True, slots=True)
class Scores:
    accuracy: float
    macro_f1: float
    recall: dict[str, float]
    persistence_accuracy: float
    persistence_macro_f1: float
    onnx_agreement: float


def evaluate(model: Any, onnx_bytes: bytes, holdout: pd.DataFrame) -> Scores:
    """Score the model on the holdout against persistence; check the ONNX export agrees."""
    import onnxruntime
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    from cityx.worlds.traffic.dataset import congestion_state

    x = holdout[list(FEATURE_NAMES)].to_numpy(dtype=np.float32)
    truth = holdout[LABEL_COLUMN].to_numpy()
    expected = model.predict(x)
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = session.run(["label"], {"input": x})[0]
    agreement = float(np.mean(got == expected))
    if agreement < 0.995:
        raise SystemExit(f"onnxruntime agrees with scikit-learn on only {agreement:.2%} of rows")
    recall = recall_score(truth, got, labels=list(LABELS), average=None, zero_division=0)
    # The natural baseline: the next interval looks like this one.
    same = congestion_state(holdout["delay_s"].to_numpy())
    return Scores(
        accuracy=float(accuracy_score(truth, got)),
        macro_f1=float(f1_score(truth, got, labels=list(LABELS), average="macro")),
        recall={lab: float(r) for lab, r in zip(LABELS, recall, strict=True)},
        persistence_accuracy=float(accuracy_score(truth, same)),
        persistence_macro_f1=float(f1_score(truth, same, labels=list(LABELS), average="macro")),
        onnx_agreement=agreement,
    )


# ---------------------------------------------------------------------------
# Manifest and datasheet
# ---------------------------------------------------------------------------


def _toml(value: Any) -> str:
    """A TOML value: JSON's string and number syntax are valid TOML for these."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def manifest_text(sha256: str) -> str:
    head = {
        "system": {
            "id": "metro-congestion",
            "vendor": "Metro Analytics Ltd",
            "version": "2.0.0",
            "kind": "predictor",
            "intended_use": (
                "Predicts the congestion state (free, moderate or heavy, by HCM control-delay "
                "level of service) of one approach of a signalised intersection for the next "
                "3 minutes from its stop-line loop and lane-area detector readings, so that "
                "city traffic operators can retime signals and warn drivers early; advisory "
                "only, a human operator decides every intervention. Trained on simulated "
                "(SUMO) data only."
            ),
            "contact": "ai-assurance@metro-analytics.example",
        },
        "artifact": {"path": "model.onnx", "format": "onnx", "sha256": sha256},
    }
    lines = [
        "# CityXchange submission manifest of the metro-congestion example.",
        "# Generated by make_submission.py: edit that script, not this file.",
        "schema_version = 2",
    ]
    for section, fields in head.items():
        lines += ["", f"[{section}]", *(f"{k} = {_toml(v)}" for k, v in fields.items())]
    lines += ["", "# The model's input columns, in the order of its input tensor."]
    for f in FEATURES:
        lines += ["", "[[inputs.features]]"]
        lines += [f"{k} = {_toml(getattr(f, k))}" for k in ("name", "type", "unit", "min", "max")]
        lines.append(f"description = {_toml(f.description)}")
    tail = {
        "outputs": {
            "task": "classification",
            "labels": list(LABELS),
            "label_column": LABEL_COLUMN,
        },
        "data": {
            "training": "data/train.csv",
            "holdout": "data/holdout.csv",
            "datasheet": "datasheet.md",
        },
        # Fairness is judged across districts (the quadrant of the city).
        "fairness": {"sensitive": ["district"]},
    }
    for section, fields in tail.items():
        lines += ["", f"[{section}]", *(f"{k} = {_toml(v)}" for k, v in fields.items())]
    return "\n".join(lines) + "\n"


def _balance_table(train: pd.DataFrame, holdout: pd.DataFrame, by: str | None = None) -> str:
    """Markdown table of label counts and shares per split (and per ``by`` group)."""
    head = ["split", *([by] if by else []), "rows", *LABELS]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, frame in (("train", train), ("holdout", holdout)):
        groups = sorted(frame.groupby(by), key=lambda g: g[0]) if by else [("", frame)]
        for key, part in groups:
            counts = part[LABEL_COLUMN].value_counts()
            shares = [
                f"{counts.get(lab, 0)} ({counts.get(lab, 0) / len(part):.1%})" for lab in LABELS
            ]
            cells = [name, *([f"{key:g}" if by == "demand" else str(key)] if by else [])]
            rows.append("| " + " | ".join([*cells, str(len(part)), *shares]) + " |")
    return "\n".join(rows)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def datasheet_text(
    out: Path, meta: dict[str, Any], train: pd.DataFrame, holdout: pd.DataFrame, scores: Scores
) -> str:
    """The datasheet: the template filled with numbers measured on the written files."""
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn

    template = string.Template((HERE / "datasheet.template.md").read_text(encoding="utf-8"))
    both = pd.concat([train, holdout])
    values = {
        "scenario": SCENARIO,
        "controller": CONTROLLER,
        "seconds": SECONDS,
        "interval_s": INTERVAL_S,
        "intervals": SECONDS // INTERVAL_S,
        "demands": ", ".join(f"{d:g}" for d in DEMANDS),
        "train_seeds": ", ".join(map(str, TRAIN_SEEDS)),
        "holdout_seeds": ", ".join(map(str, HOLDOUT_SEEDS)),
        "runs": len(DEMANDS) * (len(TRAIN_SEEDS) + len(HOLDOUT_SEEDS)),
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "places": both.groupby(["intersection", "approach"]).ngroups,
        "intersections": both["intersection"].nunique(),
        "free_s": f"{FREE_AT_OR_BELOW_S:g}",
        "heavy_s": f"{HEAVY_ABOVE_S:g}",
        "balance": _balance_table(train, holdout),
        "balance_by_demand": _balance_table(train, holdout, by="demand"),
        "balance_by_district": _balance_table(train, holdout, by="district"),
        "median_delay": ", ".join(
            f"{d:g}: {v:.1f} s" for d, v in both.groupby("demand")["delay_s"].median().items()
        ),
        "train_sha256": _sha(out / "data" / "train.csv"),
        "holdout_sha256": _sha(out / "data" / "holdout.csv"),
        "accuracy": f"{scores.accuracy:.3f}",
        "macro_f1": f"{scores.macro_f1:.3f}",
        "recall": ", ".join(f"{k} {v:.3f}" for k, v in scores.recall.items()),
        "persistence_accuracy": f"{scores.persistence_accuracy:.3f}",
        "persistence_macro_f1": f"{scores.persistence_macro_f1:.3f}",
        "sumo_version": meta["sumo_version"],
        "versions": (
            f"Python {platform.python_version()}, numpy {np.__version__}, "
            f"pandas {pd.__version__}, scikit-learn {sklearn.__version__}, "
            f"skl2onnx {skl2onnx.__version__}, onnx {onnx.__version__}, "
            f"onnxruntime {onnxruntime.__version__}"
        ),
    }
    return template.substitute(values)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build(out: Path, *, dataset: Path | None, reuse: bool, workers: int) -> dict[str, Any]:
    """Write every file of the submission into ``out``; return a summary."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="metro-congestion-") as tmp:
        path = dataset if dataset is not None else Path(tmp) / "dataset.parquet"
        meta = make_dataset(path, workers=workers, reuse=reuse)
        table = pd.read_parquet(path)
    simulated = time.perf_counter() - started
    train_rows, holdout_rows = split(table)
    write_csv(train_rows, out / "data" / "train.csv")
    write_csv(holdout_rows, out / "data" / "holdout.csv")
    model = train(train_rows, MODEL_SEED)
    onnx_bytes = export_onnx(model)
    (out / "model.onnx").write_bytes(onnx_bytes)
    scores = evaluate(model, onnx_bytes, holdout_rows)
    sha = hashlib.sha256(onnx_bytes).hexdigest()
    (out / "cityx.toml").write_text(manifest_text(sha), encoding="utf-8")
    datasheet = datasheet_text(out, meta, train_rows, holdout_rows, scores)
    (out / "datasheet.md").write_text(datasheet, encoding="utf-8")
    files = ("data/train.csv", "data/holdout.csv", "model.onnx", "cityx.toml", "datasheet.md")
    return {
        "out": str(out),
        "seeds": {"train": list(TRAIN_SEEDS), "holdout": list(HOLDOUT_SEEDS)},
        "rows": {"train": len(train_rows), "holdout": len(holdout_rows)},
        "balance": {
            name: {lab: int((frame[LABEL_COLUMN] == lab).sum()) for lab in LABELS}
            for name, frame in (("train", train_rows), ("holdout", holdout_rows))
        },
        "holdout": {
            "accuracy": round(scores.accuracy, 4),
            "macro_f1": round(scores.macro_f1, 4),
            "recall": {k: round(v, 4) for k, v in scores.recall.items()},
            "persistence_accuracy": round(scores.persistence_accuracy, 4),
            "persistence_macro_f1": round(scores.persistence_macro_f1, 4),
            "onnx_agreement": scores.onnx_agreement,
        },
        "bytes": {f: (out / f).stat().st_size for f in files},
        "artifact_sha256": sha,
        "simulation_seconds": round(simulated, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Regenerate the metro-congestion example submission: SUMO runs of\n"
        f"{SCENARIO} (seeds {TRAIN_SEEDS + HOLDOUT_SEEDS}, demand {DEMANDS}) turned into a\n"
        "detector dataset, a gradient-boosted congestion classifier exported to ONNX,\n"
        "its cityx.toml and its datasheet. Prints a JSON summary.",
        epilog="example:\n  python examples/submissions/metro-congestion/make_submission.py\n"
        "  python make_submission.py --out /tmp/metro --dataset /tmp/metro.parquet --reuse",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE,
        help="folder to write the submission into (default: this script's folder)",
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="keep the simulated Parquet dataset in this file (default: a temporary file)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --dataset: read that file instead of simulating again, "
        "if it was made with this script's inputs",
    )
    parser.add_argument(
        "--workers", type=int, choices=(1, 2), default=2, help="simulations at once (default 2)"
    )
    args = parser.parse_args(argv)
    if args.reuse and args.dataset is None:
        parser.error("--reuse needs --dataset")
    summary = build(args.out, dataset=args.dataset, reuse=args.reuse, workers=args.workers)
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
