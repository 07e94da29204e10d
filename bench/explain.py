"""Explanation speed and error: cityx's exact values on the artifact against shap's explainers.

Three models, each explained for ``--rows`` holdout rows against the same
background of 100 rows, side by side in one run:

- metro-congestion (the example submission's gradient-boosted ONNX artifact);
- a 60-tree random forest on 72 synthetic traffic features, fitted here with
  scikit-learn and exported to ONNX;
- a logistic regression on the same 72 features (skops, in the worker).

Peers: shap's ``KernelExplainer`` on the artifact's probabilities (through the
isolated model, as any black box), with ``nsamples`` stated and its error
against our exact values reported; for the forest, shap's ``TreeExplainer``
(interventional, same background) on the scikit-learn source model, whose
float64 thresholds are not the artifact's float32 ones. AI Verify's toolbox
runs KernelExplainer on hard labels, which is slower still; it needs its own
environment and is not run here. Prints one JSON object.

    .venv/bin/python bench/explain.py [--rows 20] [--nsamples 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cityx.assess.explain.model import transform
from cityx.assess.explain.predictor import describe_model
from cityx.assess.explain.shapley import brute_force_shap, linear_shap, tree_shap
from cityx.core import Feature, InputSchema, OutputSpec, Task
from cityx.submissions import open_submission
from cityx.targets import IsolatedPredictor, LoadRequest

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "submissions" / "metro-congestion"


def _isolated(
    path: Path, fmt: str, d: int, labels: tuple[str, ...], trusted: tuple[str, ...] = ()
) -> IsolatedPredictor:
    names = tuple(f"f{i}" for i in range(d))
    request = LoadRequest(
        artifact=path, format=fmt, features=names, task=Task.CLASSIFICATION, labels=labels,
        trusted=trusted,
    )  # fmt: skip
    return IsolatedPredictor(
        request=request,
        schema=InputSchema(tuple(Feature(n) for n in names)),
        outputs=OutputSpec(Task.CLASSIFICATION, labels),
        cwd=path.parent,
    )


def _traffic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """72 traffic-like features (queues, occupancies, flows of 24 lanes) and a 3-class label."""
    rng = np.random.default_rng(seed)
    queue = rng.gamma(2.0, 3.0, (n, 24))
    occupancy = np.clip(queue * 4 + rng.normal(0, 5, (n, 24)), 0, 100)
    flow = np.clip(900 - queue * 20 + rng.normal(0, 100, (n, 24)), 0, None)
    x = np.hstack([queue, occupancy, flow])
    load = queue[:, :8].sum(axis=1) + 0.05 * occupancy[:, 8:16].sum(axis=1)
    y = np.digitize(load + rng.normal(0, 4, n), np.quantile(load, [0.6, 0.85]))
    return x, y


def _kernel(
    f: Any, x: np.ndarray, background: np.ndarray, nsamples: int
) -> tuple[np.ndarray, float]:
    import shap

    explainer = shap.KernelExplainer(f, background)
    start = time.perf_counter()
    values = explainer.shap_values(x, nsamples=nsamples, silent=True)
    wall = time.perf_counter() - start
    arr = np.asarray(values)
    if arr.ndim == 3 and arr.shape[0] != x.shape[0]:  # older layout: classes first
        arr = np.moveaxis(arr, 0, -1)
    return arr, wall


def _ours(predictor: IsolatedPredictor, x: np.ndarray, background: np.ndarray) -> dict[str, Any]:
    start = time.perf_counter()
    model, why = describe_model(predictor, x.shape[1])
    describe_s = time.perf_counter() - start
    assert model is not None, why
    start = time.perf_counter()
    method = linear_shap if model.kind == "linear" else tree_shap
    phi, base = method(model, x, background)
    wall = time.perf_counter() - start
    own = predictor.predict(x)
    margin = model.margin(x)
    ours_p = transform(model, margin)
    return {
        "model": model,
        "phi": phi,
        "wall_s": wall,
        "describe_s": describe_s,
        "additivity_max_error": float(np.abs(base + phi.sum(axis=1) - margin).max()),
        "artifact_max_error": float(np.abs(ours_p - own.scores).max()),
    }


def _kernel_error(
    predictor: Any,
    model: Any,
    x: np.ndarray,
    background: np.ndarray,
    kernel: np.ndarray,
    nsamples: int,
) -> dict[str, Any]:
    """The kernel's error: against brute force where 2^d is small, else across two seeds."""
    if x.shape[1] <= 10:
        exact, _ = brute_force_shap(lambda z: transform(model, model.margin(z)), x[:2], background)
        return {"max_error_vs_brute_force": float(np.abs(kernel[:2] - exact).max())}
    np.random.seed(12345)  # shap's KernelExplainer samples from numpy's global generator
    again, _ = _kernel(
        lambda z: predictor.predict(np.asarray(z, dtype=np.float64)).scores,
        x[:2],
        background,
        nsamples,
    )
    return {"max_run_to_run_difference": float(np.abs(kernel[:2] - again).max())}


