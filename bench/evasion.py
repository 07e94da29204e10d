"""Benchmark: constrained evasion (ours) against IBM ART's masked attacks, at equal queries.

Both attack the same ONNX traffic-congestion model (the metro-congestion
example) on the same correctly predicted holdout rows, under the same
threat model: the attacker the example's ``threat-model.toml`` declares
(stop-line loops), and one who holds every sensor.

**The peer, given what it can express.** ART 1.20 runs in its own virtual
environment (created on demand under /tmp with adversarial-robustness-toolbox,
numpy, scikit-learn and onnxruntime from PyPI; the model runs there, never in
our process) on a small onnxruntime wrapper. Every ART attack gets

- the *mask* of attacker-controlled features (``generate(x, mask=...)``):
  only the threat model's controlled features whose box is not empty;
- a *per-row box*: each row's reachable range, the threat model's bounds
  intersected with its maximum changes and temporal steps
  (:func:`cityx.data.constraints.feasible_box`). ART's ``clip_values`` are
  global, so each row is attacked on its own with a wrapper that maps
  ``[0, 1]`` per feature onto that row's box: ART's clip values ``(0, 1)``
  are then exactly the row's box, and every feature is on one scale (which
  the L2 and L-inf attacks need; the raw units span 1 to 12,000).

In ART 1.20.1 only two black-box routes accept a mask (checked in its
source: ``grep mask art/attacks/evasion``): HopSkipJump (decision-based,
labels only; ART's default parameters) and projected gradient descent on a
``QueryEfficientGradientEstimationClassifier`` (score-based: the gradient
estimated from probabilities at ``num_basis`` antithetic Gaussian pairs;
L-inf, eps the whole box, one random start). SignOPT, GeoDA, SimBA,
BoundaryAttack, ZOO and SquareAttack take no mask, so they cannot hold the
uncontrolled sensors still and are left out.

**What ART cannot express** (integer and resolution grids, occupancy linked
to flow and speed, ratios): its final points are checked against the threat
model (``rows_violating``: any rule broken; ``rows_violating_beyond_grid``:
a rule other than the grids) and then projected onto it with our projection
(:func:`cityx.data.constraints.project`). A success counts only when the
projected point still flips the prediction and violates nothing.

**Equal queries.** Queries are model rows, counted by a wrapper around the
model on both sides, including the one that reads a row's own label.

- Ours: the search is rerun at each budget of ``--budgets`` (its own
  ``budget`` option; the same rows, the same seed).
- ART: one run at its full setting. The wrapper logs every queried point
  the model put off the true label, with its query number; afterwards each
  is projected onto the threat model and re-asked (these re-checks are not
  charged to ART). ART's success at budget B is the share of rows with such
  a point among its first B queries. This is an *upper bound* on what ART
  returns when stopped at B: it credits ART with any point it ever queried,
  not just the one it would return, and with knowing, for free, which of
  them survives projection. The success of the points ART actually returns
  is reported beside it (``returned``).

**Goals** (per threat model, per ART attack): at every budget of the curve,
our success is at least the masked ART attack's (upper-bound) success, with
0 violations; and at ART's own full query count, ours at that budget is at
least the success of ART's returned points after projection. A missed goal
is reported as missed, with its figures.

Ours at budget B may spend B + 1 queries a row (the label query on top);
ART's B includes its label query.

    .venv/bin/python bench/evasion.py [--rows 100] [--seed 1] [--budgets 50,100,...]

Prints one JSON object. Measured with ``--rows 100`` (seed 1, default
budgets; 2 shared cores, 7 min 21 s), success after projection, 0
violations for ours at every budget:

    declared attacker, B =       50   100   200   500  1000  2000  5000
    ours                        17%   19%   20%   21%   21%   21%   23%
    ART HopSkipJump (bound)     18%   20%   20%   20%   20%   20%   20%
    ART PGD + QEGE (bound)      18%   18%   19%   21%   21%   22%   22%
    every sensor
    ours                        99%  100%  100%  100%  100%  100%  100%
    ART HopSkipJump (bound)     76%   81%   91%   92%   92%   93%   94%
    ART PGD + QEGE (bound)      76%   93%   99%  100%  100%  100%  100%

Returned points, declared attacker: HopSkipJump 4,968 queries a row, 20%
before and after projection, 20 rows violating (the flow grid only); PGD
4,002, 16% / 16%, 36 violating. Every sensor: HopSkipJump 24,430, 100% /
51%, 100 violating; PGD 4,002, 100% / 98%, 100 violating. Goals: equal
queries missed for the declared attacker (by one row at B = 50 and 100
against HopSkipJump, 50 and 2,000 against PGD), met for every sensor; at
ART's full query count met for both (ours 23% and 22% vs 20% and 16%).
Details: docs/redteam.md ("Benchmark").
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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SUBMISSION = ROOT / "examples" / "submissions" / "metro-congestion"
ART_VENV = Path(os.environ.get("CITYX_ART_VENV", "/tmp/cityx-art-venv"))
ART_PACKAGES = ("adversarial-robustness-toolbox", "numpy", "scikit-learn", "onnxruntime")
BUDGETS = (50, 100, 200, 500, 1000, 2000, 5000)

# Runs inside the ART environment: one masked attack on the ONNX model, row by row,
# each row in its own [0, 1] box; logs every queried point the model flipped.
ART_RUNNER = r"""
import json, sys, time, warnings
import numpy as np
import onnxruntime as ort
warnings.filterwarnings("ignore")
import art
from art.attacks.evasion import HopSkipJump, ProjectedGradientDescentNumpy
from art.estimators.classification import (
    BlackBoxClassifier, QueryEfficientGradientEstimationClassifier)

