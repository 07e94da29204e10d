"""Fuzz target: the envelope verifier and the strict JSON / schema path (atheris, libFuzzer).

Run from the repository root, bounded::

    .venv/bin/python fuzz/verify.py -max_total_time=30 -rss_limit_mb=2048

Words used here:

*seed envelopes*
    a few envelopes validly signed, at import, by a fixed Ed25519 key the
    verifier trusts (embedded and detached payloads, an AI output, a signal
    command): the starting points of the structure-aware mutations.
*validly signed*
    byte-identical to an envelope this module signed itself with that key:
    a seed envelope, or one it re-signed after mutating the header or claims
    (that lets mutated claims through base64url, JSON and the signature, so
    the claims, schema and plausibility checks see them).
*oracle*
    what makes an input a finding (an exception, so libFuzzer stops and keeps
    the input): the verifier raising anything at all (it must answer every
    input with a verdict), a verdict accepting an envelope that is not validly
    signed, strict JSON parsing raising anything but ``StrictJSONError``, or
    the claims or schema checks raising instead of reporting a problem.

Each input is one of: raw bytes; byte edits of a seed envelope (never
re-signed: must not pass); mutated claims or header, re-signed or not;
mutated JSON text re-signed as the claims. A fresh verifier per input keeps
inputs independent (no replay state carries over).
"""

from __future__ import annotations

import base64
import contextlib
import gc
import hashlib
import json
import sys
import types
from collections.abc import Callable
from typing import Any

import atheris  # type: ignore[import-untyped]  # no stubs published
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.jwk import OKPKey

from cityx.interop import (
    TYP,
    AiInfo,
    Catalog,
    Signer,
    SigningKey,
    StaticTrustStore,
    StrictJSONError,
    TrustedKey,
    Verification,
    Verifier,
    claims_problem,
    signal_phase_command,
    strict_loads,
    topic_for,
    traffic_flow_observed,
)
from cityx.interop.canonical import payload_digest

NOW = 1_800_000_000.0
AUD = "urn:cityx:city:cologne:tmc"
ISSUER = "urn:cityx:vendor:acme:detector-12"
CITY = "cologne"

# A fixed key: a finding must replay the same way on every run.
_PRIVATE = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"cityx fuzz key").digest())
_JWK = OKPKey.import_key(_PRIVATE)
KEY = SigningKey(ISSUER, _JWK.thumbprint(), _JWK)
CATALOG = Catalog.builtin()
TRUST = StaticTrustStore(
    [
        TrustedKey(
            kid=KEY.kid,
            issuer=ISSUER,
            x=KEY.public_jwk()["x"],
            types=("TrafficFlowObserved", "SignalPhaseCommand"),
            topics=(f"cityx/v1/{CITY}/**",),
        )
    ]
)


def _now() -> float:
    return NOW


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(part: bytes) -> bytes:
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))


def _seed_envelopes() -> list[tuple[bytes, str, bytes | None]]:
    """(envelope, topic, detached payload text or None) for each seed."""
    signer = Signer(KEY, catalog=CATALOG, now=_now)
    flow_topic = topic_for(CITY, "TrafficFlowObserved", ISSUER)
    command_topic = topic_for(CITY, "SignalPhaseCommand", ISSUER)
    flow = traffic_flow_observed(
        "cologne-a4-lane-1",
        road_segment="a4-km12",
        lane_id=1,
        observed_at=NOW,
        period_s=60,
        intensity=14,
        occupancy=0.18,
        average_speed_kmh=52.5,
        congested=False,
        location=(6.9603, 50.9375),
    )
    command = signal_phase_command(
        "c-1",
        intersection="cologne-j12",
        phase_index=2,
        duration_s=30.0,
        reason="queue on the north approach",
        issued_by=ISSUER,
        issued_at=NOW,
    )
    ai = AiInfo(model="acme-flow", model_digest="sha256:" + "ab" * 32, confidence=0.9)
    detached_text = json.dumps(flow).encode()
    return [
        (signer.sign(flow, audience=AUD, topic=flow_topic).encode(), flow_topic, None),
        (
            signer.sign(flow, audience=[AUD, "urn:x:y"], topic=flow_topic, ai=ai).encode(),
            flow_topic,
            None,
        ),
        (
            signer.sign(flow, audience=AUD, topic=flow_topic, detached=True).encode(),
            flow_topic,
            detached_text,
        ),
        (signer.sign(command, audience=AUD, topic=command_topic).encode(), command_topic, None),
    ]


