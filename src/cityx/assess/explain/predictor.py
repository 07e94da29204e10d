"""Explaining a predictor's decisions on a table, with a fidelity report card.

Words used here:

- *attribution* (``contributions``): each feature's Shapley value of the
  explained *output* against the *background* (a seeded sample of at most
  100 rows of the given table, normally the holdout); ``base_value`` is the
  output's mean over the background, and ``base_value + sum(contributions)
  == output``;
- *output*: ``margin`` (the raw additive score of the explained class,
  exact for trees and linear models), ``probability`` (through the softmax
  or logistic: labelled approximate, with its error against brute force),
  or ``value`` for a regression;
- *method*: ``tree-exact`` or ``linear-exact`` when the isolated worker can
  describe the artifact (:mod:`cityx.targets.describe`), else
  ``permutation`` (a model-agnostic estimate through the isolated model with
  a fixed query budget; its run-to-run error across two seeds is reported);
- *fidelity*: the additivity error against the artifact's own output; the
  *deletion* curve (share of rows whose decision flips when the top-k
  attributed features are set to a background row's values), against the
  same curve for k random features; *stability* (rank correlation of the
  attributions of each row and its nearest other row); *method agreement*
  (rank correlation between the exact values and the permutation estimate);
- *counterfactual*: the smallest change, within the submission's physical
  constraints (:func:`cityx.data.constraints.project`), that changes the
  decision; "smallest" counts features changed first, then the change as a
  share of each feature's range;
- *dependence*: for the most attributed features, each global-view row's
  value of the feature against its attribution to one class (the ``--class``
  given, else the class with the largest total attribution): SHAP's
  dependence plot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import DataError, FloatArray, InputError, Predictor, TargetError, Task
from cityx.data.constraints import ThreatModel

from .counterfactual import Counterfactual, counterfactual
from .fidelity import deletion_curves, mean_rank_corr, near_row_stability
from .model import ExactModel, LinearModel, class_names, exact_model, transform
from .shapley import brute_force_shap, linear_shap, permutation_shap, tree_shap

OUTPUTS = ("margin", "probability")
BACKGROUND_ROWS = 100
GLOBAL_ROWS = 500
# Model calls per explained row for the model-agnostic estimate (one run).
QUERY_BUDGET = 2000
AGNOSTIC_GLOBAL_ROWS = 50
DEPENDENCE_FEATURES = 3
DEPENDENCE_POINTS = 300


@dataclass(frozen=True, slots=True)
class RowExplanation:
    row: int
    prediction: str
    klass: str
    output: float
    base_value: float
    contributions: dict[str, float]
    counterfactual: Counterfactual | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "prediction": self.prediction,
            "class": self.klass,
            "output": self.output,
            "base_value": self.base_value,
            "contributions": dict(self.contributions),
            "counterfactual": None
            if self.counterfactual is None
            else self.counterfactual.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Fidelity:
    additivity_max_error: float
    artifact_max_error: float | None  # exact model's reconstruction vs the artifact's scores
    deletion_auc: float | None
    random_deletion_auc: float | None
    stability: float | None
    method_agreement: float | None
    approximation_error: float | None = None  # probability output vs brute force
    run_to_run_error: float | None = None  # permutation estimate across two seeds

    def to_json(self) -> dict[str, Any]:
        return {
            "additivity_max_error": self.additivity_max_error,
            "artifact_max_error": self.artifact_max_error,
            "deletion_auc": self.deletion_auc,
            "random_deletion_auc": self.random_deletion_auc,
            "stability": self.stability,
            "method_agreement": self.method_agreement,
            "approximation_error": self.approximation_error,
            "run_to_run_error": self.run_to_run_error,
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    method: str
    exact: bool
    output: str
    background_rows: int
    features: tuple[str, ...]
    mean_abs: dict[str, dict[str, float]]
    rows: tuple[RowExplanation, ...]
    fidelity: Fidelity
    wall_s: float
    note: str = ""
    global_rows: int = 0
    # Top features' dependence plots: [value, attribution to dependence_class] per global row.
    dependence: dict[str, list[list[float]]] = field(default_factory=dict)
    dependence_class: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "exact": self.exact,
            "output": self.output,
            "background_rows": self.background_rows,
            "global": {
                "rows": self.global_rows,
                "mean_abs": {c: dict(v) for c, v in self.mean_abs.items()},
                "dependence": {
                    "class": self.dependence_class,
                    "points": {f: [list(p) for p in v] for f, v in self.dependence.items()},
                },
            },
            "rows": [r.to_json() for r in self.rows],
            "fidelity": self.fidelity.to_json(),
            "note": self.note,
            "wall_s": round(self.wall_s, 3),
        }


@dataclass(frozen=True, slots=True)
class _Attributions:
    phi: FloatArray  # rows x features x classes
    base: FloatArray  # classes (or rows x classes for the permutation estimate)
    outputs: FloatArray  # rows x classes: the explained output per class


def describe_model(predictor: Any, inputs: int) -> tuple[ExactModel | None, str]:
    """The exact model the isolated worker describes, or None and why not."""
    call = getattr(predictor, "call", None)
    if not callable(call):
        return None, "the model is not behind an isolated worker that can describe it"
    try:
        header, arrays = call("describe", {})
    except TargetError as exc:
        return None, exc.message
    where = str(getattr(predictor, "artifact", "model"))
    return exact_model(header, arrays, inputs=inputs, where=where), ""


def explain_predictor(
    predictor: Predictor,
    data: Any,
    *,
    rows: Sequence[int] | None = None,
    all_rows: bool = False,
    klass: str | None = None,
    output: str = "margin",
    seed: int = 0,
    threat_model: ThreatModel | None = None,
    background_rows: int = BACKGROUND_ROWS,
    global_rows: int = GLOBAL_ROWS,
    query_budget: int = QUERY_BUDGET,
    where: str = "data",
) -> Explanation:
    """Attributions for the chosen rows (and a global view) of ``predictor`` on ``data``.

    ``data`` is a pandas table holding the predictor's input columns.
    """
    start = time.perf_counter()
    if output not in OUTPUTS:
        raise InputError(f"output must be one of {', '.join(OUTPUTS)}", where="--output")
    features = tuple(predictor.schema.names)
    columns = [str(c) for c in data.columns]
    for name in features:
        if name not in columns:
            raise DataError(f"column {name!r}, an input of the model, is missing", where=where)
    x_all = _numeric(data, features, where)
    n = x_all.shape[0]
    if n == 0:
        raise DataError("the table has no rows", where=where)
    picked = list(range(n)) if all_rows else list(rows or ())
    bad = [r for r in picked if not 0 <= r < n]
    if bad:
        raise InputError(f"row {bad[0]} is outside the table's {n} rows", where="--rows")
    rng = np.random.default_rng(seed)
    bg_idx = np.sort(rng.choice(n, size=min(background_rows, n), replace=False))
    background = x_all[bg_idx]
    gl_idx = (
        np.arange(n) if n <= global_rows else np.sort(rng.choice(n, global_rows, replace=False))
    )
    regression = predictor.outputs.task is Task.REGRESSION
    out_kind = "value" if regression else output
    model, note = describe_model(predictor, len(features))
    if model is None:
        # The estimate costs the query budget per row: a smaller sample for the global view.
        gl_idx = gl_idx[:AGNOSTIC_GLOBAL_ROWS]
    explain_idx = np.unique(np.r_[np.asarray(picked, dtype=np.int64), gl_idx])
    x = x_all[explain_idx]
    pred = predictor.predict(x)
    labels = np.asarray(pred.values).astype(str)
    classes = tuple(pred.classes) if pred.classes else ()
    approx_error: float | None = None
    run_error: float | None = None
    artifact_error: float | None = None

    if model is not None:
        method = f"{model.kind.removesuffix('s')}-exact"
        attr = _exact(model, x, background, classes, out_kind)
        names = class_names(model, classes) if not regression else ("value",)
        if not regression and pred.scores is not None:
            ours = transform(model, model.margin(x))
            order = [names.index(c) for c in classes] if set(classes) <= set(names) else None
            if order is not None:
                artifact_error = float(np.abs(ours[:, order] - pred.scores).max())
        elif regression:
            artifact_error = float(np.abs(model.margin(x)[:, 0] - np.asarray(pred.values)).max())
        exact = out_kind != "probability"
        if out_kind == "probability":
            approx_error = _probability_error(model, x[:2], background, attr.phi[:2])
    else:
        method = "permutation"
        exact = False
        names = classes if not regression else ("value",)
        f = _output_function(predictor, regression, classes)
        perms = max(1, query_budget // (2 * (len(features) + 1)))
        attr = _agnostic(f, x, background, perms, seed)
        again = _agnostic(f, x[:5], background, perms, seed + 1)
        scale = float(np.abs(attr.phi[:5]).max()) or 1.0
        run_error = float(np.abs(again.phi - attr.phi[:5]).max() / scale)
        note = (
            f"no exact method fits ({note}); permutation estimate with "
            f"{2 * perms * (len(features) + 1)} model calls per row"
        )
        if out_kind == "margin":
            out_kind = "probability"

    column_of = {c: k for k, c in enumerate(names)}
    if klass is not None and klass not in column_of:
        raise InputError(
            f"unknown class {klass!r}", where="--class", hint=f"classes: {', '.join(names)}"
        )
    explained_col = np.array(
        [column_of.get(klass if klass is not None else lab, 0) for lab in labels], dtype=np.int64
    )
    take = np.arange(len(explain_idx))
    phi_rows = attr.phi[take, :, explained_col]  # rows x features
    outputs = attr.outputs[take, explained_col]
    base = attr.base[explained_col] if attr.base.ndim == 1 else attr.base[take, explained_col]
    additivity = float(np.abs(base + phi_rows.sum(axis=1) - outputs).max())
    if out_kind == "probability" and pred.scores is not None and model is not None:
        # Against the artifact's own probabilities, not our reconstruction.
        own = pred.scores[take, [classes.index(names[c]) for c in explained_col]]
        additivity = max(additivity, float(np.abs(base + phi_rows.sum(axis=1) - own).max()))

    position = {int(r): k for k, r in enumerate(explain_idx)}
    mean_abs = {
        c: dict(
            zip(features, np.abs(attr.phi[:, :, k]).mean(axis=0).round(6).tolist(), strict=True)
        )
        for k, c in enumerate(names)
    }
    dep_class = klass if klass is not None else max(names, key=lambda c: sum(mean_abs[c].values()))
    dependence = _dependence(
        x[np.searchsorted(explain_idx, gl_idx)],
        attr.phi[np.searchsorted(explain_idx, gl_idx), :, column_of[dep_class]],
        features,
        mean_abs,
    )
    decide = _decider(predictor, model, names, regression)
    limits = threat_model
    out_rows = []
    for r in picked:
        k = position[r]
        cf = None
        if not regression:
            cf = counterfactual(x[k], labels[k], phi_rows[k], decide, predictor, limits, features)
        out_rows.append(
            RowExplanation(
                row=r,
                prediction=str(labels[k]) if not regression else f"{float(pred.values[k]):.6g}",
                klass=names[explained_col[k]],
                output=float(outputs[k]),
                base_value=float(base[k]),
                contributions=dict(zip(features, phi_rows[k].tolist(), strict=True)),
                counterfactual=cf,
            )
        )
    deletion, random_deletion = (None, None)
    if not regression:
        deletion, random_deletion = deletion_curves(
            x[:200], labels[:200], phi_rows[:200], background, decide, rng
        )
    agreement = None
    if model is not None:
        # A second method on a few rows: the permutation estimate (of the probabilities,
        # or values), compared by the ranking of |attribution|, which both can state.
        f = _output_function(predictor, regression, classes)
        sample = x[:5]
        est = _agnostic(
            f, sample, background, max(1, query_budget // (2 * (len(features) + 1))), seed
        )
        cols = [classes.index(names[c]) if names[c] in classes else 0 for c in explained_col[:5]]
        agreement = mean_rank_corr(
            np.abs(attr.phi[np.arange(len(sample)), :, explained_col[:5]]),
            np.abs(est.phi[np.arange(len(sample)), :, cols]),
        )
    stability = near_row_stability(x, phi_rows)
    fidelity = Fidelity(
        additivity_max_error=additivity,
        artifact_max_error=artifact_error,
        deletion_auc=deletion,
        random_deletion_auc=random_deletion,
        stability=stability,
        method_agreement=agreement,
        approximation_error=approx_error,
        run_to_run_error=run_error,
    )
    return Explanation(
        method=method,
        exact=exact,
        output=out_kind,
        background_rows=int(background.shape[0]),
        features=features,
        mean_abs=mean_abs,
        rows=tuple(out_rows),
        fidelity=fidelity,
        wall_s=time.perf_counter() - start,
        note=note
        if model is None
        else (
            ""
            if exact
            else "probability attributions are approximate: the margin's, rescaled per class"
        ),
        global_rows=len(gl_idx),
        dependence=dependence,
        dependence_class=dep_class,
    )


def _dependence(
    x: FloatArray,
    phi: FloatArray,
    features: Sequence[str],
    mean_abs: dict[str, dict[str, float]],
) -> dict[str, list[list[float]]]:
    """[value, attribution] pairs of the most attributed features, for dependence plots."""
    weight = {f: float(np.mean([v[f] for v in mean_abs.values()])) for f in features}
    top = sorted(features, key=lambda f: -weight[f])[:DEPENDENCE_FEATURES]
    take = slice(0, DEPENDENCE_POINTS)
    return {
        f: np.column_stack([x[take, j], phi[take, j]]).round(6).tolist()
        for j, f in enumerate(features)
        if f in top
    }


def _numeric(data: Any, features: Sequence[str], where: str) -> FloatArray:
    out = np.empty((len(data), len(features)))
    for j, name in enumerate(features):
        column = data[name]
        if column.dtype.kind not in "biuf":
            raise DataError(f"column {name!r} is not numeric", where=where)
        out[:, j] = column.to_numpy(dtype=np.float64)
    return out


def _exact(
    model: ExactModel, x: FloatArray, background: FloatArray, classes: Sequence[str], out: str
) -> _Attributions:
    phi_m, base_m = (
        linear_shap(model, x, background)
        if isinstance(model, LinearModel)
        else tree_shap(model, x, background)
    )
    margin = model.margin(x)
    if model.binary:
        phi_m = np.concatenate([-phi_m, phi_m], axis=2)
        base_m = np.r_[-base_m, base_m]
        margin = np.hstack([-margin, margin])
    if out != "probability":
        return _Attributions(phi_m, base_m, margin)
    prob = transform(model, model.margin(x))
    base_p = transform(model, model.margin(background)).mean(axis=0)
    want = prob - base_p  # rows x classes
    have = phi_m.sum(axis=1)
    ratio = np.divide(want, have, out=np.zeros_like(want), where=np.abs(have) > 1e-12)
    phi_p = phi_m * ratio[:, None, :]
    # Where the margin's attributions cancel, spread the change evenly (rare; still additive).
    flat = np.abs(have) <= 1e-12
    if flat.any():
        phi_p = np.where(flat[:, None, :], want[:, None, :] / x.shape[1], phi_p)
    return _Attributions(phi_p, base_p, prob)


def _probability_error(
    model: ExactModel, x: FloatArray, background: FloatArray, phi: FloatArray
) -> float | None:
    """Largest gap between the rescaled probability attributions and brute-force Shapley values."""
    if x.shape[1] > 10 or x.shape[0] == 0:
        return None
    # Brute force costs 2^d x background model rows per row: measured on 20 background rows,
    # for the same method run against those 20.
    small = background[:20]
    ours = _exact(model, x, small, (), "probability").phi
    exact, _ = brute_force_shap(lambda z: transform(model, model.margin(z)), x, small)
    return float(np.abs(exact - ours).max())


def _agnostic(
    f: Callable[[FloatArray], FloatArray],
    x: FloatArray,
    background: FloatArray,
    perms: int,
    seed: int,
) -> _Attributions:
    phi, base = permutation_shap(f, x, background, permutations=perms, seed=seed)
    return _Attributions(phi, base, base + phi.sum(axis=1))


def _output_function(
    predictor: Predictor, regression: bool, classes: Sequence[str]
) -> Callable[[FloatArray], FloatArray]:
    def f(z: FloatArray) -> FloatArray:
        p = predictor.predict(z)
        if regression:
            return np.asarray(p.values, dtype=np.float64)[:, None]
        if p.scores is None:
            labels = np.asarray(p.values).astype(str)
            return np.asarray(labels[:, None] == np.asarray(classes)[None, :], dtype=np.float64)
        return np.asarray(p.scores, dtype=np.float64)

    return f


def _decider(
    predictor: Predictor, model: ExactModel | None, names: Sequence[str], regression: bool
) -> Callable[[FloatArray], NDArray[np.str_]]:
    """Labels for many rows: the exact model's argmax (no model calls) or the isolated model's."""
    if model is not None and not regression:
        table = np.asarray(class_names(model, names) if model.binary else model.targets)

        def decide(z: FloatArray) -> NDArray[np.str_]:
            m = model.margin(z)
            if model.binary:
                return np.asarray(np.where(m[:, 0] > 0, table[1], table[0]), dtype=str)
            return np.asarray(table[np.argmax(m, axis=1)], dtype=str)

        return decide

    def ask(z: FloatArray) -> NDArray[np.str_]:
        return np.asarray(predictor.predict(z).values).astype(str)

    return ask


__all__ = [
    "BACKGROUND_ROWS",
    "OUTPUTS",
    "Counterfactual",
    "Explanation",
    "Fidelity",
    "RowExplanation",
    "describe_model",
    "explain_predictor",
]
