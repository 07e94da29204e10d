"""Benchmark: constrained evasion (ours) against IBM ART's HopSkipJump, side by side.

Both attack the same ONNX traffic-congestion model (the metro-congestion
example) on the same correctly predicted holdout rows. Ours runs through
the isolated target under the example's threat model; ART runs in its own
virtual environment (created on demand under /tmp with
adversarial-robustness-toolbox, numpy, scikit-learn and onnxruntime from
PyPI) on a small onnxruntime wrapper, with the schema's bounds as clip
values and its default parameters. ART's points are then checked against
the threat model and projected onto it: success is reported before and
after projection. The goal: at least ART's post-projection success with at
most a tenth of its queries and zero violations, for the attacker the
example's threat-model.toml declares and for one who holds every sensor.

    .venv/bin/python bench/evasion.py [--rows 100] [--budget 200] [--seed 1]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SUBMISSION = ROOT / "examples" / "submissions" / "metro-congestion"
ART_VENV = Path(os.environ.get("CITYX_ART_VENV", "/tmp/cityx-art-venv"))
ART_PACKAGES = ("adversarial-robustness-toolbox", "numpy", "scikit-learn", "onnxruntime")

# Runs inside the ART environment: HopSkipJump on the ONNX model, counting queries.
ART_RUNNER = r"""
import json, sys, time, warnings
import numpy as np
import onnxruntime as ort
warnings.filterwarnings("ignore")
from art.attacks.evasion import HopSkipJump
from art.estimators.classification import BlackBoxClassifier

spec = json.load(open(sys.argv[1]))
data = np.load(sys.argv[2])
np.random.seed(spec["seed"])  # ART draws from numpy's global generator
session = ort.InferenceSession(spec["model"], providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
labels = spec["labels"]
index = {label: i for i, label in enumerate(labels)}
queries = [0]

def predict(x):
    queries[0] += x.shape[0]
    out = session.run(None, {name: np.asarray(x, dtype=np.float32)})[0]
    codes = np.array([index[str(v)] for v in out])
    return np.eye(len(labels), dtype=np.float32)[codes]

low, high = np.array(spec["low"], np.float32), np.array(spec["high"], np.float32)
classifier = BlackBoxClassifier(predict, input_shape=(low.size,), nb_classes=len(labels),
                                clip_values=(low, high))
attack = HopSkipJump(classifier, targeted=False, max_iter=spec["max_iter"],
                     max_eval=spec["max_eval"], init_eval=spec["init_eval"], verbose=False)
x = data["x"].astype(np.float32)
start = time.perf_counter()
adv = attack.generate(x=x)
wall = time.perf_counter() - start
np.save(sys.argv[3], adv.astype(np.float64))
import art
print(json.dumps({"queries": queries[0], "wall_s": wall, "art": art.__version__}))
"""


def art_python() -> Path:
    """The ART environment's interpreter, created on first use."""
    python = ART_VENV / "bin" / "python"
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(ART_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *ART_PACKAGES],
            check=True,
            stdout=sys.stderr,
        )
    return python


