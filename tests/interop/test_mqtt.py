"""The MQTT 5 transport against real brokers: the system Mosquitto and a test mTLS one.

Tests marked ``mqtt`` need the system broker at 127.0.0.1:1883; without it they
are skipped, or fail under CI=true (tests/support/services.py). Nothing here
sleeps for a guessed time: a test waits for the SUBACK before it publishes
(``wait_subscribed``), for messages through a :class:`Collector`, and for "no
late copy" through a marker message sent last (``accepted_before_marker``).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cityx.interop import SecureChannel, Signer, Verifier
from cityx.interop.bus import Message, Rejection
from cityx.interop.mqtt import BrokerError, MqttTransport, parse_url

from ..support.waiting import Collector, wait_for
from .conftest import AUD, accepted_before_marker, flow, free_port

SYSTEM = "mqtt://127.0.0.1:1883"


@pytest.fixture
def city() -> str:
    # A unique city level keeps tests apart on the shared system broker.
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pair() -> Iterator[tuple[MqttTransport, MqttTransport]]:
    with MqttTransport(url=SYSTEM) as sender, MqttTransport(url=SYSTEM) as receiver:
        yield sender, receiver


def test_parse_url() -> None:
    assert parse_url("mqtt://127.0.0.1").port == 1883
    assert parse_url("mqtts://broker.example:9999").tls
    with pytest.raises(BrokerError, match="mqtt://host:port"):
        parse_url("http://127.0.0.1:1883")


@pytest.mark.mqtt
def test_raw_bytes_round_trip(pair: tuple[MqttTransport, MqttTransport], city: str) -> None:
    sender, receiver = pair
    got: Collector[tuple[str, bytes]] = Collector()
    receiver.subscribe(f"cityx/v1/{city}/#", lambda t, d: got((t, d)))
    assert receiver.wait_subscribed()  # else the broker could drop the publish below
    sender.publish(f"cityx/v1/{city}/X/a", b"\x00\x01hello")
    assert got.wait(1)
    assert got.items == [(f"cityx/v1/{city}/X/a", b"\x00\x01hello")]


@pytest.mark.mqtt
def test_signed_messages_verified_and_forgeries_rejected(
    pair: tuple[MqttTransport, MqttTransport], city: str, signer: Signer, verifier: Verifier
) -> None:
    sender, receiver = pair
    accepted: Collector[Message] = Collector()
    rejected: Collector[Rejection] = Collector()
    inbox = SecureChannel(receiver, city=city, verifier=verifier, on_reject=rejected)
    inbox.subscribe(f"cityx/v1/{city}/#", accepted)
    assert receiver.wait_subscribed()
    outbox = SecureChannel(sender, city=city, signer=signer)
    topic = outbox.send(flow(), audience=AUD)
    # A forged envelope: flip the last signature character.
    envelope = signer.sign(flow(intensity=99), audience=AUD, topic=topic)
    forged = envelope[:-2] + ("A" if envelope[-2] != "A" else "B") + envelope[-1]
    sender.publish(topic, forged.encode())
    assert accepted.wait(1) and rejected.wait(1)
    assert accepted.items[0].topic == topic
    assert accepted.items[0].entity["intensity"]["value"] == 14
    assert rejected.items[0].reason == "bad_signature"


@pytest.mark.mqtt
def test_redelivered_duplicate_dropped_silently(
    pair: tuple[MqttTransport, MqttTransport], city: str, signer: Signer, verifier: Verifier
) -> None:
    sender, receiver = pair
    accepted: Collector[Message] = Collector()
    inbox = SecureChannel(receiver, city=city, verifier=verifier)
    inbox.subscribe(f"cityx/v1/{city}/#", accepted)
    # An overlapping raw subscription makes the broker send copies as well.
    receiver.subscribe(f"cityx/v1/{city}/+/+", lambda t, d: None)
    assert receiver.wait_subscribed()
    outbox = SecureChannel(sender, city=city, signer=signer)
    topic = f"cityx/v1/{city}/TrafficFlowObserved/{signer.key.issuer}"
    data = signer.sign(flow(), audience=AUD, topic=topic).encode()
    sender.publish(topic, data)
    sender.publish(topic, data)  # what a QoS 1 DUP redelivery looks like to us
    assert len(accepted_before_marker(outbox, accepted)) == 1  # every copy is in by now
    assert sum(inbox.rejected.values()) == 0  # not counted as a replay attack


@pytest.mark.mqtt
def test_no_loss_across_a_dropped_connection(city: str, signer: Signer, verifier: Verifier) -> None:
    with (
        MqttTransport(url=SYSTEM) as sender,
        MqttTransport(url=SYSTEM, reconnect_min_s=1, reconnect_max_s=2) as receiver,
    ):
        accepted: Collector[Message] = Collector()
        inbox = SecureChannel(receiver, city=city, verifier=verifier)
        inbox.subscribe(f"cityx/v1/{city}/#", accepted)
        assert receiver.wait_subscribed()
        outbox = SecureChannel(sender, city=city, signer=signer)
        for i in range(5):
            outbox.send(flow(intensity=i), audience=AUD)
        assert accepted.wait(5)
        # Cut the receiver's TCP connection under paho's feet.
        sock = receiver._client.socket() if receiver._client else None
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        assert wait_for(lambda: not receiver.connected, 3)
        for i in range(5, 10):
            outbox.send(flow(intensity=i), audience=AUD)
        assert sender.flush()
        assert accepted.wait(10, 8)
        values = [m.entity["intensity"]["value"] for m in accepted_before_marker(outbox, accepted)]
        assert sorted(values) == list(range(10))  # none lost, none twice
        assert sum(inbox.rejected.values()) == 0


def test_broker_down_is_a_clear_quick_error() -> None:
    port = free_port()  # nothing listens here
    started = time.monotonic()
    with pytest.raises(BrokerError) as caught:
        MqttTransport(url=f"mqtt://127.0.0.1:{port}").connect()
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"cannot reach the MQTT broker at mqtt://127.0.0.1:{port}: "
        "connection refused; is mosquitto running?"
    )


def test_not_connected_is_an_error() -> None:
    with pytest.raises(BrokerError, match="call connect"):
        MqttTransport(url=SYSTEM).publish("cityx/v1/x/y/z", b"")


def test_mtls_signed_round_trip(
    mtls_broker: Any, city: str, signer: Signer, verifier: Verifier
) -> None:
    tls = {
        "url": mtls_broker.url,
        "ca_file": mtls_broker.ca,
        "cert_file": mtls_broker.cert,
        "key_file": mtls_broker.key,
    }
    with MqttTransport(**tls) as sender, MqttTransport(**tls) as receiver:
        accepted: Collector[Message] = Collector()
        SecureChannel(receiver, city=city, verifier=verifier).subscribe(
            f"cityx/v1/{city}/#", accepted
        )
        assert receiver.wait_subscribed()
        SecureChannel(sender, city=city, signer=signer).send(flow(), audience=AUD)
        assert accepted.wait(1)
        assert accepted.items[0].entity["type"] == "TrafficFlowObserved"


def test_mtls_without_client_certificate_refused(mtls_broker: Any) -> None:
    started = time.monotonic()
    with pytest.raises(BrokerError, match=r"^(TLS handshake|cannot connect).*"):
        MqttTransport(url=mtls_broker.url, ca_file=mtls_broker.ca, connect_timeout_s=2).connect()
    assert time.monotonic() - started < 5


def test_mtls_with_untrusted_server_refused(mtls_broker: Any) -> None:
    # No CA file: the system CAs do not know the test CA, so verification fails.
    with pytest.raises(BrokerError, match="TLS handshake"):
        MqttTransport(
            url=mtls_broker.url, cert_file=mtls_broker.cert, key_file=mtls_broker.key
        ).connect()


@pytest.mark.mqtt
def test_publishes_while_sender_is_disconnected_are_kept(
    city: str, signer: Signer, verifier: Verifier
) -> None:
    with (
        MqttTransport(url=SYSTEM, reconnect_min_s=1, reconnect_max_s=2) as sender,
        MqttTransport(url=SYSTEM) as receiver,
    ):
        accepted: Collector[Message] = Collector()
        inbox = SecureChannel(receiver, city=city, verifier=verifier)
        inbox.subscribe(f"cityx/v1/{city}/#", accepted)
        assert receiver.wait_subscribed()
        outbox = SecureChannel(sender, city=city, signer=signer)
        outbox.send(flow(intensity=0), audience=AUD)
        assert accepted.wait(1)
        sock = sender._client.socket() if sender._client else None
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        assert wait_for(lambda: not sender.connected, 3)
        for i in range(1, 4):  # paho keeps QoS 1 messages until it reconnects
            outbox.send(flow(intensity=i), audience=AUD)
        assert accepted.wait(4, 8)
        before = accepted_before_marker(outbox, accepted)
        assert sorted(m.entity["intensity"]["value"] for m in before) == [0, 1, 2, 3]
        assert sum(inbox.rejected.values()) == 0
