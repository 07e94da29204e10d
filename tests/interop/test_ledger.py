"""The message ledger: rejections are logged, accepted envelopes enter the audit log."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from cityx.interop import InMemoryTransport, SecureChannel, Signer, Verifier
from cityx.interop.ledger import ACTION, MessageLedger
from cityx.store import Store

from .conftest import AUD, flow


def test_accepted_digests_enter_the_audit_log_and_rejections_are_logged(
    tmp_path: Path,
    signer: Signer,
    verifier: Verifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InMemoryTransport()
    published: list[bytes] = []
    bus.subscribe("cityx/v1/#", lambda _topic, data: published.append(data))
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        ledger = MessageLedger(store, batch=3)
        inbox = SecureChannel(bus, city="cologne", verifier=verifier, ledger=ledger)
        seen = []
        inbox.subscribe("cityx/v1/cologne/#", seen.append)
        outbox = SecureChannel(bus, city="cologne", signer=signer)
        with caplog.at_level(logging.WARNING, logger="cityx.interop"):
            for _ in range(5):
                outbox.send(flow(), audience=AUD)
            bus.publish(  # a replay of the first envelope
                "cityx/v1/cologne/TrafficFlowObserved/" + signer.key.issuer, published[0]
            )
            bus.publish("cityx/v1/cologne/TrafficFlowObserved/x", b"not.a.jws")
        assert len(seen) == 5
        assert ledger.recorded == 3  # one full batch so far
        ledger.close()
        entries = [e for e in store.audit_entries() if e.action == ACTION]
        assert [e.payload["sha256"] for e in entries] == [
            hashlib.sha256(p).hexdigest() for p in published[:5]
        ]
        assert all(e.subject.startswith(signer.key.issuer + "/") for e in entries)
        assert store.verify_audit().ok
    reasons = [r.getMessage().split()[1] for r in caplog.records]
    assert reasons == ["replayed_jti", "malformed"]


def test_without_a_store_nothing_is_kept(signer: Signer, verifier: Verifier) -> None:
    bus = InMemoryTransport()
    ledger = MessageLedger(None)
    inbox = SecureChannel(bus, city="cologne", verifier=verifier, ledger=ledger)
    inbox.subscribe("cityx/v1/cologne/#", lambda _m: None)
    SecureChannel(bus, city="cologne", signer=signer).send(flow(), audience=AUD)
    assert ledger.flush() == 0 and ledger.recorded == 0
