"""Poisoning detection, side by side: ours vs IBM ART's defences and cleanlab.

Same poisoned datasets for everyone: the clean SUMO table of the tests
(tests/support/data/metro_base.csv, 6,048 rows, 36 sensors) poisoned by
our seeded attack plugins (backdoor, label flips, clean-label, compromised
sensors; 5 % and 10 %), plus the adaptive (smooth, manifold) backdoor
reported separately. F1 is over the poisoned rows. The peers run in their
own virtual environment (created on demand under /tmp; an install or run
that fails is reported as unavailable with its reason); ART's activation
defences get a small PyTorch network trained on the same features. The wall
time of our audit on 10,000 rows is measured too. Prints one JSON object
with the goals (F1 >= 0.9 in every non-adaptive scenario, 0.2 above the
best peer, under 30 s for 10,000 rows).

    .venv/bin/python bench/poisoning.py [--peers-venv /tmp/cityx-poisoning-peers] [--no-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cityx.attacks.poisoning import Backdoor, CleanLabel, CompromisedSensors, LabelFlip
from cityx.data.training import feature_columns
from cityx.defenses.poisoning import audit

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "support" / "data" / "metro_base.csv"
LABEL, SOURCES = "congestion_next", ["intersection", "approach"]
SCENARIOS: dict[str, tuple[type, dict[str, float]]] = {
    "backdoor": (Backdoor, {}),
    "label-flip": (LabelFlip, {}),
    "clean-label": (CleanLabel, {"window": 1}),
    "compromised-sensors": (CompromisedSensors, {}),
    "adaptive-backdoor (smooth manifold trigger)": (Backdoor, {"shape": 4, "amplitude": 2.0}),
}
OURS = ("ours", "ours+trusted")
GOAL_F1, GOAL_MARGIN, GOAL_WALL_S = 0.9, 0.2, 30.0
PEER_PACKAGES = [
    "adversarial-robustness-toolbox==1.20.1",
    "cleanlab",
    "scikit-learn",
    "packaging",
    "torch==2.13.0",  # a CPU wheel on these machines; the activation defences need a network
]

# Runs inside the peers' venv: reads an npz, writes the flagged rows per peer.
PEER_SCRIPT = r"""
import json, sys, time, traceback
import numpy as np
d = np.load(sys.argv[1]); x, y, p = d["x"], d["y"], d["p"]
x_val, y_val = d["x_val"], d["y_val"]
out = {}
def run(name, fn):
    t = time.perf_counter()
    try:
        flagged = fn()
        out[name] = {"flagged": sorted(int(i) for i in flagged), "wall_s": time.perf_counter() - t}
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        out[name] = {"error": error, "wall_s": time.perf_counter() - t}
def cleanlab_issues():
    from cleanlab.filter import find_label_issues
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict
    proba = cross_val_predict(HistGradientBoostingClassifier(max_iter=50, random_state=0), x, y,
                              cv=3, method="predict_proba")
    return np.flatnonzero(find_label_issues(y, proba))
def art_classifier():
    from art.estimators.classification.scikitlearn import ScikitlearnDecisionTreeClassifier
    from sklearn.tree import DecisionTreeClassifier
    return ScikitlearnDecisionTreeClassifier(DecisionTreeClassifier(max_depth=8, random_state=0))
def accuracy(y_true, y_pred):
    # ART's default "accuracy" string crashes on one-hot truth vs scores; compare argmaxes.
    return float((np.argmax(y_true, axis=1) == np.argmax(y_pred, axis=1)).mean())
def onehot(v, k):
    return np.eye(k)[v]
k = int(y.max()) + 1
def provenance():
    from art.defences.detector.poison import ProvenanceDefense
    clf = art_classifier(); clf.fit(x, onehot(y, k))
    defence = ProvenanceDefense(clf, x, onehot(y, k), onehot(p, int(p.max()) + 1),
                                x_val=x_val, y_val=onehot(y_val, k), perf_func=accuracy)
    _, clean = defence.detect_poison()
    return np.flatnonzero(np.asarray(clean) == 0)
def roni():
    from art.defences.detector.poison import RONIDefense
    clf = art_classifier(); clf.fit(x, onehot(y, k))
    defence = RONIDefense(clf, x, onehot(y, k), x_val, onehot(y_val, k), perf_func=accuracy)
    _, clean = defence.detect_poison()
    return np.flatnonzero(np.asarray(clean) == 0)
