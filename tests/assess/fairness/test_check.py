"""The fairness.groups check plugin, with an in-process predictor and a real CSV file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cityx.assess.fairness.check import GroupFairnessCheck
from cityx.assess.fairness.details import FairnessDetails
from cityx.core import (
    CheckContext,
    CheckStatus,
    Direction,
    Feature,
    InputSchema,
    LabelledBatch,
    Manifest,
    OutputSpec,
    Prediction,
    Task,
    Threshold,
)

LABELS = ("free", "heavy")


class TablePredictor:
    """Answers from a fixed column of the batch: a fast, exact fake for the check's logic."""

    schema = InputSchema((Feature("row"), Feature("answer")))
    outputs = OutputSpec(Task.CLASSIFICATION, LABELS)

    def predict(self, batch: np.ndarray) -> Prediction:
        return Prediction(np.asarray(LABELS)[batch[:, 1].astype(int)])


def _manifest(sensitive: list[str]) -> Manifest:
    return Manifest.model_validate(
        {
            "system": {"id": "t", "vendor": "v", "version": "1", "kind": "predictor",
                       "intended_use": "unit tests of the fairness check", "contact": "a@b.c"},
            "artifact": {"path": "m.onnx", "format": "onnx", "sha256": "0" * 64},
            "inputs": {"features": [{"name": "row"}, {"name": "answer"}]},
            "outputs": {"task": "classification", "labels": list(LABELS),
                        "label_column": "truth"},
            "data": {"holdout": "h.csv", "datasheet": "d.md", "sensitive": sensitive},
        }
    )  # fmt: skip


def _context(tmp_path: Path, sensitive: list[str]) -> CheckContext:
    rng = np.random.default_rng(0)
    n = 600
    district = rng.choice(["a", "b"], n)
    truth = rng.integers(0, 2, n)
    # District b is flagged "heavy" far less often: a disparate impact well below 0.8.
    answer = np.where(rng.random(n) < np.where(district == "a", 0.6, 0.2), 1, 0)
    df = pd.DataFrame(
        {"row": np.arange(n), "answer": answer, "truth": np.asarray(LABELS)[truth],
         "district": district}
    )  # fmt: skip
    path = tmp_path / "h.csv"
    df.to_csv(path, index=False)
    batch = LabelledBatch(
        features=df[["row", "answer"]].to_numpy(dtype=np.float64),
        truth=df["truth"].to_numpy().astype(str),
        source=str(path),
    )
    return CheckContext(
        submission_dir=tmp_path,
        manifest=_manifest(sensitive),
        seed=5,
        predictor=TablePredictor(),
        holdout=batch,
        thresholds={
            "disparate_impact[*]": Threshold("disparate_impact[*]", Direction.MIN, 0.5, 0.8)
        },
        options={"bootstrap": 200},
    )


def test_check_finds_disparate_impact_and_records_counts(tmp_path: Path) -> None:
    result = GroupFairnessCheck().run(_context(tmp_path, ["district"]))
    assert result.status is CheckStatus.FAILED, result.message
    di = result.metrics["disparate_impact[heavy]"]
    assert di.value is not None and di.value < 0.5 and di.ci_low is not None
    ids = {f.id for f in result.findings}
    assert "fairness.groups/disparate_impact[heavy]" in ids
    assert isinstance(result.details, FairnessDetails)
    counts = np.asarray(result.details.counts["heavy"])
    assert counts.sum() == 600 and counts.shape == (2, 4)
    assert result.details.groups == ("a", "b")
    again = GroupFairnessCheck().run(_context(tmp_path, ["district"]))
    assert again.metrics == result.metrics  # the same seed gives the same intervals


def test_check_is_skipped_without_sensitive_columns(tmp_path: Path) -> None:
    result = GroupFairnessCheck().run(_context(tmp_path, []))
    assert result.status is CheckStatus.SKIPPED
    assert "names no sensitive columns" in result.message


def test_a_missing_sensitive_column_is_an_error_naming_it(tmp_path: Path) -> None:
    result = GroupFairnessCheck().run(_context(tmp_path, ["distrikt"]))
    assert result.status is CheckStatus.ERROR
    assert "sensitive column 'distrikt' is missing" in result.message
