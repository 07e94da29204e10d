from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from cityx.core.audit import GENESIS, AuditEntry, entry_hash, verify_chain


def chain(n: int) -> list[AuditEntry]:
    entries, prev = [], GENESIS
    for seq in range(1, n + 1):
        at = f"2026-11-29T00:00:{seq:02d}Z"
        digest = entry_hash(seq, at, "a", "act", f"s{seq}", {"n": seq}, prev)
        entries.append(AuditEntry(seq, at, "a", "act", f"s{seq}", {"n": seq}, prev, digest))
        prev = digest
    return entries


def test_a_valid_chain_verifies() -> None:
    assert verify_chain(chain(10)).ok
    assert verify_chain([]).ok


MUTATIONS = st.sampled_from(
    [
        "actor",
        "action",
        "subject",
        "payload",
        "at",
        "seq",
        "hash",
        "prev_hash",
        "delete",
        "swap",
        "duplicate",
    ]
)


@given(n=st.integers(2, 12), data=st.data(), mutation=MUTATIONS)
def test_any_single_mutation_is_detected(n: int, data: st.DataObject, mutation: str) -> None:
    entries = chain(n)
    i = data.draw(st.integers(0, n - 2))
    e = entries[i]
    if mutation == "delete":
        del entries[i]
    elif mutation == "swap":
        entries[i], entries[i + 1] = entries[i + 1], entries[i]
    elif mutation == "duplicate":
        entries.insert(i, e)
    elif mutation == "payload":
        entries[i] = replace(e, payload={"n": -1})
    elif mutation == "seq":
        entries[i] = replace(e, seq=e.seq + 1000)
    elif mutation in ("hash", "prev_hash"):
        entries[i] = replace(e, **{mutation: "f" * 64})
    else:
        entries[i] = replace(e, **{mutation: getattr(e, mutation) + "x"})
    result = verify_chain(entries)
    assert not result.ok and result.first_bad is not None and result.reason
