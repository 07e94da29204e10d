"""Fixtures for the target tests: small real models, built at test time."""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cityx.core import Manifest
from cityx.data import file_sha256

FEATURES = ("flow", "occupancy", "speed", "weekend")
LABELS = ("free", "moderate", "heavy")


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of four detector features and a congestion label that follows them."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.uniform(0, 250, n).round(),
            rng.uniform(0, 100, n),
            rng.uniform(0, 70, n),
            rng.integers(0, 2, n),
        ]
    )
    score = x[:, 1] / 100 + (70 - x[:, 2]) / 140 + rng.normal(0, 0.08, n)
    y = np.select([score < 0.45, score < 0.85], ["free", "moderate"], "heavy")
    return x, y


def manifest_for(
    artifact: str,
    fmt: str,
    *,
    features: tuple[str, ...] = FEATURES,
    labels: tuple[str, ...] = LABELS,
    task: str = "classification",
    entrypoint: str | None = None,
    folder: Path | None = None,
) -> Manifest:
    """A minimal valid manifest for an artifact in a submission folder.

    With ``folder`` holding the artifact, the manifest carries its real digest
    (the worker refuses an artifact whose digest does not match).
    """
    path = folder / artifact if folder is not None else None
    digest = file_sha256(path) if path is not None and path.is_file() else "0" * 64
    artifact_section: dict[str, Any] = {"path": artifact, "format": fmt, "sha256": digest}
    if entrypoint:
        artifact_section["entrypoint"] = entrypoint
    outputs: dict[str, Any] = {"task": task, "label_column": "congestion"}
    if task == "classification":
        outputs["labels"] = list(labels)
    return Manifest.model_validate(
        {
            "system": {
                "id": "tiny",
                "vendor": "Test Vendor",
                "version": "1",
                "kind": "predictor",
                "intended_use": "Unit tests of the isolated targets.",
                "contact": "tests@example.com",
            },
            "artifact": artifact_section,
            "inputs": {"features": [{"name": f} for f in features]},
            "outputs": outputs,
            "data": {"holdout": "holdout.csv", "datasheet": "datasheet.md"},
        }
    )


@pytest.fixture(scope="session")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_data(600, 1)


ENTRYPOINT = """\
import os
import sys
import time

import numpy as np

LABELS = np.array(["free", "moderate", "heavy"])


class Model:
    classes_ = LABELS

    def predict(self, batch):
{body}
        return LABELS[(batch[:, 1] // 34).astype(int).clip(0, 2)]

    def predict_proba(self, batch):
        codes = (batch[:, 1] // 34).astype(int).clip(0, 2)
        return np.eye(3)[codes] * 0.8 + 0.2 / 3


def load():
{load}
    return Model()
"""


@pytest.fixture
def entrypoint_model(tmp_path: Path) -> Callable[..., tuple[Manifest, Path]]:
    """A trusted-code model whose predict runs ``body`` first (``load`` runs in load())."""

    def build(body: str = "pass", *, load: str = "pass") -> tuple[Manifest, Path]:
        folder = tmp_path / "entry"
        folder.mkdir(exist_ok=True)
        code = ENTRYPOINT.format(
            body=textwrap.indent(textwrap.dedent(body).strip(), " " * 8),
            load=textwrap.indent(textwrap.dedent(load).strip(), " " * 4),
        )
        (folder / "model.py").write_text(code)
        manifest = manifest_for("model.py", "entrypoint", entrypoint="model:load", folder=folder)
        return manifest, folder

    return build


@pytest.fixture
def make_manifest(tmp_path: Path) -> Callable[..., Manifest]:
    """``manifest_for`` for artifacts in ``tmp_path`` (test modules cannot import conftest).

    Call it once the artifact is written: the manifest carries its digest.
    """
    return functools.partial(manifest_for, folder=tmp_path)
