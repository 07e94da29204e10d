"""Predictor fairness: per-group rates, spreads, intervals, and fairlearn agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    precision_score,
    roc_auc_score,
    root_mean_squared_error,
)

from cityx.assess.fairness import (
    RATES,
    classification_fairness,
    encode_groups,
    regression_fairness,
)
from cityx.core import DataError, InputError


def _data(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    district = rng.choice(["east", "harbour", "north", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    band = rng.choice(["day", "night"], n)
    truth = rng.choice(["free", "moderate", "heavy"], n)
    # The model is worse in the harbour at night: a real gap to find.
    flip = rng.random(n) < np.where((district == "harbour") & (band == "night"), 0.6, 0.2)
    pred = np.where(flip, rng.choice(["free", "moderate", "heavy"], n), truth)
    return {"district": district, "band": band, "truth": truth, "pred": pred}


def _npv(y: np.ndarray, p: np.ndarray) -> float:
    return float(precision_score(1 - y, 1 - p, zero_division=np.nan))


@pytest.mark.parametrize("features", [("district",), ("district", "band")])
def test_per_group_rates_equal_fairlearn_metricframe(features: tuple[str, ...]) -> None:
    d = _data(3000, 1)
    y = (d["truth"] == "heavy").astype(int)
    p = (d["pred"] == "heavy").astype(int)
    groups = encode_groups({f: d[f] for f in features}, rows=y.size)
    ours = classification_fairness(d["truth"], d["pred"], groups, positive="heavy")
    frame = MetricFrame(
        metrics={
            "tpr": true_positive_rate,
            "tnr": true_negative_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
            "selection_rate": selection_rate,
            "accuracy": accuracy_score,
            "ppv": lambda a, b: precision_score(a, b, zero_division=np.nan),
            "npv": _npv,
        },
        y_true=y,
        y_pred=p,
        sensitive_features={f: d[f] for f in features},
    )
    by_group = frame.by_group
    for key, row in by_group.iterrows():
        name = "|".join(key) if isinstance(key, tuple) else str(key)
        for metric in by_group.columns:
            assert abs(ours.by_group[name][metric] - row[metric]) <= 1e-12, (name, metric)
        assert abs(ours.by_group[name]["fdr"] - (1 - row["ppv"])) <= 1e-12
        assert abs(ours.by_group[name]["for"] - (1 - row["npv"])) <= 1e-12
    for metric in by_group.columns:
        assert abs(ours.differences[metric] - frame.difference()[metric]) <= 1e-12
        assert abs(ours.ratios[metric] - frame.ratio()[metric]) <= 1e-12
    sf = {f: d[f] for f in features}
    expected = {
        "demographic_parity_difference": demographic_parity_difference(y, p, sensitive_features=sf),
        "demographic_parity_ratio": demographic_parity_ratio(y, p, sensitive_features=sf),
        "equalized_odds_difference": equalized_odds_difference(y, p, sensitive_features=sf),
        "equalized_odds_ratio": equalized_odds_ratio(y, p, sensitive_features=sf),
    }
    for name, value in expected.items():
        assert abs(ours.summary[name] - value) <= 1e-12, name
    assert ours.summary["disparate_impact"] == ours.summary["demographic_parity_ratio"]


def test_auc_by_group_equals_sklearn_with_ties() -> None:
    d = _data(1500, 2)
    rng = np.random.default_rng(3)
    y = d["truth"] == "heavy"
    score = np.round(np.clip(y * 0.3 + rng.random(y.size) * 0.7, 0, 1), 1)  # many ties
    groups = encode_groups({"district": d["district"]}, rows=y.size)
    ours = classification_fairness(d["truth"], d["pred"], groups, positive="heavy", scores=score)
    for j, name in enumerate(groups.names):
        mask = groups.codes == j
        expected = roc_auc_score(y[mask], score[mask])
        assert abs(ours.extra_by_group[name]["auc"] - expected) <= 1e-12
        gap = score[mask].mean() - y[mask].mean()
        assert abs(ours.extra_by_group[name]["calibration_gap"] - gap) <= 1e-12


def test_numeric_labels_and_default_positive() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 500)
    p = np.where(rng.random(500) < 0.8, y, 1 - y)
    groups = encode_groups({"sex": rng.integers(1, 3, 500).astype(float)}, rows=500)
    ours = classification_fairness(y, p, groups)
    assert ours.positive == "1"
    assert groups.names == ("1", "2")  # 1.0 and 2.0 name groups "1" and "2"
    mask = groups.codes == 0
    assert ours.by_group["1"]["tpr"] == pytest.approx(
        ((p == 1) & (y == 1) & mask).sum() / ((y == 1) & mask).sum(), abs=1e-15
    )


def test_multiclass_needs_a_positive_label() -> None:
    d = _data(300, 5)
    groups = encode_groups({"district": d["district"]}, rows=300)
    with pytest.raises(InputError, match="name the positive one"):
        classification_fairness(d["truth"], d["pred"], groups)
    with pytest.raises(InputError, match="'jammed' is neither"):
        classification_fairness(d["truth"], d["pred"], groups, positive="jammed")


def test_undefined_rates_are_nan_and_json_null_never_zero() -> None:
    truth = np.array(["no"] * 40 + ["yes"] * 20 + ["no"] * 20)
    pred = np.array(["no"] * 30 + ["yes"] * 10 + ["yes"] * 15 + ["no"] * 5 + ["no"] * 20)
    group = np.array(["a"] * 40 + ["b"] * 20 + ["c"] * 20)
    groups = encode_groups({"g": group}, rows=80)
    ours = classification_fairness(truth, pred, groups, positive="yes")
    assert math.isnan(ours.by_group["a"]["tpr"])  # group a has no true "yes"
    assert math.isnan(ours.by_group["c"]["ppv"])  # group c never predicted "yes"
    obj = ours.to_json()
    assert obj["groups"]["a"]["tpr"] is None and obj["groups"]["a"]["fnr"] is None
    assert obj["groups"]["c"]["ppv"] is None
    assert obj["groups"]["c"]["tpr"] is None
    # Spreads use only groups where the rate is defined.
    assert obj["differences"]["tpr"] is None  # only b has positives
    assert obj["ratios"]["fpr"] == pytest.approx(0.0)
    text = " ".join(ours.warnings)
    assert "'a' has no true 'yes' rows" in text and "'c' has no predicted 'yes'" in text
    assert "too small to judge" in text  # b and c have 20 rows each
    assert "'a' has 40" not in text


def test_bootstrap_is_seeded_and_covers_the_point() -> None:
    d = _data(2000, 6)
    groups = encode_groups({"district": d["district"]}, rows=2000)

    def run(seed: int) -> dict[str, tuple[float, float]]:
        result = classification_fairness(
            d["truth"],
            d["pred"],
            groups,
            positive="heavy",
            bootstrap_n=300,
            rng=np.random.default_rng(seed),
        )
        for name in groups.names:
            for metric in ("tpr", "selection_rate"):
                lo, hi = result.intervals[f"{name}/{metric}"]
                assert lo <= result.by_group[name][metric] <= hi
        lo, hi = result.intervals["disparate_impact"]
        assert lo <= result.summary["disparate_impact"] <= hi
        return dict(result.intervals)

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert len(run(7)) == len(groups.names) * len(RATES) + 2 * len(RATES) + 7


def test_regression_by_group_equals_sklearn() -> None:
    rng = np.random.default_rng(9)
    y = rng.normal(50, 10, 1200)
    group = rng.choice(["a", "b", "c"], 1200)
    p = y + rng.normal(np.where(group == "c", 5.0, 0.0), 3.0)
    groups = encode_groups({"g": group}, rows=1200)
    ours = regression_fairness(y, p, groups, bootstrap_n=200, rng=np.random.default_rng(1))
    for j, name in enumerate(groups.names):
        m = groups.codes == j
        assert abs(ours.by_group[name]["mae"] - mean_absolute_error(y[m], p[m])) <= 1e-12
        assert abs(ours.by_group[name]["rmse"] - root_mean_squared_error(y[m], p[m])) <= 1e-12
        assert abs(ours.by_group[name]["mean_residual"] - (p[m] - y[m]).mean()) <= 1e-12
    assert ours.by_group["c"]["mean_residual"] > 4
    lo, hi = ours.intervals["c/mean_residual"]
    assert lo < ours.by_group["c"]["mean_residual"] < hi


def test_bad_groups_name_the_column() -> None:
    with pytest.raises(DataError, match="'district' is constant"):
        encode_groups({"district": ["east"] * 5}, rows=5)
    with pytest.raises(DataError, match="'district' has 4 values for 5 rows"):
        encode_groups({"district": ["a", "b", "a", "b"]}, rows=5)
    with pytest.raises(DataError, match="'band' is empty at row 1"):
        encode_groups({"band": np.array(["x", np.nan, "y"], dtype=object)}, rows=3)
    groups = encode_groups({"g": ["a", "b", "a"]}, rows=3)
    with pytest.raises(DataError, match="lengths differ: 2 true labels"):
        classification_fairness(["x", "y"], ["x", "y"], groups, positive="x")
