"""Retention: whole sealed segments pruned, a signed tombstone, tampering around it caught."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityx.core.audit import entry_hash
from cityx.core.errors import InputError
from cityx.interop import StaticTrustStore, TrustedKey, generate_key
from cityx.oversight import DecisionLog, verify_decisions
from cityx.oversight.decisions import LOG_FILE
from cityx.oversight.retention import prune_decisions

RUN_KEY = generate_key("urn:cityx:city:run")
CITY = generate_key("urn:cityx:city:retention")
OTHER = generate_key("urn:cityx:city:intruder")
LATER = datetime.now(UTC) + timedelta(days=400)  # every record is old by then


def _log(folder: Path, records: int = 23) -> Path:
    log = DecisionLog(folder, RUN_KEY, run="r1", checkpoint_every=5)
    for k in range(records):
        log.append(("choice", "command", "alert")[k % 3], "controller:x", "tls", {"k": k})
    log.close()
    return folder


def _trust() -> StaticTrustStore:
    return StaticTrustStore(
        [TrustedKey(kid=k.kid, issuer=k.issuer, x=k.public_jwk()["x"]) for k in (RUN_KEY, CITY)]
    )


@pytest.fixture(scope="module")
def pruned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = _log(tmp_path_factory.mktemp("pruned"))
    # Only segments sealed before the cut-off go: all of them but the last two here.
    result = prune_decisions(folder, CITY, keep_days=200, now=LATER)
    assert result.records == 28 and result.upto == 28  # seals at 6, 12, 18, 24, 28 (final)
    return folder


def _lines(folder: Path) -> list[str]:
    return (folder / LOG_FILE).read_text().splitlines()


def _copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def test_a_pruned_log_verifies_and_says_what_was_pruned(tmp_path: Path) -> None:
    folder = _log(tmp_path)
    before = _lines(folder)
    # Nothing is older than six months today: nothing goes.
    assert prune_decisions(folder, CITY, keep_days=183).records == 0
    assert _lines(folder) == before
    result = prune_decisions(folder, CITY, keep_days=200, now=LATER)
    assert result.records == 28 and result.kept == 0
    check = verify_decisions(folder, trust=_trust())
    assert check.ok, check.reason
    assert check.pruned is not None and check.pruned["records"] == 28
    assert check.pruned["kinds"]["checkpoint"] == 5 and check.pruned["kid"] == CITY.kid
    alone = verify_decisions(folder)  # the tombstone's own key: ok, said not anchored
    assert alone.ok and not alone.key_anchored
    assert any("not anchored" in w for w in alone.warnings)


def test_only_whole_sealed_old_segments_go_and_a_second_prune_extends_the_tombstone(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "log"
    folder.mkdir()
    log = DecisionLog(folder, RUN_KEY, run="r1", checkpoint_every=5)
    for k in range(12):
        log.append("choice", "controller:x", "tls", {"k": k})
    log.abandon()  # a crash: 12 records, seals at 6 and 12, then 2 unsealed
    cut = prune_decisions(folder, CITY, keep_days=1, now=LATER, allow_short=True)
    assert cut.upto == 12 and cut.kept == 2  # the unsealed tail stays
    check = verify_decisions(folder, trust=_trust())
    assert not check.ok and "unsealed after checkpoint 12" in (check.reason or "")
    with pytest.raises(InputError, match="six months"):
        prune_decisions(folder, CITY, keep_days=30)
    assert prune_decisions(folder, CITY, keep_days=1, now=LATER, allow_short=True).records == 0


def test_a_second_prune_keeps_the_first_tombstones_count(tmp_path: Path) -> None:
    folder = _log(tmp_path, records=23)
    rows = [json.loads(x) for x in _lines(folder)]
    first = prune_decisions(folder, CITY, keep_days=0, now=_just_after(rows, 6), allow_short=True)
    assert first.upto == 6
    second = prune_decisions(folder, CITY, keep_days=200, now=LATER)
    assert second.records == 22 and second.upto == 28
    check = verify_decisions(folder, trust=_trust())
    assert check.ok and check.pruned is not None and check.pruned["records"] == 28
    assert check.pruned["kinds"]["checkpoint"] == 5


def _tamper(folder: Path, how: str, k: int) -> None:
    lines = _lines(folder)
    tomb, rest = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    body = tomb["tombstone"]
    if how == "edit-count":
        body["records"] = body["records"] - 1 - k % 3
    elif how == "edit-kinds":
        body["kinds"]["alert"] = body["kinds"].get("alert", 0) + 1 + k % 4
    elif how == "move-head":
        body["upto"] = body["upto"] - 1 - k % 5
    elif how == "drop-tombstone":
        tomb = None
    elif how == "resign-other-key":
        from cityx.oversight.tombstone import make_tombstone

        plain = {key: v for key, v in body.items() if key != "schema"}
        plain["records"] += 1 + k % 7
        made = make_tombstone(plain, OTHER)
        tomb = json.loads(made.to_line())
    elif how == "swap-seal":
        body["seal"]["payload"]["final"] = not body["seal"]["payload"]["final"]
    lines = ([json.dumps(tomb)] if tomb is not None else []) + [json.dumps(r) for r in rest]
    (folder / LOG_FILE).write_text("".join(x + "\n" for x in lines))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    how=st.sampled_from(
        ["edit-count", "edit-kinds", "move-head", "drop-tombstone", "resign-other-key", "swap-seal"]
    ),
    k=st.integers(0, 50),
)
def test_tampering_with_the_tombstone_is_caught(
    pruned: Path, tmp_path_factory: pytest.TempPathFactory, how: str, k: int
) -> None:
    folder = _copy(pruned, tmp_path_factory.mktemp("t") / "log")
    _tamper(folder, how, k)
    check = verify_decisions(folder, trust=_trust())
    assert not check.ok


def _just_after(rows: list[dict[str, Any]], seq: int) -> datetime:
    at = datetime.fromisoformat(rows[seq - 1]["at"]) + timedelta(microseconds=1)
    if at >= datetime.fromisoformat(rows[seq]["at"]):
        pytest.skip("records written within one microsecond")
    return at


@pytest.fixture(scope="module")
def half_pruned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log with records kept after its tombstone (pruned with an old clock on old seals)."""
    folder = tmp_path_factory.mktemp("half")
    log = DecisionLog(folder, RUN_KEY, run="r1", checkpoint_every=5)
    for k in range(23):
        log.append(("choice", "command", "alert")[k % 3], "controller:x", "tls", {"k": k})
    log.close()
    # Seals are kept in order of time: a cut-off just after the 2nd seal keeps the rest.
    rows = [json.loads(x) for x in _lines(folder)]
    result = prune_decisions(folder, CITY, keep_days=0, now=_just_after(rows, 12), allow_short=True)
    assert result.upto == 12 and result.kept == 16
    return folder


