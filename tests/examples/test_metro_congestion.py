"""The embedded default submission, ``examples/submissions/metro-congestion``.

Its files are committed; these tests check that they agree with each other (manifest,
artifact digest, data columns and bounds) and that the sandbox reproduces committed
rows byte for byte: one of the example's SUMO runs (the cheapest) is simulated again
and turned into CSV rows by the generator's own code. Regenerating everything takes
minutes of simulation, too long for the suite.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from cityx.core import Level, Manifest
from cityx.core.schema import FeatureType
from cityx.submissions import validate_submission

from ..support.paths import SUBMISSIONS

FOLDER = SUBMISSIONS / "metro-congestion"
DATA = ("data/train.csv", "data/holdout.csv")
FEATURES = [
    "lanes",
    "flow_veh_h",
    "occupancy_pct",
    "area_occupancy_pct",
    "mean_speed_kmh",
    "free_flow_kmh",
    "speed_ratio",
    "halting_veh",
    "max_jam_m",
    "delay_s",
]
EXTRA = ["congestion_next", "district", "intersection", "approach", "seed", "demand"]
EXTRA += ["interval_start_s"]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("metro_make", FOLDER / "make_submission.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up by name while they are being made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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
    assert names == FEATURES
    assert manifest.outputs.labels == ["free", "moderate", "heavy"]
    assert manifest.outputs.label_column == "congestion_next"


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
    assert set(df["congestion_next"]) == set(manifest.outputs.labels)
    assert set(df["district"]) == {"NE", "NW", "SE", "SW"}
    assert (FOLDER / name).stat().st_size < 1_000_000


def test_holdout_comes_from_other_seeds_than_training() -> None:
    train, holdout = (pd.read_csv(FOLDER / name) for name in DATA)
    assert len(train) == 4032 and len(holdout) == 2016
    assert not set(train["seed"]) & set(holdout["seed"])
    # Every split holds every demand level and every approach of the grid.
    for frame in (train, holdout):
        assert sorted(set(frame["demand"])) == [1.0, 2.0, 3.0, 3.5]
        assert frame.groupby(["intersection", "approach"]).ngroups == 36
    # Each class is common enough to measure in both splits.
    for frame in (train, holdout):
        shares = frame["congestion_next"].value_counts(normalize=True)
        assert shares.min() > 0.05, shares.to_dict()


def test_model_takes_one_float_input_of_ten_features() -> None:
    import onnxruntime

    path = FOLDER / "model.onnx"
    assert path.stat().st_size < 1_000_000
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    assert (given.name, given.type, given.shape[1]) == ("input", "tensor(float)", 10)
    assert {o.name for o in session.get_outputs()} == {"label", "probabilities"}


def test_datasheet_is_filled_in() -> None:
    text = (FOLDER / "datasheet.md").read_text(encoding="utf-8")
    assert "$" not in text, "a template placeholder was left unfilled"
    for heading in ("Motivation", "Composition", "Collection process", "Uses", "Maintenance"):
        assert f"## {heading}" in text


@pytest.mark.slow
def test_one_run_of_the_example_is_reproduced_byte_for_byte(tmp_path: Path) -> None:
    from cityx.worlds.traffic.dataset import DatasetSpec, build_dataset

    make = generator()
    seed, demand = make.TRAIN_SEEDS[0], min(make.DEMANDS)  # the cheapest run
    spec = make.dataset_spec(workers=1)
    one = DatasetSpec(
        scenario=spec.scenario,
        seconds=spec.seconds,
        seeds=seed + 1,
        demands=(demand,),
        controller=spec.controller,
        interval_s=spec.interval_s,
    )
    if seed != 0:
        pytest.skip("the cheap check assumes the first training seed is 0")
    build_dataset(one, tmp_path / "one.parquet")
    train, _ = make.split(pd.read_parquet(tmp_path / "one.parquet"))
    make.write_csv(train, tmp_path / "train.csv")
    made = (tmp_path / "train.csv").read_text().splitlines()

    committed_text = (FOLDER / "data" / "train.csv").read_text().splitlines()
    committed = pd.read_csv(FOLDER / "data" / "train.csv", usecols=["seed", "demand"])
    rows = np.flatnonzero((committed["seed"] == seed) & (committed["demand"] == demand))
    assert len(rows) == 36 * 14
    assert made == [committed_text[0], *(committed_text[i + 1] for i in rows)]
