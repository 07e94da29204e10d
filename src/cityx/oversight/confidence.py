"""Calibrated confidence in a controller's choices, with ground truth from the sandbox.

A scoring controller picks a phase and names a runner-up (``controller-choice/v1``,
:mod:`cityx.worlds.traffic.choices`). Its *margin* (chosen score minus runner-up)
says how close the call was, not how likely it was right: a sigmoid of the
margin is a guess with the shape of a probability. Here the probability is
earned against the simulator itself. Words used:

- *decision point*: one intersection's choice at one step of a labelling run
  (every ``every_s`` seconds after a warm-up), where the choice has a runner-up;
- *roll-out*: from a decision point the whole simulation is copied and run
  ``horizon_s`` seconds further with that intersection asking for one phase
  all along (the safety envelope still decides: minimum greens and
  clearances hold), every other intersection following the controller. The
  copy is the process itself, forked: libsumo's state, random generators
  included, goes with it, and the parent goes on untouched. SUMO's own
  ``saveState``/``loadState`` was tried first and dropped: on cologne3 (SUMO
  1.28, with ``--save-state.rng``) two roll-outs from the same loaded state
  gave 215 and 200 halting vehicle-seconds and reported collisions, while
  two forked copies both gave 249, the parent's own figure;
- *cost*: halting vehicle-seconds on every detected lane of the network over
  the horizon (the queue the choice leaves behind, wherever it spills);
- *right*: the chosen phase's roll-out cost no more than the runner-up's
  (a tie is right: the runner-up would not have done better);
- *calibration*: a map from a choice's features (:data:`FEATURES`: the
  margin, the margin relative to the scores, whether the choice keeps the
  green shown, its age, the intersection's queue, the number of phases) to
  P(right), fitted on the decision points of *dev* runs. Two methods:
  ``logistic`` (Platt scaling over all the features, standardised) and
  ``isotonic-margin`` (isotonic regression on the margin alone); the one
  with the smaller leave-one-run-out error on the dev runs is kept;
- *ECE* (expected calibration error): over 10 equal-width bins of
  confidence, the share-weighted gap between mean confidence and the share
  of choices that were right; a *reliability* table lists the bins.

A calibration holds for the controller and the horizon it was fitted on. It
is a JSON file with its provenance (dev and held-out runs, horizon, method,
held-out ECE) and a digest of its canonical body; each confidence names the
calibration's id and digest. The one shipped (``calibrations/max-pressure.json``)
comes from ``bench/oversight_confidence.py --write``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cityx.core import InputError
from cityx.core.audit import sorted_json
from cityx.core.schema import FloatArray
from cityx.worlds.traffic.choices import ChoiceConfidence, ControllerChoice

# Labelling and the metrics live in their own modules; their names stay importable from here.
from .calibration_metrics import BINS, Reliability, ReliabilityBin, ece_interval, reliability
from .choice_labels import (
    FEATURES,
    LABELS_SCHEMA,
    LabelledChoice,
    choice_features,
    label_run,
    read_labels,
    write_labels,
)
from .ood import InputBounds

SCHEMA = "choice-calibration/v1"
METHODS = ("logistic", "isotonic-margin")


@dataclass(frozen=True, slots=True)
class Calibration:
    """A fitted map from a choice's features to P(right), with its provenance."""

    id: str
    controller: str
    method: str
    horizon_s: int
    params: Mapping[str, Any]
    provenance: Mapping[str, Any] = field(default_factory=dict)
    features: tuple[str, ...] = FEATURES
    _digest: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(
                f"unknown calibration method {self.method!r}", hint=f"known: {', '.join(METHODS)}"
            )
        # Hashed once: every confidence names it, and hashing per choice cost a quarter of
        # a run's speed.
        digest = "sha256:" + hashlib.sha256(sorted_json(self.body())).hexdigest()
        object.__setattr__(self, "_digest", digest)

    def predict(self, x: FloatArray) -> FloatArray:
        """P(right) for each row of features (rows x :data:`FEATURES`)."""
        rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if self.method == "logistic":
            z = (rows - np.asarray(self.params["mean"])) / np.asarray(self.params["scale"])
            logit = z @ np.asarray(self.params["coef"]) + float(self.params["intercept"])
            return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)
        margin = np.expm1(rows[:, FEATURES.index("margin_log")])
        return np.asarray(np.interp(margin, self.params["x"], self.params["y"]), dtype=np.float64)

    def body(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "id": self.id,
            "controller": self.controller,
            "method": self.method,
            "horizon_s": self.horizon_s,
            "features": list(self.features),
            "params": dict(self.params),
            "provenance": dict(self.provenance),
        }

    @property
    def digest(self) -> str:
        return self._digest

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "digest": self.digest}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, where: str = "calibration") -> Calibration:
        if obj.get("schema") != SCHEMA:
            raise InputError(f"not a {SCHEMA} file (schema {obj.get('schema')!r})", where=where)
        try:
            made = cls(
                id=str(obj["id"]),
                controller=str(obj["controller"]),
                method=str(obj["method"]),
                horizon_s=int(obj["horizon_s"]),
                params=dict(obj["params"]),
                provenance=dict(obj.get("provenance", {})),
                features=tuple(str(f) for f in obj["features"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed {SCHEMA} file: {exc}", where=where) from exc
        if made.features != FEATURES:
            raise InputError(
                f"calibration features {list(made.features)} are not this version's "
                f"{list(FEATURES)}",
                where=where,
            )
        claimed = obj.get("digest")
        if claimed is not None and claimed != made.digest:
            raise InputError(
                "calibration digest does not match its body (edited?)",
                where=where,
                hint="refit it with bench/oversight_confidence.py --write",
            )
        return made

    def input_bounds(self) -> InputBounds | None:
        """The range of the dev data it was fitted on (None when the file does not say)."""
        span = self.provenance.get("dev_range")
        if not isinstance(span, Mapping):
            return None
        return InputBounds(
            columns=self.features,
            lower=tuple(float(v) for v in span["lo"]),
            upper=tuple(float(v) for v in span["hi"]),
            source=f"data:calibration {self.id}",
            kind="data_range",
        )

    def confidence(self, choice: ControllerChoice) -> ChoiceConfidence | None:
        """The choice's confidence with this calibration's provenance (None: no runner-up)."""
        if choice.runner_up_phase is None:
            return None
        p = float(self.predict(np.asarray([choice_features(choice)]))[0])
        ece = self.provenance.get("heldout", {}).get("ece")
        return ChoiceConfidence(
            p=min(max(p, 0.0), 1.0),
            calibration=self.id,
            digest=self.digest,
            method=self.method,
            heldout_ece=None if ece is None else float(ece),
        )


def _arrays(labelled: Sequence[LabelledChoice]) -> tuple[FloatArray, FloatArray]:
    x = np.asarray([c.features for c in labelled], dtype=np.float64)
    y = np.asarray([c.right for c in labelled], dtype=np.float64)
    return x, y


def fit_params(method: str, x: FloatArray, y: FloatArray) -> dict[str, Any]:
    """The fitted parameters of ``method`` (plain lists: the file needs no scikit-learn)."""
    # heavy: scikit-learn only to fit, never to apply a calibration (a run does not pay for it)
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if len(set(y.tolist())) < 2:
        raise InputError("every labelled choice has the same outcome: nothing to calibrate")
    if method == "logistic":
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=1.0, max_iter=1000).fit((x - mean) / scale, y)
        return {
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "coef": model.coef_[0].tolist(),
            "intercept": float(model.intercept_[0]),
        }
    if method == "isotonic-margin":
        margin = np.expm1(x[:, FEATURES.index("margin_log")])
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(margin, y)
        return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    raise InputError(f"unknown calibration method {method!r}", hint=f"known: {', '.join(METHODS)}")


def cross_validated(method: str, labelled: Sequence[LabelledChoice]) -> Reliability:
    """Leave-one-run-out predictions on the dev runs, scored (chooses the method)."""
    runs = sorted({c.run for c in labelled})
    x, y = _arrays(labelled)
    group = np.asarray([runs.index(c.run) for c in labelled])
    p = np.zeros_like(y)
    for k in range(len(runs)):
        train, test = group != k, group == k
        cal = Calibration("cv", "cv", method, 0, fit_params(method, x[train], y[train]))
        p[test] = cal.predict(x[test])
    return reliability(p, y)


def fit_calibration(
    dev: Sequence[LabelledChoice],
    *,
    horizon_s: int,
    controller: str = "max-pressure",
    methods: Iterable[str] = METHODS,
) -> tuple[Calibration, dict[str, Reliability]]:
    """Fit each method on ``dev``; keep the one with the lowest leave-one-run-out ECE."""
    if not dev:
        raise InputError("no labelled dev choices to fit a calibration on")
    x, y = _arrays(dev)
    scores = {m: cross_validated(m, dev) for m in methods}
    method = min(scores, key=lambda m: (scores[m].ece, scores[m].brier))
    calibration = Calibration(
        id=f"{controller}/h{horizon_s}",
        controller=controller,
        method=method,
        horizon_s=horizon_s,
        params=fit_params(method, x, y),
        provenance={
            "dev": sorted({c.run for c in dev}),
            "dev_choices": len(dev),
            "dev_right": round(float(y.mean()), 4),
            "dev_cv_ece": {m: round(r.ece, 4) for m, r in scores.items()},
            # Beyond this range the confidence is an extrapolation: choices there are OOD.
            "dev_range": {"lo": x.min(axis=0).tolist(), "hi": x.max(axis=0).tolist()},
        },
    )
    return calibration, scores


def evaluate(calibration: Calibration, heldout: Sequence[LabelledChoice]) -> Reliability:
    x, y = _arrays(heldout)
    return reliability(calibration.predict(x), y)


def sigmoid_of_margin(heldout: Sequence[LabelledChoice]) -> Reliability:
    """The uncalibrated reference: 1 / (1 + exp(-margin)), with nothing fitted."""
    margin = np.asarray([c.margin for c in heldout], dtype=np.float64)
    return reliability(1.0 / (1.0 + np.exp(-margin)), _arrays(heldout)[1])


def load_calibration(path: Path | None = None) -> Calibration:
    """A calibration file, or the one shipped for max-pressure."""
    if path is None:
        text = (
            resources.files("cityx.oversight")
            .joinpath("calibrations/max-pressure.json")
            .read_text(encoding="utf-8")
        )
        where = "cityx/oversight/calibrations/max-pressure.json"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot read the calibration: {exc.strerror}", where=str(path)
            ) from exc
        where = str(path)
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise InputError(f"the calibration is not JSON: {exc}", where=where) from exc
    return Calibration.from_json(obj, where=where)


__all__ = [
    "BINS",
    "FEATURES",
    "LABELS_SCHEMA",
    "METHODS",
    "SCHEMA",
    "Calibration",
    "LabelledChoice",
    "Reliability",
    "ReliabilityBin",
    "choice_features",
    "cross_validated",
    "ece_interval",
    "evaluate",
    "fit_calibration",
    "fit_params",
    "label_run",
    "load_calibration",
    "read_labels",
    "reliability",
    "sigmoid_of_margin",
    "write_labels",
]
