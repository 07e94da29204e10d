"""Poisoning detection on the evaluation protocol: our audit (and peers) on many drawn tables.

The cases are the protocol's (``cityx.testing.poisoning``, see
docs/poisoning.md, "Evaluation protocol"): three families of tables (SUMO
series, detector windows, plain feature tables) drawn from the seeds of a
split, each poisoned by six attacks drawn at random (backdoor, clean-label,
random and targeted label flips, compromised sensors relabelled or
shifted) at a low (3-6 %) and a high (8-15 %) rate, plus the clean table;
every table is audited without and with a trusted set (clean rows of the
same family and seed, not in the table), in worker processes. The report
gives F1 median and 10th percentile per cell, family and attack, verdict
counts, source attribution, clean-table figures and every goal met or
missed; the audit's wall time on 10,000 rows x ~100 features is measured.

The peers (IBM ART's defences, cleanlab) run in their own virtual
environment (created on demand under /tmp; an install or run that fails is
reported as unavailable with its reason), on the cases of the first
``--peer-seeds`` seeds only (they take minutes per table), classification
tables only (their detectors need classes).

Held-out seeds are for measuring, never for tuning (see protocol.py); tune
on ``--split dev``, with ``--exclude-family`` / ``--exclude-attack`` when the
figures of that family or attack must stay unseen. At the default settings
(all 20 seeds of the split, 700 cases) a held-out run without peers took
16 minutes (980 s) with 2 workers on a 2-core machine (2026-12-07).

    .venv/bin/python bench/poisoning.py --split heldout --no-peers --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

from cityx.core import Task, stream
from cityx.testing.poisoning import ATTACKS, FAMILIES, CaseResult, TableMeta, cases, run_cases
from cityx.testing.poisoning.report import GOALS, goal_counts, summarise
from cityx.testing.poisoning.runner import timed_audit
from cityx.testing.poisoning.windows import windows_table

DEFAULT_SEEDS = 20  # the whole split: 700 cases
PEER_PACKAGES = [
    "adversarial-robustness-toolbox==1.20.1",
    "cleanlab",
    "scikit-learn",
    "packaging",
    "torch==2.13.0",  # a CPU wheel on these machines; the activation defences need a network
]
PEERS = ["art.ProvenanceDefense", "art.ActivationDefence", "art.SpectralSignatureDefense"]

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


@dataclass(frozen=True, slots=True)
class PeerRunner:
    """The peers on one table, in their venv; a picklable callable for the worker processes."""

    python: Path
    timeout: float

    def __call__(
        self,
        table: pd.DataFrame,
        trusted: pd.DataFrame,
        label: str,
        source_cols: tuple[str, ...],
        meta: TableMeta,
    ) -> Mapping[str, Mapping[str, Any]]:
        if meta.task is not Task.CLASSIFICATION:
            return {p: {"error": "a regression label: the peers need classes"} for p in PEERS}
        features = list(meta.features)
        classes = sorted(set(table[label]) | set(trusted[label]), key=str)
        code = {c: i for i, c in enumerate(classes)}
        which = PEERS if source_cols else PEERS[1:]  # provenance needs a source column
        sensors = (
            table[list(source_cols)].astype(str).agg("/".join, axis=1).astype("category").cat.codes
            if source_cols
            else pd.Series(np.zeros(len(table), dtype=int))
        )
        with tempfile.TemporaryDirectory() as tmp:
            data, out, script = Path(tmp) / "d.npz", Path(tmp) / "o.json", Path(tmp) / "peer.py"
            np.savez(
                data,
                x=table[features].to_numpy(float),
                y=table[label].map(code).to_numpy(int),
                p=sensors.to_numpy(int),
                x_val=trusted[features].to_numpy(float),
                y_val=trusted[label].map(code).to_numpy(int),
            )
            script.write_text(PEER_SCRIPT)
            env = {**os.environ, "PYTHONWARNINGS": "ignore"}
            try:
                done = subprocess.run(
                    [str(self.python), str(script), str(data), str(out), *which],
                    capture_output=True,
                    timeout=self.timeout,
                    env=env,
                )
            except subprocess.TimeoutExpired:
                return {
                    name: {"error": f"timeout after {self.timeout:g} s"}
                    for name in ["cleanlab", *which]
                }
            if done.returncode or not out.exists():
                return {"peers": {"error": done.stderr.decode()[-300:]}}
            result: dict[str, Any] = json.loads(out.read_text())
            return result


def wall_times(seed: int = 0) -> dict[str, float]:
    """The audit's wall time on 10,000 rows: a windows table (96 readings) and a plain one."""
    rng = stream(seed, "bench", "poisoning", "wall")
    table, label, sources, _ = windows_table(rng, 50, 4, 8, GOALS.wall_rows // 50)
    x, y = make_classification(
        n_samples=GOALS.wall_rows, n_features=GOALS.wall_features, n_informative=10, random_state=0
    )
    plain = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])]).assign(target=y)
    return {
        f"windows {len(table)} x {table.shape[1] - 2}": round(
            timed_audit(table, label, sources), 2
        ),
        f"plain {len(plain)} x {plain.shape[1] - 1}": round(timed_audit(plain, "target", ()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", choices=("dev", "heldout"), default="dev")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="first N seeds")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--attacks", nargs="+", default=list(ATTACKS), choices=ATTACKS)
    parser.add_argument("--exclude-family", nargs="*", default=[], choices=FAMILIES)
    parser.add_argument("--exclude-attack", nargs="*", default=[], choices=ATTACKS)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--peer-seeds", type=int, default=1, help="peers on the first N seeds")
    parser.add_argument("--peers-venv", type=Path, default=Path("/tmp/cityx-poisoning-peers"))
    parser.add_argument("--peer-timeout", type=float, default=150.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    python, why = (None, "skipped (--no-peers)") if args.no_peers else peers_python(args.peers_venv)
    todo = cases(
        args.split,
        seeds=args.seeds,
        families=args.families,
        attacks=args.attacks,
        exclude_families=args.exclude_family,
        exclude_attacks=args.exclude_attack,
        peer_seeds=0 if python is None else args.peer_seeds,
    )

    def progress(result: CaseResult, done: int, total: int) -> None:
        ours = result.ours.to_json() if result.ours else {}
        note = result.error or f"{ours.get('verdict')} f1={ours.get('f1')}"
        print(f"[{done}/{total}] {result.case.key}: {note}", file=sys.stderr, flush=True)

    peers = None if python is None else PeerRunner(python, args.peer_timeout)
    results = run_cases(todo, workers=args.workers, peers=peers, progress=progress)
    walls = wall_times()
    report = summarise(results, wall_s=walls)
    body = {
        "benchmark": "poisoning-protocol",
        "split": args.split,
        "seeds": sorted({c.seed for c in todo}),
        "families": [f for f in args.families if f not in args.exclude_family],
        "attacks": [a for a in args.attacks if a not in args.exclude_attack],
        "excluded": {"families": args.exclude_family, "attacks": args.exclude_attack},
        "peers": {
            "status": why or "run",
            "subset": f"cases of the first {args.peer_seeds} seed(s), classification tables",
        },
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "run_wall_s": round(time.perf_counter() - start, 1),
        "goal_counts": goal_counts(report["goals"]),
        "report": report,
        "cases": [r.to_json() for r in results],
    }
    text = json.dumps(body)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
