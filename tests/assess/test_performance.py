from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from cityx.assess import NominalPerformance, classification_metrics, confusion_counts
from cityx.assess import bootstrap as boot
from cityx.assess.performance import PerformanceDetails
from cityx.core import (
    CheckContext,
    CheckStatus,
    Direction,
    Feature,
    InputSchema,
    LabelledBatch,
    OutputSpec,
    Prediction,
    Severity,
    Task,
    Threshold,
)

LABELS = ("a", "b", "c")


class LookupPredictor:
    """An in-process predictor that answers from a fixed table (a fast fake)."""

    def __init__(self, answers: np.ndarray, task: Task = Task.CLASSIFICATION) -> None:
        self.answers = answers
        self.schema = InputSchema((Feature("row"),))
        self.outputs = OutputSpec(task, LABELS if task is Task.CLASSIFICATION else ())

    def predict(self, batch: np.ndarray) -> Prediction:
        return Prediction(self.answers[batch[:, 0].astype(int)])


def labelled(truth: np.ndarray) -> LabelledBatch:
    return LabelledBatch(np.arange(truth.size, dtype=np.float64)[:, None], truth, "mem")


def noisy(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(np.array(LABELS), n, p=[0.6, 0.3, 0.1])
    pred = np.where(rng.random(n) < 0.75, truth, rng.choice(np.array(LABELS), n))
    return truth, pred


def context(truth: np.ndarray, pred: np.ndarray, seed: int = 0, **kw: object) -> CheckContext:
    return CheckContext(
        submission_dir=Path("."),
        manifest=None,
        seed=seed,
        predictor=LookupPredictor(pred),
        holdout=labelled(truth),
        **kw,
    )  # type: ignore[arg-type]


def test_metrics_equal_scikit_learn() -> None:
    truth, pred = noisy(3000)
    result = NominalPerformance().run(context(truth, pred))
    m = result.metrics
    assert m["accuracy"].value == pytest.approx(accuracy_score(truth, pred), abs=1e-12)
    assert m["macro_f1"].value == pytest.approx(f1_score(truth, pred, average="macro"), abs=1e-12)
    recalls = recall_score(truth, pred, average=None, labels=list(LABELS))
    for label, expected in zip(LABELS, recalls, strict=True):
        assert m[f"recall[{label}]"].value == pytest.approx(expected, abs=1e-12)
    assert isinstance(result.details, PerformanceDetails)
    assert result.details.confusion[0][0] == int(((truth == "a") & (pred == "a")).sum())


def test_confidence_intervals_bracket_the_estimate_and_repeat_per_seed() -> None:
    truth, pred = noisy(1500)
    first = NominalPerformance().run(context(truth, pred, seed=3)).metrics
    again = NominalPerformance().run(context(truth, pred, seed=3)).metrics
    other = NominalPerformance().run(context(truth, pred, seed=4)).metrics
    for name, metric in first.items():
        assert metric.ci_low is not None and metric.ci_high is not None
        assert metric.ci_low <= metric.value <= metric.ci_high, name
        assert again[name] == metric
    assert other["accuracy"].ci_low != first["accuracy"].ci_low


def test_bootstrap_chunks_give_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    truth, pred = noisy(500)
    whole = NominalPerformance().run(context(truth, pred)).metrics
    monkeypatch.setattr(boot, "_CELLS_PER_CHUNK", 7 * 500)
    chunked = NominalPerformance().run(context(truth, pred)).metrics
    assert chunked == whole


def test_batched_confusion_matches_one_at_a_time() -> None:
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 9, size=(4, 50))
    batched = confusion_counts(codes, 3)
    for i in range(4):
        assert (batched[i] == confusion_counts(codes[i : i + 1], 3)[0]).all()
    m = classification_metrics(batched)
    assert m["recall"].shape == (4, 3)


def test_thresholds_make_findings_with_reasons() -> None:
    truth, pred = noisy(800)
    limits = {
        "accuracy": Threshold("accuracy", Direction.MIN, fail=0.95),
        "recall[*]": Threshold("recall[*]", Direction.MIN, conditional=0.99),
    }
    result = NominalPerformance().run(context(truth, pred, thresholds=limits))
    by_id = {f.id: f for f in result.findings}
    assert by_id["performance.nominal/accuracy"].severity is Severity.HIGH
    assert "below the fail limit 0.95" in by_id["performance.nominal/accuracy"].severity_reason
    assert {"performance.nominal/recall[a]", "performance.nominal/recall[c]"} <= set(by_id)
    assert result.status is CheckStatus.FAILED


def test_regression_metrics() -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(50, 10, 1000)
    pred = truth + rng.normal(1.0, 2.0, 1000)
    ctx = CheckContext(
        submission_dir=Path("."),
        manifest=None,
        seed=0,
        predictor=LookupPredictor(pred, Task.REGRESSION),
        holdout=labelled(truth),
    )
    result = NominalPerformance().run(ctx)
    residual = pred - truth
    assert result.metrics["mae"].value == pytest.approx(np.abs(residual).mean())
    assert result.metrics["rmse"].value == pytest.approx(np.sqrt((residual**2).mean()))
    assert isinstance(result.details, PerformanceDetails)
    assert result.details.residual_quantiles["p50"] == pytest.approx(np.median(residual))


def test_a_check_that_breaks_reports_an_error_instead_of_raising() -> None:
    truth, _ = noisy(10)
    ctx = CheckContext(submission_dir=Path("."), manifest=None, seed=0, holdout=labelled(truth))
    result = NominalPerformance().run(ctx)
    assert result.status is CheckStatus.ERROR and "needs a loaded predictor" in result.message
