"""The server on PostgreSQL: the same world (upload, tenancy, a metered query, a ruling)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ..support.services import require
from .conftest import World, build_world
from .test_policy_matrix import ROW

PG_HOST = "postgres@127.0.0.1:5432"


def _admin(sql: str) -> None:
    with psycopg.connect(f"postgresql://{PG_HOST}/postgres", autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture
def pg_world(tmp_path: Path) -> Iterator[World]:
    require("postgres")
    name = f"cityx_server_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield from build_world(tmp_path, store=f"postgresql://{PG_HOST}/{name}")
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
@pytest.mark.slow
def test_the_server_on_postgresql(pg_world: World) -> None:
    w = pg_world
    assert w.client.get("/api/v1/submissions", headers=w.auth("rival")).json()["submissions"] == []
    answer = w.client.post(
        f"/api/v1/models/{w.model_id}/predict", json={"rows": [ROW]}, headers=w.auth("redteam")
    )
    assert answer.status_code == 200 and answer.headers["X-Budget-Remaining"] == "99"
    ruling = w.client.post(
        f"/api/v1/trials/{w.trial_id}/ruling",
        json={"decision": "approve", "reasons": ["on PostgreSQL"]},
        headers=w.auth("regulator"),
    )
    assert ruling.status_code == 201
    assert w.client.get("/api/v1/audit/verify", headers=w.auth("auditor")).json()["ok"]
