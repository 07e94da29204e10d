"""Predictions over the API: labels by default, scores by permission, budgets kept exactly."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cityx.server import Role, add_user

from .conftest import METRO, World, pack
from .test_policy_matrix import ROW

FEATURES = list(ROW)


def rows(n: int, offset: int = 0) -> list[dict[str, Any]]:
    table = pd.read_csv(METRO / "data" / "holdout.csv")
    return table[FEATURES].iloc[offset : offset + n].to_dict("records")  # type: ignore[return-value]


def predict(world: World, user: str, body: dict[str, Any], model: int | None = None) -> Any:
    return world.client.post(
        f"/api/v1/models/{model or world.model_id}/predict", json=body, headers=world.auth(user)
    )


def test_labels_by_default_scores_only_with_the_permission(world: World) -> None:
    plain = predict(world, "regulator", {"rows": rows(3)})
    assert plain.status_code == 200
    assert set(plain.json()) == {"model", "predictions"}
    assert set(plain.json()["predictions"]) <= {"free", "moderate", "heavy"}
    scored = predict(world, "regulator", {"rows": rows(3), "scores": True})
    assert sorted(scored.json()["classes"]) == ["free", "heavy", "moderate"]
    assert len(scored.json()["scores"]) == 3
    refused = predict(world, "redteam", {"rows": rows(3), "scores": True})
    assert refused.status_code == 403
    assert "model.scores" in refused.text


def test_a_batch_over_budget_is_refused_whole(world: World, tmp_path: Path) -> None:
    world.tokens["metered"] = add_user(
        world.store, "metered", organisation="city", role=Role.RED_TEAMER, city="city", budget=100
    ).token
    first = predict(world, "metered", {"rows": rows(60)})
    assert first.status_code == 200
    assert first.headers["X-Budget-Remaining"] == "40"
    over = predict(world, "metered", {"rows": rows(50)})
    assert over.status_code == 429
    assert over.json()["remaining"] == 40 and over.json()["needed"] == 50
    assert over.headers["X-Budget-Remaining"] == "40"
    last = predict(world, "metered", {"rows": rows(40)})
    assert last.status_code == 200 and last.headers["X-Budget-Remaining"] == "0"
    # The budget is the system's, so a new version does not refill it.
    folder = shutil.copytree(METRO, tmp_path / "v2")
    toml = folder / "cityx.toml"
    toml.write_text(toml.read_text().replace('version = "2.0.0"', 'version = "2.0.1"'))
    v2 = world.client.post(
        "/api/v1/submissions",
        files={"archive": ("v2.tar.gz", pack(folder), "application/gzip")},
        headers=world.auth("vendor"),
    ).json()["id"]
    assert predict(world, "metered", {"rows": rows(1)}, model=v2).status_code == 429
    actions = [e.action for e in world.store.audit_entries() if e.actor == "user:metered"]
    assert actions.count("model.query") == 2 and actions.count("model.query.refused") == 2


def test_fifty_parallel_clients_overrun_a_budget_by_zero_units(world: World) -> None:
    world.tokens["burst"] = add_user(
        world.store, "burst", organisation="city", role=Role.RED_TEAMER, city="city", budget=30
    ).token
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda i: predict(world, "burst", {"rows": rows(1, i)}), range(50)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) == 30 and codes.count(429) == 20
    granted, spent = world.store.budgets("user:burst")["metro-analytics/metro-congestion"]
    assert (granted, spent) == (30, 30)


def test_the_owner_is_not_metered_and_bad_rows_name_their_row(world: World) -> None:
    own = predict(world, "vendor", {"rows": rows(2)})
    assert own.status_code == 200 and own.headers["X-Budget-Remaining"] == "unlimited"
    bad = rows(2)
    bad[1] = {**bad[1], "speed_ratio": "fast"}
    answer = predict(world, "vendor", {"rows": bad})
    assert answer.status_code == 422 and "rows[1]" in answer.text
    extra = [{**rows(1)[0], "secret": 1}]
    assert "unknown secret" in predict(world, "vendor", {"rows": extra}).text


@pytest.mark.parametrize("token", ["", "cx_0000000000000000_" + "A" * 43, "Bearer", "garbage"])
def test_forged_and_malformed_tokens_are_401(world: World, token: str) -> None:
    answer = world.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
