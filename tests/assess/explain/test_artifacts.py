"""Attributions on the submitted artifact: read inside the isolated worker, exact on its margin.

ONNX stores thresholds in float32 and compares float32 inputs; the
description keeps that, so our margins reproduce onnxruntime's outputs and
the attributions equal brute force on those margins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cityx.assess.explain.model import class_names, transform
from cityx.assess.explain.predictor import describe_model, explain_predictor
from cityx.assess.explain.shapley import brute_force_shap, tree_shap
from cityx.core import DataError, InputError

from .conftest import isolated, to_onnx

LABELS3 = ("0", "1", "2")


def _frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "binary"),
    [("forest", False), ("boosted-binary", True), ("scaled-boosted", False)],
)
def test_onnx_trees_are_exact_on_the_artifact(
    name: str, binary: bool, data: Any, tmp_path: Path
) -> None:
    x, y = data
    if binary:
        y = (y > 0).astype(int)
    est = {
        "forest": RandomForestClassifier(n_estimators=6, max_depth=5, random_state=0),
        "boosted-binary": GradientBoostingClassifier(n_estimators=10, random_state=0),
        "scaled-boosted": make_pipeline(
            StandardScaler(), GradientBoostingClassifier(n_estimators=8)
        ),
    }[name].fit(x, y)
    labels = ("0", "1") if binary else LABELS3
    path = to_onnx(est, x.shape[1], tmp_path / "m.onnx")
    with isolated(path, "onnx", x.shape[1], labels) as predictor:
        model, why = describe_model(predictor, x.shape[1])
        assert model is not None, why
        own = predictor.predict(x[:200])
    names = class_names(model, labels)
    ours = transform(model, model.margin(x[:200]))[:, [names.index(c) for c in own.classes]]
    assert np.abs(ours - own.scores).max() < 1e-5  # onnxruntime computes in float32
    phi, _base = tree_shap(model, x[:3], x[300:330])
    exact, _ = brute_force_shap(model.margin, x[:3], x[300:330])
    np.testing.assert_allclose(phi, exact, atol=1e-9)


@pytest.mark.slow
def test_lightgbm_booster_is_described_in_the_worker(data: Any, tmp_path: Path) -> None:
    import lightgbm

    x, y = data
    booster = lightgbm.train(
        {"objective": "multiclass", "num_class": 3, "num_leaves": 8, "verbose": -1},
        lightgbm.Dataset(x, y),
        num_boost_round=10,
    )
    path = tmp_path / "model.lgb"
    booster.save_model(str(path))
    with isolated(path, "lightgbm", x.shape[1], LABELS3) as predictor:
        model, why = describe_model(predictor, x.shape[1])
    assert model is not None, why
    np.testing.assert_allclose(
        model.margin(x[:100]), booster.predict(x[:100], raw_score=True), atol=1e-9
    )
    phi, _ = tree_shap(model, x[:2], x[200:220])
    exact, _ = brute_force_shap(model.margin, x[:2], x[200:220])
    np.testing.assert_allclose(phi, exact, atol=1e-9)


def test_explain_predictor_json_contract_and_fidelity(data: Any, tmp_path: Path) -> None:
    x, y = data
    est = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(x, y)
    path = to_onnx(est, x.shape[1], tmp_path / "m.onnx")
    table = _frame(x)
    with isolated(path, "onnx", x.shape[1], LABELS3) as predictor:
        margin = explain_predictor(predictor, table, rows=[0, 7], seed=1).to_json()
        prob = explain_predictor(predictor, table, rows=[0], output="probability", seed=1).to_json()
        forced = explain_predictor(predictor, table, rows=[0], klass="2", seed=1).to_json()
    assert margin["method"] == "tree-exact" and margin["exact"] and margin["output"] == "margin"
    assert margin["background_rows"] == 100
    for row in margin["rows"]:
        total = row["base_value"] + sum(row["contributions"].values())
        assert abs(total - row["output"]) < 1e-5
        assert row["class"] == row["prediction"]
        cf = row["counterfactual"]
        assert cf is None or cf["prediction"] != row["prediction"]
    f = margin["fidelity"]
    assert f["additivity_max_error"] < 1e-9 and f["artifact_max_error"] < 1e-5
    assert f["deletion_auc"] >= f["random_deletion_auc"]  # top features matter more than chance
    assert -1 <= f["stability"] <= 1 and f["method_agreement"] > 0.5
    assert set(margin["global"]["mean_abs"]) == set(LABELS3)
    # Probabilities: not exact, but additive against the artifact's own output, error stated.
    assert prob["exact"] is False and prob["output"] == "probability"
    assert prob["fidelity"]["additivity_max_error"] < 1e-5
    assert prob["fidelity"]["approximation_error"] is not None
    assert forced["rows"][0]["class"] == "2"


@pytest.mark.slow
def test_a_model_without_an_exact_method_says_so(data: Any, tmp_path: Path) -> None:
    import skops.io

    x, y = data
    est = KNeighborsClassifier(n_neighbors=5).fit(x, y)
    path = tmp_path / "knn.skops"
    skops.io.dump(est, path)
    trusted = tuple(skops.io.get_untrusted_types(file=path))
    with isolated(path, "skops", x.shape[1], LABELS3, trusted=trusted) as predictor:
        result = explain_predictor(predictor, _frame(x[:100]), rows=[1], seed=0, query_budget=150)
    obj = result.to_json()
    assert obj["method"] == "permutation" and obj["exact"] is False
    assert "KNeighborsClassifier" in obj["note"] and "model calls per row" in obj["note"]
    assert obj["fidelity"]["run_to_run_error"] is not None
    row = obj["rows"][0]
    assert abs(row["base_value"] + sum(row["contributions"].values()) - row["output"]) < 1e-9


def test_bad_rows_and_columns_are_named(data: Any, tmp_path: Path) -> None:
    x, y = data
    path = to_onnx(
        RandomForestClassifier(n_estimators=2, random_state=0).fit(x, y), 6, tmp_path / "m.onnx"
    )
    predictor = isolated(path, "onnx", x.shape[1], LABELS3)
    with pytest.raises(DataError, match="'f3'"):
        explain_predictor(predictor, _frame(x).drop(columns=["f3"]))
    with pytest.raises(InputError, match="row 9999"):
        explain_predictor(predictor, _frame(x), rows=[9999])
    predictor.close()


def _tree_ensemble_v5(path: Path) -> Path:
    """A hand-made opset-5 ``TreeEnsemble`` (two trees, "<=" and ">" splits): no exporter
    at hand writes this operator yet."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node(
        "TreeEnsemble",
        ["X"],
        ["Y"],
        domain="ai.onnx.ml",
        nodes_featureids=[0, 1, 2],
        nodes_splits=numpy_helper.from_array(np.array([0.5, 0.3, 0.1], dtype=np.float32)),
        nodes_modes=numpy_helper.from_array(np.array([0, 0, 3], dtype=np.uint8)),
        nodes_truenodeids=[1, 1, 3],
        nodes_trueleafs=[0, 1, 1],
        nodes_falsenodeids=[0, 2, 4],
        nodes_falseleafs=[1, 1, 1],
        leaf_targetids=[0, 0, 0, 0, 0],
        leaf_weights=numpy_helper.from_array(
            np.array([1.0, 2.0, 3.0, -1.0, 0.5], dtype=np.float32)
        ),
        tree_roots=[0, 2],
        n_targets=1,
        aggregate_function=1,
        post_transform=0,
    )
    graph = helper.make_graph(
        [node],
        "trees",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)]
    )
    model.ir_version = 10
    onnx.save(model, str(path))
    return path


@pytest.mark.slow
def test_the_opset5_tree_ensemble_is_read(tmp_path: Path) -> None:
    from cityx.core import Task

    path = _tree_ensemble_v5(tmp_path / "v5.onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (50, 3))
    with isolated(path, "onnx", 3, (), task=Task.REGRESSION) as predictor:
        model, why = describe_model(predictor, 3)
        own = np.asarray(predictor.predict(x).values, dtype=np.float64)
    assert model is not None, why
    np.testing.assert_allclose(model.margin(x)[:, 0], own, atol=1e-6)
    phi, _ = tree_shap(model, x[:4], x[10:40])
    exact, _ = brute_force_shap(model.margin, x[:4], x[10:40])
    np.testing.assert_allclose(phi, exact, atol=1e-12)
