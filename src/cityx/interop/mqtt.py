"""An MQTT 5 transport for the signed message layer (paho-mqtt 2.x).

:class:`MqttTransport` implements :class:`~cityx.interop.bus.Transport`
(``publish(topic, data)`` / ``subscribe(pattern, callback)``) over a broker,
so a :class:`~cityx.interop.bus.SecureChannel` runs unchanged on it.

Words used here:

*broker URL*
    ``mqtt://host:port`` (plain TCP, default port 1883) or
    ``mqtts://host:port`` (TLS, default port 8883).
*mutual TLS*
    the client also shows a certificate (``certfile`` + ``keyfile``), signed by
    a CA the broker trusts.
*session*
    broker-side state kept under the client id: subscriptions and QoS 1
    messages queued while the client is away. We connect with clean start
    false and a session expiry, so a short disconnect loses nothing.
*reconnect*
    paho's network thread reconnects on its own after the broker drops the
    connection or restarts, waiting ``reconnect_min_s`` doubling up to
    ``reconnect_max_s`` between tries. QoS 1 messages published meanwhile
    are kept by the client and sent once it is back; the broker keeps the
    session's queued messages across its own restart when it runs with
    ``persistence true`` (otherwise they die with it: MQTT cannot help).
    :attr:`MqttTransport.connections` counts the CONNACKs and
    :attr:`MqttTransport.session_present` says whether the broker still
    had our session at the last one.
*acknowledged subscription*
    one the broker confirmed with a SUBACK on the current connection:
    from then on it delivers what is published on matching topics.
    ``subscribe`` returns at once; :meth:`MqttTransport.wait_subscribed`
    waits for the SUBACKs, so that what is published next is not missed.
*redelivery*
    QoS 1 is at-least-once: after a lost PUBACK the same bytes may arrive
    twice. The transport keeps a bounded set of SHA-256 digests of the
    payloads it has already dispatched and drops byte-identical copies
    silently, *before* the verifier sees them, so a redelivery is never
    counted as a ``replayed_jti`` attack. A replay that differs by even one
    byte (a re-signed or tampered envelope) still reaches the verifier.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .bus import Callback, Unsubscribe, topic_matches
from .errors import InteropError

QOS = 1  # at-least-once; duplicates are removed by digest on receive


class BrokerError(InteropError):
    """The MQTT broker cannot be reached, refused us, or the URL is wrong."""


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """How to reach and talk to a broker; values only, nothing is opened."""

    url: str = "mqtt://127.0.0.1:1883"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str | None = None
    session_expiry_s: int = 300
    connect_timeout_s: float = 3.0
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    keepalive_s: int = 30
    dedup_window: int = 65_536


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """A parsed broker URL."""

    url: str
    host: str
    port: int
    tls: bool


def parse_url(url: str) -> BrokerAddress:
    """Split ``mqtt://host:port`` or ``mqtts://host:port``; raise :class:`BrokerError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise BrokerError(
            f"broker URL {url!r} must look like mqtt://host:port or mqtts://host:port"
        )
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise BrokerError(f"broker URL {url!r} has a bad port") from exc
    return BrokerAddress(url, parts.hostname, port, tls)


