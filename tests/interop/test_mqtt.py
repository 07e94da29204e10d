"""The MQTT 5 transport against real brokers: the system Mosquitto and a test mTLS one.

The system broker at 127.0.0.1:1883 must be running (CI starts it): a test
that cannot reach it fails, it does not skip.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cityx.interop import SecureChannel, Signer, Verifier
from cityx.interop.bus import Message, Rejection
from cityx.interop.mqtt import BrokerError, MqttTransport, parse_url

from .conftest import AUD, flow, free_port

SYSTEM = "mqtt://127.0.0.1:1883"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


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


def test_raw_bytes_round_trip(pair: tuple[MqttTransport, MqttTransport], city: str) -> None:
    sender, receiver = pair
    got: list[tuple[str, bytes]] = []
    receiver.subscribe(f"cityx/v1/{city}/#", lambda t, d: got.append((t, d)))
    time.sleep(0.2)  # let SUBACK arrive before the first publish
    sender.publish(f"cityx/v1/{city}/X/a", b"\x00\x01hello")
    assert wait_for(lambda: len(got) == 1)
    assert got == [(f"cityx/v1/{city}/X/a", b"\x00\x01hello")]


def test_signed_messages_verified_and_forgeries_rejected(
    pair: tuple[MqttTransport, MqttTransport], city: str, signer: Signer, verifier: Verifier
) -> None:
    sender, receiver = pair
    accepted: list[Message] = []
    rejected: list[Rejection] = []
    inbox = SecureChannel(receiver, city=city, verifier=verifier, on_reject=rejected.append)
    inbox.subscribe(f"cityx/v1/{city}/#", accepted.append)
    time.sleep(0.2)
    outbox = SecureChannel(sender, city=city, signer=signer)
    topic = outbox.send(flow(), audience=AUD)
    # A forged envelope: flip the last signature character.
    envelope = signer.sign(flow(intensity=99), audience=AUD, topic=topic)
    forged = envelope[:-2] + ("A" if envelope[-2] != "A" else "B") + envelope[-1]
    sender.publish(topic, forged.encode())
    assert wait_for(lambda: len(accepted) == 1 and len(rejected) == 1)
    assert accepted[0].topic == topic
    assert accepted[0].entity["intensity"]["value"] == 14
    assert rejected[0].reason == "bad_signature"


def test_redelivered_duplicate_dropped_silently(
    pair: tuple[MqttTransport, MqttTransport], city: str, signer: Signer, verifier: Verifier
) -> None:
    sender, receiver = pair
    accepted: list[Message] = []
    inbox = SecureChannel(receiver, city=city, verifier=verifier)
    inbox.subscribe(f"cityx/v1/{city}/#", accepted.append)
    # An overlapping raw subscription makes the broker send copies as well.
    receiver.subscribe(f"cityx/v1/{city}/+/+", lambda t, d: None)
    time.sleep(0.2)
    topic = f"cityx/v1/{city}/TrafficFlowObserved/{signer.key.issuer}"
    data = signer.sign(flow(), audience=AUD, topic=topic).encode()
    sender.publish(topic, data)
    sender.publish(topic, data)  # what a QoS 1 DUP redelivery looks like to us
    assert wait_for(lambda: len(accepted) == 1)
    time.sleep(0.3)
    assert len(accepted) == 1
    assert sum(inbox.rejected.values()) == 0  # not counted as a replay attack


def test_no_loss_across_a_dropped_connection(city: str, signer: Signer, verifier: Verifier) -> None:
    with (
        MqttTransport(url=SYSTEM) as sender,
        MqttTransport(url=SYSTEM, reconnect_min_s=1, reconnect_max_s=2) as receiver,
    ):
        accepted: list[Message] = []
        inbox = SecureChannel(receiver, city=city, verifier=verifier)
        inbox.subscribe(f"cityx/v1/{city}/#", accepted.append)
        time.sleep(0.2)
        outbox = SecureChannel(sender, city=city, signer=signer)
        for i in range(5):
            outbox.send(flow(intensity=i), audience=AUD)
        assert wait_for(lambda: len(accepted) == 5)
        # Cut the receiver's TCP connection under paho's feet.
        sock = receiver._client.socket() if receiver._client else None
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        assert wait_for(lambda: not receiver.connected, 3)
        for i in range(5, 10):
            outbox.send(flow(intensity=i), audience=AUD)
        assert sender.flush()
        assert wait_for(lambda: len(accepted) == 10, 8)
        time.sleep(0.3)
        values = [m.entity["intensity"]["value"] for m in accepted]
        assert sorted(values) == list(range(10))
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
        accepted: list[Message] = []
        done = threading.Event()

        def handle(message: Message) -> None:
            accepted.append(message)
            done.set()

        SecureChannel(receiver, city=city, verifier=verifier).subscribe(
            f"cityx/v1/{city}/#", handle
        )
        time.sleep(0.2)
        SecureChannel(sender, city=city, signer=signer).send(flow(), audience=AUD)
        assert done.wait(5)
        assert accepted[0].entity["type"] == "TrafficFlowObserved"


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


def test_publishes_while_sender_is_disconnected_are_kept(
    city: str, signer: Signer, verifier: Verifier
) -> None:
    with (
        MqttTransport(url=SYSTEM, reconnect_min_s=1, reconnect_max_s=2) as sender,
        MqttTransport(url=SYSTEM) as receiver,
    ):
        accepted: list[Message] = []
        inbox = SecureChannel(receiver, city=city, verifier=verifier)
        inbox.subscribe(f"cityx/v1/{city}/#", accepted.append)
        time.sleep(0.2)
        outbox = SecureChannel(sender, city=city, signer=signer)
        outbox.send(flow(intensity=0), audience=AUD)
        assert wait_for(lambda: len(accepted) == 1)
        sock = sender._client.socket() if sender._client else None
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        assert wait_for(lambda: not sender.connected, 3)
        for i in range(1, 4):  # paho keeps QoS 1 messages until it reconnects
            outbox.send(flow(intensity=i), audience=AUD)
        assert wait_for(lambda: len(accepted) == 4, 8)
        time.sleep(0.3)
        assert sorted(m.entity["intensity"]["value"] for m in accepted) == [0, 1, 2, 3]
        assert sum(inbox.rejected.values()) == 0
