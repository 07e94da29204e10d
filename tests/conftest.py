"""Shared fixtures: small real submissions built at test time, and the golden poisoning table."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

from .support import poisoning, services

# Property tests assert what holds, not how fast: on 2 shared cores a single example
# can take longer than hypothesis's default 200 ms deadline, which made them flaky.
settings.register_profile("cityx", deadline=None)
settings.load_profile("cityx")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``postgres`` or ``mqtt``: skip, or fail under CI=true, if it is down.

    tryfirst: decide before any fixture of the test starts to use the service.
    """
    for service in services.SERVICES:
        if item.get_closest_marker(service) is not None:
            services.require(service)


FEATURES = ("flow", "occupancy", "speed", "weekend")
LABELS = ("free", "moderate", "heavy")


def make_rows(n: int, seed: int) -> pd.DataFrame:
    """Loop-detector rows whose congestion follows occupancy and speed, with noise."""
    rng = np.random.default_rng(seed)
    occupancy = rng.uniform(0, 100, n).round(2)
    speed = np.clip(70 - 0.6 * occupancy + rng.normal(0, 6, n), 0, 70).round(2)
    flow = np.clip(occupancy * 2 + rng.normal(0, 10, n), 0, 250).round()
    weekend = rng.integers(0, 2, n)
    score = occupancy / 100 + (70 - speed) / 140 + rng.normal(0, 0.08, n)
    congestion = np.select([score < 0.45, score < 0.85], ["free", "moderate"], "heavy")
    return pd.DataFrame(
        {
            "flow": flow.astype(int),
            "occupancy": occupancy,
            "speed": speed,
            "weekend": weekend,
            "congestion": congestion,
        }
    )


MANIFEST = """\
schema_version = 2

[system]
id = "tiny-congestion"
vendor = "Test Vendor"
version = "1.0.0"
kind = "predictor"
intended_use = "Unit tests of the CityXchange trial runner."
contact = "tests@example.com"

[artifact]
path = "{path}"
format = "{format}"
sha256 = "{sha256}"
{entrypoint}

[[inputs.features]]
name = "flow"
type = "int"
unit = "veh/5min"
min = 0
max = 250

[[inputs.features]]
name = "occupancy"
unit = "%"
min = 0
max = 100

[[inputs.features]]
name = "speed"
unit = "km/h"
min = 0
max = 70

[[inputs.features]]
name = "weekend"
type = "bool"

[outputs]
task = "classification"
labels = ["free", "moderate", "heavy"]
label_column = "congestion"

[data]
training = "train.csv"
holdout = "holdout.csv"
datasheet = "datasheet.md"

[fairness]
not_applicable = "Synthetic rows for unit tests: no people or places to compare."
"""


def write_submission(
    folder: Path,
    artifact: bytes,
    *,
    name: str,
    fmt: str,
    entrypoint: str | None = None,
    holdout_rows: int = 400,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(artifact)
    make_rows(600, 1).to_csv(folder / "train.csv", index=False)
    make_rows(holdout_rows, 2).to_csv(folder / "holdout.csv", index=False)
    (folder / "datasheet.md").write_text("# Datasheet\nSynthetic rows for tests.\n")
    (folder / "cityx.toml").write_text(
        MANIFEST.format(
            path=name,
            format=fmt,
            sha256=hashlib.sha256(artifact).hexdigest(),
            entrypoint=f'entrypoint = "{entrypoint}"' if entrypoint else "",
        )
    )
    return folder


@pytest.fixture(scope="session")
def onnx_model_bytes() -> bytes:
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingClassifier

    train = make_rows(600, 1)
    x = train[list(FEATURES)].to_numpy(dtype=np.float32)
    model = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0)
    model.fit(x, train["congestion"].to_numpy())
    onx = to_onnx(
        model, x[:1], options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3}
    )
    return bytes(onx.SerializeToString())


@pytest.fixture
def tiny_submission(tmp_path: Path, onnx_model_bytes: bytes) -> Path:
    return write_submission(tmp_path / "tiny", onnx_model_bytes, name="model.onnx", fmt="onnx")


ENTRYPOINT = """\
import time

import numpy as np

LABELS = np.array(["free", "moderate", "heavy"])


class Model:
    def predict(self, batch):
        {body}
        return LABELS[(batch[:, 1] // 34).astype(int).clip(0, 2)]


def load():
    return Model()
"""


@pytest.fixture
def entrypoint_submission(tmp_path: Path) -> Callable[[str], Path]:
    """A trusted-code submission whose predict runs ``body`` first."""

    def build(body: str = "pass") -> Path:
        code = ENTRYPOINT.format(body=textwrap.dedent(body).strip()).encode()
        return write_submission(
            tmp_path / "entry", code, name="model.py", fmt="entrypoint", entrypoint="model:load"
        )

    return build


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(scope="session")
def metro_base() -> pd.DataFrame:
    """The clean poisoning table (tests/support/data), shared by attacks, defences and CLI."""
    return poisoning.metro_base()