def test_records_after_a_tombstone_verify(half_pruned: Path) -> None:
    check = verify_decisions(half_pruned, trust=_trust())
    assert check.ok, check.reason
    assert check.entries == 16 and check.sealed == 28


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    how=st.sampled_from(["edit", "delete", "insert", "reorder", "cut-more"]),
    at=st.integers(0, 15),
    rehash=st.booleans(),
)
def test_tampering_after_a_tombstone_is_caught_even_with_fresh_hashes(
    half_pruned: Path, tmp_path_factory: pytest.TempPathFactory, how: str, at: int, rehash: bool
) -> None:
    folder = _copy(half_pruned, tmp_path_factory.mktemp("a") / "log")
    lines = _lines(folder)
    tomb, rows = lines[0], [json.loads(x) for x in lines[1:]]
    if how == "edit":
        rows[at]["payload"] = {**rows[at]["payload"], "forged": True}
    elif how == "delete":
        del rows[at]
    elif how == "insert":
        rows.insert(at, {**rows[at], "payload": {"k": -1}})
    elif how == "reorder":
        j = (at + 1) % len(rows)
        rows[at], rows[j] = rows[j], rows[at]
    elif how == "cut-more":  # drop the first kept segment as if pruned, tombstone unchanged
        rows = rows[6:]
    if rehash:  # the adversary recomputes seqs and hashes from the tombstone's head on
        head = json.loads(tomb)["tombstone"]
        prev, seq = head["head"], head["upto"]
        for row in rows:
            seq += 1
            row["seq"], row["prev_hash"] = seq, prev
            row["hash"] = entry_hash(
                seq, row["at"], row["actor"], row["action"], row["subject"], row["payload"], prev
            )
            prev = row["hash"]
    (folder / LOG_FILE).write_text(tomb + "\n" + "".join(json.dumps(r) + "\n" for r in rows))
    assert not verify_decisions(folder, trust=_trust()).ok


def test_the_cli_prunes_and_verify_reports_the_tombstone(tmp_path: Path) -> None:
    from ..support.cli import cityx

    (tmp_path / "run").mkdir()
    folder = _log(tmp_path / "run")
    made = cityx("interop", "keygen", "--issuer", "urn:cityx:city:ret", "--out", tmp_path / "k")
    assert made.code == 0, made.err
    key = next((tmp_path / "k").glob("*.key.jwk"))
    short = cityx("decisions", "prune", folder, "--keep-days", "30", "--sign-key", key)
    assert short.code == 2 and "six months" in short.err and len(short.err.splitlines()) == 1
    run = cityx(
        *("decisions", "prune", folder, "--keep-days", "0", "--allow-under-six-months"),
        *("--sign-key", key, "--json"),
    )
    assert run.code == 0, run.err
    assert json.loads(run.out)["records"] == 28
    check = cityx("decisions", "verify", folder, "--json")
    out = json.loads(check.out)
    assert check.code == 0 and out["ok"] and out["pruned"]["records"] == 28
    said = cityx("decisions", "verify", folder)
    assert said.code == 0 and "pruned: records 1-28 (5 sealed segments" in said.out
    # With trust documents from outside the folder, holding the run's key and the city's.
    from cityx.interop import load_signing_key

    made = cityx("interop", "keygen", "--issuer", "urn:cityx:city:run", "--out", tmp_path / "k")
    assert made.code == 0, made.err
    run_key = load_signing_key(next((tmp_path / "k").glob("urn_cityx_city_run.*.key.jwk")))
    (tmp_path / "run2").mkdir()
    log = DecisionLog(tmp_path / "run2", run_key, run="r2", checkpoint_every=5)
    for k in range(7):
        log.append("choice", "controller:x", "tls", {"k": k})
    log.close()
    pruned_all = cityx(
        *("decisions", "prune", tmp_path / "run2", "--keep-days", "0"),
        *("--allow-under-six-months", "--sign-key", key),
    )
    assert pruned_all.code == 0, pruned_all.err
    anchored = cityx("decisions", "verify", tmp_path / "run2", "--trust", tmp_path / "k", "--json")
    out = json.loads(anchored.out)
    assert anchored.code == 0 and out["ok"] and out["key_anchored"], out
    assert out["pruned"]["records"] == 9 and out["entries"] == 0
