from __future__ import annotations

from pathlib import Path

import numpy as np

from cityx.assess import InputContract, probes
from cityx.core import (
    CheckContext,
    Feature,
    FeatureType,
    InputSchema,
    OutputSpec,
    Prediction,
    Severity,
    TargetError,
    TargetTimeout,
    Task,
)

SCHEMA = InputSchema(
    (
        Feature("flow", FeatureType.INT, min=0, max=250),
        Feature("speed", min=0, max=70),
        Feature("weekend", FeatureType.BOOL),
    )
)


class Rule:
    """Answers by a speed rule; optionally refuses NaNs or hangs on some calls."""

    schema = SCHEMA
    outputs = OutputSpec(Task.CLASSIFICATION, ("free", "heavy"))

    def __init__(self, *, refuse_nan: bool = False, hang: bool = False) -> None:
        self.refuse_nan, self.hang = refuse_nan, hang

    def predict(self, batch: np.ndarray) -> Prediction:
        if self.hang:
            raise TargetTimeout("predict on 1000 rows took longer than 1 s")
        if self.refuse_nan and not np.isfinite(batch).all():
            raise TargetError("model raised ValueError: NaN in input")
        labels = np.where(batch[:, 1] < 30, "heavy", "free")
        return Prediction(labels)


def run(predictor: Rule) -> tuple[dict[str, float | None], dict[str, Severity]]:
    ctx = CheckContext(submission_dir=Path("."), manifest=None, seed=0, predictor=predictor)
    result = InputContract().run(ctx)
    return (
        {k: m.value for k, m in result.metrics.items()},
        {f.id: f.severity for f in result.findings},
    )


def test_probes_respect_types_and_bounds() -> None:
    batches = probes(SCHEMA, None, 500, np.random.default_rng(0))
    valid = batches["valid"]
    assert not SCHEMA.violations(valid).bad_rows.any()
    assert not SCHEMA.violations(batches["boundary"]).bad_rows.any()
    assert SCHEMA.violations(batches["out_of_range"]).bad_rows.all()
    assert (~np.isfinite(batches["malformed"])).any(axis=1).all()
    assert set(np.unique(valid[:, 2])) == {0.0, 1.0}


def test_a_model_that_scores_anything_gets_low_findings() -> None:
    metrics, findings = run(Rule())
    assert metrics["valid_inputs_answered"] == 1.0
    assert metrics["out_of_range_scored"] == 1.0 and metrics["malformed_scored"] == 1.0
    assert metrics["repeatable_outputs"] == 1.0
    assert findings == {
        "input.contract/out_of_range_scored": Severity.LOW,
        "input.contract/malformed_scored": Severity.LOW,
    }


def test_a_model_that_refuses_malformed_input_is_credited() -> None:
    metrics, findings = run(Rule(refuse_nan=True))
    assert metrics["malformed_scored"] == 0.0
    assert "input.contract/malformed_scored" not in findings


def test_a_hanging_model_is_a_high_finding_per_probe_kind() -> None:
    metrics, findings = run(Rule(hang=True))
    assert metrics["valid_inputs_answered"] == 0.0
    assert findings["input.contract/target-timeout/valid"] is Severity.HIGH
