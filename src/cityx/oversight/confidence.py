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
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cityx.core import Action, InputError, Observation
from cityx.core.audit import sorted_json
from cityx.core.schema import FloatArray
from cityx.worlds.errors import WorldError
from cityx.worlds.traffic import SignalMode, TrafficWorld, WorldOptions, get_scenario, prepare_run
from cityx.worlds.traffic.candidates import FEATURE_NAMES
from cityx.worlds.traffic.choices import ChoiceConfidence, ControllerChoice
from cityx.worlds.traffic.controllers import MaxPressure

from .ood import InputBounds

SCHEMA = "choice-calibration/v1"
LABELS_SCHEMA = "choice-label/v1"
FEATURES: tuple[str, ...] = (
    "margin_log",  # log1p(margin)
    "margin_rel",  # margin / (|chosen| + |runner-up| + 1)
    "keeps_green",  # 1 when the choice is the green shown
    "phase_age",  # min(age, 90) / 90
    "queue_log",  # log1p(queue at the intersection)
    "phases",  # number of candidate phases
)
METHODS = ("logistic", "isotonic-margin")
BINS = 10
_QUEUE = FEATURE_NAMES.index("queue_total")
_AGE = FEATURE_NAMES.index("phase_age_s")


def choice_features(choice: ControllerChoice) -> tuple[float, ...]:
    """The calibration's inputs for one choice (the same at labelling and at run time)."""
    margin = max(choice.margin or 0.0, 0.0)
    chosen = choice.score(choice.chosen_phase)
    runner = choice.score(choice.runner_up_phase) if choice.runner_up_phase is not None else 0.0
    row = choice.row(choice.chosen_phase)
    by_name = dict(zip(choice.columns, row, strict=True))
    queue = float(by_name.get("queue_total", 0.0))
    age = float(by_name.get("phase_age_s", 0.0))
    return (
        float(np.log1p(margin)),
        margin / (abs(chosen) + abs(runner) + 1.0),
        1.0 if choice.chosen_phase == choice.current_phase else 0.0,
        min(max(age, 0.0), 90.0) / 90.0,
        float(np.log1p(max(queue, 0.0))),
        float(len(choice.phases)),
    )


@dataclass(frozen=True, slots=True)
class LabelledChoice:
    """One decision point with both roll-outs' costs."""

    scenario: str
    seed: int
    time_s: float
    intersection: str
    chosen: int
    runner_up: int
    margin: float
    features: tuple[float, ...]
    cost_chosen: float
    cost_runner_up: float

    @property
    def right(self) -> bool:
        return self.cost_chosen <= self.cost_runner_up

    @property
    def run(self) -> str:
        return f"{self.scenario}:{self.seed}"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": LABELS_SCHEMA,
            "scenario": self.scenario,
            "seed": self.seed,
            "time_s": self.time_s,
            "intersection": self.intersection,
            "chosen": self.chosen,
            "runner_up": self.runner_up,
            "margin": self.margin,
            "features": list(self.features),
            "cost_chosen": self.cost_chosen,
            "cost_runner_up": self.cost_runner_up,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> LabelledChoice:
        if obj.get("schema") != LABELS_SCHEMA:
            raise InputError(f"not a {LABELS_SCHEMA} record (schema {obj.get('schema')!r})")
        return cls(
            scenario=str(obj["scenario"]),
            seed=int(obj["seed"]),
            time_s=float(obj["time_s"]),
            intersection=str(obj["intersection"]),
            chosen=int(obj["chosen"]),
            runner_up=int(obj["runner_up"]),
            margin=float(obj["margin"]),
            features=tuple(float(v) for v in obj["features"]),
            cost_chosen=float(obj["cost_chosen"]),
            cost_runner_up=float(obj["cost_runner_up"]),
        )


# -- ground truth: roll-outs ---------------------------------------------------------


def _rollout(
    world: TrafficWorld,
    controller: MaxPressure,
    observation: Observation,
    intersection: str,
    phase: int,
    horizon_s: int,
) -> float:
    """The cost of holding ``phase`` at ``intersection`` for the horizon, in a forked copy."""
    if not hasattr(os, "fork"):
        raise WorldError("roll-outs copy the simulation by forking the process: POSIX only")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: run, report, and leave without any cleanup of the parent's files
        os.close(read)
        code = 1
        try:
            cost, obs = 0.0, observation
            for _ in range(horizon_s):
                phases = dict(controller.act(obs).phases)
                phases[intersection] = phase
                stepped = world.step(Action(phases=phases))
                assert stepped is not None
                obs = stepped
                cost += float(obs.halting.sum())
            os.write(write, struct.pack("<d", cost))
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    data = b""
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or len(data) != 8:
        raise WorldError(
            f"the roll-out of phase {phase} at {intersection!r} failed (exit status {status})"
        )
    return float(struct.unpack("<d", data)[0])


