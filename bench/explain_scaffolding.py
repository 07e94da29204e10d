"""Detection of scaffolded models (Slack et al. 2020) by the explain.scaffolding probe.

Planted models: ``explanation.scaffold`` fitted on a data set's training rows
with one of its OOD detectors; honest models: five families fitted on the
same rows. Every model is written to disk and probed through the isolated
worker, with the data set's holdout as the real rows, as the trial check
does. Prints one JSON object.

The split was fixed before the cut-offs were chosen:

- *development*: seed 1, scaffolds with the ``forest`` detector (Slack et
  al.'s), and every honest family (the probe's cut-offs come from these);
- *held out*: seeds 11, 12 and 13, scaffolds with the ``isolation``, ``knn``
  and ``mlp`` detectors (never seen while tuning), and every honest family.

Data sets: metro-congestion (its training and holdout files, proxy of
``district``), acme-signals (phase-candidate rows, proxy ``served_lanes``),
the synthetic traffic table of cityx.testing (proxy of ``district``) and
scikit-learn's breast-cancer table (proxy ``mean radius``).

A scaffold is *effective* when it hides (at least half of fresh explainer
queries go to the innocent model) and bites (its bias changes at least 5 %
of the holdout's answers); detection is reported over all scaffolds and
over effective ones.

    .venv/bin/python bench/explain_scaffolding.py [--split dev|heldout|both] [--data NAME ...]
"""

from __future__ import annotations

import argparse
import json
import pickle
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cityx.assess.explain.scaffolding import probe_scaffolding
from cityx.attacks.scaffold import ScaffoldAttack
from cityx.core import Feature, InputSchema, OutputSpec, Task
from cityx.targets import IsolatedPredictor, LoadRequest
from cityx.testing.fixtures import traffic_table

EXAMPLES = Path(__file__).parents[1] / "examples" / "submissions"
SPLITS = {
    "dev": {"seeds": (1,), "detectors": (0,)},
    "heldout": {"seeds": (11, 12, 13), "detectors": (1, 2, 3)},
}
DETECTOR_NAMES = ("forest", "isolation", "knn", "mlp")
HONEST = ("forest", "boosting", "logistic", "knn", "mlp")

DataSet = tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...], str, dict[str, str]]


def metro() -> DataSet:
    folder = EXAMPLES / "metro-congestion" / "data"
    train, holdout = pd.read_csv(folder / "train.csv"), pd.read_csv(folder / "holdout.csv")
    features = (
        "lanes", "flow_veh_h", "occupancy_pct", "area_occupancy_pct", "mean_speed_kmh",
        "free_flow_kmh", "speed_ratio", "halting_veh", "max_jam_m", "delay_s",
    )  # fmt: skip
    # A random sample: the file is sorted by intersection, and its first rows hold few jams.
    holdout = holdout.sample(1000, random_state=0)
    return train, holdout, features, "congestion_next", {"sensitive": "district"}


def acme() -> DataSet:
    folder = EXAMPLES / "acme-signals" / "data"
    train = pd.read_csv(folder / "train.csv").sample(3000, random_state=0)
    holdout = pd.read_csv(folder / "holdout.csv").sample(1000, random_state=0)
    features = (
        "queue_in", "queue_out", "pressure", "occupancy_in", "arrivals_in", "served_lanes",
        "queue_total", "is_current", "phase_age_s", "hour",
    )  # fmt: skip
    return train, holdout, features, "chosen", {"proxy": "served_lanes"}


def traffic() -> DataSet:
    train, holdout = traffic_table(seed=0, sensors=60), traffic_table(seed=1, sensors=40)
    return train, holdout, ("flow", "occupancy", "speed"), "congestion", {"sensitive": "district"}


def cancer() -> DataSet:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    table = data.frame.rename(columns={"target": "diagnosis"})
    table["diagnosis"] = np.where(table["diagnosis"] == 1, "benign", "malignant")
    order = np.random.default_rng(0).permutation(len(table))
    train, holdout = table.iloc[order[:300]], table.iloc[order[300:]]
    features = tuple(str(c) for c in data.feature_names)
    return train, holdout, features, "diagnosis", {"proxy": "mean radius"}


DATA: dict[str, Callable[[], DataSet]] = {
    "metro-congestion": metro,
    "acme-signals": acme,
    "traffic": traffic,
    "breast-cancer": cancer,
}


def honest_model(kind: str, seed: int) -> Any:
    return {
        "forest": lambda: RandomForestClassifier(100, random_state=seed, n_jobs=1),
        "boosting": lambda: GradientBoostingClassifier(random_state=seed),
        "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "knn": lambda: make_pipeline(StandardScaler(), KNeighborsClassifier(7)),
        "mlp": lambda: make_pipeline(
            StandardScaler(), MLPClassifier((32,), max_iter=300, random_state=seed)
        ),
    }[kind]()


