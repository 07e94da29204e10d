"""The published conformance cases and the issuer keys they are signed with.

A *case* is one named check of a receiver (the *endpoint* under test): one
or more *steps*, each an envelope sent to it, and the *expected outcome* of
the last step: *accepted*, or *rejected* with one reason code of
:class:`~cityx.interop.verify.Reason`. Earlier steps prime the endpoint
(the first copy of a replayed envelope) and must be accepted.

The *suite* is the versioned list of cases (:data:`SUITE_VERSION`): a case
id never changes meaning; a new check gets a new id, a changed one a new
suite version.

An endpoint *claims* a profile (:mod:`cityx.interop.profiles`): ``base``
(accepts what the FIWARE Smart Data Models accept) or ``city`` (requires
more). Most cases hold for both; a case's ``profiles`` says which it
applies to, and :func:`suite_for` gives the cases of one profile: a city
endpoint must refuse a flow without ``refRoadSegment``, a base endpoint
must accept it.

The *issuers* are the suite's own senders, with Ed25519 keys derived from
a seed, so the trust documents written for one seed match every run with
that seed. Only ``jti`` values and times change between runs (they come
from the clock, so a long-lived endpoint does not see a second run as a
replay of the first):

=============  ===========================================================
``sender``     trusted for every type on ``cityx/v1/conformance/**``
``limited``    trusted for ``SignalStateObserved`` only
``revoked``    in the trust documents, revoked since 2020-01-01
``expired``    valid from 2020-01-01 to 2021-01-01 only
``stranger``   not in the trust documents at all
``forger``     not trusted; signs in the name of ``sender``'s kid
=============  ===========================================================
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..envelope import LEGACY_ALG, TYP
from ..errors import InteropError
from ..keys import ALG
from ..messages import signal_phase_command
from ..profiles import DEFAULT_PROFILE, Profile, profile_named
from ..verify import Reason
from .context import FLOW, Context, Expected, b64, compact, compact_json
from .issuers import CITY, Issuer, make_issuers, trust_documents, write_trust
from .protocol import Request

SUITE_VERSION = "cityx.conformance/v1"
AUDIENCE = "urn:cityx:conformance:receiver"
"""The receiver URN the suite addresses by default (the endpoint's ``--aud``)."""
MAX_BYTES = 64 * 1024
"""The envelope size limit the suite expects the endpoint to enforce."""

_ELSEWHERE = "urn:cityx:city:elsewhere:tmc"


Build = Callable[[Context], list[Request]]


@dataclass(frozen=True, slots=True)
class Case:
    """One published check: an id, what it tests, the expected outcome, how to build its steps."""

    id: str
    title: str
    expected: Expected
    build: Build
    profiles: frozenset[Profile] = frozenset(Profile)
    """The profiles whose endpoints must give the expected outcome (most cases: all)."""


def _valid_detached(c: Context) -> list[Request]:
    entity = c.flow()
    claims = c.claims(entity=entity, detached=True)
    return [Request(c.sign(claims), claims["topic"], entity)]


def _valid_command(c: Context) -> list[Request]:
    urn = c.issuers["sender"].urn
    entity = signal_phase_command(
        "conformance-1",
        intersection="conformance-j1",
        phase_index=2,
        duration_s=30.0,
        reason="conformance",
        issued_by=urn,
        issued_at=c.now - 1,
    )
    return [c.step(entity=entity)]


def _legacy(c: Context) -> list[Request]:
    claims = c.claims()
    return [Request(c.sign(claims, alg=LEGACY_ALG), claims["topic"])]


def _forged(c: Context) -> list[Request]:
    claims = c.claims()
    return [Request(c.sign(claims, "forger", kid_of="sender"), claims["topic"])]


def _tampered(c: Context) -> list[Request]:
    claims = c.claims()
    token = c.sign(claims)
    changed = c.sign({**claims, "aud": _ELSEWHERE})
    # The signature of one set of claims on another: what editing a token in flight gives.
    head, body, _ = changed.split(".")
    return [Request(f"{head}.{body}.{token.rsplit('.', 1)[1]}", claims["topic"])]


def _replay_jti(c: Context) -> list[Request]:
    first = c.step()
    return [first, first]


def _replay_seq(c: Context) -> list[Request]:
    later = c.claims()
    earlier = c.claims(seq=later["seq"] - 1)
    return [Request(c.sign(later), later["topic"]), Request(c.sign(earlier), earlier["topic"])]


def _digest_mismatch(c: Context) -> list[Request]:
    entity = c.flow()
    claims = c.claims(entity=entity, detached=True)
    changed = {**entity, "intensity": {"type": "Property", "value": 15}}
    return [Request(c.sign(claims), claims["topic"], changed)]


def _issuer_mismatch(c: Context) -> list[Request]:
    claims = c.claims(iss=c.issuers["limited"].urn)
    return [Request(c.sign(claims), claims["topic"])]


def _stale(c: Context) -> list[Request]:
    return [c.step(iat=c.now - 3600, exp=c.now - 3540)]


def _future(c: Context) -> list[Request]:
    return [c.step(iat=c.now + 3600, exp=c.now + 3660)]


def _unpermitted_type(c: Context) -> list[Request]:
    return [c.step("limited")]


def _unpermitted_topic(c: Context) -> list[Request]:
    topic = f"cityx/v1/elsewhere/{FLOW}/{c.issuers['sender'].urn}"
    return [c.step(topic=topic)]


def _topic_mismatch(c: Context) -> list[Request]:
    claims = c.claims()
    return [Request(c.sign(claims), c.topic("limited"))]


def _unknown_type(c: Context) -> list[Request]:
    entity = {"id": "urn:ngsi-ld:ParkingSpot:conformance-1", "type": "ParkingSpot"}
    return [c.step(entity=entity)]


def _schema_invalid(c: Context) -> list[Request]:
    entity = c.flow()
    del entity["dateObserved"]
    entity["intensity"] = {"type": "Property", "value": "fourteen"}
    return [c.step(entity=entity)]


def _implausible(c: Context) -> list[Request]:
    speed = {"type": "Property", "value": 400.0, "unitCode": "KMH"}
    return [c.step(entity=c.flow(averageVehicleSpeed=speed))]


def _oversize(c: Context) -> list[Request]:
    # Well signed and otherwise acceptable: only its length is wrong.
    note = {"type": "Property", "value": "x" * MAX_BYTES}
    return [c.step(entity=c.flow(note=note))]


def _not_jws(c: Context) -> list[Request]:
    return [Request("this is not a JWS", c.topic())]


def _alg_none(c: Context) -> list[Request]:
    claims = c.claims()
    header = {"alg": "none", "kid": c.issuers["sender"].key.kid, "typ": TYP}
    return [Request(compact(header, claims, None), claims["topic"])]


def _alg_hs256(c: Context) -> list[Request]:
    # The classic confusion: an HMAC "signed" with the public key's bytes.
    claims = c.claims()
    header = {"alg": "HS256", "kid": c.issuers["sender"].key.kid, "typ": TYP}
    signing_input = f"{b64(compact_json(header))}.{b64(compact_json(claims))}"
    secret = c.issuers["sender"].key.public_jwk()["x"].encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return [Request(f"{signing_input}.{b64(mac)}", claims["topic"])]


def _wrong_typ(c: Context) -> list[Request]:
    claims = c.claims()
    header = {"alg": ALG, "kid": c.issuers["sender"].key.kid, "typ": "JWT"}
    return [Request(compact(header, claims, c.issuers["sender"].private), claims["topic"])]


def _case(
    case_id: str,
    title: str,
    reason: Reason | None,
    build: Build,
    profiles: Iterable[Profile] = tuple(Profile),
) -> Case:
    return Case(case_id, title, Expected(reason), build, frozenset(profiles))


# -- profile cases: what the Smart Data Model allows, and what the city adds ----------------------


def _without(entity: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in entity.items() if name not in names}


def _flow_located(c: Context) -> list[Request]:
    return [c.step(entity=_without(c.flow(), "refRoadSegment"))]


def _flow_addressed(c: Context) -> list[Request]:
    address = {
        "type": "Property",
        "value": {"streetAddress": "Innere Kanalstrasse", "addressLocality": "Koeln"},
    }
    return [c.step(entity={**_without(c.flow(), "refRoadSegment", "location"), "address": address})]


def _flow_minimal(c: Context) -> list[Request]:
    # All the Smart Data Model requires: id, type, dateObserved.
    return [
        c.step(entity={k: v for k, v in c.flow().items() if k in ("id", "type", "dateObserved")})
    ]


def _lane_zero(c: Context) -> list[Request]:
    return [c.step(entity=c.flow(laneId={"type": "Property", "value": 0}))]


_BASE, _CITY = (Profile.BASE,), (Profile.CITY,)


_R = Reason
SUITE: tuple[Case, ...] = (
    _case("valid-flow", "a well-formed TrafficFlowObserved", None, lambda c: [c.step()]),
    _case("valid-detached", "a detached payload matching its digest", None, _valid_detached),
    _case("valid-command", "a SignalPhaseCommand from its issuer", None, _valid_command),
    _case("valid-legacy-eddsa", "alg EdDSA, the RFC 8037 name", None, _legacy),
    _case(
        "valid-audience-list",
        "aud is a list that names the receiver",
        None,
        lambda c: [c.step(aud=[_ELSEWHERE, c.audience])],
    ),
    _case("not-jws", "text that is no compact JWS", _R.MALFORMED, _not_jws),
    _case("wrong-typ", "typ JWT instead of cityx-msg+jws", _R.MALFORMED, _wrong_typ),
    _case("oversize", "a signed envelope over 64 KiB", _R.OVERSIZE, _oversize),
    _case("alg-none", "alg none with an empty signature", _R.ALG_NOT_ALLOWED, _alg_none),
    _case("alg-hs256", "HS256 keyed with the public key", _R.ALG_NOT_ALLOWED, _alg_hs256),
    _case(
        "unknown-key",
        "signed by a key not in the trust store",
        _R.UNKNOWN_KEY,
        lambda c: [c.step("stranger")],
    ),
    _case("revoked-key", "signed by a revoked key", _R.REVOKED_KEY, lambda c: [c.step("revoked")]),
    _case(
        "expired-key",
        "signed by a key past its not_after",
        _R.KEY_EXPIRED,
        lambda c: [c.step("expired")],
    ),
    _case("forged-signature", "a trusted kid, another key's signature", _R.BAD_SIGNATURE, _forged),
    _case("tampered-claims", "claims edited after signing", _R.BAD_SIGNATURE, _tampered),
    _case("issuer-mismatch", "iss is not the key's issuer", _R.ISSUER_MISMATCH, _issuer_mismatch),
    _case(
        "digest-mismatch",
        "a detached payload that differs from its digest",
        _R.DIGEST_MISMATCH,
        _digest_mismatch,
    ),
    _case("future-dated", "iat an hour ahead", _R.FUTURE_DATED, _future),
    _case("stale", "issued an hour ago, expired", _R.STALE, _stale),
    _case("replay-jti", "the same envelope twice", _R.REPLAYED_JTI, _replay_jti),
    _case("replay-sequence", "a new jti with a lower seq", _R.SEQ_NOT_RISING, _replay_seq),
    _case(
        "wrong-audience",
        "addressed to another receiver",
        _R.WRONG_AUDIENCE,
        lambda c: [c.step(aud=_ELSEWHERE)],
    ),
    _case("unpermitted-type", "a type the key may not sign", _R.NOT_PERMITTED, _unpermitted_type),
    _case("unpermitted-topic", "a topic the key may not use", _R.NOT_PERMITTED, _unpermitted_topic),
    _case("topic-mismatch", "arrived on another topic", _R.NOT_PERMITTED, _topic_mismatch),
    _case("unknown-type", "a type with no schema", _R.UNKNOWN_TYPE, _unknown_type),
    _case("schema-invalid", "an entity that breaks its schema", _R.SCHEMA_INVALID, _schema_invalid),
    _case("implausible", "a speed of 400 km/h", _R.IMPLAUSIBLE, _implausible),
    _case(
        "valid-flow-location",
        "a flow placed by location, no refRoadSegment (valid in the SDM)",
        None,
        _flow_located,
        _BASE,
    ),
    _case(
        "valid-flow-address",
        "a flow placed by address only (valid in the SDM)",
        None,
        _flow_addressed,
        _BASE,
    ),
    _case(
        "valid-flow-minimal",
        "a flow with only id, type and dateObserved (the SDM's minimum)",
        None,
        _flow_minimal,
        _BASE,
    ),
    _case("sdm-lane-zero", "laneId 0 (the SDM counts from 1)", _R.SCHEMA_INVALID, _lane_zero),
    _case(
        "city-road-segment",
        "a flow without refRoadSegment (the city profile requires it)",
        _R.SCHEMA_INVALID,
        _flow_located,
        _CITY,
    ),
)
"""The published suite, in the order it runs."""


def suite_for(profile: Profile | str = DEFAULT_PROFILE) -> tuple[Case, ...]:
    """The cases an endpoint claiming ``profile`` must pass, in suite order."""
    claimed = profile_named(profile)
    return tuple(case for case in SUITE if claimed in case.profiles)


def select(
    ids: Iterable[str] | None = None, *, profile: Profile | str = DEFAULT_PROFILE
) -> tuple[Case, ...]:
    """The cases of ``profile``, or only those named (in suite order).

    An unknown id, or one that does not apply to ``profile``, is an error.
    """
    claimed = profile_named(profile)
    cases = suite_for(claimed)
    if ids is None:
        return cases
    wanted = list(ids)
    known = {case.id for case in SUITE}
    applies = {case.id for case in cases}
    for case_id in wanted:
        if case_id not in known:
            raise InteropError(
                f"unknown conformance case {case_id!r}",
                hint="cityx interop conformance --list shows the ids",
            )
        if case_id not in applies:
            raise InteropError(
                f"conformance case {case_id!r} is not in the {claimed} profile's suite",
                hint=f"cityx interop conformance --list --profile {claimed} shows its ids",
            )
    return tuple(case for case in cases if case.id in wanted)


__all__ = [
    "AUDIENCE",
    "CITY",
    "MAX_BYTES",
    "SUITE",
    "SUITE_VERSION",
    "Case",
    "Context",
    "Expected",
    "Issuer",
    "compact",
    "make_issuers",
    "select",
    "suite_for",
    "trust_documents",
    "write_trust",
]