class _Seen:
    """A bounded set of payload digests, oldest evicted first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._digests: OrderedDict[bytes, None] = OrderedDict()

    def first_time(self, data: bytes) -> bool:
        digest = hashlib.sha256(data).digest()
        if digest in self._digests:
            return False
        self._digests[digest] = None
        if len(self._digests) > self._size:
            self._digests.popitem(last=False)
        return True


class MqttTransport:
    """A :class:`~cityx.interop.bus.Transport` over an MQTT 5 broker (QoS 1).

    Callbacks run on paho's network thread, one message at a time.
    """

    def __init__(self, options: MqttOptions | None = None, **changes: Any) -> None:
        base = options or MqttOptions()
        self.options = MqttOptions(**{**_as_dict(base), **changes})
        self.address = parse_url(self.options.url)
        # A stable id is what lets the broker find our session after a reconnect.
        self.client_id = self.options.client_id or f"cityx-{uuid.uuid4().hex[:16]}"
        self._client: paho.Client | None = None
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._refused: str | None = None
        self._subscriptions: list[tuple[str, Callback]] = []
        # SUBACK bookkeeping, under _lock: SUBSCRIBE packet id -> pattern until its
        # SUBACK, the patterns acknowledged on this connection, and refusals.
        self._suback = threading.Condition(self._lock)
        self._awaiting: dict[int, str] = {}
        self._acknowledged: set[str] = set()
        self._refused_patterns: dict[str, str] = {}
        # One set for the whole transport: a payload is dispatched once to every
        # matching callback, whatever the number of copies the broker sends.
        self._seen = _Seen(self.options.dedup_window)
        self._pending: deque[paho.MQTTMessageInfo] = deque()
        self.connections = 0
        self.session_present: bool | None = None

    # -- life cycle -------------------------------------------------------

    def connect(self) -> MqttTransport:
        """Open the connection and wait (bounded) for the broker's CONNACK."""
        if self._client is not None:
            return self
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if self.address.tls:
            client.tls_set_context(self._tls_context())
        client.reconnect_delay_set(self.options.reconnect_min_s, self.options.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.options.session_expiry_s
        where = self.address.url
        try:
            client.connect(
                self.address.host,
                self.address.port,
                keepalive=self.options.keepalive_s,
                clean_start=False,
                properties=properties,
            )
        except ConnectionRefusedError:
            self._discard(client)
            raise BrokerError(
                f"cannot reach the MQTT broker at {where}: "
                "connection refused; is mosquitto running?"
            ) from None
        except ssl.SSLError as exc:
            self._discard(client)
            raise BrokerError(
                f"TLS handshake with the MQTT broker at {where} failed: {exc.reason or exc}"
            ) from None
        except OSError as exc:
            self._discard(client)
            raise BrokerError(
                f"cannot reach the MQTT broker at {where}: {exc.strerror or exc}"
            ) from None
        self._client = client
        client.loop_start()
        if not self._connected.wait(self.options.connect_timeout_s):
            refused = self._refused
            self.close()
            detail = (
                f"the broker refused the connection ({refused})"
                if refused
                else f"no CONNACK within {self.options.connect_timeout_s:g} s"
                + (" (does the broker require a client certificate?)" if self.address.tls else "")
            )
            raise BrokerError(f"cannot connect to the MQTT broker at {where}: {detail}")
        return self

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every message published so far is acknowledged (PUBACK)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                while self._pending and _acked(self._pending[0]):
                    self._pending.popleft()
                if not self._pending:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def close(self) -> None:
        """Flush (up to 2 s), disconnect and stop the network thread."""
        if self._client is None:
            return
        if self._connected.is_set():
            self.flush(2.0)
        client, self._client = self._client, None
        client.disconnect()
        client.loop_stop()
        self._connected.clear()

    def __enter__(self) -> MqttTransport:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- the Transport boundary ------------------------------------------

    def publish(self, topic: str, data: bytes) -> None:
        if any(c in topic for c in "+#"):
            raise ValueError(f"cannot publish to a pattern: {topic!r}")
        client = self._require()
        # While disconnected paho keeps QoS 1 messages and sends them on reconnect,
        # so MQTT_ERR_NO_CONN here is not a loss.
        info = client.publish(topic, bytes(data), qos=QOS)
        with self._lock:
            # PUBACKs come back in order, so trimming from the front is enough
            # and keeps publish O(1).
            while self._pending and _acked(self._pending[0]):
                self._pending.popleft()
            self._pending.append(info)

    def subscribe(self, pattern: str, callback: Callback) -> Unsubscribe:
        client = self._require()
        entry = (pattern, callback)
        with self._lock:
            self._subscriptions.append(entry)
            self._send_subscribe(client, pattern)

        def unsubscribe() -> None:
            with self._suback:
                if entry not in self._subscriptions:
                    return
                self._subscriptions.remove(entry)
                still = any(p == pattern for p, _ in self._subscriptions)
                if not still:
                    self._acknowledged.discard(pattern)
                    self._refused_patterns.pop(pattern, None)
                    self._suback.notify_all()  # wait_subscribed no longer waits for it
            if not still and self._client is not None:
                self._client.unsubscribe(pattern)

        return unsubscribe

    def wait_subscribed(self, timeout_s: float = 5.0) -> bool:
        """Wait until the broker has acknowledged every subscription (SUBACK); False on timeout.

        Raises :class:`BrokerError` if the broker refused one (e.g. its ACL denies the pattern).
        """

        def wanted() -> set[str]:
            return {p for p, _ in self._subscriptions}

        with self._suback:
            self._suback.wait_for(
                lambda: wanted() <= self._acknowledged.union(self._refused_patterns), timeout_s
            )
            refused = {p: r for p, r in self._refused_patterns.items() if p in wanted()}
            done = wanted() <= self._acknowledged
        if refused:
            listed = ", ".join(f"{p!r} ({r})" for p, r in sorted(refused.items()))
            where = self.address.url
            raise BrokerError(f"the MQTT broker at {where} refused the subscription {listed}")
        return done

    # -- paho callbacks (network thread) ---------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # Small packets one at a time: Nagle plus delayed ACKs would hold some ~40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The session usually still holds our subscriptions; subscribing again
        # is harmless and covers an expired session.
        with self._lock:
            # SUBSCRIBEs of an earlier connection get no SUBACK now: these replace them.
            self._awaiting.clear()
            self._acknowledged.clear()
            for pattern in sorted({p for p, _ in self._subscriptions}):
                self._send_subscribe(client, pattern)
        self.session_present = bool(flags.session_present)
        self.connections += 1
        self._connected.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        with self._lock:
            self._acknowledged.clear()

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._suback:
            pattern = self._awaiting.pop(mid, None)
            # None: sent on an earlier connection; the pattern may be unsubscribed since.
            if pattern is None or all(p != pattern for p, _ in self._subscriptions):
                return
            if reason_codes and reason_codes[0].is_failure:
                self._refused_patterns[pattern] = str(reason_codes[0])
            else:
                self._acknowledged.add(pattern)
                self._refused_patterns.pop(pattern, None)
            self._suback.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        topic, data = message.topic, bytes(message.payload)
        # Overlapping subscriptions and QoS 1 redelivery both bring the same
        # bytes again; dispatch each payload once.
        if not self._seen.first_time(data):
            return
        with self._lock:
            targets = [cb for p, cb in self._subscriptions if topic_matches(p, topic)]
        for callback in targets:
            callback(topic, data)

    # -- helpers ----------------------------------------------------------

    def _send_subscribe(self, client: paho.Client, pattern: str) -> None:
        """SUBSCRIBE and note its packet id; call with _lock held.

        Holding the lock while paho sends is what lets ``_on_subscribe`` (network
        thread) find the id even when the SUBACK is quicker than our bookkeeping.
        """
        _, mid = client.subscribe(pattern, qos=QOS)
        if mid is not None:  # None: not connected; _on_connect subscribes again
            self._awaiting[mid] = pattern

    def _require(self) -> paho.Client:
        if self._client is None:
            raise BrokerError(f"not connected to {self.address.url}: call connect() first")
        return self._client

    def _tls_context(self) -> _TrackingContext:
        context = _TrackingContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies host name too
        if self.options.ca_file is not None:
            context.load_verify_locations(cafile=str(self.options.ca_file))
        else:
            context.load_default_certs()
        if self.options.cert_file is not None:
            key = str(self.options.key_file) if self.options.key_file else None
            context.load_cert_chain(str(self.options.cert_file), key)
        return context

    @staticmethod
    def _discard(client: paho.Client) -> None:
        # paho leaves the socket open when connect() fails (the TLS one is not
        # even reachable from the client); close them so no ResourceWarning escapes.
        sock = client.socket()
        if sock is not None:
            sock.close()
        context = client._ssl_context
        if isinstance(context, _TrackingContext):
            context.close_wrapped()


class _TrackingContext(ssl.SSLContext):
    """An SSL context that remembers the sockets it wrapped, to close them on failure."""

    _wrapped: list[ssl.SSLSocket]

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = super().wrap_socket(*args, **kwargs)
        # Only the latest matters: earlier ones were closed by paho on reconnect.
        self.__dict__["_wrapped"] = [sock]
        return sock

    def close_wrapped(self) -> None:
        for sock in self.__dict__.pop("_wrapped", []):
            sock.close()


def _acked(info: paho.MQTTMessageInfo) -> bool:
    # is_published() raises when publish() returned MQTT_ERR_NO_CONN, yet paho
    # keeps such a QoS 1 message, sends it after reconnecting and marks it
    # published on PUBACK; read that mark directly.
    return bool(info._published)


def _as_dict(options: MqttOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in MqttOptions.__slots__}


__all__ = ["QOS", "BrokerAddress", "BrokerError", "MqttOptions", "MqttTransport", "parse_url"]
