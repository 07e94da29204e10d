"""Store fixtures: every store test runs on a SQLite file and on PostgreSQL.

PostgreSQL tests get a database of their own (``cityx_test_<hex>``), created
through the ``postgres`` database at 127.0.0.1:5432 and dropped afterwards.
They are marked ``postgres``: skipped when PostgreSQL is down, an error under
CI=true (tests/support/services.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from cityx.store import Store

from ..support.services import require

PG_HOST = "postgres@127.0.0.1:5432"
PG_ADMIN = f"postgresql://{PG_HOST}/postgres"

SUBMISSION = {"system_id": "tiny-congestion", "version": "1.0.0", "sha256": "a" * 64}


def _admin(sql: str) -> None:
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_HOST} is needed for the store tests: {exc}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    require("postgres")  # also for a test that uses this fixture without the marker
    name = f"cityx_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    yield f"postgresql://{PG_HOST}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL with nothing behind it yet: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def run_sql(url: str, *statements: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Run raw SQL behind the store's back (as a tamperer would); rows of the last one."""
    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.NullPool
    )
    rows: list[Any] = []
    try:
        with engine.begin() as conn:
            for statement in statements:
                result = conn.execute(sa.text(statement), params or {})
                rows = list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()
    return rows


@pytest.fixture
def sql() -> Callable[..., list[Any]]:
    return run_sql


@pytest.fixture
def store(any_url: str) -> Iterator[Store]:
    """An open store on ``any_url``, closed afterwards."""
    with Store.open(any_url) as opened:
        yield opened


def finding(fid: str, severity: str = "high") -> dict[str, Any]:
    return {
        "id": fid,
        "check": "performance.nominal",
        "title": f"finding {fid}",
        "severity": severity,
        "principle": "safety",
        "evidence": {"metrics": {"accuracy": 0.5}, "seed": 3},
    }


@pytest.fixture
def start() -> Callable[[Store, str], None]:
    """Record the test submission (again: a no-op) and begin a trial of it."""

    def begin(store: Store, trial_id: str) -> None:
        store.record_submission(
            vendor="Test Vendor",
            kind="predictor",
            path="/subs/tiny",
            manifest={"schema_version": 1},
            **SUBMISSION,
        )
        store.begin_trial(
            trial_id=trial_id,
            seed=3,
            policy_id="cityx.default",
            policy_sha256="b" * 64,
            out_dir=f"/tmp/{trial_id}",
            plan={"checks": ["performance.nominal"]},
            **SUBMISSION,
        )

    return begin


@pytest.fixture
def finish() -> Callable[..., None]:
    """Finish a trial with one high finding (or ``findings``) and a fail decision."""

    def end(store: Store, trial_id: str, findings: list[dict[str, Any]] | None = None) -> None:
        store.finish_trial(
            trial_id=trial_id,
            results={"trial_id": trial_id, "score": 0.25},
            findings=[finding("performance.nominal/1")] if findings is None else findings,
            gate={"decision": "fail", "reasons": ["high: accuracy"], "policy": "cityx.default"},
        )

    return end
