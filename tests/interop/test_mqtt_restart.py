"""At-least-once delivery across a broker restart, and brokers that are down, mute or refuse.

Each test starts its own mosquitto on a free port, with ``persistence true``
and its persistence file in the test's temporary folder, so the broker can
be stopped and started again without touching the system broker. They need
the mosquitto program, not the system broker (tests/support/services.py).
"""

from __future__ import annotations

import getpass
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityx.interop import SecureChannel, Signer, Verifier
from cityx.interop.bus import Message
from cityx.interop.mqtt import BrokerError, MqttTransport

from ..support.services import mosquitto_program
from ..support.waiting import Collector, wait_for
from .conftest import AUD, accepted_before_marker, flow, free_port


class Broker:
    """A mosquitto with a persistent store, started and stopped by the test."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "persistence_file broker.db\n"
            # Run as whoever runs the tests (root would drop to user mosquitto).
            f"user {getpass.getuser()}\n"
        )
        self.store = folder / "broker.db"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [mosquitto_program(), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("test mosquitto did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: mosquitto writes its persistence file and exits."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=5)
            self._process = None


def numbered(i: int) -> dict[str, Any]:
    """A valid flow that carries ``i`` (0..999) in its occupancy."""
    return flow(occupancy=i / 1000)


def number_of(message: Message) -> int:
    return round(message.entity["occupancy"]["value"] * 1000)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    started = Broker(tmp_path)
    started.start()
    try:
        yield started
    finally:
        started.stop()


def test_no_accepted_message_lost_or_doubled_across_a_broker_restart(
    broker: Broker, signer: Signer, verifier: Verifier
) -> None:
    city = f"t{uuid.uuid4().hex[:12]}"
    fast = {"reconnect_min_s": 1, "reconnect_max_s": 1}
    with (
        MqttTransport(url=broker.url, **fast) as sender,
        MqttTransport(url=broker.url, session_expiry_s=600, **fast) as receiver,
    ):
        accepted: Collector[Message] = Collector()
        inbox = SecureChannel(receiver, city=city, verifier=verifier)
        inbox.subscribe(f"cityx/v1/{city}/#", accepted)
        assert receiver.wait_subscribed()
        outbox = SecureChannel(sender, city=city, signer=signer)
        # Mid-stream: the broker stops right after a burst, with messages in flight.
        for i in range(60):
            outbox.send(numbered(i), audience=AUD)
        broker.stop()
        assert broker.store.exists()  # the session and its queue were saved
        assert wait_for(lambda: not sender.connected and not receiver.connected, 3)
        for i in range(60, 100):  # kept by the client while the broker is down
            outbox.send(numbered(i), audience=AUD)
        broker.start()
        assert wait_for(lambda: sender.connected and receiver.connected, 8)
        assert receiver.session_present  # the broker remembered the receiver's session
        assert receiver.wait_subscribed()  # subscribed again on the new connection
        for i in range(100, 150):
            outbox.send(numbered(i), audience=AUD)
        assert sender.flush(8)
        assert accepted.wait(150, 8)
        values = Counter(number_of(m) for m in accepted_before_marker(outbox, accepted))
        assert sorted(values) == list(range(150))  # none lost
        assert set(values.values()) == {1}  # none twice
        assert sum(inbox.rejected.values()) == 0  # redeliveries never reach the verifier
        assert receiver.connections == 2 and sender.connections == 2


def test_a_subscription_is_acknowledged_only_once_the_broker_is_back(broker: Broker) -> None:
    with MqttTransport(url=broker.url, reconnect_min_s=1, reconnect_max_s=1) as receiver:
        broker.stop()
        assert wait_for(lambda: not receiver.connected, 3)
        receiver.subscribe("cityx/v1/x/#", lambda t, d: None)  # kept, sent on reconnect
        assert receiver.wait_subscribed(0) is False  # no broker, no SUBACK
        broker.start()
        assert receiver.wait_subscribed(8)


def _packets(conn: socket.socket) -> Iterator[tuple[int, bytes]]:
    """(packet type, variable header and payload) of each MQTT packet the client sends."""
    with conn.makefile("rb") as stream:
        while head := stream.read(1):
            length, shift = 0, 0
            while digit := stream.read(1):  # the remaining length: 7 bits a byte, low first
                length |= (digit[0] & 0x7F) << shift
                shift += 7
                if digit[0] < 0x80:
                    break
            yield head[0] & 0xF0, stream.read(length)


def _refuse_every_subscription(listener: socket.socket) -> None:
    """Just enough of an MQTT 5 broker: accept one client, answer each SUBSCRIBE with 0x87."""
    conn, _ = listener.accept()
    conn.settimeout(5)  # never outlive the test by much
    with conn:
        for kind, body in _packets(conn):
            if kind == 0x10:  # CONNECT -> CONNACK: no session, success, no properties
                conn.sendall(bytes([0x20, 3, 0, 0, 0]))
            elif kind == 0x80:  # SUBSCRIBE -> SUBACK with its packet id: 0x87 Not authorized
                conn.sendall(bytes([0x90, 4, body[0], body[1], 0, 0x87]))
            elif kind == 0xE0:  # DISCONNECT
                return


def test_a_refused_subscription_is_an_error_not_a_wait() -> None:
    # Mosquitto's ACLs filter deliveries but acknowledge every subscription, hence a stand-in.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(5)
        broker = threading.Thread(target=_refuse_every_subscription, args=(listener,), daemon=True)
        broker.start()
        try:
            with MqttTransport(url=f"mqtt://127.0.0.1:{listener.getsockname()[1]}") as receiver:
                receiver.subscribe("cityx/v1/x/#", lambda t, d: None)
                started = time.monotonic()
                with pytest.raises(BrokerError, match=r"refused the subscription 'cityx/v1/x/#'"):
                    receiver.wait_subscribed()
                assert time.monotonic() - started < 3  # answered by the SUBACK, not the timeout
        finally:
            broker.join(5)


def test_connect_to_a_stopped_broker_is_a_clear_error(broker: Broker) -> None:
    broker.stop()
    started = time.monotonic()
    with pytest.raises(BrokerError, match="connection refused; is mosquitto running"):
        MqttTransport(url=broker.url).connect()
    assert time.monotonic() - started < 3


def test_a_broker_that_never_answers_is_an_error_not_a_hang() -> None:
    # Something accepts TCP connections on the port but never sends a CONNACK.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        port = mute.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(BrokerError, match=r"no CONNACK within 1 s"):
            MqttTransport(url=f"mqtt://127.0.0.1:{port}", connect_timeout_s=1).connect()
        assert time.monotonic() - started < 3


def test_publishing_after_the_broker_died_is_kept_not_raised(
    broker: Broker, signer: Signer, verifier: Verifier
) -> None:
    """A sender whose broker is gone for good: publish keeps the message, flush says False."""
    with MqttTransport(url=broker.url) as sender:
        broker.stop()
        assert wait_for(lambda: not sender.connected, 3)
        sender.publish("cityx/v1/x/TrafficFlowObserved/y", b"kept")
        assert sender.flush(0.3) is False