spec = json.load(open(sys.argv[1]))
data = np.load(sys.argv[2])
np.random.seed(spec["seed"])  # ART draws from numpy's global generator
session = ort.InferenceSession(spec["model"], providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
outputs = [o.name for o in session.get_outputs()]
classes = spec["classes"]  # the probability columns, in order
x, lo, hi, mask, y = data["x"], data["lo"], data["hi"], data["mask"], data["y"]
span = hi - lo
n, d = x.shape
k = len(classes)
log_row, log_query, log_point = [], [], []
queries = np.zeros(n, dtype=np.int64)


def make_predict(i):
    truth = classes[y[i]]

    def predict(z):
        z = np.asarray(z, dtype=np.float64).reshape(-1, d)
        points = lo[i] + np.clip(z, 0.0, 1.0) * span[i]
        label, probs = session.run(outputs, {name: points.astype(np.float32)})
        flipped = np.flatnonzero(np.asarray(label).astype(str) != truth)
        log_row.append(np.full(flipped.size, i))
        log_query.append(queries[i] + 1 + flipped)
        log_point.append(points[flipped])
        queries[i] += points.shape[0]
        if spec["attack"] == "hopskipjump":  # decision-based: labels only
            return np.eye(k, dtype=np.float32)[np.argmax(probs, axis=1)]
        return np.asarray(probs, dtype=np.float32)

    return predict


adv = x.copy()
start = time.perf_counter()
for i in range(n):
    z0 = np.where(span[i] > 0, (x[i] - lo[i]) / np.where(span[i] > 0, span[i], 1.0), 0.0)
    z0 = z0[None].astype(np.float32)
    onehot = np.eye(k, dtype=np.float32)[[y[i]]]
    m = mask[i][None].astype(np.float32)
    model = BlackBoxClassifier(make_predict(i), input_shape=(d,), nb_classes=k,
                               clip_values=(0.0, 1.0))
    if spec["attack"] == "hopskipjump":
        attack = HopSkipJump(model, targeted=False, max_iter=spec["max_iter"],
                             max_eval=spec["max_eval"], init_eval=spec["init_eval"],
                             verbose=False)
    else:
        estimator = QueryEfficientGradientEstimationClassifier(
            model, num_basis=spec["num_basis"], sigma=spec["sigma"])
        attack = ProjectedGradientDescentNumpy(
            estimator, norm=np.inf, eps=1.0, eps_step=spec["eps_step"],
            max_iter=spec["max_iter"], num_random_init=1, verbose=False)
    z = attack.generate(x=z0, y=onehot, mask=m)
    adv[i] = lo[i] + np.clip(z[0].astype(np.float64), 0.0, 1.0) * span[i]
wall = time.perf_counter() - start
np.savez(sys.argv[3], adv=adv, queries=queries,
         log_row=np.concatenate(log_row).astype(np.int64),
         log_query=np.concatenate(log_query).astype(np.int64),
         log_point=np.concatenate(log_point).reshape(-1, d))
print(json.dumps({"wall_s": wall, "art": art.__version__}))
"""

ART_ATTACKS: dict[str, dict[str, Any]] = {
    # ART's defaults (max_iter 50, max_eval 10000, init_eval 100).
    "hopskipjump": {"max_iter": 50, "max_eval": 10_000, "init_eval": 100},
    # 100 steps of 2 x 20 queries: about 4,000 a row, HopSkipJump's order.
    "pgd_gradient_estimation": {"max_iter": 100, "num_basis": 20, "sigma": 0.25, "eps_step": 0.1},
}


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


def run_art(attack: str, data: dict[str, np.ndarray], classes: list[str], seed: int) -> Any:
    """One masked ART attack in its own environment: its points, queries and flipped-query log."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = {
            "model": str(SUBMISSION / "model.onnx"),
            "classes": classes,
            "attack": attack,
            "seed": seed,
            **ART_ATTACKS[attack],
        }
        (folder / "spec.json").write_text(json.dumps(spec))
        np.savez(folder / "x.npz", **data)
        (folder / "runner.py").write_text(ART_RUNNER)
        start = time.perf_counter()
        done = subprocess.run(
            [
                str(art_python()),
                str(folder / "runner.py"),
                str(folder / "spec.json"),
                str(folder / "x.npz"),
                str(folder / "out.npz"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ART run failed: {done.stderr.strip()[-2000:]}")
        out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        out["process_wall_s"] = time.perf_counter() - start
        with np.load(folder / "out.npz") as found:
            out.update({key: found[key] for key in found.files})
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
    from cityx.data.constraints.projection import feasible_box
    from cityx.data.tables import inspect_table, read_table
    from cityx.submissions import read_manifest
    from cityx.targets import open_predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--budgets",
        default=",".join(map(str, BUDGETS)),
        help="query budgets a row for the curves (comma separated)",
    )
    parser.add_argument(
        "--attacks", default=",".join(ART_ATTACKS), help="ART attacks (comma separated)"
    )
    args = parser.parse_args()
    seed = check_seed(args.seed)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    attacks = [a for a in args.attacks.split(",") if a]
    unknown = sorted(set(attacks) - set(ART_ATTACKS))
    if unknown:
        known = ", ".join(ART_ATTACKS)
        raise SystemExit(f"--attacks: unknown {', '.join(unknown)}; known: {known}")

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
    result: dict[str, Any] = {
        "benchmark": "evasion",
        "rows": args.rows,
        "seed": seed,
        "budgets": budgets,
        "art_settings": {a: ART_ATTACKS[a] for a in attacks},
    }

    def rate(mask: np.ndarray) -> float:
        return round(float(mask.mean()), 4)

    with open_predictor(manifest, SUBMISSION) as predictor:

        def flips(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
            out = [
                predictor.predict(points[s : s + 20_000]).values.astype(str)
                != labels[s : s + 20_000]
                for s in range(0, points.shape[0], 20_000)
            ]
            return np.concatenate(out) if out else np.zeros(0, dtype=bool)

        def ours(threat: Any, budget: int) -> Any:
            """Our search on the same rows and seed, at ``budget`` queries a row."""
            return ConstrainedEvasion().run(
                predictor,
                rows,
                truth,
                threat,
                seed=seed,
                previous=previous,
                fragility=False,
                budget=budget,
                samples=args.rows,
            )

        by_threat: dict[str, Any] = {}
        goals: dict[str, Any] = {}
        for tname, threat in threats.items():
            curve = []
            chosen = None
            for budget in budgets:
                start = time.perf_counter()
                report = ours(threat, budget)
                chosen = report.rows
                curve.append(
                    {
                        "budget": budget,
                        "success": report.success_rate,
                        "queries_per_row": round(report.queries_per_sample, 1),
                        "max_queries_per_row": int(report.queries.max()),
                        "violations": report.constraint_violations,
                        "wall_s": round(time.perf_counter() - start, 3),
                    }
                )
            assert chosen is not None  # the same rows at every budget (same seed)
            x, y = rows[chosen], truth[chosen]
            prev = None if previous is None else previous[chosen]
            lo, hi = feasible_box(threat, x, prev, threat.controlled_mask())
            classes = list(predictor.predict(x[:1]).classes) or list(manifest.outputs.labels)
            y_index = np.array([classes.index(label) for label in y])
            data = {"x": x, "lo": lo, "hi": hi, "mask": hi > lo, "y": y_index}
            # The grids are what every continuous attack breaks; the rest is the linked rules.
            no_grid = replace(threat, integer=frozenset(), resolution={})
            peers: dict[str, Any] = {}
            for attack in attacks:
                art = run_art(attack, data, classes, seed)
                adv = art["adv"]
                raw_ok = flips(adv, y)
                broken = violations(threat, adv, x, prev) > 0
                projected = project(threat, adv, x, prev)
                post_ok = flips(projected, y) & (violations(threat, projected, x, prev) == 0)
                # The logged points (flipped when queried), projected and re-asked.
                r, q, pts = art["log_row"], art["log_query"], art["log_point"]
                pp = project(threat, pts, x[r], None if prev is None else prev[r])
                valid = flips(pp, y[r]) & (
                    violations(threat, pp, x[r], None if prev is None else prev[r]) == 0
                )
                first = np.full(x.shape[0], np.iinfo(np.int64).max)
                np.minimum.at(first, r[valid], q[valid])
                raw_first = np.full(x.shape[0], np.iinfo(np.int64).max)
                np.minimum.at(raw_first, r, q)
                queries = art["queries"]
                peers[attack] = {
                    "version": art["art"],
                    "queries_per_row": round(float(queries.mean()), 1),
                    "max_queries_per_row": int(queries.max()),
                    "wall_s": round(float(art["wall_s"]), 3),
                    "returned": {
                        "success_before_projection": rate(raw_ok),
                        "rows_violating": int(broken.sum()),
                        "rows_violating_beyond_grid": int(
                            (violations(no_grid, adv, x, prev) > 0).sum()
                        ),
                        "success_after_projection": rate(post_ok),
                        "features_changed_per_row": round(
                            float((np.abs(adv - x) > 1e-6).sum(axis=1).mean()), 2
                        ),
                    },
                    "curve": [
                        {
                            "budget": b,
                            "success_before_projection": rate(raw_first <= b),
                            "success_after_projection": rate(first <= b),
                        }
                        for b in budgets
                    ],
                    "logged_points": int(r.size),
                }
            by_threat[tname] = {
                "ours": {"curve": curve, "threat_model": threat.describe()},
                "art": peers,
            }
            goals[tname] = _goals(curve, peers, budgets)
            # Ours at ART's own full query count, for the second goal.
            for attack, peer in peers.items():
                budget = max(8, round(peer["queries_per_row"]))
                report = ours(threat, budget)
                target = peer["returned"]["success_after_projection"]
                goals[tname][f"at_art_full_queries[{attack}]"] = {
                    "met": report.success_rate >= target and report.constraint_violations == 0,
                    "ours_budget": budget,
                    "ours_success": report.success_rate,
                    "ours_queries_per_row": round(report.queries_per_sample, 1),
                    "ours_violations": report.constraint_violations,
                    "art_success_after_projection": target,
                }

    result.update(
        by_threat_model=by_threat,
        goals=goals,
        goals_met=all(g["met"] for t in goals.values() for g in t.values()),
        cpus=os.cpu_count(),
        python=platform.python_version(),
    )
    print(json.dumps(result, indent=2))
    return 0


def _goals(
    curve: list[dict[str, Any]], peers: dict[str, Any], budgets: list[int]
) -> dict[str, Any]:
    """Per ART attack: ours at least its success at every budget of the curve, 0 violations."""
    out: dict[str, Any] = {}
    for attack, peer in peers.items():
        theirs = [p["success_after_projection"] for p in peer["curve"]]
        ours = [p["success"] for p in curve]
        short = [b for b, o, t in zip(budgets, ours, theirs, strict=True) if o < t]
        violations = sum(p["violations"] for p in curve)
        out[f"equal_queries[{attack}]"] = {
            "met": not short and violations == 0,
            "goal": "at every budget, ours >= the masked ART attack's success after "
            "projection (an upper bound for ART), with 0 violations",
            "ours": ours,
            "art": theirs,
            "budgets_short": short,
            "ours_violations": violations,
        }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
