"""Signed operator commands: who may command which intersection, checked before anything acts.

An operator's command travels as a compact JWS (Ed25519, the interop
layer's keys, :mod:`cityx.interop.keys`) with header ``typ``
:data:`COMMAND_TYP` and claims ``iss`` (the operator's URN), ``iat`` (unix
seconds), ``jti`` (unique per command), ``type`` (``"OperatorCommand"``)
and ``command`` (the :class:`~.commands.OperatorCommand` as JSON).

A :class:`CommandVerifier` holds a trust store of operator keys
(:mod:`cityx.interop.trust`: trust documents with validity windows,
revocations and permissions). A key's *topics* say which intersections
its holder may command, as ``oversight/<intersection>`` patterns
(``oversight/*`` for all). The operator's identity is the key's issuer,
never a claim the sender wrote. A command is refused, with its reason
code, when its key is unknown or its signature does not verify
(``forged``), its key is revoked or outside its window
(``key_not_valid``), it is older than ``max_age_s`` or dated in the future
(``expired``), its ``jti`` was seen before (``replayed``), or the key may
not command that intersection (``not_permitted``).

A live run's commands are *bound to it*: the claims carry ``run`` (the run
id) and a verifier made for that run refuses a command signed for another
(``other_run``), so one run's command cannot be replayed into another that
the same operator oversees.

An *operator note* (header ``typ`` :data:`NOTE_TYP`, claims ``type``
``"OperatorNote"``, ``about`` the ``jti`` of an earlier command and
``reason``) gives a command its reason afterwards: a stop acts at once, its
reason follows. It is checked like a command (key, window, age, replay,
run) and must come from the command's own operator.

An *operator heartbeat* (header ``typ`` :data:`HEARTBEAT_TYP`, claims
``type`` ``"OperatorHeartbeat"``) says only that the operator's console is
there; checked the same way, it keeps a run's operator channel alive
(``channel_timeout_s``) without commanding anything.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from cityx.core.errors import InputError
from cityx.interop import ALG, SigningKey, TrustedKey, TrustStore

from .commands import ALL, OperatorCommand, RefusalCode, parse_commands

COMMAND_TYP = "cityx-operator-command+jws"
COMMAND_TYPE = "OperatorCommand"
NOTE_TYP = "cityx-operator-note+jws"
NOTE_TYPE = "OperatorNote"
HEARTBEAT_TYP = "cityx-operator-heartbeat+jws"
HEARTBEAT_TYPE = "OperatorHeartbeat"


def topic_of(intersection: str) -> str:
    return f"oversight/{intersection}"


def sign_command(
    command: OperatorCommand,
    key: SigningKey,
    *,
    now: float | None = None,
    jti: str | None = None,
    run: str | None = None,
) -> str:
    """The compact JWS of ``command``, signed by the operator holding ``key``
    (bound to live run ``run`` when given)."""
    body = command.to_json()
    body["operator"] = key.issuer
    return _sign_message(key, COMMAND_TYP, COMMAND_TYPE, now=now, jti=jti, run=run, command=body)


def sign_note(
    about: str,
    reason: str,
    key: SigningKey,
    *,
    now: float | None = None,
    jti: str | None = None,
    run: str | None = None,
) -> str:
    """An operator note: the reason for the command whose ``jti`` is ``about``."""
    return _sign_message(
        key, NOTE_TYP, NOTE_TYPE, now=now, jti=jti, run=run, about=about, reason=reason
    )


def sign_heartbeat(key: SigningKey, *, now: float | None = None, run: str | None = None) -> str:
    """An operator heartbeat: the operator's console is there (nothing else)."""
    return _sign_message(key, HEARTBEAT_TYP, HEARTBEAT_TYPE, now=now, jti=None, run=run)


def _sign_message(
    key: SigningKey,
    typ: str,
    kind: str,
    *,
    now: float | None,
    jti: str | None,
    run: str | None,
    **content: Any,
) -> str:
    """Sign an operator message: the claims every kind shares (issuer, time, a fresh ``jti``
    unless given, its ``type``, the live run it is bound to when given), then its own."""
    claims: dict[str, Any] = {
        "iss": key.issuer,
        "iat": time.time() if now is None else now,
        "jti": jti or uuid.uuid4().hex,
        "type": kind,
        **content,
    }
    if run is not None:
        claims["run"] = run
    return _sign(claims, key, typ)


def _sign(claims: dict[str, Any], key: SigningKey, typ: str) -> str:
    header = {"alg": ALG, "kid": key.kid, "typ": typ}
    payload = json.dumps(claims, sort_keys=True, separators=(",", ":"))
    return jws.serialize_compact(header, payload, key.jwk, algorithms=[ALG])


def token_typ(token: str) -> str | None:
    """The ``typ`` of a compact JWS's header, unverified (to route it to its check)."""
    try:
        typ = json.loads(_b64(token.split(".", 1)[0])).get("typ")
    except (ValueError, AttributeError, IndexError):
        return None
    return typ if isinstance(typ, str) else None