_NETWORK = []
def network():
    # The two activation-based defences need a neural network: a small MLP on the same
    # features, trained once per table (seeded).
    if not _NETWORK:
        import torch
        from art.estimators.classification import PyTorchClassifier
        torch.manual_seed(0)
        xf = x.astype(np.float32)
        model = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(),
            torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, k))
        clf = PyTorchClassifier(
            model=model, loss=torch.nn.CrossEntropyLoss(),
            optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), input_shape=(x.shape[1],),
            nb_classes=k, preprocessing=(xf.mean(0), xf.std(0) + 1e-6))
        clf.fit(xf, onehot(y, k).astype(np.float32), nb_epochs=20, batch_size=128, verbose=False)
        _NETWORK.append(clf)
    return _NETWORK[0]
def activation():
    from art.defences.detector.poison import ActivationDefence
    xf = x.astype(np.float32)
    _, clean = ActivationDefence(network(), xf, onehot(y, k)).detect_poison(
        nb_clusters=2, nb_dims=10, reduce="PCA")
    return np.flatnonzero(np.asarray(clean) == 0)
def spectral():
    from art.defences.detector.poison import SpectralSignatureDefense
    # Told the poison rate bound (0.1), which our audit is never told.
    defence = SpectralSignatureDefense(
        network(), x.astype(np.float32), onehot(y, k), expected_pp_poison=0.1)
    _, clean = defence.detect_poison()
    return np.flatnonzero(np.asarray(clean) == 0)
run("cleanlab", cleanlab_issues)
for name, fn in [("art.ProvenanceDefense", provenance), ("art.RONI", roni),
                 ("art.ActivationDefence", activation), ("art.SpectralSignatureDefense", spectral)]:
    if name in sys.argv[3:]:
        run(name, fn)