def label_run(
    scenario: str,
    seed: int,
    folder: Path,
    *,
    seconds: int = 600,
    horizon_s: int = 20,
    every_s: int = 10,
    warmup_s: int = 60,
    demand: float = 1.0,
) -> tuple[LabelledChoice, ...]:
    """Run max-pressure on ``scenario`` and label its choices by roll-outs.

    The run's own outputs in ``folder`` are not a trial's: forked copies may
    have written to the same files. Runs in this process (libsumo).
    """
    if horizon_s < 1 or every_s < 1 or warmup_s < 0:
        raise InputError("horizon_s and every_s must be at least 1, warmup_s at least 0")
    run = prepare_run(
        get_scenario(scenario),
        folder,
        seed=seed,
        seconds=seconds,
        demand=demand,
        detector_period_s=300,
    )
    world = TrafficWorld(run, WorldOptions(seconds=seconds, mode=SignalMode.ENVELOPE))
    observation = world.reset(seed)
    controller = MaxPressure(run.network)
    out: list[LabelledChoice] = []
    try:
        while not world.done:
            assert observation is not None
            now = round(world.time_s - run.begin)
            action = controller.act(observation)
            choices = controller.take_choices()
            due = now >= warmup_s and (now - warmup_s) % every_s == 0
            if due and now + horizon_s <= seconds:
                for c in choices:
                    if c.runner_up_phase is None:
                        continue
                    costs = [
                        _rollout(world, controller, observation, c.intersection, p, horizon_s)
                        for p in (c.chosen_phase, c.runner_up_phase)
                    ]
                    out.append(
                        LabelledChoice(
                            scenario=scenario,
                            seed=seed,
                            time_s=float(now),
                            intersection=c.intersection,
                            chosen=c.chosen_phase,
                            runner_up=c.runner_up_phase,
                            margin=float(c.margin or 0.0),
                            features=choice_features(c),
                            cost_chosen=costs[0],
                            cost_runner_up=costs[1],
                        )
                    )
            observation = world.step(action)
    finally:
        world.close()
    return tuple(out)


# -- calibration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    lo: float
    hi: float
    count: int
    confidence: float | None  # mean predicted P(right) in the bin
    right: float | None  # share right in the bin


@dataclass(frozen=True, slots=True)
class Reliability:
    """ECE, Brier score and the reliability table of predictions ``p`` against outcomes."""

    n: int
    ece: float
    brier: float
    base_rate: float
    bins: tuple[ReliabilityBin, ...]
    auc: float | None = None  # None when only one outcome occurs

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "ece": round(self.ece, 4),
            "brier": round(self.brier, 4),
            "auc": None if self.auc is None else round(self.auc, 4),
            "base_rate": round(self.base_rate, 4),
            "bins": [
                {
                    "range": [b.lo, b.hi],
                    "count": b.count,
                    "confidence": None if b.confidence is None else round(b.confidence, 4),
                    "right": None if b.right is None else round(b.right, 4),
                }
                for b in self.bins
            ],
        }


def reliability(
    p: FloatArray, right: Sequence[bool] | FloatArray, *, bins: int = BINS
) -> Reliability:
    """Equal-width bins of ``p``; ECE = sum over bins of share * |mean p - share right|."""
    # scikit-learn only to fit and score, never to apply a calibration: imported here so that
    # a run under oversight does not pay for it.
    from sklearn.metrics import roc_auc_score

    probs = np.asarray(p, dtype=np.float64)
    y = np.asarray(right, dtype=np.float64)
    if probs.shape != y.shape or probs.size == 0:
        raise InputError(f"need as many outcomes as predictions, got {probs.size} and {y.size}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1], right=False), 0, bins - 1)
    table, ece = [], 0.0
    for k in range(bins):
        mask = which == k
        count = int(mask.sum())
        if count:
            conf, share = float(probs[mask].mean()), float(y[mask].mean())
            ece += count / probs.size * abs(conf - share)
            table.append(ReliabilityBin(float(edges[k]), float(edges[k + 1]), count, conf, share))
        else:
            table.append(ReliabilityBin(float(edges[k]), float(edges[k + 1]), 0, None, None))
    auc = float(roc_auc_score(y, probs)) if 0 < y.sum() < y.size else None
    return Reliability(
        n=int(probs.size),
        ece=ece,
        brier=float(np.mean((probs - y) ** 2)),
        base_rate=float(y.mean()),
        bins=tuple(table),
        auc=auc,
    )


def ece_interval(
    p: FloatArray, right: FloatArray, *, seed: int = 0, draws: int = 1000
) -> tuple[float, float]:
    """A 95 % bootstrap interval of the ECE (decision points resampled)."""
    rng = np.random.default_rng(seed)
    probs, y = np.asarray(p, dtype=np.float64), np.asarray(right, dtype=np.float64)
    values = []
    for _ in range(draws):
        k = rng.integers(0, probs.size, probs.size)
        values.append(_ece_only(probs[k], y[k]))
    lo, hi = np.quantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def _ece_only(probs: FloatArray, y: FloatArray, bins: int = BINS) -> float:
    which = np.clip(np.digitize(probs, np.linspace(0.0, 1.0, bins + 1)[1:-1]), 0, bins - 1)
    conf = np.bincount(which, weights=probs, minlength=bins)
    share = np.bincount(which, weights=y, minlength=bins)
    return float(np.abs(conf - share).sum() / probs.size)


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


def read_labels(path: Path) -> list[LabelledChoice]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(LabelledChoice.from_json(json.loads(line)))
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"line {n} is not a {LABELS_SCHEMA} record: {exc}") from exc
    return out


def write_labels(path: Path, labelled: Iterable[LabelledChoice]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for c in labelled:
            f.write(json.dumps(c.to_json()) + "\n")


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
    "FEATURES",
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
