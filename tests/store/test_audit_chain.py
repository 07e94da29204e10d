"""The pure hash chain: canonical JSON, hashing, and verification of every kind of tampering."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityx.core.audit import (
    GENESIS,
    AuditEntry,
    AuditHead,
    AuditVerification,
    entry_hash,
    sorted_json,
    verify_chain,
)


def link(seq: int, prev: str, *, actor: str = "cityx", payload: Any = None) -> AuditEntry:
    at = f"2026-11-29T00:00:{seq % 60:02d}.000000Z"
    body = {"n": seq} if payload is None else payload
    digest = entry_hash(seq, at, actor, "test.step", f"s{seq}", body, prev)
    return AuditEntry(seq, at, actor, "test.step", f"s{seq}", body, prev, digest)


def chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        entries.append(link(seq, prev))
        prev = entries[-1].hash
    return entries


def test_canonical_json_is_sorted_compact_utf8_and_refuses_nan() -> None:
    assert sorted_json({"b": 1, "a": [1, 2], "é": "ü"}) == '{"a":[1,2],"b":1,"é":"ü"}'.encode()
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            sorted_json({"x": bad})


def test_entry_hash_covers_every_field() -> None:
    base: dict[str, Any] = {
        "seq": 1,
        "at": "2026-11-29T00:00:00.000000Z",
        "actor": "cityx",
        "action": "trial.started",
        "subject": "t-1",
        "payload": {"k": 1},
        "prev_hash": GENESIS,
    }
    digest = entry_hash(**base)
    assert len(digest) == 64 and int(digest, 16) >= 0
    changes = {"seq": 2, "at": "x", "actor": "x", "action": "x", "subject": "x"}
    for key, other in {**changes, "payload": {"k": 2}, "prev_hash": "f" * 64}.items():
        assert entry_hash(**{**base, key: other}) != digest, key


def test_a_valid_chain_verifies() -> None:
    assert verify_chain(chain(10)) == AuditVerification(True, 10)
    assert verify_chain([]).to_json() == {
        "ok": True,
        "entries": 0,
        "first_bad": None,
        "reason": None,
    }


def test_an_entry_round_trips_through_its_json_form() -> None:
    entries = chain(3)
    assert [AuditEntry.from_json(e.to_json()) for e in entries] == entries
    with pytest.raises(KeyError):
        AuditEntry.from_json({k: v for k, v in entries[0].to_json().items() if k != "hash"})


def test_an_edited_entry_is_named() -> None:
    entries = chain(9)
    entries[6] = replace(entries[6], payload={"n": 999})
    result = verify_chain(entries)
    assert (result.ok, result.entries, result.first_bad) == (False, 9, 7)
    assert result.reason == "entry 7: stored hash does not match its content (edited?)"


def test_a_deleted_entry_is_named_by_the_missing_seq() -> None:
    entries = chain(12)
    del entries[8]
    result = verify_chain(entries)
    assert result.first_bad == 9
    assert result.reason == "entry 9: seq jumps from 8 to 10 (deleted entry?)"


def test_an_inserted_copy_and_reordered_entries_are_named() -> None:
    entries = chain(6)
    entries.insert(3, entries[2])
    result = verify_chain(entries)
    assert result.first_bad == 4 and "appears a second time (inserted entry?)" in str(result.reason)

    entries = chain(6)
    entries[2], entries[4] = entries[4], entries[2]
    result = verify_chain(entries)
    assert result.first_bad == 3 and "comes before seq 3 (reordered entries?)" in str(result.reason)


def test_a_forged_entry_that_relinks_is_caught_at_the_next_link() -> None:
    entries = chain(6)
    forged = link(4, entries[2].hash, actor="mallory")  # a perfect entry 4, spliced in
    entries[3] = forged
    result = verify_chain(entries)
    assert result.first_bad == 5 and "does not link to the hash of entry 4" in str(result.reason)


def test_truncation_is_only_seen_against_a_head_or_anchor() -> None:
    full = chain(8)
    cut = full[:5]
    assert verify_chain(cut).ok  # the chain alone cannot tell
    result = verify_chain(cut, head=AuditHead(8, full[-1].hash))
    assert (result.ok, result.first_bad) == (False, 6) and "truncated" in str(result.reason)
    result = verify_chain(cut, anchor=AuditHead(7, full[6].hash))
    assert (result.ok, result.first_bad) == (False, 6) and "truncated" in str(result.reason)


def test_an_anchor_from_the_past_still_holds_after_appends() -> None:
    entries = chain(8)
    anchor = AuditHead(5, entries[4].hash)
    assert verify_chain(entries, anchor=anchor, head=AuditHead(8, entries[-1].hash)).ok
    assert verify_chain(entries, anchor=AuditHead(0, GENESIS)).ok
    rewritten = verify_chain(entries, anchor=AuditHead(5, "f" * 64))
    assert rewritten.first_bad == 5 and "rewritten" in str(rewritten.reason)


def test_a_head_that_does_not_match_the_end_is_reported() -> None:
    entries = chain(4)
    behind = verify_chain(entries, head=AuditHead(3, entries[2].hash))
    assert behind.first_bad == 4 and "after the recorded head" in str(behind.reason)
    other = verify_chain(entries, head=AuditHead(4, "f" * 64))
    assert other.first_bad == 4 and "differs from the recorded head" in str(other.reason)


# -- property: any single mutation of a valid chain is detected, at the right place ---------

TEXT = st.text(min_size=1, max_size=8)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
PAYLOADS = st.dictionaries(TEXT, JSON_VALUES, max_size=3)


@st.composite
def chains(draw: st.DrawFn) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS
    for seq in range(1, draw(st.integers(2, 10)) + 1):
        actor, action, subject = draw(TEXT), draw(TEXT), draw(TEXT)
        at, payload = draw(TEXT), draw(PAYLOADS)
        digest = entry_hash(seq, at, actor, action, subject, payload, prev)
        entries.append(AuditEntry(seq, at, actor, action, subject, payload, prev, digest))
        prev = digest
    return entries


FIELDS = {
    "actor": TEXT,
    "action": TEXT,
    "subject": TEXT,
    "at": TEXT,
    "payload": PAYLOADS,
    "seq": st.integers(-5, 1000),
    "hash": st.text("0123456789abcdef", min_size=64, max_size=64),
    "prev_hash": st.text("0123456789abcdef", min_size=64, max_size=64),
}
MUTATIONS = st.sampled_from([*FIELDS, "delete", "swap", "insert"])


@given(entries=chains(), mutation=MUTATIONS, data=st.data())
def test_any_single_mutation_is_detected(
    entries: list[AuditEntry], mutation: str, data: st.DataObject
) -> None:
    n = len(entries)
    head = AuditHead(n, entries[-1].hash)
    expected: set[int]
    if mutation in FIELDS:
        i = data.draw(st.integers(0, n - 1))
        old = getattr(entries[i], mutation)
        new = data.draw(
            FIELDS[mutation].filter(lambda v: v != old and sorted_json(v) != sorted_json(old))
        )
        entries[i] = replace(entries[i], **{mutation: new})
        expected = {i + 1}
    elif mutation == "delete":
        # Deleting the newest entry is truncation: only a head can show it.
        i = data.draw(st.integers(0, n - 2))
        del entries[i]
        expected = {i + 1}
    elif mutation == "swap":
        i, j = sorted(
            data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
        )
        entries[i], entries[j] = entries[j], entries[i]
        expected = {i + 1}
    else:
        # A forged entry before an existing one: a copy, or a well-formed link.
        i = data.draw(st.integers(0, n - 1))
        prev = entries[i - 1].hash if i else GENESIS
        forged = data.draw(st.sampled_from([entries[i], link(i + 1, prev, actor="mallory")]))
        entries.insert(i, forged)
        # The copy or the forgery may itself be well-formed; then the entry after it breaks.
        expected = {i + 1, i + 2}
    result = verify_chain(entries)
    assert not result.ok
    assert result.first_bad in expected, result
    assert result.reason is not None and result.reason.startswith(f"entry {result.first_bad}: ")
    assert "\n" not in result.reason
    # A head kept elsewhere does not change which entry is named.
    assert verify_chain(entries, head=head).first_bad == result.first_bad


@given(entries=chains(), data=st.data())
def test_truncation_passes_the_chain_but_not_its_head(
    entries: list[AuditEntry], data: st.DataObject
) -> None:
    n = len(entries)
    head = AuditHead(n, entries[-1].hash)
    kept = entries[: data.draw(st.integers(0, n - 1))]
    assert verify_chain(kept).ok
    result = verify_chain(kept, head=head)
    assert (result.ok, result.first_bad) == (False, len(kept) + 1)
