"""The endpoint protocol: how the suite hands an envelope to a receiver and reads its verdict.

An *endpoint* is the vendor's receiver under test. For each step the suite
sends a *request*, a JSON object::

    {"token": "<compact JWS>", "topic": "<bus topic>" | null, "payload": {...} | null}

``topic`` is the bus topic the envelope arrived on; ``payload`` the entity
of a detached envelope. The endpoint runs its verification and sends back
an *answer*::

    {"accepted": true | false, "reason": "<reason code>" | null}

Over *HTTP* (``http://HOST:PORT/PATH``) the request is the body of a POST
and the answer the body of a 200 response. Over *MQTT 5*
(``mqtt://HOST:PORT/PREFIX``) the request is published (QoS 1) on
``PREFIX/request`` with a *response topic* and *correlation data*; the
endpoint publishes the answer on that response topic with the same
correlation data.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ..errors import InteropError
from ..mqtt import QOS, BrokerError, parse_url

REQUEST_LEVEL = "request"
RESPONSE_LEVEL = "response"
MAX_REQUEST_BYTES = 1024 * 1024
"""Requests above this are refused by our endpoints (an envelope is at most 64 KiB)."""


class EndpointError(InteropError):
    """The endpoint under test cannot be reached, or its target address is wrong."""


class NoAnswer(Exception):
    """The endpoint did not answer one request in time (the case fails)."""


class BadAnswer(Exception):
    """The endpoint answered with something that is not an answer (the case fails)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One envelope for the endpoint: the token, its arrival topic, a detached payload."""

    token: str
    topic: str | None = None
    payload: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "topic": self.topic,
            "payload": None if self.payload is None else dict(self.payload),
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, body: bytes) -> Request:
        """Parse a request; ValueError says what is wrong with it."""
        if len(body) > MAX_REQUEST_BYTES:
            raise ValueError(f"request longer than {MAX_REQUEST_BYTES} bytes")
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"request is not JSON: {exc}") from None
        if not isinstance(value, dict) or not isinstance(value.get("token"), str):
            raise ValueError("request must be a JSON object with a string 'token'")
        topic, payload = value.get("topic"), value.get("payload")
        if topic is not None and not isinstance(topic, str):
            raise ValueError("request 'topic' must be a string or null")
        if payload is not None and not isinstance(payload, dict):
            raise ValueError("request 'payload' must be an object or null")
        return cls(value["token"], topic, payload)


@dataclass(frozen=True, slots=True)
class Answer:
    """The endpoint's verdict on one request; ``reason`` None when it gives no code."""

    accepted: bool
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "reason": self.reason}

    def encode(self) -> bytes:
        return json.dumps(self.to_json()).encode()

    @classmethod
    def decode(cls, body: bytes) -> Answer:
        """Parse an answer; :class:`BadAnswer` says what is wrong with it."""
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadAnswer(f"answer is not JSON: {body[:80]!r}") from None
        if not isinstance(value, dict) or not isinstance(value.get("accepted"), bool):
            raise BadAnswer("answer must be a JSON object with a boolean 'accepted'")
        reason = value.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise BadAnswer("answer 'reason' must be a string or null")
        return cls(value["accepted"], None if value["accepted"] else reason)


class Endpoint(Protocol):
    """A connection to the endpoint under test: one request in, one answer out."""

    target: str

    def exchange(self, request: Request, timeout_s: float) -> Answer:
        """The answer to ``request``; :class:`NoAnswer` or :class:`BadAnswer` fail the case,
        :class:`EndpointError` stops the run."""
        ...

    def close(self) -> None: ...


class HttpEndpoint:
    """An endpoint reached by HTTP POST (standard library only)."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EndpointError(f"target {target!r} must look like http://host:port/path")
        self.target = target

    def exchange(self, request: Request, timeout_s: float) -> Answer:
        http_request = urllib.request.Request(
            self.target,
            data=request.encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(http_request, timeout=timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raise BadAnswer(f"HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise NoAnswer(f"no answer within {timeout_s:g} s") from None
            reason = getattr(exc.reason, "strerror", None) or exc.reason
            raise EndpointError(
                f"cannot reach the endpoint at {self.target}: {reason}; is it running?"
            ) from None
        except TimeoutError:
            raise NoAnswer(f"no answer within {timeout_s:g} s") from None
        except (http.client.HTTPException, ConnectionError) as exc:
            raise BadAnswer(f"broken HTTP exchange: {exc!r}") from None
        return Answer.decode(body)

    def close(self) -> None:
        pass

    def __enter__(self) -> HttpEndpoint:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class MqttTarget:
    """A parsed ``mqtt://HOST:PORT/PREFIX``."""

    broker: str
    host: str
    port: int
    prefix: str

    @property
    def request_topic(self) -> str:
        return f"{self.prefix}/{REQUEST_LEVEL}"


