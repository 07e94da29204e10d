"""Unusable stores fail with one-line StoreErrors that name the store and say what to do."""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from cityx.core import StoreError
from cityx.store import Store
from cityx.store.models import Base

Sql = Callable[..., list[Any]]


def _one_line(error: pytest.ExceptionInfo[StoreError]) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_the_migrated_schema_matches_the_models(any_url: str) -> None:
    Store.open(any_url).close()
    engine = sa.create_engine(
        any_url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.NullPool
    )
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_a_locked_sqlite_store_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url, busy_timeout_s=0.2) as store:
        holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            with pytest.raises(StoreError, match="locked by another process") as info:
                store.append_audit(actor="a", action="x", subject="s", payload={})
            assert 0.15 < time.monotonic() - started < 3
            assert _one_line(info).startswith(f"{url}: the store is locked")
            assert "still busy after 0.2 s" in str(info.value)
            with pytest.raises(StoreError, match="locked by another process"):
                Store.open(url, busy_timeout_s=0.2)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        store.append_audit(actor="a", action="x", subject="s", payload={})  # free again
        assert store.verify_audit().ok


@pytest.mark.parametrize(
    ("scheme", "query"),
    [("file:", "?mode=ro&uri=true"), ("file:", "?mode=ro"), ("file://", "?mode=ro&uri=true")],
)
def test_a_read_only_sqlite_store_reads_but_refuses_writes(
    tmp_path: Path, scheme: str, query: str, start: Callable[[Store, str], None]
) -> None:
    path = tmp_path / "s.db"
    with Store.open(f"sqlite:///{path}") as store:
        store.append_audit(actor="a", action="x", subject="s", payload={})
    ro = f"sqlite:///{scheme}{path}{query}"
    with Store.open(ro) as store:
        assert store.verify_audit().ok and store.trials() == []
        with pytest.raises(StoreError, match="the store is read-only") as info:
            start(store, "t1")
        assert _one_line(info).startswith(f"{ro}: the store is read-only")
        assert "opened with mode=ro" in str(info.value)
    assert not (tmp_path / f"file:{path.name}").exists()  # no stray file named "file:..."


def test_a_missing_read_only_store_is_not_created(tmp_path: Path) -> None:
    url = f"sqlite:///file:{tmp_path / 'nope.db'}?mode=ro&uri=true"
    with pytest.raises(StoreError, match="cannot open the store file"):
        Store.open(url)
    assert not (tmp_path / "nope.db").exists()


def test_an_unreachable_postgres_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as info:
        Store.open("postgresql://postgres@127.0.0.1:1/cityx", connect_timeout_s=2)
    assert time.monotonic() - started < 5
    assert _one_line(info).startswith("postgresql://postgres@127.0.0.1:1/cityx: ")
    assert "server is running" in str(info.value)


@pytest.mark.postgres
def test_a_missing_postgres_database_says_so() -> None:
    with pytest.raises(StoreError, match="the database does not exist"):
        Store.open("postgresql://postgres@127.0.0.1:5432/cityx_no_such_db")


def test_passwords_never_reach_messages() -> None:
    with pytest.raises(StoreError) as info:
        Store.open("postgresql://u:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(info.value) and "u:***@" in str(info.value)
    assert "s3cret" not in repr(Store(url="postgresql://u:s3cret@h/x"))


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("mysql://root@127.0.0.1/x", "unsupported database or driver 'mysql'"),
        ("postgresql+psycopg2://u@h/x", "unsupported database or driver"),
        ("not a url", "not a store URL"),
    ],
)
def test_unusable_urls_are_clear_errors(url: str, match: str) -> None:
    with pytest.raises(StoreError, match=match) as info:
        Store.open(url)
    assert "sqlite:///PATH.db" in _one_line(info)


def test_another_applications_database_is_left_alone(any_url: str, sql: Sql) -> None:
    sql(any_url, "CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="not a cityx store: the database holds other tables"):
        Store.open(any_url)
    assert sql(any_url, "SELECT COUNT(*) FROM customers") == [(0,)]


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database, just notes\n" * 100)
    with pytest.raises(StoreError, match="not a SQLite database"):
        Store.open(f"sqlite:///{tmp_path / 'notes.db'}")


def test_a_newer_schema_is_refused(any_url: str, sql: Sql) -> None:
    Store.open(any_url).close()
    sql(any_url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match=r"revision 9999.* newer than this cityx knows") as info:
        Store.open(any_url)
    assert "upgrade cityx" in _one_line(info)


def test_postgres_without_its_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'cityx\[postgres\]'"):
        Store.open("postgresql://postgres@127.0.0.1:5432/postgres")
