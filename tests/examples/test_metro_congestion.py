"""The embedded default submission, ``examples/submissions/metro-congestion``.

Its files are committed; these tests check that they agree with each other (manifest,
artifact digest, data columns and bounds) and that the generator reproduces the
committed data byte for byte from the default seed.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cityx.core import Level, Manifest
from cityx.core.schema import FeatureType
from cityx.submissions import validate_submission

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "submissions" / "metro-congestion"
DATA = ("data/train.csv", "data/holdout.csv")
EXTRA = ["congestion", "district", "sensor_id", "timestamp"]


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    with (FOLDER / "cityx.toml").open("rb") as fh:
        return Manifest.model_validate(tomllib.load(fh))


def test_manifest_validates_and_names_the_committed_model(manifest: Manifest) -> None:
    assert manifest.system.id == "metro-congestion"
    assert manifest.artifact.path == "model.onnx"
    digest = hashlib.sha256((FOLDER / manifest.artifact.path).read_bytes()).hexdigest()
    assert digest == manifest.artifact.sha256, "regenerate with make_submission.py"
    names = [f.name for f in manifest.inputs.features]
    approaches = [f"{m}_{a}" for a in "nesw" for m in ("flow", "occupancy", "speed")]
    assert names == [*approaches, "hour_sin", "hour_cos", "weekend"]
    assert manifest.outputs.labels == ["free", "moderate", "heavy"]


def test_the_whole_folder_passes_submission_validation() -> None:
    result = validate_submission(FOLDER)
    assert result.ok, result.problems
    assert not [p for p in result.problems if p.level is Level.WARNING]


@pytest.mark.parametrize("name", DATA)
def test_data_follows_the_declared_schema(manifest: Manifest, name: str) -> None:
    df = pd.read_csv(FOLDER / name)
    names = [f.name for f in manifest.inputs.features]
    assert list(df.columns) == [*names, *EXTRA]
    assert not df.isna().any().any()
    for feature in manifest.inputs.features:
        column = df[feature.name]
        if feature.type is FeatureType.FLOAT:
            assert column.dtype == np.float64, feature.name
        else:
            assert column.dtype == np.int64, f"{feature.name} must be written as integers"
        low = 0 if feature.type is FeatureType.BOOL else feature.min
        high = 1 if feature.type is FeatureType.BOOL else feature.max
        assert low is not None and high is not None
        assert column.between(low, high).all(), feature.name
    assert set(df["congestion"]) == set(manifest.outputs.labels)
    assert set(df["district"]) == {"centre", "north", "harbour", "east"}
    assert (FOLDER / name).stat().st_size < 1_000_000


def test_holdout_is_later_than_training() -> None:
    train, holdout = (pd.read_csv(FOLDER / name, usecols=["timestamp"]) for name in DATA)
    assert len(train) == 6000 and len(holdout) == 2000
    # The label is the next interval, so the last training row must end 5 minutes before.
    last = pd.Timestamp(train["timestamp"].max()) + pd.Timedelta(minutes=5)
    assert last < pd.Timestamp(holdout["timestamp"].min())


def test_model_takes_one_float_input_of_fifteen_features() -> None:
    import onnxruntime

    path = FOLDER / "model.onnx"
    assert path.stat().st_size < 1_000_000
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    assert (given.name, given.type, given.shape[1]) == ("input", "tensor(float)", 15)
    assert {o.name for o in session.get_outputs()} == {"label", "probabilities"}


def test_datasheet_is_filled_in() -> None:
    text = (FOLDER / "datasheet.md").read_text(encoding="utf-8")
    assert "$" not in text, "a template placeholder was left unfilled"
    for heading in ("Motivation", "Composition", "Collection process", "Uses", "Maintenance"):
        assert f"## {heading}" in text


@pytest.mark.slow
def test_generator_reproduces_the_committed_data(tmp_path: Path) -> None:
    # A separate interpreter with warnings as errors: the script must not leak any.
    done = subprocess.run(
        [sys.executable, "-W", "error", str(FOLDER / "make_submission.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in DATA:
        made, committed = (tmp_path / name).read_bytes(), (FOLDER / name).read_bytes()
        assert made == committed, f"{name} differs from the committed file for seed 7"
    made_manifest = tomllib.loads((tmp_path / "cityx.toml").read_text(encoding="utf-8"))
    assert (
        Manifest.model_validate(made_manifest).artifact.sha256
        == hashlib.sha256((tmp_path / "model.onnx").read_bytes()).hexdigest()
    )