json.dump(out, open(sys.argv[2], "w"))
"""


def f1(flagged: np.ndarray, truth: np.ndarray) -> float:
    tp = float((flagged & truth).sum())
    if tp == 0:
        return 0.0
    precision, recall = tp / flagged.sum(), tp / truth.sum()
    return round(float(2 * precision * recall / (precision + recall)), 3)


def peers_python(venv: Path) -> tuple[Path | None, str]:
    python = venv / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True)
        if made.returncode:
            return None, f"venv: {made.stderr.decode()[-200:]}"
    check = subprocess.run([str(python), "-c", "import art, cleanlab, torch"], capture_output=True)
    if check.returncode:
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], capture_output=True
        )
        if pip.returncode:
            return None, f"pip install failed: {pip.stderr.decode()[-300:]}"
    return python, ""


def run_peers(
    python: Path, table: pd.DataFrame, trusted: pd.DataFrame, which: list[str], timeout: float
) -> dict[str, Any]:
    features = feature_columns(table, LABEL, SOURCES)
    classes = sorted(set(table[LABEL]) | set(trusted[LABEL]))
    code = {c: i for i, c in enumerate(classes)}
    sensors = (table["intersection"] + "/" + table["approach"]).astype("category").cat.codes
    with tempfile.TemporaryDirectory() as tmp:
        data, out, script = Path(tmp) / "d.npz", Path(tmp) / "o.json", Path(tmp) / "peer.py"
        np.savez(
            data,
            x=table[features].to_numpy(float),
            y=table[LABEL].map(code).to_numpy(int),
            p=sensors.to_numpy(int),
            x_val=trusted[features].to_numpy(float),
            y_val=trusted[LABEL].map(code).to_numpy(int),
        )
        script.write_text(PEER_SCRIPT)
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        try:
            done = subprocess.run(
                [str(python), str(script), str(data), str(out), *which],
                capture_output=True,
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return {
                name: {"error": f"timeout after {timeout:g} s"} for name in ["cleanlab", *which]
            }
        if done.returncode or not out.exists():
            return {"peers": {"error": done.stderr.decode()[-300:]}}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers-venv", type=Path, default=Path("/tmp/cityx-poisoning-peers"))
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--peer-timeout", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    base = pd.read_csv(DATA)
    rng = np.random.default_rng(args.seed)
    trusted_mask = rng.random(len(base)) < 0.1
    trusted = base[trusted_mask].reset_index(drop=True)
    rows = base[~trusted_mask].reset_index(drop=True)
    python, why = (None, "skipped (--no-peers)") if args.no_peers else peers_python(args.peers_venv)
    results: dict[str, Any] = {}
    for name, (cls, params) in SCENARIOS.items():
        for rate in (0.05, 0.10):
            poisoned = cls().poison(
                rows,
                label=LABEL,
                source_cols=SOURCES,
                params={**params, "rate": rate},
                seed=args.seed,
            )
            truth = poisoned.truth
            entry: dict[str, Any] = {"rows": int(truth.size), "poisoned": int(truth.sum())}
            start = time.perf_counter()
            ours = audit(poisoned.table, label=LABEL, source_cols=SOURCES, seed=args.seed)
            entry["ours"] = {
                "f1": f1(ours.flagged, truth),
                "verdict": ours.verdict.value,
                "wall_s": round(time.perf_counter() - start, 2),
            }
            with_trusted = audit(
                poisoned.table, label=LABEL, source_cols=SOURCES, trusted=trusted, seed=args.seed
            )
            entry["ours+trusted"] = {
                "f1": f1(with_trusted.flagged, truth),
                "verdict": with_trusted.verdict.value,
                "wall_s": round(with_trusted.wall_s, 2),
            }
            if python is None:
                entry["peers"] = {"unavailable": why}
            else:
                which = [
                    "art.ProvenanceDefense",
                    "art.ActivationDefence",
                    "art.SpectralSignatureDefense",
                ]
                peers = run_peers(python, poisoned.table, trusted, which, args.peer_timeout)
                if rate == 0.05 and name == "label-flip":
                    # RONI retrains once per row: minutes per table, so one scenario only,
                    # in a run of its own so that its timeout takes no other peer with it.
                    roni = run_peers(
                        python, poisoned.table, trusted, ["art.RONI"], args.peer_timeout
                    )
                    peers["art.RONI"] = roni.get("art.RONI", {"error": "no result"})
                for peer, got in peers.items():
                    if "flagged" in got:
                        mask = np.zeros(truth.size, dtype=bool)
                        mask[got["flagged"]] = True
                        entry[peer] = {"f1": f1(mask, truth), "wall_s": round(got["wall_s"], 2)}
                    else:
                        entry[peer] = {"unavailable": got["error"]}
            best_peer = max(
                (
                    v["f1"]
                    for k, v in entry.items()
                    if k not in OURS and isinstance(v, dict) and "f1" in v
                ),
                default=None,
            )
            if best_peer is not None:
                entry["best_peer_f1"] = best_peer
                entry["margin_over_best_peer"] = round(entry["ours"]["f1"] - best_peer, 3)
            results[f"{name} @ {rate:.0%}"] = entry
            print(f"{name} @ {rate:.0%}: {entry}", file=sys.stderr)
    # The goal: F1 >= 0.9 and 0.2 above the best peer in every scenario but the adaptive
    # one, which is reported on its own.
    judged = {k: v for k, v in results.items() if not k.startswith("adaptive")}
    goals = {
        "f1_min": GOAL_F1,
        "worst_f1": min(v["ours"]["f1"] for v in judged.values()),
        "worst_margin_over_best_peer": min(
            (v["margin_over_best_peer"] for v in judged.values() if "margin_over_best_peer" in v),
            default=None,
        ),
        "adaptive_worst_f1": min(
            v["ours"]["f1"] for k, v in results.items() if k.startswith("adaptive")
        ),
    }
    clean = audit(rows, label=LABEL, source_cols=SOURCES, seed=args.seed)
    big = pd.concat([base, base.assign(seed=base["seed"] + 10)], ignore_index=True).head(10_000)
    start = time.perf_counter()
    audit(big, label=LABEL, source_cols=SOURCES, seed=args.seed)
    wall = time.perf_counter() - start
    print(
        json.dumps(
            {
                "benchmark": "poisoning",
                "data": str(DATA.relative_to(ROOT)),
                "seed": args.seed,
                "scenarios": results,
                "clean_table_verdict": clean.verdict.value,
                "clean_table_flagged_share": round(float(clean.flagged.mean()), 4),
                "wall_s_10000_rows": round(wall, 2),
                "goals": {
                    **goals,
                    "f1_met": bool(goals["worst_f1"] >= GOAL_F1),
                    "margin_met": goals["worst_margin_over_best_peer"] is not None
                    and bool(goals["worst_margin_over_best_peer"] >= GOAL_MARGIN),
                    "wall_met": bool(wall <= GOAL_WALL_S),
                },
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