SEEDS = _seed_envelopes()


# The kinds of input, by the number the first byte picks (see run_one).
MODES = (
    "raw bytes",
    "byte edits of a seed",
    "mutated claims",
    "mutated header",
    "raw JSON text as the claims",
    "byte edits of the claims text",
)


class FuzzFinding(AssertionError):
    """The verifier or the JSON / schema path broke its contract for this input."""


def _sign(header: bytes, claims: bytes) -> bytes:
    signing_input = _b64(header) + b"." + _b64(claims)
    return signing_input + b"." + _b64(_PRIVATE.sign(signing_input))


def _json_value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> Any:
    kind = fdp.ConsumeIntInRange(0, 8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(8)
    if kind == 3:
        return fdp.ConsumeRegularFloat()
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    if kind == 5:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 8))  # may hold lone surrogates
    if kind == 6:
        return [_json_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if kind == 7:
        # A real-looking value: one of the seed claims' own values, moved elsewhere.
        claims = _claims_of(SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)][0])
        return claims[fdp.PickValueInList(sorted(claims))]
    return {
        fdp.ConsumeUnicodeNoSurrogates(8): _json_value(fdp, depth + 1)
        for _ in range(fdp.ConsumeIntInRange(0, 3))
    }


def _claims_of(envelope: bytes) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(_unb64(envelope.split(b".")[1]))
    return claims


def _mutate_object(fdp: atheris.FuzzedDataProvider, obj: dict[str, Any]) -> None:
    """Set, delete or replace members, descending into nested objects."""
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        target = obj
        # Walk into a nested object (payload, prov, ai, an attribute) now and then.
        while fdp.ConsumeBool():
            nested = [k for k, v in target.items() if isinstance(v, dict)]
            if not nested:
                break
            target = target[fdp.PickValueInList(sorted(nested))]
        action = fdp.ConsumeIntInRange(0, 2)
        names = sorted(target)
        if action == 0 and names:
            del target[fdp.PickValueInList(names)]
        elif action == 1 and names:
            target[fdp.PickValueInList(names)] = _json_value(fdp)
        else:
            target[fdp.ConsumeUnicodeNoSurrogates(12)] = _json_value(fdp)


def _dumps(value: Any, fdp: atheris.FuzzedDataProvider) -> bytes | None:
    try:
        text = json.dumps(value, ensure_ascii=fdp.ConsumeBool(), allow_nan=True)
        return text.encode("utf-8", "surrogatepass")
    except (ValueError, TypeError, RecursionError):
        return None


def _byte_edit(fdp: atheris.FuzzedDataProvider, data: bytes) -> bytes:
    """Flip, insert, delete or truncate bytes of ``data`` (no re-signing)."""
    out = bytearray(data)
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        if not out:
            break
        at = fdp.ConsumeIntInRange(0, len(out) - 1)
        action = fdp.ConsumeIntInRange(0, 3)
        if action == 0:
            out[at] = fdp.ConsumeIntInRange(0, 255)
        elif action == 1:
            out[at:at] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 4))
        elif action == 2:
            del out[at : at + fdp.ConsumeIntInRange(1, 4)]
        else:
            del out[at:]
    return bytes(out)


def _check_json_path(text: bytes) -> None:
    """Strict JSON, then the claims and schema checks, on arbitrary text."""
    try:
        value = strict_loads(text)
    except StrictJSONError:
        return
    claims_problem(value)
    if not isinstance(value, dict):
        return
    # first_error is for known types only (its documented KeyError otherwise).
    kind = value.get("type")
    if isinstance(kind, str) and CATALOG.schema_id(kind) is not None:
        CATALOG.first_error(kind, value)
        if isinstance(value.get("payload"), dict):
            CATALOG.first_error(kind, value["payload"])
    # No RFC 8785 form (a number beyond a double's range) is a refusal, not a crash.
    with contextlib.suppress(ValueError):
        payload_digest(value)


