"""Exact attributions equal brute-force Shapley values, on margins; probabilities are labelled.

The models are described the way the worker describes them
(:mod:`cityx.targets.describe`), here in-process for speed; the ONNX and
LightGBM cases go through the isolated worker in test_artifacts.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from cityx.assess.explain.model import exact_model, transform
from cityx.assess.explain.shapley import (
    brute_force_shap,
    linear_shap,
    permutation_shap,
    tree_shap,
)
from cityx.core import TargetOutputError
from cityx.targets.describe_estimators import describe_estimator


def _described(est: Any, d: int) -> Any:
    header, arrays = describe_estimator(est, d).to_wire()
    return exact_model(header, arrays, inputs=d, where="test")


MODELS = {
    "gb-multiclass": lambda: GradientBoostingClassifier(
        n_estimators=15, max_depth=3, random_state=0
    ),
    "gb-binary": lambda: GradientBoostingClassifier(n_estimators=15, max_depth=4, random_state=0),
    "forest": lambda: RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0),
    "deep-tree": lambda: DecisionTreeClassifier(max_depth=9, random_state=0),
    "scaled-selected-gb": lambda: make_pipeline(
        StandardScaler(), SelectKBest(f_classif, k=4), GradientBoostingClassifier(n_estimators=8)
    ),
    "scaled-logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_margin_attributions_equal_brute_force(name: str, data: Any) -> None:
    x, y = data
    if name == "gb-binary":
        y = (y > 0).astype(int)
    est = MODELS[name]().fit(x, y)
    model = _described(est, x.shape[1])
    # The description reproduces the model's own probabilities.
    np.testing.assert_allclose(transform(model, model.margin(x)), est.predict_proba(x), atol=1e-9)
    rows, background = x[:4], x[100:140]
    method = linear_shap if model.kind == "linear" else tree_shap
    phi, base = method(model, rows, background)
    exact, exact_base = brute_force_shap(model.margin, rows, background)
    np.testing.assert_allclose(phi, exact, atol=1e-9)
    np.testing.assert_allclose(base, exact_base, atol=1e-12)
    np.testing.assert_allclose(base + phi.sum(axis=1), model.margin(rows), atol=1e-9)


@pytest.mark.parametrize(
    "est",
    [
        GradientBoostingRegressor(n_estimators=10, random_state=0),
        RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0),
        LinearRegression(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_regression_values_are_exact(est: Any, data: Any) -> None:
    x, _ = data
    target = x[:, 0] * 3 + np.sin(x[:, 1])
    est.fit(x, target)
    model = _described(est, x.shape[1])
    np.testing.assert_allclose(model.margin(x)[:, 0], est.predict(x), rtol=1e-9, atol=1e-9)
    method = linear_shap if model.kind == "linear" else tree_shap
    phi, _base = method(model, x[:3], x[200:230])
    exact, _ = brute_force_shap(model.margin, x[:3], x[200:230])
    np.testing.assert_allclose(phi, exact, atol=1e-9)


def test_paths_past_the_pattern_tables_stay_exact() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 9))
    y = (x.sum(axis=1) + x[:, 0] * x[:, 8] > 0).astype(int)
    model = _described(DecisionTreeClassifier(max_depth=14, random_state=1).fit(x, y), 9)
    assert model.paths.depth > 7  # beyond the pattern tables: the chunked route
    phi, _ = tree_shap(model, x[:2], x[50:70])
    exact, _ = brute_force_shap(model.margin, x[:2], x[50:70])
    np.testing.assert_allclose(phi, exact, atol=1e-9)


def test_permutation_estimate_is_additive_and_seeded(data: Any) -> None:
    x, y = data
    est = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    a, base = permutation_shap(est.predict_proba, x[:3], x[100:150], permutations=20, seed=3)
    b, _ = permutation_shap(est.predict_proba, x[:3], x[100:150], permutations=20, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(base + a.sum(axis=1), est.predict_proba(x[:3]), atol=1e-12)


def test_broken_descriptions_are_refused(data: Any) -> None:
    x, y = data
    est = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    header, arrays = describe_estimator(est, x.shape[1]).to_wire()
    bad = dict(arrays, yes=np.where(arrays["yes"] >= 0, 10_000, -1))
    with pytest.raises(TargetOutputError, match="child index"):
        exact_model(header, bad, inputs=x.shape[1], where="t")
    # A child pointing back at the root makes a cycle.
    cyclic = dict(arrays, yes=np.where(arrays["yes"] >= 0, 0, -1))
    with pytest.raises(TargetOutputError, match="not trees"):
        exact_model(header, cyclic, inputs=x.shape[1], where="t")
    with pytest.raises(TargetOutputError, match="feature"):
        exact_model(header, arrays, inputs=2, where="t")


@pytest.mark.parametrize("route", ["background-lookups", "background-bits", "pairwise"])
def test_every_route_gives_the_same_exact_values(
    route: str, data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityx.assess.explain import shapley

    x, y = data
    model = _described(MODELS["gb-multiclass"]().fit(x, y), x.shape[1])
    expected, _ = tree_shap(model, x[:3], x[100:130])  # the pattern tables
    if route == "background-lookups":  # as with few rows: never the full tables
        monkeypatch.setattr(shapley, "_CHUNK_ELEMENTS", 1)
        phi, _ = (
            shapley._by_background_patterns(
                model,
                shapley.satisfied_pairs(model, x[:3]),
                shapley.satisfied_pairs(model, x[100:130]),
                shapley._weights(model.paths.depth),
            ),
            None,
        )
        np.testing.assert_allclose(phi, expected, atol=1e-12)
        return
    monkeypatch.setattr(shapley, "_PATTERN_DEPTH", 0)
    if route == "pairwise":
        monkeypatch.setattr(shapley, "_BITS", 0)
    phi, _ = tree_shap(model, x[:3], x[100:130])
    np.testing.assert_allclose(phi, expected, atol=1e-12)


class _InProcess:
    """A predictor answering like the isolated one (describe and predict), for fast tests."""

    def __init__(self, est: Any, d: int, task: Any) -> None:
        from cityx.core import Feature, InputSchema, OutputSpec

        self._est = est
        self.schema = InputSchema(tuple(Feature(f"f{i}") for i in range(d)))
        self.outputs = OutputSpec(task, ())

    def call(self, method: str, payload: Any) -> Any:
        return describe_estimator(self._est, len(self.schema.features)).to_wire()

    def predict(self, batch: np.ndarray) -> Any:
        from cityx.core import Prediction

        return Prediction(np.asarray(self._est.predict(batch), dtype=np.float64))


def test_a_regression_is_explained_on_its_value(data: Any) -> None:
    import pandas as pd

    from cityx.assess.explain.predictor import explain_predictor
    from cityx.core import Task

    x, _ = data
    target = 2 * x[:, 0] + np.sin(x[:, 1])
    est = GradientBoostingRegressor(n_estimators=10, random_state=0).fit(x, target)
    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    doc = explain_predictor(_InProcess(est, x.shape[1], Task.REGRESSION), table, rows=[2]).to_json()
    assert doc["method"] == "tree-exact" and doc["output"] == "value" and doc["exact"]
    (row,) = doc["rows"]
    assert row["counterfactual"] is None and row["class"] == "value"
    total = row["base_value"] + sum(row["contributions"].values())
    assert total == pytest.approx(row["output"], rel=1e-6)
    assert row["output"] == pytest.approx(est.predict(x[2:3])[0], rel=1e-9)
    assert doc["fidelity"]["artifact_max_error"] < 1e-9
