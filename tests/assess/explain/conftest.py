"""Small models for the explanation tests: fitted once, at most 10 features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cityx.core import Feature, InputSchema, OutputSpec, Task
from cityx.targets import IsolatedPredictor, LoadRequest


def make_data(n: int = 400, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int) + (x[:, 3] > 0.8)
    return x, y


@pytest.fixture(scope="session")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_data()


def isolated(
    path: Path,
    fmt: str,
    features: int,
    labels: tuple[str, ...],
    task: Task = Task.CLASSIFICATION,
    trusted: tuple[str, ...] = (),
) -> IsolatedPredictor:
    names = tuple(f"f{i}" for i in range(features))
    request = LoadRequest(
        artifact=path, format=fmt, features=names, task=task, labels=labels, trusted=trusted
    )
    return IsolatedPredictor(
        request=request,
        schema=InputSchema(tuple(Feature(n) for n in names)),
        outputs=OutputSpec(task, labels),
        cwd=path.parent,
    )


def to_onnx(model: Any, d: int, path: Path, **options: Any) -> Path:
    from skl2onnx import to_onnx as convert

    onx = convert(
        model, np.zeros((1, d), dtype=np.float32), options={id(model): {"zipmap": False}}, **options
    )
    path.write_bytes(onx.SerializeToString())
    return path
