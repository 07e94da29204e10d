from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cityx.core import StoreError
from cityx.store import Store

SUB = {"system_id": "s", "version": "1", "sha256": "a" * 64}


def begin(store: Store, trial_id: str) -> None:
    store.begin_trial(
        trial_id=trial_id,
        seed=3,
        policy_id="p",
        policy_sha256="b" * 64,
        out_dir="/tmp/o",
        plan={"checks": ["x"]},
        **SUB,
    )


def finish(store: Store, trial_id: str, findings: list[dict[str, Any]] | None = None) -> None:
    store.finish_trial(
        trial_id=trial_id,
        results={"trial_id": trial_id},
        findings=findings
        if findings is not None
        else [{"id": "x/1", "check": "x", "title": "t", "severity": "high", "principle": "safety"}],
        gate={"decision": "fail", "reasons": ["high: t"], "policy": "p"},
    )


def test_trial_lifecycle_and_audit(any_url: str) -> None:
    with Store.open(any_url) as store:
        store.record_submission(vendor="v", kind="predictor", path="/s", manifest={"a": 1}, **SUB)
        store.record_submission(vendor="v", kind="predictor", path="/s", manifest={"a": 1}, **SUB)
        begin(store, "t1")
        assert store.trial("t1").status == "incomplete"  # type: ignore[union-attr]
        finish(store, "t1")
        record = store.trial("t1")
        assert record is not None and (record.status, record.decision) == ("complete", "fail")
        assert store.findings("t1")[0]["severity"] == "high"
        actions = [e.action for e in store.audit_entries()]
        assert actions == [
            "submission.recorded",
            "trial.started",
            "trial.completed",
            "gate.decided",
        ]
        assert store.verify_audit().ok
        assert store.head()[0] == 4
    with Store.open(any_url) as again:  # reopening migrates nothing and keeps everything
        assert again.verify_audit().to_json() == {
            "ok": True,
            "entries": 4,
            "first_bad": None,
            "reason": None,
        }


def test_a_failed_finish_writes_nothing(any_url: str) -> None:
    with Store.open(any_url) as store:
        begin(store, "t1")
        dup = {"id": "x/1", "check": "x", "title": "t", "severity": "low", "principle": "safety"}
        with pytest.raises(StoreError):
            finish(store, "t1", [dup, dup])
        assert store.trial("t1").status == "incomplete"  # type: ignore[union-attr]
        assert store.findings("t1") == [] and len(store.audit_entries()) == 1
        finish(store, "t1")  # and the same trial can still be completed
        with pytest.raises(StoreError, match="not an incomplete trial"):
            finish(store, "t1")


def _append_many(url: str, n: int, actor: str) -> None:
    with Store.open(url) as store:
        for i in range(n):
            store.append_audit(actor=actor, action="test.append", subject=str(i), payload={"i": i})


APPENDER = """
import sys
from cityx.store import Store
with Store.open(sys.argv[1]) as store:
    for i in range(50):
        store.append_audit(actor=sys.argv[2], action="test.append", subject=str(i),
                           payload={"i": i})
"""


def test_concurrent_appends_keep_one_chain(any_url: str) -> None:
    Store.open(any_url).close()
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, any_url, f"p{i}"]) for i in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    with Store.open(any_url) as store:
        result = store.verify_audit()
        assert result.ok and result.entries == 100


def _tamper(url: str, sql: str) -> None:
    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.NullPool
    )
    with engine.begin() as conn:
        for statement in sql.split(";"):
            conn.exec_driver_sql(statement)
    engine.dispose()


@pytest.mark.parametrize(
    ("sql", "first_bad", "word"),
    [
        ("UPDATE audit_log SET payload = '{\"i\":99}' WHERE seq = 3", 3, "edited"),
        ("DELETE FROM audit_log WHERE seq = 3", 4, "deleted"),
        (
            "UPDATE audit_log SET seq = 100 WHERE seq = 3;"
            "UPDATE audit_log SET seq = 3 WHERE seq = 4;"
            "UPDATE audit_log SET seq = 4 WHERE seq = 100",
            3,
            "edited",
        ),
        (
            "INSERT INTO audit_log (seq, at, actor, action, subject, payload, prev_hash, hash) "
            "VALUES (6, '2026-01-01T00:00:00Z', 'mallory', 'x', 'y', '{}', 'z', 'z')",
            6,
            "edited",
        ),
    ],
)
def test_tampering_is_caught_at_the_first_bad_entry(
    any_url: str, sql: str, first_bad: int, word: str
) -> None:
    _append_many(any_url, 5, "a")
    _tamper(any_url, sql)
    with Store.open(any_url) as store:
        result = store.verify_audit()
    assert not result.ok and result.first_bad == first_bad
    assert result.reason is not None and word in result.reason


def test_locked_sqlite_store_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    Store.open(url).close()
    holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another process"):
            Store.open(url, busy_timeout_s=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_read_only_sqlite_store_is_a_clear_error(tmp_path: Path) -> None:
    Store.open(f"sqlite:///{tmp_path / 's.db'}").close()
    ro = f"sqlite:///file:{tmp_path / 's.db'}?mode=ro&uri=true"
    with Store.open(ro) as store:  # reading (audit verify) works on a read-only copy
        assert store.verify_audit().ok
        with pytest.raises(StoreError, match="read-only"):
            begin(store, "t1")
        assert store.trials() == []


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("postgresql://postgres@127.0.0.1:1/x", "cannot connect"),
        ("mysql://root@127.0.0.1/x", "unsupported database"),
        ("not a url", "not a store URL"),
    ],
)
def test_unusable_urls_are_clear_errors(url: str, match: str) -> None:
    with pytest.raises(StoreError, match=match) as info:
        Store.open(url)
    assert "\n" not in str(info.value)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    Store.open(url).close()
    _tamper(url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="newer than this cityx knows"):
        Store.open(url)


def test_passwords_are_hidden_in_errors() -> None:
    with pytest.raises(StoreError) as info:
        Store.open("postgresql://u:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(info.value)


def test_postgres_without_its_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'cityx\[postgres\]'"):
        Store.open("postgresql://postgres@127.0.0.1:5432/postgres")
