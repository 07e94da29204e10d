"""Endpoints that speak the conformance protocol: our reference receiver and its servers.

A *handler* turns one conformance :class:`~.conformance.Request` into an
:class:`~.conformance.Answer`. The *reference handler* runs every request
through one :class:`~.verify.Verifier` (under a lock: a verifier is not
thread-safe, and its replay state must see the requests in order), so it
passes every case of the suite. :class:`LocalEndpoint` hands requests to a
handler in this process, without a wire. The servers put any handler on the wire:
:class:`HttpServer` (``http.server``, a POST per request) and
:class:`MqttServer` (MQTT 5 request/response under a topic prefix); see
:mod:`.conformance.protocol` for the formats.

Servers run in background threads of this process; ``close()`` (or the
``with`` block) stops them and releases the socket.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .conformance.protocol import (
    MAX_REQUEST_BYTES,
    Answer,
    EndpointError,
    Request,
    mqtt_client,
    parse_mqtt_target,
    subscribe_and_wait,
)
from .messages import Catalog
from .mqtt import QOS
from .profiles import DEFAULT_PROFILE, Profile
from .trust import TrustStore
from .verify import Verifier, VerifierPolicy

Handler = Callable[[Request], Answer]


def verifier_handler(verifier: Verifier) -> Handler:
    """A handler that answers with ``verifier``'s verdicts, one request at a time."""
    lock = threading.Lock()

    def handle(request: Request) -> Answer:
        with lock:
            verdict = verifier.verify(request.token, topic=request.topic, payload=request.payload)
        return Answer(verdict.accepted, None if verdict.reason is None else verdict.reason.value)

    return handle


def reference_handler(
    trust: TrustStore,
    *,
    audience: str | Collection[str],
    catalog: Catalog | None = None,
    policy: VerifierPolicy | None = None,
    profile: Profile | str = DEFAULT_PROFILE,
) -> Handler:
    """The reference receiver: the full verification pipeline with its default policy.

    It checks entities under ``profile`` (ignored when a ``catalog`` is
    given: the catalog has its own), so it passes that profile's cases.
    """
    verifier = Verifier(
        trust,
        audience=audience,
        catalog=catalog or Catalog.builtin(profile=profile),
        policy=policy,
    )
    return verifier_handler(verifier)


class LocalEndpoint:
    """An endpoint in this process: the suite calls ``handler`` directly (no wire)."""

    def __init__(self, handler: Handler, *, target: str = "local") -> None:
        self.handler = handler
        self.target = target

    def exchange(self, request: Request, timeout_s: float) -> Answer:
        return self.handler(request)

    def close(self) -> None:
        pass


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (port 0 picks a free one); :class:`EndpointError` if malformed."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise EndpointError(f"listen address {text!r} must be HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HttpServer

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._reply(411, {"error": "Content-Length is required"})
            return
        if not 0 <= length <= MAX_REQUEST_BYTES:
            self._reply(413, {"error": f"request longer than {MAX_REQUEST_BYTES} bytes"})
            return
        try:
            request = Request.decode(self.rfile.read(length))
        except ValueError as exc:
            self._reply(400, {"error": str(exc)})
            return
        self._reply(200, self.server.handler(request).to_json())

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # One line per envelope on stderr would drown the verdicts; the suite reports them.
        pass


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    handler: Handler


class HttpServer:
    """Serves a handler over HTTP on ``host:port`` (POST any path)."""

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> HttpServer:
        if self._server is not None:
            return self
        try:
            server = _HttpServer((self.host, self.port), _RequestHandler)
        except OSError as exc:
            raise EndpointError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        server.handler = self.handler
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MqttServer:
    """Serves a handler over MQTT 5: requests on ``PREFIX/request``, answers to their
    response topic with their correlation data."""

    def __init__(self, handler: Handler, target: str) -> None:
        self.handler = handler
        self.url = target
        self._target = parse_mqtt_target(target)
        self._client: paho.Client | None = None

    def start(self) -> MqttServer:
        if self._client is not None:
            return self
        client = mqtt_client(self._target, "endpoint")
        client.on_message = self._on_message
        self._client = client
        try:
            subscribe_and_wait(client, self._target.request_topic)
        except Exception:
            self.close()
            raise
        return self

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        response_topic = getattr(message.properties, "ResponseTopic", None)
        if not response_topic:
            return  # nowhere to answer: not a conformance request
        try:
            body: dict[str, Any] = self.handler(Request.decode(bytes(message.payload))).to_json()
        except ValueError as exc:
            body = {"error": str(exc)}
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        correlation = getattr(message.properties, "CorrelationData", None)
        if correlation is not None:
            properties.CorrelationData = correlation
        client.publish(response_topic, json.dumps(body).encode(), qos=QOS, properties=properties)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def __enter__(self) -> MqttServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = [
    "Handler",
    "HttpServer",
    "LocalEndpoint",
    "MqttServer",
    "parse_listen",
    "reference_handler",
    "verifier_handler",
]