def parse_mqtt_target(target: str) -> MqttTarget:
    """Split an MQTT target; :class:`EndpointError` when it is not one we can use."""
    parts = urlsplit(target)
    if parts.scheme == "mqtts":
        raise EndpointError(f"target {target!r}: mqtts is not supported yet, use mqtt://")
    prefix = parts.path.strip("/")
    if parts.scheme != "mqtt" or not prefix or any(c in prefix for c in "+#\x00"):
        raise EndpointError(
            f"target {target!r} must look like mqtt://host:port/prefix "
            "(a topic prefix without + or #)"
        )
    try:
        address = parse_url(f"{parts.scheme}://{parts.netloc}")
    except BrokerError as exc:
        raise EndpointError(str(exc)) from None
    return MqttTarget(address.url, address.host, address.port, prefix)


def mqtt_client(target: MqttTarget, role: str, *, timeout_s: float = 3.0) -> paho.Client:
    """A connected MQTT 5 client (network loop running); :class:`BrokerError` if not."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"cityx-{role}-{uuid.uuid4().hex[:12]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(target.host, target.port, keepalive=30)
    except OSError as exc:
        sock = client.socket()
        if sock is not None:
            sock.close()
        raise BrokerError(
            f"cannot reach the MQTT broker at {target.broker}: {exc.strerror or exc}; "
            "is mosquitto running?"
        ) from None
    sock = client.socket()
    if isinstance(sock, socket.socket):
        # Small request/answer packets: without this, Nagle and delayed ACKs add ~40 ms each.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    if not connected.wait(timeout_s) or refused:
        client.disconnect()
        client.loop_stop()
        detail = f"refused ({refused[0]})" if refused else f"no CONNACK within {timeout_s:g} s"
        raise BrokerError(f"cannot connect to the MQTT broker at {target.broker}: {detail}")
    return client


def subscribe_and_wait(client: paho.Client, topic: str, *, timeout_s: float = 3.0) -> None:
    """Subscribe (QoS 1) and wait for the SUBACK, so nothing published next is missed."""
    done = threading.Event()

    def on_subscribe(*args: Any) -> None:
        done.set()

    client.on_subscribe = on_subscribe
    client.subscribe(topic, qos=QOS)
    if not done.wait(timeout_s):
        raise BrokerError(f"no SUBACK for {topic!r} within {timeout_s:g} s")


class MqttEndpoint:
    """An endpoint reached over an MQTT 5 broker with request/response properties."""

    def __init__(self, target: str, *, connect_timeout_s: float = 3.0) -> None:
        self.target = target
        self._target = parse_mqtt_target(target)
        self._connect_timeout_s = connect_timeout_s
        self._client: paho.Client | None = None
        self._response_topic = f"{self._target.prefix}/{RESPONSE_LEVEL}/{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._waiting: dict[bytes, tuple[threading.Event, list[bytes]]] = {}

    def connect(self) -> MqttEndpoint:
        if self._client is not None:
            return self
        client = mqtt_client(self._target, "conformance", timeout_s=self._connect_timeout_s)
        client.on_message = self._on_message
        self._client = client
        try:
            subscribe_and_wait(client, self._response_topic, timeout_s=self._connect_timeout_s)
        except BrokerError:
            self.close()
            raise
        return self

    def exchange(self, request: Request, timeout_s: float) -> Answer:
        client = self.connect()._client
        assert client is not None
        correlation = uuid.uuid4().bytes
        arrived = threading.Event()
        box: list[bytes] = []
        with self._lock:
            self._waiting[correlation] = (arrived, box)
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = self._response_topic
        properties.CorrelationData = correlation
        try:
            client.publish(
                self._target.request_topic, request.encode(), qos=QOS, properties=properties
            )
            if not arrived.wait(timeout_s):
                raise NoAnswer(f"no answer on {self._response_topic} within {timeout_s:g} s")
        finally:
            with self._lock:
                self._waiting.pop(correlation, None)
        return Answer.decode(box[0])

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        correlation = getattr(message.properties, "CorrelationData", None)
        with self._lock:
            waiter = self._waiting.get(bytes(correlation)) if correlation else None
        if waiter is not None and not waiter[0].is_set():
            waiter[1].append(bytes(message.payload))
            waiter[0].set()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def __enter__(self) -> MqttEndpoint:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_endpoint(target: str) -> Endpoint:
    """An endpoint for ``target`` by its scheme (http, https, mqtt); not connected yet."""
    scheme = urlsplit(target).scheme
    if scheme in ("http", "https"):
        return HttpEndpoint(target)
    if scheme in ("mqtt", "mqtts"):
        return MqttEndpoint(target)
    raise EndpointError(
        f"target {target!r} must be http://host:port/path or mqtt://host:port/prefix"
    )


__all__ = [
    "MAX_REQUEST_BYTES",
    "Answer",
    "BadAnswer",
    "Endpoint",
    "EndpointError",
    "HttpEndpoint",
    "MqttEndpoint",
    "MqttTarget",
    "NoAnswer",
    "Request",
    "mqtt_client",
    "open_endpoint",
    "parse_mqtt_target",
    "subscribe_and_wait",
]
