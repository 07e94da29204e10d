"""Calibrated confidence of max-pressure's choices: fit on dev runs, ECE on held-out runs.

Labels every decision point (every ``--every`` s after 60 s) of each run by two
roll-outs in the sandbox (chosen vs runner-up phase held for ``--horizon`` s;
:mod:`cityx.oversight.confidence`), fits the calibrations on the dev runs only,
and prints one JSON object: per method the held-out ECE (with a bootstrap 95 %
interval), Brier score, AUC and the reliability table, beside two references
that are not calibrations: a sigmoid of the margin, and the dev base rate for
every choice. The dev and held-out runs are fixed here, before any fitting:
held-out seeds are never used for dev, and cologne1 is a scenario dev never saw.

    .venv/bin/python bench/oversight_confidence.py --labels /tmp/cityx-labels \
        --write src/cityx/oversight/calibrations/max-pressure.json

Labels are cached per run in ``--labels`` (JSON lines), so a refit needs no
new roll-outs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cityx.oversight.confidence import (
    LabelledChoice,
    ece_interval,
    evaluate,
    fit_calibration,
    label_run,
    read_labels,
    reliability,
    sigmoid_of_margin,
    write_labels,
)

DEV = "cologne3:0-3,grid3x3:0-1"
HELDOUT = "cologne3:10-11,cologne1:10-11,grid3x3:10"


def runs(spec: str) -> list[tuple[str, int]]:
    out = []
    for part in spec.split(","):
        scenario, _, seeds = part.partition(":")
        lo, _, hi = seeds.partition("-")
        out += [(scenario, s) for s in range(int(lo), int(hi or lo) + 1)]
    return out


def labels_for(
    scenario: str, seed: int, cache: Path, *, seconds: int, horizon: int, every: int
) -> list[LabelledChoice]:
    path = cache / f"{scenario}-s{seed}-t{seconds}-h{horizon}-e{every}.jsonl"
    if path.exists():
        return read_labels(path)
    with tempfile.TemporaryDirectory(prefix="cityx-label-") as tmp:
        labelled = label_run(
            scenario, seed, Path(tmp), seconds=seconds, horizon_s=horizon, every_s=every
        )
    write_labels(path, labelled)
    return list(labelled)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dev", default=DEV)
    ap.add_argument("--heldout", default=HELDOUT)
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--horizon", type=int, default=20)
    ap.add_argument("--every", type=int, default=15)
    ap.add_argument("--labels", type=Path, default=Path(tempfile.gettempdir()) / "cityx-labels")
    ap.add_argument("--write", type=Path, default=None, help="write the fitted calibration here")
    args = ap.parse_args()
    args.labels.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    dev_runs, held_runs = runs(args.dev), runs(args.heldout)
    if set(dev_runs) & set(held_runs):
        print(json.dumps({"error": "a run is both dev and held-out"}))
        return 2
    opts = {"seconds": args.seconds, "horizon": args.horizon, "every": args.every}
    dev = [c for s, k in dev_runs for c in labels_for(s, k, args.labels, **opts)]
    held = [c for s, k in held_runs for c in labels_for(s, k, args.labels, **opts)]
    labelled_s = time.perf_counter() - start
    calibration, cv = fit_calibration(dev, horizon_s=args.horizon)
    y_held = np.asarray([c.right for c in held], dtype=np.float64)
    methods = {}
    for method in cv:
        fitted, _ = fit_calibration(dev, horizon_s=args.horizon, methods=[method])
        x = np.asarray([c.features for c in held])
        p = fitted.predict(x)
        rel = evaluate(fitted, held)
        lo, hi = ece_interval(p, y_held, seed=0)
        by_scenario = {
            s: round(evaluate(fitted, [c for c in held if c.scenario == s]).ece, 4)
            for s in sorted({c.scenario for c in held})
        }
        methods[method] = {
            "dev_cv_ece": round(cv[method].ece, 4),
            "heldout": rel.to_json(),
            "heldout_ece_95": [round(lo, 4), round(hi, 4)],
            "heldout_ece_by_scenario": by_scenario,
        }
    dev_rate = float(np.mean([c.right for c in dev]))
    constant = reliability(np.full(len(held), dev_rate), y_held)
    chosen = evaluate(calibration, held)
    lo, hi = ece_interval(calibration.predict(np.asarray([c.features for c in held])), y_held)
    provenance = {
        **calibration.provenance,
        "heldout": {
            "runs": sorted({c.run for c in held}),
            "choices": len(held),
            "ece": round(chosen.ece, 4),
            "ece_95": [round(lo, 4), round(hi, 4)],
            "brier": round(chosen.brier, 4),
        },
        "labelling": {**opts, "warmup_s": 60, "cost": "halting vehicle-seconds, network"},
        "command": "bench/oversight_confidence.py " + " ".join(sys.argv[1:]),
    }
    shipped = type(calibration)(
        id=calibration.id,
        controller=calibration.controller,
        method=calibration.method,
        horizon_s=calibration.horizon_s,
        params=calibration.params,
        provenance=provenance,
    )
    if args.write is not None:
        args.write.write_text(json.dumps(shipped.to_json(), indent=1) + "\n")
    print(
        json.dumps(
            {
                "bench": "oversight_confidence",
                "dev_runs": [f"{s}:{k}" for s, k in dev_runs],
                "heldout_runs": [f"{s}:{k}" for s, k in held_runs],
                "dev_choices": len(dev),
                "heldout_choices": len(held),
                "dev_right": round(dev_rate, 4),
                "heldout_right": round(float(y_held.mean()), 4),
                "ties": sum(c.cost_chosen == c.cost_runner_up for c in held),
                "chosen_method": calibration.method,
                "heldout_ece": round(chosen.ece, 4),
                "heldout_ece_95": [round(lo, 4), round(hi, 4)],
                "methods": methods,
                "references": {
                    "sigmoid_of_margin": sigmoid_of_margin(held).to_json(),
                    "dev_base_rate": constant.to_json(),
                },
                "digest": shipped.digest,
                "written": None if args.write is None else str(args.write),
                "labelling_s": round(labelled_s, 1),
                "wall_s": round(time.perf_counter() - start, 1),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
