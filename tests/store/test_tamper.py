"""Tampering behind the store's back (raw SQL) is caught, and the first bad entry named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cityx.core.audit import entry_hash
from cityx.store import Store

Sql = Callable[..., list[Any]]

FORGED = (
    "INSERT INTO audit_log (seq, at, actor, action, subject, payload, prev_hash, hash) "
    "VALUES (:seq, '2026-01-01T00:00:00.000000Z', 'mallory', 'gate.overridden', 't1', "
    "'{}', :prev, :hash)"
)
SHIFT_UP = (
    "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3",
    "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103",
)


def _five(url: str) -> list[str]:
    with Store.open(url) as store:
        for i in range(5):
            store.append_audit(actor="a", action="test.append", subject=str(i), payload={"i": i})
        return [e.hash for e in store.audit_entries()]


def _verify(url: str) -> tuple[int | None, str]:
    with Store.open(url) as store:
        result = store.verify_audit()
    assert not result.ok and result.reason is not None
    return result.first_bad, result.reason


@pytest.mark.parametrize(
    ("statements", "params", "first_bad", "words"),
    [
        pytest.param(
            ["UPDATE audit_log SET payload = :payload WHERE seq = 3"],
            {"payload": '{"i":99}'},
            3,
            "entry 3: stored hash does not match its content (edited?)",
            id="edited-payload",
        ),
        pytest.param(
            ["UPDATE audit_log SET actor = 'mallory' WHERE seq = 5"],
            None,
            5,
            "entry 5: stored hash does not match its content (edited?)",
            id="edited-newest",
        ),
        pytest.param(
            ["UPDATE audit_log SET payload = :payload WHERE seq = 3"],
            {"payload": '{"i": 2}'},
            3,
            "(edited?)",
            id="same-json-other-bytes",
        ),
        pytest.param(
            ["DELETE FROM audit_log WHERE seq = 3"],
            None,
            3,
            "entry 3: seq jumps from 2 to 4 (deleted entry?)",
            id="deleted-middle",
        ),
        pytest.param(
            [
                "UPDATE audit_log SET seq = 100 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 4",
                "UPDATE audit_log SET seq = 4 WHERE seq = 100",
            ],
            None,
            3,
            "entry 3: stored hash does not match its content (edited?)",
            id="swapped-seqs",
        ),
        pytest.param(
            [*SHIFT_UP, FORGED],
            {"seq": 3, "prev": "x", "hash": "x"},
            3,
            "entry 3: stored hash does not match its content (edited?)",
            id="inserted-middle",
        ),
        pytest.param(
            [FORGED],
            {"seq": 6, "prev": "x", "hash": "x"},
            6,
            "entry 6: stored hash does not match its content (edited?)",
            id="inserted-at-end",
        ),
        pytest.param(
            ["DELETE FROM audit_log WHERE seq >= 4"],
            None,
            4,
            "entry 4: missing; the log ends at 3 entries but its head records 5 (truncated?)",
            id="truncated",
        ),
        pytest.param(
            ["DELETE FROM audit_head"],
            None,
            None,
            "the audit log's head record is missing (tampered?)",
            id="head-deleted",
        ),
    ],
)
def test_tampering_is_caught_at_the_first_bad_entry(
    any_url: str,
    sql: Sql,
    statements: list[str],
    params: dict[str, Any] | None,
    first_bad: int | None,
    words: str,
) -> None:
    _five(any_url)
    sql(any_url, *statements, params=params)
    bad, reason = _verify(any_url)
    assert bad == first_bad
    assert words in reason


def test_a_well_formed_forgery_breaks_the_next_link(any_url: str, sql: Sql) -> None:
    hashes = _five(any_url)
    at = "2026-01-01T00:00:00.000000Z"
    forged = entry_hash(3, at, "mallory", "gate.overridden", "t1", {}, hashes[1])
    sql(any_url, *SHIFT_UP, FORGED, params={"seq": 3, "prev": hashes[1], "hash": forged})
    # Entry 3 is a perfect forgery; entry 4 (the old 3) was renumbered, so its hash breaks.
    assert _verify(any_url) == (4, "entry 4: stored hash does not match its content (edited?)")


def test_a_forged_append_is_caught_by_the_head(any_url: str, sql: Sql) -> None:
    hashes = _five(any_url)
    at = "2026-01-01T00:00:00.000000Z"
    forged = entry_hash(6, at, "mallory", "gate.overridden", "t1", {}, hashes[-1])
    sql(any_url, FORGED, params={"seq": 6, "prev": hashes[-1], "hash": forged})
    bad, reason = _verify(any_url)
    assert bad == 6 and "after the recorded head of 5 entries" in reason


def test_a_truncation_that_also_moves_the_head_needs_an_anchor(any_url: str, sql: Sql) -> None:
    hashes = _five(any_url)
    with Store.open(any_url) as store:
        anchor = store.head()
    sql(
        any_url,
        "DELETE FROM audit_log WHERE seq >= 4",
        "UPDATE audit_head SET entries = 3, hash = :hash",
        params={"hash": hashes[2]},
    )
    with Store.open(any_url) as store:
        assert store.verify_audit().ok  # a thorough attacker fools the store itself...
        result = store.verify_audit(anchor=anchor)  # ...but not a head kept elsewhere
    assert (result.ok, result.first_bad) == (False, 4)
    assert "an anchor records 5 (truncated?)" in str(result.reason)


def test_appending_to_a_store_without_its_head_is_refused(any_url: str, sql: Sql) -> None:
    from cityx.core import StoreError

    _five(any_url)
    sql(any_url, "DELETE FROM audit_head")
    with Store.open(any_url) as store, pytest.raises(StoreError, match="head record is missing"):
        store.append_audit(actor="a", action="x", subject="s", payload={})
