"""The trust store kept in the database: on a SQLite file and on PostgreSQL.

PostgreSQL tests get a database of their own, created through the
``postgres`` database at 127.0.0.1:5432 and dropped afterwards. They are
marked ``postgres``: skipped when PostgreSQL is down, an error under CI=true
(tests/support/services.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from cityx.core import StoreError
from cityx.interop import (
    Catalog,
    Reason,
    Signer,
    SigningKey,
    TrustStoreError,
    Verifier,
    generate_key,
    load_trust,
    topic_for,
    trust_document,
)
from cityx.interop.trust_db import DbTrustStore, TrustRecords, epoch, iso
from cityx.store import Store

from ..support.services import require
from .conftest import AUD, ISSUER, NOW, OTHER, Clock, flow

PG_HOST = "postgres@127.0.0.1:5432"
DAY = 86_400.0


def _admin(sql: str) -> None:
    try:
        with psycopg.connect(f"postgresql://{PG_HOST}/postgres", autocommit=True) as conn:
            conn.execute(sql)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_HOST} is needed for these tests: {exc}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    require("postgres")  # also for a test that uses this fixture without the marker
    name = f"cityx_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    yield f"postgresql://{PG_HOST}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


def _at(offset_days: float) -> str:
    return iso(NOW + offset_days * DAY)


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {
        "old": generate_key(ISSUER),
        "new": generate_key(ISSUER),
        "other": generate_key(OTHER),
    }


def _documents(keys: dict[str, SigningKey]) -> list[dict[str, Any]]:
    """ISSUER rotates old -> new with ten days of overlap; OTHER may only send flows."""
    acme = trust_document(keys["old"], not_before=_at(-100), not_after=_at(5))
    acme["keys"] += trust_document(keys["new"], not_before=_at(-5))["keys"]
    globex = trust_document(
        keys["other"], types=["TrafficFlowObserved"], topics=["cityx/v1/cologne/*/*"]
    )
    globex["revoked"] = [{"kid": "gone-kid-not-held", "at": _at(-1), "reason": "test"}]
    return [acme, globex]


def _write(folder: Path, documents: list[dict[str, Any]]) -> Path:
    folder.mkdir()
    for i, document in enumerate(documents):
        (folder / f"{i}.json").write_text(json.dumps(document), encoding="utf-8")
    return folder


def test_the_store_is_trust_records(store: Store) -> None:
    records: TrustRecords = store  # the protocol the interop layer names; mypy checks this too
    assert DbTrustStore(records).keys() == ()


def test_file_to_database_to_file_round_trip(
    store: Store, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    folder = _write(tmp_path / "in", _documents(keys))
    trust = DbTrustStore(store)
    assert trust.import_path(folder) == 3
    from_file = load_trust(folder)
    assert set(trust.keys()) == set(from_file.keys())
    written = trust.export_folder(tmp_path / "out")
    assert len(written) == 2
    assert set(load_trust(tmp_path / "out").keys()) == set(from_file.keys())
    exported = {d["issuer"]: d for d in trust.export_documents()}
    # A revocation of a kid with no key here travels in the first document.
    assert exported[ISSUER]["revoked"] == [
        {"kid": "gone-kid-not-held", "at": "2027-01-14T08:00:00Z", "reason": "test"}
    ]
    # Importing the same documents again changes nothing but is recorded.
    assert trust.import_path(folder) == 3
    assert set(trust.keys()) == set(from_file.keys())
    actions = [e.action for e in store.audit_entries()]
    assert actions.count("trust.imported") == 4
    assert store.verify_audit().ok


def test_verifier_over_the_database_rotation_revocation_permissions(
    store: Store, keys: dict[str, SigningKey], catalog: Catalog
) -> None:
    clock = Clock()
    trust = DbTrustStore(store, refresh_s=0)
    trust.import_documents((d, f"doc{i}") for i, d in enumerate(_documents(keys)))
    verifier = Verifier(trust, audience=AUD, catalog=catalog, now=clock)
    topic = topic_for("cologne", "TrafficFlowObserved", ISSUER)

    # One sender per issuer, whichever of its keys signs: its seq keeps rising across a rotation.
    senders = {k.issuer: Signer(k, catalog=catalog, now=clock) for k in keys.values()}

    def send(name: str, **options: Any) -> Reason | None:
        signer = senders[keys[name].issuer]
        signer.key = keys[name]
        options.setdefault("topic", topic_for("cologne", "TrafficFlowObserved", signer.key.issuer))
        envelope = signer.sign(flow(at=clock.t), audience=AUD, **options)
        return verifier.verify(envelope, topic=options["topic"]).reason

    # In the overlap both of the issuer's keys are good.
    assert send("old", topic=topic) is None
    assert send("new", topic=topic) is None
    clock.t = NOW + 6 * DAY  # past the old key's not_after
    assert send("old", topic=topic) == Reason.KEY_EXPIRED
    assert send("new", topic=topic) is None
    assert trust.revoke(keys["new"].kid, at=NOW + 6.5 * DAY, reason="leaked")
    assert send("new", topic=topic) is None  # not yet in effect
    clock.t = NOW + 7 * DAY
    assert send("new", topic=topic) == Reason.REVOKED_KEY
    # An earlier revocation wins over a later one, not the other way round.
    assert not trust.revoke(keys["new"].kid, at=NOW + 9 * DAY, reason="again")
    assert store.trust_revocations()[0].reason != "again"
    # Permissions: OTHER may send flows on cologne topics only.
    assert send("other") is None
    assert send("other", topic=topic_for("bonn", "TrafficFlowObserved", OTHER)) == (
        Reason.NOT_PERMITTED
    )


def test_a_change_by_another_process_is_seen_after_refresh_s(
    db_url: str, keys: dict[str, SigningKey]
) -> None:
    ticks = Clock(0.0)
    with Store.open(db_url) as mine, Store.open(db_url) as theirs:
        trust = DbTrustStore(mine, refresh_s=5, clock=ticks)
        assert trust.key(keys["old"].kid) is None
        DbTrustStore(theirs).import_documents([(_documents(keys)[0], "doc")])
        ticks.t = 4.9
        assert trust.key(keys["old"].kid) is None  # still the old snapshot
        ticks.t = 5.1
        found = trust.key(keys["old"].kid)
        assert found is not None and found.revoked_at is None
        theirs.revoke_trust_key(kid=keys["old"].kid, at=_at(0), reason="leaked")
        ticks.t = 10.2
        found = trust.key(keys["old"].kid)
        assert found is not None and found.revoked_at == NOW


def test_database_down_fails_closed_without_raising(
    db_url: str, keys: dict[str, SigningKey], catalog: Catalog
) -> None:
    ticks = Clock(0.0)
    opened = Store.open(db_url)
    trust = DbTrustStore(opened, refresh_s=1, max_stale_s=10, clock=ticks)
    trust.import_documents([(_documents(keys)[0], "doc")])
    opened.close()  # every read now fails
    ticks.t = 2.0
    assert trust.key(keys["new"].kid) is not None  # a stale snapshot still serves
    assert trust.last_error is not None and "not open" in trust.last_error
    ticks.t = 10.5
    assert trust.key(keys["new"].kid) is None
    clock = Clock()
    verifier = Verifier(trust, audience=AUD, catalog=catalog, now=clock)
    envelope = Signer(keys["new"], catalog=catalog, now=clock).sign(flow(), audience=AUD)
    assert verifier.verify(envelope).reason == Reason.UNKNOWN_KEY


def test_a_kid_belongs_to_one_issuer(store: Store, keys: dict[str, SigningKey]) -> None:
    trust = DbTrustStore(store)
    trust.import_documents([(_documents(keys)[0], "acme")])
    stolen = trust_document(keys["old"])
    stolen["issuer"] = OTHER
    with pytest.raises(StoreError, match="already belongs to"):
        trust.import_documents([(stolen, "globex")])
    # Within one import the clash is found before anything is written.
    fresh = generate_key(ISSUER)
    clash = trust_document(fresh)
    clash_other = trust_document(fresh)
    clash_other["issuer"] = OTHER
    with pytest.raises(TrustStoreError, match="listed for"):
        trust.import_documents([(clash, "a"), (clash_other, "b")])
    assert fresh.kid not in {r.kid for r in store.trust_keys()}
    with pytest.raises(TrustStoreError, match="format"):
        trust.import_documents([({"keys": []}, "bare")])


def test_times_round_trip() -> None:
    assert iso(NOW) == "2027-01-15T08:00:00.000000Z"
    assert epoch(iso(NOW + 0.25)) == NOW + 0.25
    assert epoch(None) is None


def _alembic(conn: sa.Connection, action: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("cityx.store") / "migrations"))
    cfg.attributes["connection"] = conn
    getattr(command, action)(cfg, revision)


def test_migration_0002_upgrades_a_0001_store_without_loss(
    db_url: str, keys: dict[str, SigningKey]
) -> None:
    with Store.open(db_url) as first:
        first.record_submission(
            system_id="tiny",
            version="1.0.0",
            vendor="Acme",
            kind="predictor",
            sha256="a" * 64,
            path="/subs/tiny",
            manifest={"schema_version": 1},
        )
        head = first.head()
    # Take the store back to 0001, the schema before the trust tables.
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            _alembic(conn, "downgrade", "0001")
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert version == "0001"
    assert "trust_keys" not in tables and "submissions" in tables
    # Opening it upgrades to 0002, keeping every row.
    with Store.open(db_url) as second:
        assert second.head() == head
        assert second.verify_audit().ok
        trust = DbTrustStore(second)
        assert trust.import_documents([(_documents(keys)[0], "acme")]) == 2
        assert len(trust.keys()) == 2
        assert second.verify_audit().ok
