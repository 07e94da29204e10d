"""``fairness.groups`` in AI Verify's format: the toolbox's output schema, correct
definitions, and AI Verify's style beside ours."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import numpy as np
import pytest

from cityx.assess.fairness.aiverify import FMTC_CID, FMTC_GID, class_results, fmtc_output
from cityx.assess.fairness.details import FairnessDetails
from cityx.core import InputError

# AI Verify's own output.schema.json for the toolbox, vendored from its PyPI wheel
# (see cityx/governance/schemas/README.md for the version).
FMTC_OUTPUT_SCHEMA = json.loads(
    (
        resources.files("cityx.governance")
        / "schemas"
        / "fairness_metrics_toolbox_for_classification.output.schema.json"
    ).read_text("utf-8")
)

# Per group: tn, fp, fn, tp. Group "b|night" has no true positives: its TPR is undefined.
COUNTS = np.array([[50, 10, 5, 35], [40, 5, 0, 0], [20, 2, 8, 10]])
GROUPS = ["a|day", "b|night", "c|day"]


def test_rates_use_each_groups_own_counts_and_leave_undefined_out() -> None:
    ours, style, undefined = class_results(COUNTS, GROUPS)
    tpr = {tuple(e["group"]): e["metric"] for e in ours["True Positive Rate"]}
    assert tpr == {("a", "day"): 35 / 40, ("c", "day"): 10 / 18}
    assert "True Positive Rate [b|night]" in undefined
    # AI Verify's style: the group's TP over all groups' positives, 0 for undefined.
    theirs = [e["aiverify_style"] for e in style["True Positive Rate"]]
    assert theirs == pytest.approx([35 / 58, 0.0, 10 / 58])
    assert sum(theirs) == pytest.approx(45 / 58)  # they add up to the overall TPR
    assert style["True Positive Rate"][1]["ours"] is None


def test_pairs_give_disparate_impact_and_selection_parity_of_rates() -> None:
    ours, style, _ = class_results(COUNTS, GROUPS)
    rate = (COUNTS[:, 1] + COUNTS[:, 3]) / COUNTS.sum(axis=1)  # 0.45, 0.111.., 0.3
    di = {tuple(e["group"]): e["metric"] for e in ours["Disparate Impact"]}
    assert di[("a", "day", "b", "night")] == pytest.approx(rate[0] / rate[1])
    assert di[("b", "night", "c", "day")] == pytest.approx(rate[1] / rate[2])
    esp = {tuple(e["group"]): e["metric"] for e in ours["Equal Selection Parity"]}
    assert esp[("a", "day", "c", "day")] == pytest.approx(abs(rate[0] - rate[2]))
    counts_style = style["Equal Selection Parity"][1]["aiverify_style"]  # a vs c
    assert counts_style == abs((10 + 35) - (2 + 10))


def test_output_validates_against_the_toolbox_schema() -> None:
    details = FairnessDetails(
        sensitive=("district", "band"),
        label_column="congested",
        bootstrap=0,
        source="holdout.csv",
        task="classification",
        groups=tuple(GROUPS),
        labels=("no", "yes"),
        counts={
            "yes": tuple(map(tuple, COUNTS.tolist())),
            "no": tuple(map(tuple, COUNTS[:, [3, 2, 1, 0]].tolist())),
        },
    )
    output, comparison = fmtc_output(details)
    jsonschema.validate(output, FMTC_OUTPUT_SCHEMA)
    assert output["output_classes"] == ["no", "yes"]
    assert "AI Verify 2.x" in comparison["note"]
    regression = FairnessDetails(("district",), "flow", 0, "holdout.csv", "regression", ("a",))
    with pytest.raises(InputError, match="for classifiers"):
        fmtc_output(regression)


def test_ids_are_the_public_plugins() -> None:
    assert FMTC_GID == "aiverify.stock.fairness_metrics_toolbox_for_classification"
    assert FMTC_CID == "fairness_metrics_toolbox_for_classification"
