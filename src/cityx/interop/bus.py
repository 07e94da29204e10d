"""The message bus: a transport boundary, an in-memory transport, a secure channel.

A *transport* moves opaque bytes between *topics*: ``publish(topic, data)``
and ``subscribe(pattern, callback)``. Patterns follow MQTT: ``+`` matches
one level, a final ``#`` matches any number of levels (zero included). The
in-memory transport delivers synchronously, in subscription order; the MQTT
transport (a later addition) implements the same :class:`Transport`.

*Topic layout*: ``cityx/v1/{city}/{type}/{issuer}``, e.g.
``cityx/v1/cologne/TrafficFlowObserved/urn:cityx:vendor:acme:detector-12``.
A receiver subscribes to ``cityx/v1/cologne/TrafficFlowObserved/+`` for one
type, or ``cityx/v1/cologne/#`` for everything in a city.

A *secure channel* signs on send (the topic goes into the signed claims)
and verifies on receive: handlers see only accepted messages; every
rejection is kept (the latest ``keep`` of them), counted by reason, logged
and passed to ``on_reject``; with a :class:`~.ledger.MessageLedger`,
accepted envelopes enter the audit log as digests.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .envelope import Signer
from .ledger import MessageLedger
from .verify import Reason, Verifier

TOPIC_ROOT = "cityx/v1"
_CITY = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

Callback = Callable[[str, bytes], None]
Unsubscribe = Callable[[], None]


class Transport(Protocol):
    """Moves bytes between topics; MQTT semantics for patterns."""

    def publish(self, topic: str, data: bytes) -> None: ...

    def subscribe(self, pattern: str, callback: Callback) -> Unsubscribe: ...


def topic_for(city: str, message_type: str, issuer: str) -> str:
    """The topic for a message: ``cityx/v1/{city}/{type}/{issuer}``."""
    if not _CITY.fullmatch(city):
        raise ValueError(f"city {city!r} must be lowercase letters, digits and -")
    for level in (message_type, issuer):
        if not level or any(c in level for c in "/+#\x00"):
            raise ValueError(f"topic level {level!r} may not be empty or hold / + # or NUL")
    return f"{TOPIC_ROOT}/{city}/{message_type}/{issuer}"


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether an MQTT topic filter matches a topic."""
    wanted, levels = pattern.split("/"), topic.split("/")
    for i, part in enumerate(wanted):
        if part == "#":
            return i == len(wanted) - 1
        if i >= len(levels) or (part != "+" and part != levels[i]):
            return False
    return len(wanted) == len(levels)


class InMemoryTransport:
    """Delivers each published message to every matching subscriber, right away."""

    def __init__(self) -> None:
        self._subscriptions: list[tuple[str, Callback]] = []

    def publish(self, topic: str, data: bytes) -> None:
        if any(c in topic for c in "+#"):
            raise ValueError(f"cannot publish to a pattern: {topic!r}")
        for pattern, callback in list(self._subscriptions):
            if topic_matches(pattern, topic):
                callback(topic, bytes(data))

    def subscribe(self, pattern: str, callback: Callback) -> Unsubscribe:
        entry = (pattern, callback)
        self._subscriptions.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscriptions:
                self._subscriptions.remove(entry)

        return unsubscribe


@dataclass(frozen=True, slots=True)
class Message:
    """An accepted message: where it came from, its claims and its entity."""

    topic: str
    claims: Mapping[str, Any]
    entity: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rejected envelope: its topic, the reason code and the detail."""

    topic: str
    reason: Reason
    detail: str
    issuer: str | None


class SecureChannel:
    """Signs what it sends, verifies what it receives, over any :class:`Transport`."""

    def __init__(
        self,
        transport: Transport,
        *,
        city: str,
        signer: Signer | None = None,
        verifier: Verifier | None = None,
        on_reject: Callable[[Rejection], None] | None = None,
        keep: int = 10_000,
        ledger: MessageLedger | None = None,
    ) -> None:
        self.transport = transport
        self.city = city
        self.signer = signer
        self.verifier = verifier
        self.on_reject = on_reject
        self.ledger = ledger or MessageLedger(None)  # logs rejections even without a store
        # Bounded: a flood of forged envelopes must not grow memory without limit.
        self.rejections: deque[Rejection] = deque(maxlen=keep)
        self.rejected: Counter[Reason] = Counter()

    def send(self, entity: Mapping[str, Any], *, audience: str | Sequence[str]) -> str:
        """Sign ``entity`` and publish it on its topic; returns the topic."""
        if self.signer is None:
            raise ValueError("this channel has no signer: it can only receive")
        topic = topic_for(self.city, str(entity.get("type")), self.signer.key.issuer)
        envelope = self.signer.sign(entity, audience=audience, topic=topic)
        self.transport.publish(topic, envelope.encode("ascii"))
        return topic

    def subscribe(self, pattern: str, handler: Callable[[Message], None]) -> Unsubscribe:
        """Call ``handler`` with each accepted message on topics matching ``pattern``."""
        verifier = self.verifier
        if verifier is None:
            raise ValueError("this channel has no verifier: it can only send")

        def receive(topic: str, data: bytes) -> None:
            verdict = verifier.verify(data, topic=topic)
            if verdict.accepted and verdict.claims is not None:
                self.ledger.accepted(topic, data, verdict.claims)
                handler(Message(topic, verdict.claims, verdict.claims["payload"]))
                return
            reason = verdict.reason or Reason.MALFORMED
            issuer = verdict.claims.get("iss") if verdict.claims is not None else None
            rejection = Rejection(topic, reason, verdict.detail, issuer)
            self.rejections.append(rejection)
            self.rejected[reason] += 1
            self.ledger.rejected(topic, reason.value, verdict.detail, issuer)
            if self.on_reject is not None:
                self.on_reject(rejection)

        return self.transport.subscribe(pattern, receive)


__all__ = [
    "TOPIC_ROOT",
    "InMemoryTransport",
    "Message",
    "Rejection",
    "SecureChannel",
    "Transport",
    "topic_for",
    "topic_matches",
]
