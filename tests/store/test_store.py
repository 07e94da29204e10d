"""The store's API on SQLite and PostgreSQL: submissions, trials, findings, audit entries."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cityx.core import StoreError
from cityx.core.audit import GENESIS, AuditHead, sorted_json
from cityx.store import Store, default_store_url

SUB = {"system_id": "tiny-congestion", "version": "1.0.0", "sha256": "a" * 64}
Start = Callable[[Store, str], None]
Finish = Callable[..., None]


def test_a_trial_goes_from_incomplete_to_complete_with_its_audit_entries(
    store: Store, start: Start, finish: Finish
) -> None:
    start(store, "t1")
    record = store.trial("t1")
    assert record is not None
    assert (record.status, record.results, record.decision, record.finished_at) == (
        "incomplete",
        None,
        None,
        None,
    )
    assert (record.system_id, record.version, record.sha256, record.seed) == (
        "tiny-congestion",
        "1.0.0",
        "a" * 64,
        3,
    )
    assert (record.policy_id, record.policy_sha256, record.out_dir) == (
        "cityx.default",
        "b" * 64,
        "/tmp/t1",
    )
    finish(store, "t1")
    done = store.trial("t1")
    assert done is not None and (done.status, done.decision) == ("complete", "fail")
    assert done.results == {"trial_id": "t1", "score": 0.25}
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert store.findings("t1")[0]["evidence"] == {"metrics": {"accuracy": 0.5}, "seed": 3}

    entries = store.audit_entries()
    assert [e.action for e in entries] == [
        "submission.recorded",
        "trial.started",
        "trial.completed",
        "gate.decided",
    ]
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert all(e.at.endswith("Z") and e.actor == "cityx" for e in entries)
    completed, decided = entries[2], entries[3]
    results = {"trial_id": "t1", "score": 0.25}
    assert completed.subject == "t1" and completed.payload["findings"] == 1
    assert completed.payload["results_sha256"] == _sha256(results)
    assert decided.payload["decision"] == "fail"
    assert decided.payload["policy_id"] == "cityx.default"
    assert store.verify_audit().ok
    assert store.head() == AuditHead(4, entries[-1].hash)


def _sha256(obj: Any) -> str:
    import hashlib

    return hashlib.sha256(sorted_json(obj)).hexdigest()


def test_reopening_keeps_everything_and_migrates_nothing(
    any_url: str, start: Start, finish: Finish
) -> None:
    with Store.open(any_url) as store:
        start(store, "t1")
        finish(store, "t1")
        head = store.head()
    with Store.open(any_url) as again:
        assert again.verify_audit(anchor=head).to_json() == {
            "ok": True,
            "entries": 4,
            "first_bad": None,
            "reason": None,
        }
        assert [t.trial_id for t in again.trials()] == ["t1"]


def test_recording_a_submission_twice_is_one_record(store: Store) -> None:
    kwargs: dict[str, Any] = {"vendor": "V", "kind": "predictor", "path": "/s", **SUB}
    store.record_submission(manifest={"a": 1}, **kwargs)
    store.record_submission(manifest={"a": 1}, **kwargs)
    assert [e.action for e in store.audit_entries()] == ["submission.recorded"]
    store.record_submission(manifest={"a": 1}, **{**kwargs, "sha256": "c" * 64})
    entries = store.audit_entries()
    assert len(entries) == 2 and entries[1].payload["sha256"] == "c" * 64
    assert entries[0].payload["manifest_sha256"] == _sha256({"a": 1})


def test_a_failed_finish_writes_nothing(store: Store, start: Start, finish: Finish) -> None:
    start(store, "t1")
    before = store.audit_entries()
    dup = {"id": "x/1", "check": "x", "title": "t", "severity": "low", "principle": "safety"}
    with pytest.raises(StoreError, match="refused the change"):
        finish(store, "t1", [dup, {**dup, "title": "other"}])
    record = store.trial("t1")
    assert record is not None and (record.status, record.results) == ("incomplete", None)
    assert record.decision is None and record.finished_at is None
    assert store.findings("t1") == []
    assert store.audit_entries() == before
    assert store.verify_audit().ok
    finish(store, "t1")  # the same trial can still be completed
    record = store.trial("t1")
    assert record is not None and record.status == "complete"
    assert store.verify_audit().ok


def test_values_that_are_not_json_are_refused_before_any_write(store: Store, start: Start) -> None:
    start(store, "t1")
    before = store.audit_entries()
    with pytest.raises(ValueError, match="trial results cannot be stored as JSON"):
        store.finish_trial(
            trial_id="t1",
            results={"x": math.nan},
            findings=[],
            gate={"decision": "pass", "reasons": []},
        )
    with pytest.raises(ValueError, match="lacks check, title"):
        store.finish_trial(
            trial_id="t1",
            results={},
            findings=[{"id": "x", "severity": "low", "principle": "safety"}],
            gate={"decision": "pass", "reasons": []},
        )
    with pytest.raises(ValueError, match="audit payload cannot be stored as JSON"):
        store.append_audit(actor="me", action="a", subject="s", payload={"when": object()})
    assert store.audit_entries() == before
    record = store.trial("t1")
    assert record is not None and record.status == "incomplete"


def test_trials_need_a_recorded_submission_and_a_fresh_id(
    store: Store, start: Start, finish: Finish
) -> None:
    with pytest.raises(StoreError, match=r"submission other@1\.0\.0 .* is not in this store"):
        store.begin_trial(
            trial_id="t1",
            system_id="other",
            version="1.0.0",
            sha256="a" * 64,
            seed=1,
            policy_id="p",
            policy_sha256="b" * 64,
            out_dir="/o",
            plan={},
        )
    start(store, "t1")
    with pytest.raises(StoreError, match="trial t1 already exists"):
        start(store, "t1")
    with pytest.raises(StoreError, match="trial nope is not in this store"):
        finish(store, "nope")
    finish(store, "t1")
    with pytest.raises(StoreError, match="trial t1 is already complete"):
        finish(store, "t1")
    assert len(store.audit_entries()) == 4 and store.verify_audit().ok


def test_trials_come_newest_first_and_findings_in_their_order(
    store: Store, start: Start, finish: Finish
) -> None:
    for trial_id in ("t1", "t2", "t3"):
        start(store, trial_id)
    assert [t.trial_id for t in store.trials()] == ["t3", "t2", "t1"]
    assert [t.trial_id for t in store.trials(limit=2)] == ["t3", "t2"]
    with pytest.raises(ValueError, match="limit"):
        store.trials(limit=0)
    findings = [
        {"id": fid, "check": "c", "title": fid, "severity": "low", "principle": "safety", "n": i}
        for i, fid in enumerate(["z/1", "a/2", "m/3"])
    ]
    finish(store, "t2", findings)
    assert store.findings("t2") == findings
    assert store.findings("t1") == [] and store.findings("unknown") == []
    assert store.trial("unknown") is None


def test_append_audit_returns_the_entry_it_stored(store: Store) -> None:
    assert store.head() == AuditHead(0, GENESIS)
    first = store.append_audit(actor="alice", action="gate.overridden", subject="t1", payload={})
    second = store.append_audit(
        actor="bob", action="note", subject="t1", payload={"text": "ünïcode", "n": 1.5}
    )
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert store.audit_entries() == [first, second]
    assert second.computed_hash() == second.hash
    assert store.head() == AuditHead(2, second.hash)
    with pytest.raises(ValueError, match="actor"):
        store.append_audit(actor="", action="x", subject="s", payload={})


def test_the_default_store_lives_in_the_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    expected = tmp_path / "data" / "cityx" / "cityx.db"
    assert default_store_url() == f"sqlite:///{expected}"
    with Store.open() as store:
        store.append_audit(actor="me", action="x", subject="s", payload={})
    assert expected.is_file()


def test_a_home_relative_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with Store.open("sqlite:///~/stores/cityx.db") as store:
        store.append_audit(actor="me", action="x", subject="s", payload={})
    assert (tmp_path / "stores" / "cityx.db").is_file()


def test_the_constructor_only_keeps_options(tmp_path: Path) -> None:
    store = Store(url=f"sqlite:///{tmp_path / 'new' / 'x.db'}", busy_timeout_s=1)
    assert not (tmp_path / "new").exists()
    assert "closed" in repr(store)
    with pytest.raises(StoreError, match="not open"):
        store.trials()
    with pytest.raises(ValueError, match="busy_timeout_s must be a positive"):
        Store(url="sqlite://", busy_timeout_s=0)


def test_an_in_memory_store_works_for_dry_runs(start: Start, finish: Finish) -> None:
    with Store.open("sqlite://") as store:
        start(store, "t1")
        finish(store, "t1")
        assert store.verify_audit().entries == 4