def run_one(data: bytes, on_mode: Callable[[int], None] | None = None) -> Verification | None:
    """One fuzz input: the verdict (None if no envelope was made); :class:`FuzzFinding` if bad.

    ``on_mode`` is told which of :data:`MODES` the input picked (the tests check
    that every mode is reached).
    """
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, len(MODES) - 1)
    if on_mode is not None:
        on_mode(mode)
    envelope, topic, detached = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
    validly_signed = {seed for seed, _, _ in SEEDS}
    if mode == 0:  # raw bytes, through the JSON path and the verifier
        candidate = fdp.ConsumeBytes(fdp.remaining_bytes())
        _check_json_path(candidate)
    elif mode == 1:  # byte edits of a seed, not re-signed
        candidate = _byte_edit(fdp, envelope)
    else:
        header_part, claims_part, signature = envelope.split(b".")
        header = json.loads(_unb64(header_part))
        claims = _claims_of(envelope)
        header_text: bytes | None = _unb64(header_part)
        claims_text: bytes | None = _unb64(claims_part)
        if mode == 2:  # mutated claims
            _mutate_object(fdp, claims)
            claims_text = _dumps(claims, fdp)
        elif mode == 3:  # mutated header
            _mutate_object(fdp, header)
            if fdp.ConsumeBool():
                header["alg"] = fdp.PickValueInList(["none", "HS256", "EdDSA", "Ed25519", "ES256"])
            header_text = _dumps(header, fdp)
        elif mode == 4:  # raw JSON text as the claims
            claims_text = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
            _check_json_path(claims_text)
        else:  # byte edits of the claims text
            claims_text = _byte_edit(fdp, claims_text or b"")
            _check_json_path(claims_text)
        if header_text is None or claims_text is None:
            return None
        if fdp.ConsumeBool():
            candidate = _sign(header_text, claims_text)
            validly_signed.add(candidate)
        else:
            candidate = _b64(header_text) + b"." + _b64(claims_text) + b"." + signature
    arrived_on: str | None = topic if fdp.ConsumeBool() else None
    payload: bytes | None = detached if fdp.ConsumeBool() else fdp.ConsumeBytes(64)
    as_text = fdp.ConsumeBool()
    verifier = Verifier(TRUST, audience=AUD, catalog=CATALOG, now=_now)
    try:
        verdict = verifier.verify(
            candidate.decode("latin-1") if as_text else candidate,
            topic=arrived_on,
            payload=payload,
        )
    except Exception as exc:
        raise FuzzFinding(f"the verifier raised {type(exc).__name__}: {exc}") from exc
    if verdict.accepted and candidate not in validly_signed:
        raise FuzzFinding(f"accepted an envelope that is not validly signed: {candidate!r}")
    if verdict.accepted and header_typ_is_wrong(candidate):
        raise FuzzFinding(f"accepted an envelope whose typ is not {TYP!r}: {candidate!r}")
    return verdict


def one_input(data: bytes) -> None:
    """The libFuzzer entry point (see :func:`run_one`)."""
    run_one(data)


def header_typ_is_wrong(envelope: bytes) -> bool:
    """Whether an envelope's header does not say ``typ: cityx-msg+jws`` (never accepted)."""
    try:
        header = json.loads(_unb64(envelope.split(b".")[0]))
    except ValueError:
        return True
    return not isinstance(header, dict) or header.get("typ") != TYP


def _instrument(prefix: str = "cityx.interop") -> int:
    """Add coverage instrumentation to the functions of our own modules; how many."""
    # atheris.instrument_all() would also patch numpy, pandas, ... : minutes, not seconds.
    functions = [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, types.FunctionType) and (obj.__module__ or "").startswith(prefix)
    ]
    for function in functions:
        atheris.instrument_func(function)
    return len(functions)


def main(argv: list[str]) -> None:
    _instrument()
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
