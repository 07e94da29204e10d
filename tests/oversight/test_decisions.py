"""The decision log against someone who can write the run folder (and recompute hashes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityx.core.audit import entry_hash
from cityx.interop import generate_key
from cityx.oversight import DecisionLog, iter_records, verify_decisions
from cityx.oversight.decisions import LOG_FILE

KEY = generate_key("urn:cityx:city:test")
RECORDS = 23  # with a checkpoint every 5: seals at 6, 12, 18, 24 and a final one


@pytest.fixture(scope="module")
def sealed_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("log")
    log = DecisionLog(folder, KEY, run="r1", checkpoint_every=5)
    for k in range(RECORDS):
        kind = ("choice", "command", "alert", "mode")[k % 4]
        log.append(kind, "controller:x", f"tls{k % 3}", {"k": k, "phase": k % 2})
    log.close()
    return folder


def _lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / LOG_FILE).read_text().splitlines()]


def _write(folder: Path, rows: list[dict[str, Any]], *, rehash: bool) -> None:
    """Write ``rows`` back; with ``rehash`` as an adversary would: seqs and hashes recomputed."""
    if rehash:
        prev = "0" * 64
        for seq, row in enumerate(rows, start=1):
            row["seq"], row["prev_hash"] = seq, prev
            row["hash"] = entry_hash(
                seq, row["at"], row["actor"], row["action"], row["subject"], row["payload"], prev
            )
            prev = row["hash"]
    (folder / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


TRUSTED = {"kid": KEY.kid, "x": KEY.public_jwk()["x"]}


def test_an_intact_log_verifies_and_is_sealed(sealed_log: Path) -> None:
    result = verify_decisions(sealed_log, trusted=TRUSTED, run="r1")
    n = len(_lines(sealed_log))
    assert result.ok and result.entries == result.sealed == n and result.key_anchored
    assert verify_decisions(sealed_log, run="other").reason is not None


def test_a_truncated_tail_is_reported_unsealed(sealed_log: Path, tmp_path: Path) -> None:
    folder = _copy(sealed_log, tmp_path / "t")
    rows = _lines(folder)
    _write(folder, rows[:-3], rehash=False)
    result = verify_decisions(folder, trusted=TRUSTED)
    assert not result.ok and "unsealed after checkpoint" in str(result.reason)
    assert result.sealed < result.entries


def test_a_crash_leaves_a_log_verifiable_up_to_its_last_checkpoint(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path, KEY, run="r2", checkpoint_every=4)
    for k in range(10):
        log.append("choice", "c", "t", {"k": k})
    log.abandon()
    result = verify_decisions(tmp_path, trusted=TRUSTED)
    assert not result.ok and result.sealed == 10 and result.entries == 12
    assert result.first_bad == 11


def test_another_key_is_refused(sealed_log: Path) -> None:
    other = generate_key("urn:cityx:city:other")
    result = verify_decisions(sealed_log, trusted={"kid": other.kid, "x": other.public_jwk()["x"]})
    assert not result.ok and "signature" in str(result.reason)


def test_show_filters_by_kind_and_intersection(sealed_log: Path) -> None:
    commands = list(iter_records(sealed_log, kind="command"))
    assert commands and all(e.action == "command" for e in commands)
    mine = list(iter_records(sealed_log, intersection="tls1"))
    assert {e.subject for e in mine} <= {"tls1", "*"}


EDITS = st.sampled_from(["edit", "delete", "insert", "swap", "truncate"])


@pytest.mark.slow
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edit=EDITS, at=st.integers(0, 1000), other=st.integers(0, 1000), rehash=st.booleans())
def test_every_single_change_is_caught(
    sealed_log: Path, tmp_path: Path, edit: str, at: int, other: int, rehash: bool
) -> None:
    folder = _copy(sealed_log, tmp_path / "x")
    rows = _lines(folder)
    i, j = at % len(rows), other % len(rows)
    if edit == "edit":
        rows[i]["payload"] = {**rows[i]["payload"], "tampered": True}
    elif edit == "delete":
        del rows[i]
    elif edit == "insert":
        rows.insert(i, json.loads(json.dumps(rows[j])))
    elif edit == "swap":
        if i == j:
            j = (i + 1) % len(rows)
        rows[i], rows[j] = rows[j], rows[i]
    else:
        rows = rows[: max(i, 1) - 1] if i else rows[:-1]
    _write(folder, rows, rehash=rehash)
    result = verify_decisions(folder, trusted=TRUSTED)
    assert not result.ok, (edit, i, j, rehash)
    assert result.first_bad is not None and result.reason


def test_swapping_whole_segments_is_caught(sealed_log: Path, tmp_path: Path) -> None:
    folder = _copy(sealed_log, tmp_path / "s")
    rows = _lines(folder)
    segments = rows[:6], rows[6:12]
    _write(folder, [*segments[1], *segments[0], *rows[12:]], rehash=True)
    result = verify_decisions(folder, trusted=TRUSTED)
    assert not result.ok and "checkpoint" in str(result.reason)
