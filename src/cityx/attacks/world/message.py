"""Attacks on the message path: forged, replayed, tampered and flooding messages.

In the secure loop (:mod:`cityx.runs.secure_loop`) detectors publish
signed ``TrafficFlowObserved`` envelopes that the controller's side
verifies. A message attack sits on the bus as a man in the middle: an
:class:`AttackedTransport` wraps the loop's transport and, for the
detectors in its *target set* (a ``share`` of the detector issuers, drawn
by seed), acts on each observation envelope with probability
``intensity``:

- *forge*: publishes, beside the genuine one, an envelope of the same
  lane signed with the attacker's own key under the detector's issuer,
  claiming ``queue`` more halting vehicles;
- *replay*: re-publishes an earlier genuine envelope of the same issuer;
- *tamper*: replaces the genuine envelope with a copy whose queue was
  raised in transit (the signature no longer matches);
- *flood*: adds ``burst`` junk envelopes.

The verifier should reject every one of them (``unknown_key``,
``replayed_jti``/``seq_not_rising``, ``bad_signature``, ``malformed``);
a rejected genuine message still costs the controller that lane's data.
Whether verification noticed is read from the run's ``interop.json``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from cityx.core import Param, PluginMeta, derive_seed, stream
from cityx.interop import Catalog, Signer, Transport, generate_key

from ..base import Access, AttackSpec, AttackTarget, MessageAttack, NistClass

OBSERVATIONS = "/TrafficFlowObserved/"


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class AttackedTransport:
    """A :class:`~cityx.interop.Transport` with a man in the middle on observations."""

    def __init__(
        self, inner: Transport, *, attack: str, seed: int, params: Mapping[str, float]
    ) -> None:
        self.inner = inner
        self.attack = attack
        self.params = dict(params)
        self.seed = seed
        self.rng = stream(seed, "attack", attack)
        self._t0: float | None = None
        self._now = 0.0
        self._targets: dict[str, bool] = {}
        self._seen: dict[str, list[bytes]] = {}
        self._signers: dict[str, Any] = {}
        self.active_from_s: float | None = None
        self.attacked = 0
        self.injected = 0

    def clock(self, time_s: float) -> None:
        """The simulated time of the messages about to be published."""
        if self._t0 is None:
            self._t0 = time_s
        self._now = time_s

    @property
    def active(self) -> bool:
        if self._t0 is None:  # never told the time: only an attack from the start is on
            return self.params["start_s"] <= 0
        return self._now - self._t0 >= self.params["start_s"]

    def subscribe(self, pattern: str, callback: Any) -> Any:
        return self.inner.subscribe(pattern, callback)

    def publish(self, topic: str, data: bytes) -> None:
        if OBSERVATIONS not in topic or not self.active or not self._targeted(topic):
            self.inner.publish(topic, data)
            return
        if self.active_from_s is None:
            self.active_from_s = self._now
        history = self._seen.setdefault(topic, [])
        hit = bool(self.rng.random() < self.params["intensity"])
        if not hit:
            self.inner.publish(topic, data)
            history.append(data)
            return
        self.attacked += 1
        if self.attack == "message.tamper":
            self.inner.publish(topic, self._raise_queue(data))
            return
        self.inner.publish(topic, data)
        if self.attack == "message.forge":
            self._send(topic, self._forge(topic, data))
        elif self.attack == "message.replay" and history:
            self._send(topic, history[int(self.rng.integers(len(history)))])
        elif self.attack == "message.flood":
            junk = self.rng.integers(0, 256, size=(int(self.params["burst"]), 64), dtype="uint8")
            for row in junk:
                self._send(topic, b"junk." + base64.b64encode(row.tobytes()) + b".x")
        history.append(data)

    def _send(self, topic: str, data: bytes) -> None:
        self.injected += 1
        self.inner.publish(topic, data)

    def _targeted(self, topic: str) -> bool:
        issuer = topic.rsplit("/", 1)[-1]
        if issuer not in self._targets:
            draw = derive_seed(self.seed, "message-target", issuer) / 2**63
            self._targets[issuer] = draw < self.params["share"]
        return self._targets[issuer]

    def _claims(self, data: bytes) -> tuple[list[str], dict[str, Any]]:
        parts = data.decode("ascii").split(".")
        return parts, json.loads(_b64decode(parts[1]))

    def _raise_queue(self, data: bytes) -> bytes:
        parts, claims = self._claims(data)
        entity = claims.get("payload", {})
        queue = entity.get("queue", {"type": "Property", "value": 0})
        entity["queue"] = {**queue, "value": int(queue.get("value", 0)) + int(self.params["queue"])}
        entity["congested"] = {"type": "Property", "value": True}
        parts[1] = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        return ".".join(parts).encode("ascii")

    def _forge(self, topic: str, data: bytes) -> bytes:
        _, claims = self._claims(data)
        issuer = str(claims["iss"])
        if issuer not in self._signers:
            # The attacker knows the detector's name but not its key.
            self._signers[issuer] = Signer(generate_key(issuer), catalog=Catalog.builtin())
        entity = dict(claims["payload"])
        queue = entity.get("queue", {"type": "Property", "value": 0})
        entity["queue"] = {**queue, "value": int(queue.get("value", 0)) + int(self.params["queue"])}
        envelope: str = self._signers[issuer].sign(entity, audience=claims["aud"], topic=topic)
        return envelope.encode("ascii")

    def report(self) -> dict[str, Any]:
        return {
            "kind": "attack",
            "attack": self.attack,
            "params": self.params,
            "active_from_s": self.active_from_s,
            "attacked_messages": self.attacked,
            "cost": {
                "sensors": sum(self._targets.values()),
                "magnitude": self.attacked + self.injected,
                "unit": "messages altered or injected",
            },
        }


_COMMON = (
    Param("intensity", 0.5, 0.0, 1.0, "", "probability that a targeted observation is attacked"),
    Param("share", 1.0, 0.0, 1.0, "", "share of the detectors' message streams targeted"),
    Param("start_s", 0.0, 0.0, 86400.0, "s", "seconds after the run starts that it begins"),
)
_QUEUE = Param("queue", 10, 1, 50, "vehicles", "queue added to the lane's report", integer=True)


def _spec(attack_id: str, goal: str, atlas: tuple[str, ...], *extra: Param) -> AttackSpec:
    return AttackSpec(
        id=attack_id,
        version="1",
        goal=goal,
        target=AttackTarget.MESSAGE,
        atlas=atlas,
        nist_class=NistClass.EVASION,
        access=frozenset({Access.MESSAGE_PATH}),
        params=(*_COMMON, *extra),
    )


class TransportAttack(MessageAttack):
    """The message attacks here share one man in the middle, :class:`AttackedTransport`."""

    def _transport(
        self, inner: Transport, *, seed: int, params: dict[str, float]
    ) -> AttackedTransport:
        return AttackedTransport(inner, attack=self.spec.id, seed=seed, params=params)


class Forge(TransportAttack):
    spec = _spec(
        "message.forge",
        "Forge detector messages signed with the attacker's key, claiming a queue",
        ("AML.T0043", "AML.T0031"),
        _QUEUE,
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta


class Replay(TransportAttack):
    spec = _spec(
        "message.replay",
        "Replay earlier genuine detector messages",
        ("AML.T0043", "AML.T0031"),
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta


class Tamper(TransportAttack):
    spec = _spec(
        "message.tamper",
        "Raise the queue in genuine detector messages in transit",
        ("AML.T0043", "AML.T0031"),
        _QUEUE,
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta


class Flood(TransportAttack):
    spec = _spec(
        "message.flood",
        "Flood the detectors' topics with junk envelopes",
        ("AML.T0029",),
        Param("burst", 20, 1, 500, "messages", "junk envelopes per attacked message", integer=True),
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta


__all__ = ["AttackedTransport", "Flood", "Forge", "Replay", "Tamper", "TransportAttack"]
