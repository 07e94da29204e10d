"""Each artifact format answers in the worker exactly as the model does in process.

Load refusals are checked by calling the adapter in this process: a worker
start costs seconds (it imports scikit-learn), and the worker's handling of
load errors is tested once, in test_isolated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cityx.core import Manifest, TargetError, TargetLoadError, TargetOutputError
from cityx.targets import LoadRequest, open_predictor

Data = tuple[np.ndarray, np.ndarray]
MakeManifest = Callable[..., Manifest]
COLUMNS = ["flow", "occupancy", "speed", "weekend"]


@pytest.fixture(scope="module")
def boosted(data: Data) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    x, y = data
    model = GradientBoostingClassifier(n_estimators=15, max_depth=2, random_state=0)
    return model.fit(x.astype(np.float32), y)


def probe(x: np.ndarray, *, seed: int = 3) -> np.ndarray:
    """Rows near the training rows, not equal to them."""
    rng = np.random.default_rng(seed)
    return x[rng.integers(0, x.shape[0], 400)] + rng.normal(0, 0.5, (400, x.shape[1]))


@pytest.mark.parametrize("zipmap", [False, True], ids=["tensor", "zipmap"])
def test_onnx_matches_the_model_in_process(
    tmp_path: Path, make_manifest: MakeManifest, data: Data, boosted: Any, zipmap: bool
) -> None:
    from skl2onnx import to_onnx

    x = probe(data[0])
    onx = to_onnx(
        boosted,
        x[:1].astype(np.float32),
        options={id(boosted): {"zipmap": zipmap}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    (tmp_path / "model.onnx").write_bytes(onx.SerializeToString())
    with open_predictor(make_manifest("model.onnx", "onnx"), tmp_path) as predictor:
        got = predictor.predict(x)
    x32 = x.astype(np.float32)
    assert got.classes == tuple(boosted.classes_)
    np.testing.assert_array_equal(got.values, boosted.predict(x32))
    assert got.scores is not None and got.scores.dtype == np.float64
    np.testing.assert_allclose(got.scores, boosted.predict_proba(x32), atol=1e-5)


def test_onnx_that_reads_other_features_or_is_damaged_does_not_load(
    tmp_path: Path, make_manifest: MakeManifest, data: Data, boosted: Any
) -> None:
    from skl2onnx import to_onnx

    x, _ = data
    onx = to_onnx(boosted, x[:1].astype(np.float32), options={id(boosted): {"zipmap": False}})
    (tmp_path / "model.onnx").write_bytes(onx.SerializeToString())
    three = make_manifest("model.onnx", "onnx", features=("flow", "occupancy", "speed"))
    with pytest.raises(TargetLoadError, match=r"reads 4 features but the manifest declares 3"):
        open_predictor(three, tmp_path).start()

    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07garbage, not a protobuf" * 10)
    with pytest.raises(TargetLoadError) as info:
        open_predictor(make_manifest("broken.onnx", "onnx"), tmp_path).start()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "broken.onnx"))
    assert "onnxruntime cannot load the model" in message


def test_skops_refuses_untrusted_types_unless_trusted(
    tmp_path: Path, make_manifest: MakeManifest, data: Data, boosted: Any
) -> None:
    import skops.io

    from cityx.targets.skops_model import SkopsModel

    skops.io.dump(boosted, tmp_path / "model.skops")
    manifest = make_manifest("model.skops", "skops")
    with pytest.raises(TargetLoadError, match=r"sklearn\.tree\._tree\.Tree") as info:
        SkopsModel.load(LoadRequest.for_submission(manifest, tmp_path))
    assert "--trust-pickle" in str(info.value) and "\n" not in str(info.value)
    assert SkopsModel.load(LoadRequest.for_submission(manifest, tmp_path, trust_pickle=True))

    x = probe(data[0])
    trusted = ["sklearn.tree._tree.Tree"]
    with open_predictor(manifest, tmp_path, trusted=trusted) as predictor:
        got = predictor.predict(x)
    np.testing.assert_array_equal(got.values, boosted.predict(x))
    assert got.scores is not None
    np.testing.assert_allclose(got.scores, boosted.predict_proba(x), atol=1e-5)


def test_skops_model_fitted_on_named_columns_gets_them_by_name(
    tmp_path: Path, make_manifest: MakeManifest, data: Data
) -> None:
    import pandas as pd
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from cityx.targets.skops_model import SkopsModel

    x, y = data
    # Fitted with the columns in another order than the manifest's.
    order = ["speed", "flow", "weekend", "occupancy"]
    model = LogisticRegression(max_iter=2000).fit(pd.DataFrame(x, columns=COLUMNS)[order], y)
    skops.io.dump(model, tmp_path / "model.skops")
    rows = probe(x, seed=4)
    # In process, so that a feature-name warning from scikit-learn fails the test.
    request = LoadRequest.for_submission(make_manifest("model.skops", "skops"), tmp_path)
    got = SkopsModel.load(request).predict(rows)
    expected = pd.DataFrame(rows, columns=COLUMNS)[order]
    np.testing.assert_array_equal(got.values, model.predict(expected))
    assert got.scores is not None
    np.testing.assert_allclose(got.scores, model.predict_proba(expected), atol=1e-5)

    renamed = make_manifest("model.skops", "skops", features=("flow", "occ", "speed", "weekend"))
    with pytest.raises(TargetLoadError, match=r"fitted on other features: it reads occupancy"):
        SkopsModel.load(LoadRequest.for_submission(renamed, tmp_path))


def test_pickle_loads_only_when_trusted(
    tmp_path: Path, make_manifest: MakeManifest, data: Data, boosted: Any
) -> None:
    import joblib

    joblib.dump(boosted, tmp_path / "model.joblib")
    manifest = make_manifest("model.joblib", "pickle")
    with pytest.raises(TargetLoadError, match=r"--trust-pickle") as info:
        open_predictor(manifest, tmp_path).start()
    assert "\n" not in str(info.value)

    x = probe(data[0])
    with open_predictor(manifest, tmp_path, trust_pickle=True) as predictor:
        got = predictor.predict(x)
    np.testing.assert_array_equal(got.values, boosted.predict(x))
    assert got.scores is not None
    np.testing.assert_allclose(got.scores, boosted.predict_proba(x), atol=1e-5)


def train_booster(x: np.ndarray, y: np.ndarray, classes: int) -> Any:
    import lightgbm

    codes = np.minimum(np.searchsorted(np.array(["free", "heavy", "moderate"]), y), classes - 1)
    params = (
        {"objective": "multiclass", "num_class": 3} if classes == 3 else {"objective": "binary"}
    )
    return lightgbm.train(
        {**params, "verbose": -1, "num_threads": 1}, lightgbm.Dataset(x, label=codes), 10
    )


def test_lightgbm_maps_class_codes_to_the_manifest_labels(
    tmp_path: Path, make_manifest: MakeManifest, data: Data
) -> None:
    x, y = data
    booster = train_booster(x, y, 3)
    booster.save_model(tmp_path / "model.txt")
    rows = probe(x)
    with open_predictor(make_manifest("model.txt", "lightgbm"), tmp_path) as predictor:
        got = predictor.predict(rows)
    expected = booster.predict(rows)
    assert got.classes == ("free", "moderate", "heavy") and got.scores is not None
    np.testing.assert_allclose(got.scores, expected, atol=1e-5)
    np.testing.assert_array_equal(got.values, np.array(got.classes)[expected.argmax(axis=1)])


def test_lightgbm_binary_gives_two_columns_and_checks_the_labels(
    tmp_path: Path, make_manifest: MakeManifest, data: Data
) -> None:
    from cityx.targets.lightgbm_model import LightgbmModel

    x, y = data
    booster = train_booster(x, y, 2)
    booster.save_model(tmp_path / "model.txt")
    labels = ("free", "moderate")
    manifest = make_manifest("model.txt", "lightgbm", labels=labels)
    model = LightgbmModel.load(LoadRequest.for_submission(manifest, tmp_path))
    p = booster.predict(x[:50])
    got = model.predict(x[:50])
    assert got.classes == labels and got.scores is not None
    np.testing.assert_allclose(got.scores, np.column_stack([1 - p, p]), atol=1e-12)
    np.testing.assert_array_equal(got.values, np.where(p > 0.5, "moderate", "free"))

    too_many = make_manifest("model.txt", "lightgbm")
    with pytest.raises(TargetLoadError, match=r"has 2 classes but the manifest declares 3"):
        LightgbmModel.load(LoadRequest.for_submission(too_many, tmp_path))


def test_lightgbm_regression_gives_values(
    tmp_path: Path, make_manifest: MakeManifest, data: Data
) -> None:
    import lightgbm

    from cityx.targets.lightgbm_model import LightgbmModel

    x, _ = data
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(x, label=x[:, 1] * 2 + 1),
        10,
    )
    booster.save_model(tmp_path / "model.txt")
    manifest = make_manifest("model.txt", "lightgbm", task="regression")
    got = LightgbmModel.load(LoadRequest.for_submission(manifest, tmp_path)).predict(x[:50])
    assert got.scores is None and got.values.dtype == np.float64
    np.testing.assert_allclose(got.values, booster.predict(x[:50]), atol=1e-9)


def test_entrypoint_regression_refuses_non_finite_values(
    tmp_path: Path, make_manifest: MakeManifest
) -> None:
    (tmp_path / "reg.py").write_text(
        "import numpy as np\n"
        "class Model:\n"
        "    def predict(self, batch):\n"
        "        return np.where(batch[:, 0] > 0, batch[:, 1], np.nan)\n"
        "def load():\n"
        "    return Model()\n"
    )
    manifest = make_manifest("reg.py", "entrypoint", task="regression", entrypoint="reg:load")
    with open_predictor(manifest, tmp_path) as predictor:
        ok = predictor.predict(np.array([[1.0, 2.0, 0, 0], [1.0, 3.0, 0, 0]]))
        np.testing.assert_array_equal(ok.values, [2.0, 3.0])
        with pytest.raises(TargetOutputError, match=r"1 non-finite values"):
            predictor.predict(np.array([[0.0, 2.0, 0, 0], [1.0, 3.0, 0, 0]]))


def test_entrypoint_must_name_a_callable_returning_a_model(
    tmp_path: Path, make_manifest: MakeManifest
) -> None:
    (tmp_path / "vendor.py").write_text("def load():\n    return 42\n")
    wrong = make_manifest("vendor.py", "entrypoint", entrypoint="vendor:build")
    with pytest.raises(TargetLoadError, match=r"module 'vendor' has no 'build'"):
        open_predictor(wrong, tmp_path).start()
    manifest = make_manifest("vendor.py", "entrypoint", entrypoint="vendor:load")
    with pytest.raises(TargetError, match=r"gives a int, which has no predict"):
        open_predictor(manifest, tmp_path).start()


def test_onnx_without_the_onnx_package_checks_the_column_order(
    tmp_path: Path,
    make_manifest: MakeManifest,
    data: Data,
    boosted: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from skl2onnx import to_onnx

    from cityx.targets.onnx_model import OnnxModel

    x = probe(data[0])
    onx = to_onnx(boosted, x[:1].astype(np.float32), options={id(boosted): {"zipmap": False}})
    (tmp_path / "model.onnx").write_bytes(onx.SerializeToString())
    monkeypatch.setitem(sys.modules, "onnx", None)  # class names cannot be read from the graph
    # The manifest lists the labels in another order than the model's columns.
    manifest = make_manifest("model.onnx", "onnx")
    wrong = OnnxModel.load(LoadRequest.for_submission(manifest, tmp_path))
    with pytest.raises(TargetError, match=r"do not follow the manifest's label order"):
        wrong.predict(x)
    in_order = make_manifest("model.onnx", "onnx", labels=tuple(boosted.classes_))
    got = OnnxModel.load(LoadRequest.for_submission(in_order, tmp_path)).predict(x)
    np.testing.assert_allclose(got.scores, boosted.predict_proba(x.astype(np.float32)), atol=1e-5)
