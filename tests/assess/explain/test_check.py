"""The explain.fidelity check on the metro-congestion example (an ONNX gradient-boosted model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cityx.assess.explain.aiverify import explain_aiverify_result
from cityx.assess.explain.check import ExplainFidelity, correlation_ratio
from cityx.assess.explain.details import ExplainDetails, explain_section
from cityx.core import CheckContext, LabelledBatch, TrialResults
from cityx.governance import default_policy_path, load_policy
from cityx.submissions import open_submission

EXAMPLE = Path(__file__).parents[3] / "examples" / "submissions" / "metro-congestion"


def test_correlation_ratio_finds_a_group_proxy() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 3000)
    x = np.column_stack([codes * 5.0 + rng.normal(0, 1, 3000), rng.normal(0, 1, 3000)])
    eta = correlation_ratio(x, codes)
    assert eta[0] > 0.9 and eta[1] < 0.1


@pytest.mark.slow
def test_check_on_the_example_submission(tmp_path: Path) -> None:
    submission = open_submission(EXAMPLE)
    manifest = submission.manifest
    df = pd.read_csv(EXAMPLE / "data" / "holdout.csv")
    names = list(manifest.input_schema().names)
    batch = LabelledBatch(
        features=df[names].to_numpy(dtype=np.float64),
        truth=df[manifest.outputs.label_column].to_numpy(),
        source=str(EXAMPLE / "data" / "holdout.csv"),
    )
    policy = load_policy(default_policy_path()).checks["explain.fidelity"]
    with submission.predictor() as predictor:
        ctx = CheckContext(
            submission_dir=EXAMPLE,
            manifest=manifest,
            seed=0,
            predictor=predictor,
            holdout=batch,
            thresholds=policy.thresholds,
            options={**ExplainFidelity.option_defaults, **policy.options},
        )
        result = ExplainFidelity().run(ctx)
    details = result.details
    assert isinstance(details, ExplainDetails)
    assert details.method == "tree-exact" and details.exact
    assert result.metrics["additivity_max_error"].value < 1e-5
    assert result.metrics["deletion_gain"].value > 0
    assert details.sensitive == ("district",)
    assert ExplainDetails.from_json(details.to_json()) == details
    section = explain_section(details, result.metrics, "explain")
    # A mean |attribution| chart per class, then a dependence plot per top feature.
    assert len(section.plots) == 6 and "<svg" in section.plots[0].svg
    assert len(details.dependence) == 3 and details.dependence_class in (
        "free",
        "moderate",
        "heavy",
    )
    assert "<circle" in section.plots[3].svg
    assert not any(f.id.endswith("additivity_max_error") for f in result.findings)
    # AI Verify's SHAP-toolbox result schema, from the same details.
    exported = explain_aiverify_result(details, TrialResults(trial_id="t"))
    out = exported.output
    assert exported.cid == "shap_toolbox" and out["feature_names"] == names
    res = out["results"]
    assert res["num_global_classes"] == 3 and len(res["global"][0]) == len(names)
    assert len(res["global_samples"]) == len(res["global_shap_values"][0]) == 3
    assert len(res["single_shap_values"][0]) == len(names)
