"""The live operator channel on the interop bus, and the signed state feed.

A console (or any operator tool) publishes signed commands
(:mod:`.signed`) on ``cityx/v1/{city}/OperatorCommand/{operator}``;
:func:`listen` subscribes a run's :class:`~.commands.CommandQueue` to
them over any interop transport (in-memory, or MQTT to the city's broker).
Each message is verified before it is queued; a refused one is kept with
its reason code for the decision log. Operator notes (a command's reason,
sent after it) and heartbeats (the operator's console is there) travel on
the same topic. Every verified command or heartbeat counts
as the channel's heartbeat: with ``channel_timeout_s`` set on the run, a
channel silent for longer puts adaptive intersections on the fixed-time
plan (logged as a mode change, reason "operator channel lost").

The *state feed* goes the other way: each step the run publishes its
state (modes, phases shown, queues, the controller's choices with their
runner-up and margin, active alerts) on
``cityx/v1/{city}/OversightState/{issuer}`` as a compact JWS signed with
the run's key and numbered (``seq``), so that a console can check each
message with the run's public key and refuse a spoofed, replayed or
reordered feed (:class:`StateReader`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from cityx.interop import ALG, SigningKey, Transport, topic_for
from cityx.interop.bus import TOPIC_ROOT

from .commands import CommandQueue, RefusalCode, token_ref
from .signed import COMMAND_TYPE, HEARTBEAT_TYP, NOTE_TYP, CommandVerifier, token_typ


def command_topic(city: str, operator: str) -> str:
    return topic_for(city, COMMAND_TYPE, operator)


def listen(
    transport: Transport, queue: CommandQueue, verifier: CommandVerifier, *, city: str
) -> Callable[[], None]:
    """Feed ``queue`` from the bus; returns the transport's unsubscribe callable."""

    def deliver(topic: str, data: bytes) -> None:
        token = data.decode("ascii", "replace").strip()
        typ = token_typ(token)
        if typ == HEARTBEAT_TYP:
            operator, code, detail = verifier.verify_heartbeat(token)
            if operator is not None:
                queue.touch()
            else:
                queue.refuse(str(code), f"heartbeat: {detail}", ref=token_ref(token))
            return
        if typ != NOTE_TYP:
            queue.submit_signed(token, verifier)
            return
        note, code, detail = verifier.verify_note(token)
        if note is None:
            queue.refuse(str(code), f"note: {detail}", ref=token_ref(token))
        elif queue.submit_note(*note) is None:
            missing = f"note about {note[0][:64]}: no such command of its operator"
            queue.refuse(RefusalCode.FORGED.value, missing)

    return transport.subscribe(f"{TOPIC_ROOT}/{city}/{COMMAND_TYPE}/+", deliver)


def publish_command(transport: Transport, token: str, *, city: str, operator: str) -> None:
    """Send a signed command or note (:func:`~.signed.sign_command`, ``sign_note``) on the bus."""
    transport.publish(command_topic(city, operator), token.encode("ascii"))


STATE_TYPE = "OversightState"
STATE_TYP = "cityx-oversight-state+jws"


class StateFeed:
    """Publishes a run's state each step, signed with the run's key."""

    def __init__(self, transport: Transport, *, city: str) -> None:
        self.transport = transport
        self.city = city
        self.published = 0
        self._key: SigningKey | None = None
        self._run = ""

    def start(self, key: SigningKey, run: str) -> None:
        self._key, self._run, self.published = key, run, 0

    def publish(self, state: Mapping[str, Any]) -> None:
        key = self._key
        if key is None:
            raise RuntimeError("StateFeed.start() first")
        self.published += 1
        claims = {
            "iss": key.issuer,
            "iat": time.time(),
            "type": STATE_TYPE,
            "run": self._run,
            "seq": self.published,
            "state": dict(state),
        }
        token = jws.serialize_compact(
            {"alg": ALG, "kid": key.kid, "typ": STATE_TYP},
            json.dumps(claims, sort_keys=True, separators=(",", ":"), allow_nan=False),
            key.jwk,
            algorithms=[ALG],
        )
        self.transport.publish(topic_for(self.city, STATE_TYPE, key.issuer), token.encode("ascii"))


class StateReader:
    """A console's side: accepts a run's state messages only if signed and in order."""

    def __init__(self, public_jwk: Mapping[str, Any], *, run: str | None = None) -> None:
        self._public = OKPKey.import_key(
            {"kty": "OKP", "crv": "Ed25519", "x": str(public_jwk["x"])}
        )
        self.kid = str(public_jwk.get("kid"))
        self.run = run
        self.last_seq = 0
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[str] = []

    def read(self, token: bytes | str) -> dict[str, Any] | None:
        text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
        try:
            claims: dict[str, Any] = json.loads(
                jws.deserialize_compact(text, self._public, algorithms=[ALG]).payload
            )
        except (JoseError, ValueError) as exc:
            self.refused.append(f"bad signature: {exc}")
            return None
        if claims.get("type") != STATE_TYPE or (self.run and claims.get("run") != self.run):
            self.refused.append("another type or run")
            return None
        seq = int(claims.get("seq", 0))
        if seq <= self.last_seq:
            self.refused.append(f"seq {seq} after {self.last_seq} (replayed or reordered)")
            return None
        self.last_seq = seq
        self.accepted.append(claims)
        return claims

    def subscribe(self, transport: Transport, *, city: str) -> Callable[[], None]:
        def deliver(topic: str, data: bytes) -> None:
            self.read(data)

        return transport.subscribe(f"{TOPIC_ROOT}/{city}/{STATE_TYPE}/+", deliver)


__all__ = [
    "STATE_TYPE",
    "StateFeed",
    "StateReader",
    "command_topic",
    "listen",
    "publish_command",
]
