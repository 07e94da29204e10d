"""The extraction monitor against scripted extraction, ordinary use, and natural extraction.

The copies are decision trees retrained on what each attack learnt (rows and
the labels the real metro-congestion model gave); *agreement* is the share
of holdout rows on which copy and model give the same label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from cityx.core import InputSchema
from cityx.server import Role, add_user
from cityx.server.monitor import ExtractionMonitor, Reference
from cityx.server.scoring import normalised
from cityx.submissions import open_submission
from cityx.targets import IsolatedPredictor

from .conftest import METRO, World

Rows = np.ndarray
Attack = Callable[[np.random.Generator, np.ndarray, InputSchema], Iterator[Rows]]
FAITHFUL = 0.90


@pytest.fixture(scope="module")
def metro() -> Iterator[tuple[IsolatedPredictor, InputSchema, Reference, np.ndarray, np.ndarray]]:
    sub = open_submission(METRO)
    schema = sub.manifest.input_schema()
    names = list(schema.names)
    train = pd.read_csv(METRO / "data" / "train.csv")[names].to_numpy(float)
    holdout = pd.read_csv(METRO / "data" / "holdout.csv")[names].to_numpy(float)
    with sub.predictor() as model:
        truth = np.asarray(model.predict(holdout).values, dtype=str)
        yield model, schema, Reference.from_rows(normalised(train, schema)), holdout, truth


def uniform(rng: np.random.Generator, holdout: np.ndarray, schema: InputSchema) -> Iterator[Rows]:
    """Retraining on random queries: uniform over the declared feature box."""
    lo, hi = schema.lower, schema.upper
    while True:
        yield lo + rng.random((10, len(lo))) * (hi - lo)


def path_finding(
    rng: np.random.Generator, holdout: np.ndarray, schema: InputSchema
) -> Iterator[Rows]:
    """Tramer et al.'s path-finding: line searches along one feature at a time."""
    lo, hi = schema.lower, schema.upper
    while True:
        base = holdout[rng.integers(len(holdout))]
        for j in range(len(lo)):
            rows = np.repeat(base[None, :], 10, axis=0)
            rows[:, j] = np.linspace(lo[j], hi[j], 10)
            yield rows


def adaptive(rng: np.random.Generator, holdout: np.ndarray, schema: InputSchema) -> Iterator[Rows]:
    """Augmentation around a few real seed rows (Papernot-style), 5 % noise."""
    lo, hi = schema.lower, schema.upper
    seeds = holdout[rng.choice(len(holdout), 10, replace=False)]
    while True:
        yield np.clip(seeds + rng.normal(0, 0.05, seeds.shape) * (hi - lo), lo, hi)


def agreement(
    rows: np.ndarray, labels: np.ndarray, holdout: np.ndarray, truth: np.ndarray
) -> float:
    copy = DecisionTreeClassifier(random_state=0).fit(rows, labels)
    return float((copy.predict(holdout) == truth).mean())


@pytest.mark.slow
@pytest.mark.parametrize("attack", [uniform, path_finding, adaptive])
def test_scripted_extraction_is_flagged_before_a_faithful_copy(metro: Any, attack: Attack) -> None:
    model, schema, reference, holdout, truth = metro
    caught = 0
    for seed in range(10):
        monitor = ExtractionMonitor(min_queries=30)
        asked: list[np.ndarray] = []
        answers: list[np.ndarray] = []
        for batch in attack(np.random.default_rng(seed), holdout, schema):
            labels = np.asarray(model.predict(batch).values, dtype=str)
            asked.append(batch)
            answers.append(labels)
            alert = monitor.observe("c", "m", normalised(batch, schema), list(labels), reference)
            if alert is not None or len(asked) * 10 >= 1000:
                break
        copy = agreement(np.vstack(asked), np.concatenate(answers), holdout, truth)
        caught += alert is not None and copy < FAITHFUL
    assert caught >= 9, f"{attack.__name__}: flagged in time in {caught} of 10 runs"


@pytest.mark.slow
def test_ordinary_use_raises_no_alert(metro: Any) -> None:
    _model, schema, reference, holdout, truth = metro
    alerts = 0
    for seed in range(100):
        monitor = ExtractionMonitor(min_queries=30)
        order = np.random.default_rng(1000 + seed).permutation(len(holdout))[:300]
        for part in np.array_split(order, 30):
            batch = holdout[part]
            found = monitor.observe(
                "c", "m", normalised(batch, schema), list(truth[part]), reference
            )
            if found is not None:
                alerts += 1
                break
    assert alerts <= 1, f"{alerts} of 100 ordinary streams raised an alert"


def _token(world: World, user: str, role: Role, budget: int) -> str:
    return add_user(
        world.store, user, organisation="city", role=role, city="city", budget=budget
    ).token


@pytest.mark.slow
def test_alerts_and_authorised_probing_go_to_the_audit_log(world: World, metro: Any) -> None:
    _model, schema, _ref, _holdout, _truth = metro
    rng = np.random.default_rng(7)
    names = list(schema.names)
    tokens = {
        "analyst": _token(world, "analyst", Role.REGULATOR, 1000),
        "prober": _token(world, "prober", Role.RED_TEAMER, 1000),
    }
    for token in tokens.values():
        for _ in range(4):
            batch = schema.lower + rng.random((10, len(names))) * (schema.upper - schema.lower)
            body = {"rows": [dict(zip(names, map(float, r), strict=True)) for r in batch]}
            answer = world.client.post(
                f"/api/v1/models/{world.model_id}/predict",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200, answer.text
    alerts = world.client.get("/api/v1/alerts", headers=world.auth("auditor")).json()["alerts"]
    kinds = {a["caller"]: a["kind"] for a in alerts}
    assert kinds["user:analyst"] == "extraction.alert"
    assert kinds["user:prober"] == "extraction.probe"  # authorised: recorded, not an alarm
    assert all(a["ood_rows"] >= 25 and a["queries"] >= 30 for a in alerts)


def test_the_budget_stops_natural_extraction_before_a_faithful_copy(
    world: World, metro: Any
) -> None:
    # Natural rows pass the monitor by design; on this model a tree copies 90 % of the
    # labels from about 50 of them, so the budget that stops it is tight: 20 units.
    _model, schema, _ref, holdout, truth = metro
    token = _token(world, "thief", Role.RED_TEAMER, 20)
    names = list(schema.names)
    learnt_rows, learnt_labels = [], []
    for start in range(0, 200, 10):
        part = holdout[start : start + 10]
        answer = world.client.post(
            f"/api/v1/models/{world.model_id}/predict",
            json={"rows": [dict(zip(names, map(float, r), strict=True)) for r in part]},
            headers={"Authorization": f"Bearer {token}"},
        )
        if answer.status_code == 429:
            break
        learnt_rows.append(part)
        learnt_labels += answer.json()["predictions"]
    assert sum(len(r) for r in learnt_rows) == 20
    copy = agreement(np.vstack(learnt_rows), np.asarray(learnt_labels), holdout, truth)
    assert copy < FAITHFUL
    flagged = [e for e in world.store.audit_entries() if e.actor == "user:thief"]
    assert not [e for e in flagged if e.action.startswith("extraction")]