class CommandVerifier:
    """Checks signed commands against a trust store; remembers ``jti``s against replay."""

    def __init__(
        self,
        trust: TrustStore,
        *,
        max_age_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        run: str | None = None,
    ) -> None:
        self.trust = trust
        self.max_age_s = max_age_s
        self.clock = clock
        self.run = run  # a live run's id: commands must be bound to it
        self._seen: set[str] = set()

    def _claims(
        self, token: str, typ: str, kind: str
    ) -> tuple[dict[str, Any], TrustedKey] | tuple[None, tuple[RefusalCode, str]]:
        """The verified claims and key, or the refusal (the checks every message shares)."""
        try:
            header_b64 = token.split(".", 1)[0]
            header = json.loads(_b64(header_b64))
            kid = str(header["kid"])
        except (ValueError, KeyError, IndexError, TypeError):
            return None, (RefusalCode.FORGED, "not a compact JWS with a kid")
        if header.get("typ") != typ or header.get("alg") != ALG:
            return None, (RefusalCode.FORGED, f"typ/alg are not {typ}/{ALG}")
        trusted = self.trust.key(kid)
        if trusted is None:
            return None, (RefusalCode.FORGED, f"unknown key {kid[:12]}")
        public = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": trusted.x})
        try:
            claims: dict[str, Any] = json.loads(
                jws.deserialize_compact(token, public, algorithms=[ALG]).payload
            )
        except (JoseError, ValueError) as exc:
            return None, (RefusalCode.FORGED, f"signature does not verify: {exc}")
        now = self.clock()
        valid = (
            (trusted.not_before is None or now >= trusted.not_before)
            and (trusted.not_after is None or now <= trusted.not_after)
            and (trusted.revoked_at is None or now < trusted.revoked_at)
        )
        if not valid:
            return None, (RefusalCode.KEY_NOT_VALID, f"key {kid[:12]} is revoked or out of date")
        if claims.get("iss") != trusted.issuer or claims.get("type") != kind:
            return None, (RefusalCode.FORGED, "issuer or type differ from the key's")
        try:
            iat = float(claims["iat"])
            jti = str(claims["jti"])
        except (KeyError, TypeError, ValueError):
            return None, (RefusalCode.FORGED, "claims lack iat/jti")
        if not -5.0 <= now - iat <= self.max_age_s:
            return None, (RefusalCode.EXPIRED, f"issued {now - iat:.0f} s ago")
        if self.run is not None and claims.get("run") != self.run:
            return None, (RefusalCode.OTHER_RUN, f"signed for run {claims.get('run')!r}")
        if jti in self._seen:
            return None, (RefusalCode.REPLAYED, f"jti {jti} was used before")
        if not trusted.allows_type(COMMAND_TYPE):
            return None, (RefusalCode.NOT_PERMITTED, f"{trusted.issuer} may not command")
        return claims, trusted

    def verify_note(
        self, token: str
    ) -> tuple[tuple[str, str, str] | None, RefusalCode | None, str]:
        """((about, reason, operator), None, "") or (None, the reason code, what was wrong)."""
        claims, found = self._claims(token, NOTE_TYP, NOTE_TYPE)
        if claims is None:
            assert isinstance(found, tuple)
            return None, found[0], found[1]
        assert isinstance(found, TrustedKey)
        about, reason = claims.get("about"), claims.get("reason")
        if not isinstance(about, str) or not isinstance(reason, str) or not reason.strip():
            return None, RefusalCode.FORGED, "a note needs 'about' (a command's jti) and a reason"
        self._seen.add(str(claims["jti"]))
        return (about, reason, found.issuer), None, ""

    def verify_heartbeat(self, token: str) -> tuple[str | None, RefusalCode | None, str]:
        """(the operator, None, "") or (None, the reason code, what was wrong)."""
        claims, found = self._claims(token, HEARTBEAT_TYP, HEARTBEAT_TYPE)
        if claims is None:
            assert isinstance(found, tuple)
            return None, found[0], found[1]
        assert isinstance(found, TrustedKey)
        self._seen.add(str(claims["jti"]))
        return found.issuer, None, ""

    def verify(self, token: str) -> tuple[OperatorCommand | None, RefusalCode | None, str]:
        """(the command, None, "") or (None, the reason code, what was wrong)."""
        claims, found = self._claims(token, COMMAND_TYP, COMMAND_TYPE)
        if claims is None:
            assert isinstance(found, tuple)
            return None, found[0], found[1]
        assert isinstance(found, TrustedKey)
        trusted, jti = found, str(claims["jti"])
        try:
            (command,) = parse_commands({"command": [_row(claims["command"])]}, where="command")
        except (InputError, KeyError, TypeError, ValueError) as exc:
            detail = exc.message if isinstance(exc, InputError) else str(exc)
            return None, RefusalCode.FORGED, f"malformed command: {detail}"
        at = claims["command"].get("at_s")
        # The identity comes from the key, never from what the sender wrote.
        command = replace(command, operator=trusted.issuer, at_s=None if at is None else float(at))
        if not trusted.allows_type(COMMAND_TYPE) or not trusted.allows_topic(
            topic_of(command.intersection if command.intersection != ALL else "*")
        ):
            return None, RefusalCode.NOT_PERMITTED, f"{trusted.issuer} may not command that"
        self._seen.add(jti)
        return command, None, ""


def _row(body: Any) -> dict[str, Any]:
    row = {k: v for k, v in dict(body).items() if v is not None}
    row.setdefault("at_s", 0.0)
    return row


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


__all__ = [
    "COMMAND_TYP",
    "COMMAND_TYPE",
    "HEARTBEAT_TYP",
    "HEARTBEAT_TYPE",
    "NOTE_TYP",
    "NOTE_TYPE",
    "CommandVerifier",
    "sign_command",
    "sign_heartbeat",
    "sign_note",
    "token_typ",
    "topic_of",
]