def probe(
    artifact: Path, fmt: str, features: tuple[str, ...], labels: tuple[str, ...],
    holdout: np.ndarray, seed: int, entrypoint: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    request = LoadRequest(
        artifact=artifact,
        format=fmt,
        features=features,
        task=Task.CLASSIFICATION,
        labels=labels,
        entrypoint=entrypoint,
        trust_pickle=True,  # our own files, written by this bench
    )
    model = IsolatedPredictor(
        request=request,
        schema=InputSchema(tuple(Feature(n) for n in features)),
        outputs=OutputSpec(Task.CLASSIFICATION, labels),
        cwd=artifact.parent,
    )
    start = time.perf_counter()
    with model:
        found = probe_scaffolding(
            lambda x: np.asarray(model.predict(x).values).astype(str), holdout, features,
            seed=seed + 1000,
        ).to_json()  # fmt: skip
    found["wall_s"] = round(time.perf_counter() - start, 2)
    return found


def run(split: str, work: Path, names: tuple[str, ...] = tuple(DATA)) -> list[dict[str, Any]]:
    rows = []
    plan = SPLITS[split]
    for name in names:
        load = DATA[name]
        train, holdout, features, label, target = load()
        labels = tuple(sorted(set(train[label].astype(str))))
        x_train = train[list(features)].to_numpy(np.float64)
        y_train = train[label].astype(str).to_numpy()
        x_hold = holdout[list(features)].to_numpy(np.float64)
        for seed in plan["seeds"]:
            for det in plan["detectors"]:
                out = work / f"{split}-{name}-{seed}-scaffold-{det}"
                built = ScaffoldAttack().build(
                    train, features=features, label=label, out=out, seed=seed,
                    params={"detector": det}, holdout=holdout, **target,
                )  # fmt: skip
                m = built.measured
                found = probe(
                    built.artifact, "entrypoint", features, labels, x_hold, seed,
                    entrypoint=built.entrypoint,
                )  # fmt: skip
                rows.append(
                    {
                        "split": split, "data": name, "seed": seed, "planted": True,
                        "model": f"scaffold-{DETECTOR_NAMES[det]}", "proxy": built.proxy,
                        "measured": dict(m),
                        "effective": m["perturbed_caught"] >= 0.5
                        and m.get("holdout_changed", 0.0) >= 0.05,
                        "probe": found,
                    }
                )  # fmt: skip
                print(json.dumps(rows[-1]["probe"]["verdict"]), name, rows[-1]["model"], flush=True)
            for kind in HONEST:
                path = work / f"{split}-{name}-{seed}-{kind}.pkl"
                path.write_bytes(pickle.dumps(honest_model(kind, seed).fit(x_train, y_train)))
                found = probe(path, "pickle", features, labels, x_hold, seed)
                rows.append(
                    {
                        "split": split, "data": name, "seed": seed, "planted": False,
                        "model": kind, "probe": found,
                    }
                )  # fmt: skip
                print(json.dumps(found["verdict"]), name, kind, flush=True)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def rate(items: list[dict[str, Any]], verdict: str) -> float | None:
        return (
            round(sum(r["probe"]["verdict"] == verdict for r in items) / len(items), 4)
            if items
            else None
        )

    planted = [r for r in rows if r["planted"]]
    effective = [r for r in planted if r["effective"]]
    honest = [r for r in rows if not r["planted"]]
    return {
        "scaffolds": len(planted),
        "effective_scaffolds": len(effective),
        "detected": rate(planted, "scaffolded"),
        "detected_effective": rate(effective, "scaffolded"),
        "undetermined_scaffolds": rate(planted, "undetermined"),
        "honest": len(honest),
        "false_alarms": rate(honest, "scaffolded"),
        "undetermined_honest": rate(honest, "undetermined"),
        "by_data": {
            name: {
                "detected": rate([r for r in planted if r["data"] == name], "scaffolded"),
                "false_alarms": rate([r for r in honest if r["data"] == name], "scaffolded"),
            }
            for name in sorted({r["data"] for r in rows})
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "heldout", "both"), default="both")
    parser.add_argument("--data", choices=tuple(DATA), action="append", help="default: all")
    args = parser.parse_args()
    splits = ("dev", "heldout") if args.split == "both" else (args.split,)
    start = time.perf_counter()
    out: dict[str, Any] = {"goal": "held out: >= 90 % detected at <= 5 % false alarms"}
    with tempfile.TemporaryDirectory() as tmp:
        for split in splits:
            rows = run(split, Path(tmp), tuple(args.data or DATA))
            out[split] = {"summary": summary(rows), "rows": rows}
    out["wall_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