def run_art(x: np.ndarray, labels: list[str], low: Any, high: Any, args: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = {
            "model": str(SUBMISSION / "model.onnx"),
            "labels": labels,
            "low": low.tolist(),
            "high": high.tolist(),
            "max_iter": args.art_max_iter,
            "max_eval": args.art_max_eval,
            "init_eval": args.art_init_eval,
            "seed": args.seed,
        }
        (folder / "spec.json").write_text(json.dumps(spec))
        np.savez(folder / "x.npz", x=x)
        (folder / "runner.py").write_text(ART_RUNNER)
        start = time.perf_counter()
        done = subprocess.run(
            [
                str(art_python()),
                str(folder / "runner.py"),
                str(folder / "spec.json"),
                str(folder / "x.npz"),
                str(folder / "adv.npy"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ART run failed: {done.stderr.strip()[-2000:]}")
        out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        out["process_wall_s"] = time.perf_counter() - start
        out["adversarial"] = np.load(folder / "adv.npy")
    return out


def main() -> int:
    from cityx.attacks.evasion import (
        ConstrainedEvasion,
        load_threat_model,
        previous_rows,
        project,
        violations,
    )
    from cityx.core import check_seed
    from cityx.data.tables import inspect_table, read_table
    from cityx.submissions import read_manifest
    from cityx.targets import open_predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--budget", type=int, default=200, help="our queries per row")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--art-max-iter", type=int, default=50, help="ART default: 50")
    parser.add_argument("--art-max-eval", type=int, default=10_000, help="ART default: 10000")
    parser.add_argument("--art-init-eval", type=int, default=100, help="ART default: 100")
    args = parser.parse_args()
    seed = check_seed(args.seed)

    manifest, problems = read_manifest(SUBMISSION)
    if manifest is None:
        raise SystemExit(f"{problems[0]}")
    schema = manifest.input_schema()
    table = read_table(SUBMISSION / manifest.data.holdout)  # type: ignore[operator]
    found = inspect_table(
        table, schema, manifest.output_spec(), manifest.outputs.label_column, where="holdout"
    )
    assert found.features is not None and found.truth is not None and found.rejected is not None
    keep = ~found.rejected
    rows, truth = found.features[keep], found.truth[keep].astype(str)
    declared = load_threat_model(SUBMISSION / "threat-model.toml", schema)
    threats = {
        "declared attacker": declared,
        "every sensor": declared.restricted_to([s.name for s in declared.sensors]),
    }
    previous = previous_rows(declared, table, keep, where="holdout")
    low, high, _ = declared.arrays()
    result: dict[str, Any] = {"benchmark": "evasion", "rows": args.rows, "seed": seed}

    with open_predictor(manifest, SUBMISSION) as predictor:
        ours: dict[str, Any] = {}
        chosen = None
        for name, threat in threats.items():
            start = time.perf_counter()
            report = ConstrainedEvasion().run(
                predictor,
                rows,
                truth,
                threat,
                seed=seed,
                previous=previous,
                fragility=False,
                budget=args.budget,
                samples=args.rows,
            )
            chosen = report.rows
            ours[name] = {
                "success_rate": report.success_rate,
                "queries_per_row": report.queries_per_sample,
                "constraint_violations": report.constraint_violations,
                "median_change": report.median_change,
                "wall_s": round(time.perf_counter() - start, 3),
            }
        assert chosen is not None  # the same rows for every threat model (same seed)
        x, y = rows[chosen], truth[chosen]
        prev = None if previous is None else previous[chosen]
        art = run_art(x, list(manifest.outputs.labels), low, high, args)
        adv = art["adversarial"]
        raw_ok = predictor.predict(adv).values.astype(str) != y
        changed = np.abs(adv - x) > 1e-6
        peer: dict[str, Any] = {
            "version": art["art"],
            "success_before_projection": float(raw_ok.mean()),
            "queries_per_row": art["queries"] / x.shape[0],
            "wall_s": round(art["wall_s"], 3),
            "features_changed_per_row": float(changed.sum(axis=1).mean()),
            "max_abs_change_median": {
                f: round(float(v), 3)
                for f, v in zip(schema.names, np.median(np.abs(adv - x), axis=0), strict=True)
                if v > 0
            },
            "by_threat_model": {},
        }
        for name, threat in threats.items():
            broken = violations(threat, adv, x, prev)
            projected = project(threat, adv, x, prev)
            post_ok = predictor.predict(projected).values.astype(str) != y
            peer["by_threat_model"][name] = {
                "rows_violating_before_projection": int((broken > 0).sum()),
                "success_after_projection": float(post_ok.mean()),
            }

    goals = {}
    for name in threats:
        o, p = ours[name], peer["by_threat_model"][name]
        goals[name] = {
            "success_at_least_art_projected": o["success_rate"] >= p["success_after_projection"],
            "queries_at_most_tenth": o["queries_per_row"] <= peer["queries_per_row"] / 10,
            "zero_violations": o["constraint_violations"] == 0,
        }
    result.update(
        ours=ours,
        art_hopskipjump=peer,
        goals=goals,
        cpus=os.cpu_count(),
        python=platform.python_version(),
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
