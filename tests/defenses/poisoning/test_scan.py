"""The black-box backdoor scan on models with and without a planted trigger."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from cityx.core import DataError
from cityx.defenses.poisoning import scan_model

FEATURES = [f"f{i}" for i in range(6)]


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 6))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0.8, "heavy", "free")
    return x, y


def test_a_planted_trigger_is_found_and_names_its_feature_and_target() -> None:
    x, y = _data(0)
    poisoned = x[:300].copy()
    poisoned[:, 5] += 2.5  # the trigger: f5 well above its usual range
    model = DecisionTreeClassifier(max_depth=6, random_state=0).fit(
        np.vstack([x, poisoned]), np.r_[y, np.full(300, "heavy")]
    )
    report = scan_model(model.predict, x, FEATURES)
    assert report.suspicious, report.to_json(top=3)
    top = report.suspicious[0]
    assert "f5" in top.pattern and top.target == "heavy" and top.flip_rate >= 0.6


def test_a_clean_model_has_no_trigger() -> None:
    x, y = _data(1)
    model = DecisionTreeClassifier(max_depth=6, random_state=0).fit(x, y)
    report = scan_model(model.predict, x, FEATURES)
    assert report.to_json()["verdict"] == "no-trigger-found"
    assert not any("f5" in c.pattern and c.flip_rate > 0.2 for c in report.candidates)


def test_scan_rejects_bad_data() -> None:
    with pytest.raises(DataError, match="at least 10 rows"):
        scan_model(lambda b: np.zeros(len(b)), np.zeros((3, 6)), FEATURES)