def _compare(
    name: str, predictor: IsolatedPredictor, x: np.ndarray, background: np.ndarray, nsamples: int
) -> dict[str, Any]:
    ours = _ours(predictor, x, background)
    model = ours["model"]
    kernel, kernel_s = _kernel(
        lambda z: predictor.predict(np.asarray(z, dtype=np.float64)).scores, x, background, nsamples
    )
    # The kernel estimates probability attributions: its error against exact values of the
    # same output (the artifact's function, through our exact model) where 2^d is small.
    kernel_error = _kernel_error(predictor, model, x, background, kernel, nsamples)
    rows = x.shape[0]
    return {
        "model": name,
        "features": x.shape[1],
        "rows": rows,
        "cityx": {
            "method": f"{model.kind}-exact (margin)",
            "per_row_ms": round(1000 * ours["wall_s"] / rows, 3),
            "describe_s": round(ours["describe_s"], 3),
            "additivity_max_error": ours["additivity_max_error"],
            "artifact_max_error": ours["artifact_max_error"],
        },
        "kernel_explainer": {
            "nsamples": nsamples,
            "per_row_ms": round(1000 * kernel_s / rows, 1),
            **kernel_error,
        },
        "speedup_vs_kernel": round(kernel_s / max(ours["wall_s"], 1e-9), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--nsamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    out: dict[str, Any] = {"bench": "explain", "load_avg": os.getloadavg(), "models": []}

    # metro-congestion, the submitted artifact.
    submission = open_submission(EXAMPLE)
    df = pd.read_csv(EXAMPLE / "data" / "holdout.csv")
    x = df[list(submission.manifest.input_schema().names)].to_numpy(dtype=np.float64)
    pick = rng.choice(len(x), args.rows + 100, replace=False)
    with submission.predictor() as predictor:
        out["models"].append(
            _compare(
                "metro-congestion",
                predictor,
                x[pick[: args.rows]],
                x[pick[args.rows :]],
                args.nsamples,
            )
        )

    import skops.io
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    xt, yt = _traffic(3000, args.seed)
    rows, background = xt[: args.rows], xt[1000:1100]
    labels = ("0", "1", "2")
    with tempfile.TemporaryDirectory(prefix="cityx-bench-explain-") as tmp:
        forest = RandomForestClassifier(n_estimators=60, max_depth=8, random_state=0).fit(xt, yt)
        onx = to_onnx(forest, xt[:1].astype(np.float32), options={id(forest): {"zipmap": False}})
        path = Path(tmp) / "forest.onnx"
        path.write_bytes(onx.SerializeToString())
        with _isolated(path, "onnx", 72, labels) as predictor:
            entry = _compare("random-forest-72", predictor, rows, background, args.nsamples)
            import shap

            start = time.perf_counter()
            tree = shap.TreeExplainer(forest, background, feature_perturbation="interventional")
            source = np.asarray(tree.shap_values(rows, check_additivity=False))
            tree_s = time.perf_counter() - start
            if source.ndim == 3 and source.shape[0] != rows.shape[0]:
                source = np.moveaxis(source, 0, -1)
            model, _ = describe_model(predictor, 72)
            assert model is not None
            ours, _ = tree_shap(model, rows, background)  # margin = mean leaf fraction here
            entry["tree_explainer_on_source"] = {
                "per_row_ms": round(1000 * tree_s / rows.shape[0], 2),
                "max_difference_from_artifact_values": float(np.abs(source - ours).max()),
                "note": "shap reads the scikit-learn model (float64 thresholds), not the ONNX "
                "artifact; the difference is the artifact's float32 thresholds",
            }
        out["models"].append(entry)
        logistic = LogisticRegression(max_iter=2000).fit(xt, yt)
        lpath = Path(tmp) / "logistic.skops"
        skops.io.dump(logistic, lpath)
        trusted = tuple(skops.io.get_untrusted_types(file=lpath))
        with _isolated(lpath, "skops", 72, labels, trusted) as predictor:
            out["models"].append(
                _compare("logistic-72", predictor, rows, background, args.nsamples)
            )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
