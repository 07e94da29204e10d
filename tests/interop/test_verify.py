"""Every rejection reason, each produced by an envelope crafted to trigger it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest

from cityx.interop import (
    TYP,
    Catalog,
    Reason,
    Signer,
    SigningKey,
    StaticTrustStore,
    Verifier,
    VerifierPolicy,
    generate_key,
    payload_digest,
    signal_phase_command,
)

from .conftest import (
    AUD,
    ISSUER,
    NOW,
    OTHER,
    Clock,
    b64,
    flow,
    forge,
    header_of,
    private_of,
    trusted,
)

Claims = Callable[..., dict[str, Any]]


def test_a_valid_envelope_is_accepted_with_its_claims(signer: Signer, verifier: Verifier) -> None:
    verdict = verifier.verify(signer.sign(flow(), audience=AUD))
    assert verdict.accepted and verdict.reason is None
    assert verdict.claims is not None
    assert verdict.claims["iss"] == ISSUER and verdict.claims["type"] == "TrafficFlowObserved"
    assert verdict.claims["payload"]["intensity"]["value"] == 14


def test_bytes_and_text_are_both_accepted(signer: Signer, verifier: Verifier) -> None:
    assert verifier.verify(signer.sign(flow(), audience=AUD).encode()).accepted
    assert verifier.verify(signer.sign(flow(), audience=AUD)).accepted


def test_the_legacy_eddsa_name_is_accepted(
    key: SigningKey, verifier: Verifier, claimed: Claims
) -> None:
    token = forge(header_of(key, "EdDSA"), claimed(), private=private_of(key))
    assert verifier.verify(token).accepted


def test_the_legacy_name_can_be_refused(
    key: SigningKey, store: StaticTrustStore, catalog: Catalog, clock: Clock, claimed: Claims
) -> None:
    strict = Verifier(
        store,
        audience=AUD,
        catalog=catalog,
        now=clock,
        policy=VerifierPolicy(algorithms=frozenset({"Ed25519"})),
    )
    token = forge(header_of(key, "EdDSA"), claimed(), private=private_of(key))
    assert strict.verify(token).reason is Reason.ALG_NOT_ALLOWED


def test_oversize(signer: Signer, store: StaticTrustStore, catalog: Catalog, clock: Clock) -> None:
    small = Verifier(
        store, audience=AUD, catalog=catalog, now=clock, policy=VerifierPolicy(max_bytes=500)
    )
    assert small.verify(signer.sign(flow(), audience=AUD)).reason is Reason.OVERSIZE
    assert small.verify("x" * 501).reason is Reason.OVERSIZE


@pytest.mark.parametrize(
    "envelope",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "eyJ.eyJ.",  # bad base64 lengths
        "e$J.eyJ.AAAA",  # not base64url
        "eyJhbGciOiJFZDI1NTE5In0.bm90IGpzb24.AAAA",  # payload "not json"
        b"\xff\xfe.\x00.\x01",
        "ëyJ.eyJ.AAAA",  # not ASCII
    ],
)
def test_malformed_garbage(verifier: Verifier, envelope: str | bytes) -> None:
    assert verifier.verify(envelope).reason is Reason.MALFORMED


def test_not_bytes_or_text_is_malformed(verifier: Verifier) -> None:
    assert verifier.verify(None).reason is Reason.MALFORMED  # type: ignore[arg-type]
    assert verifier.verify(12).reason is Reason.MALFORMED  # type: ignore[arg-type]


def test_truncated(signer: Signer, verifier: Verifier) -> None:
    token = signer.sign(flow(), audience=AUD)
    for cut in (1, 10, 87, len(token) // 2):
        assert verifier.verify(token[:-cut]).reason in {Reason.MALFORMED, Reason.BAD_SIGNATURE}
    assert verifier.verify(token[: token.rindex(".")]).reason is Reason.MALFORMED


def test_non_json_claims(key: SigningKey, verifier: Verifier) -> None:
    token = forge(header_of(key), b"{not json", private=private_of(key))
    verdict = verifier.verify(token)
    assert verdict.reason is Reason.MALFORMED and "not JSON" in verdict.detail


def test_deeply_nested(key: SigningKey, verifier: Verifier, claimed: Claims) -> None:
    claims = claimed()
    nested: Any = 1
    for _ in range(40):
        nested = {"n": nested}
    claims["payload"]["deep"] = {"type": "Property", "value": nested}
    verdict = verifier.verify(forge(header_of(key), claims, private=private_of(key)))
    assert verdict.reason is Reason.MALFORMED and "deeper" in verdict.detail
    very_deep = b'{"a":' * 20000 + b"1" + b"}" * 20000
    assert verifier.verify(forge(header_of(key), very_deep, private=private_of(key))).reason in {
        Reason.MALFORMED,
        Reason.OVERSIZE,
    }


def test_huge_nesting_under_a_big_size_limit_is_malformed_not_a_crash(
    key: SigningKey, store: StaticTrustStore, catalog: Catalog, clock: Clock
) -> None:
    roomy = Verifier(
        store, audience=AUD, catalog=catalog, now=clock, policy=VerifierPolicy(max_bytes=2**22)
    )
    very_deep = b"[" * 200_000 + b"]" * 200_000
    assert roomy.verify(forge(header_of(key), very_deep, private=private_of(key))).reason is (
        Reason.MALFORMED
    )


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda c: c.update(iat="1800000000"), "iat"),
        (lambda c: c.update(seq=True), "seq"),
        (lambda c: c.update(seq=2**60), "seq"),
        (lambda c: c.pop("jti"), "jti"),
        (lambda c: c.update(v=2), "version"),
        (lambda c: c.update(extra=1), "unknown claim"),
        (lambda c: c.update(aud=[]), "aud"),
        (lambda c: c.update(exp=c["iat"]), "exp"),
        (lambda c: c.update(payload_sha256="0" * 64), "exactly one"),
        (lambda c: c.update(payload=[1]), "payload"),
        (lambda c: c.update(prov={"device": "d"}), "prov"),
        (lambda c: c.update(ai={"model": "m", "model_digest": "md5:x"}), "model_digest"),
        (
            lambda c: c.update(
                ai={"model": "m", "model_digest": "sha256:" + "a" * 64, "confidence": 2}
            ),
            "confidence",
        ),
        (lambda c: c.update(iss="acme"), "iss"),
    ],
)
def test_claims_of_the_wrong_shape_are_malformed(
    key: SigningKey,
    verifier: Verifier,
    claimed: Claims,
    edit: Callable[[dict[str, Any]], Any],
    words: str,
) -> None:
    claims = claimed()
    edit(claims)
    verdict = verifier.verify(forge(header_of(key), claims, private=private_of(key)))
    assert verdict.reason is Reason.MALFORMED and words in verdict.detail
    assert verdict.claims is None  # nothing unauthenticated leaks into the verdict


@pytest.mark.parametrize(
    "text",
    [
        b'{"v":1,"v":1}',  # duplicate member: parsers disagree on which wins
        b'{"a":NaN}',
        b'{"a":1e999}',
        b'{"a":"\\ud800"}',  # lone surrogate
        b"\xef\xbb\xbf{}",  # byte order mark
    ],
)
def test_json_outside_i_json_is_malformed(key: SigningKey, verifier: Verifier, text: bytes) -> None:
    assert verifier.verify(forge(header_of(key), text, private=private_of(key))).reason is (
        Reason.MALFORMED
    )


def test_duplicate_alg_in_the_header_is_malformed(
    key: SigningKey, verifier: Verifier, claimed: Claims
) -> None:
    header = f'{{"alg":"none","alg":"Ed25519","kid":"{key.kid}","typ":"{TYP}"}}'.encode()
    assert (
        verifier.verify(forge(header, claimed(), private=private_of(key))).reason
        is Reason.MALFORMED
    )


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c", "crit", "b64", "cty"])
def test_header_members_beyond_alg_kid_typ_are_malformed(
    key: SigningKey, verifier: Verifier, claimed: Claims, member: str
) -> None:
    header = {**header_of(key), member: key.public_jwk() if member == "jwk" else "x"}
    verdict = verifier.verify(forge(header, claimed(), private=private_of(key)))
    assert verdict.reason is Reason.MALFORMED and member in verdict.detail


def test_wrong_typ_is_malformed(key: SigningKey, verifier: Verifier, claimed: Claims) -> None:
    header = {**header_of(key), "typ": "JWT"}
    assert (
        verifier.verify(forge(header, claimed(), private=private_of(key))).reason
        is Reason.MALFORMED
    )


def test_alg_none(key: SigningKey, verifier: Verifier, claimed: Claims) -> None:
    verdict = verifier.verify(forge({"alg": "none", "kid": key.kid, "typ": TYP}, claimed()))
    assert verdict.reason is Reason.ALG_NOT_ALLOWED


def test_hs256_with_the_public_key_as_secret(
    key: SigningKey, verifier: Verifier, claimed: Claims
) -> None:
    """The classic confusion attack: an HMAC keyed with the (public) verification key."""
    x = key.public_jwk()["x"]
    for secret in (x.encode(), base64.urlsafe_b64decode(x + "=")):
        signing_input = forge(header_of(key, "HS256"), claimed()).rsplit(".", 1)[0]
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        verdict = verifier.verify(f"{signing_input}.{b64(mac)}")
        assert verdict.reason is Reason.ALG_NOT_ALLOWED


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS512", "Ed448", "NONE", ""])
def test_other_algorithms(key: SigningKey, verifier: Verifier, claimed: Claims, alg: str) -> None:
    token = forge(header_of(key, alg), claimed(), signature=b"\x00" * 64)
    assert verifier.verify(token).reason is Reason.ALG_NOT_ALLOWED


def test_unknown_key(
    catalog: Catalog, clock: Clock, signer: Signer, key: SigningKey, claimed: Claims
) -> None:
    empty = Verifier(StaticTrustStore([]), audience=AUD, catalog=catalog, now=clock)
    assert empty.verify(signer.sign(flow(), audience=AUD)).reason is Reason.UNKNOWN_KEY
    no_kid = {"alg": "Ed25519", "typ": TYP}
    assert (
        empty.verify(forge(no_kid, claimed(), private=private_of(key))).reason is Reason.UNKNOWN_KEY
    )


def test_a_key_of_the_same_issuer_not_in_the_store_is_unknown(
    catalog: Catalog, clock: Clock, verifier: Verifier
) -> None:
    stranger = Signer(generate_key(ISSUER), catalog=catalog, now=clock)
    assert verifier.verify(stranger.sign(flow(), audience=AUD)).reason is Reason.UNKNOWN_KEY


def test_revoked_key(key: SigningKey, catalog: Catalog, clock: Clock, signer: Signer) -> None:
    store = StaticTrustStore([trusted(key)], revoked={key.kid: NOW - 1})
    verifier = Verifier(store, audience=AUD, catalog=catalog, now=clock)
    assert verifier.verify(signer.sign(flow(), audience=AUD)).reason is Reason.REVOKED_KEY


def test_revocation_takes_effect_at_its_time(
    key: SigningKey, catalog: Catalog, clock: Clock, signer: Signer
) -> None:
    store = StaticTrustStore([trusted(key)], revoked={key.kid: NOW + 30})
    verifier = Verifier(store, audience=AUD, catalog=catalog, now=clock)
    assert verifier.verify(signer.sign(flow(), audience=AUD)).accepted
    clock.t = NOW + 30
    envelope = signer.sign(flow(NOW + 30), audience=AUD)
    assert verifier.verify(envelope).reason is Reason.REVOKED_KEY


def test_expired_and_not_yet_valid_keys(
    key: SigningKey, catalog: Catalog, clock: Clock, signer: Signer
) -> None:
    expired = StaticTrustStore([trusted(key, not_after=NOW - 1)])
    early = StaticTrustStore([trusted(key, not_before=NOW + 1)])
    envelope = signer.sign(flow(), audience=AUD)
    assert Verifier(expired, audience=AUD, catalog=catalog, now=clock).verify(envelope).reason is (
        Reason.KEY_EXPIRED
    )
    assert Verifier(early, audience=AUD, catalog=catalog, now=clock).verify(envelope).reason is (
        Reason.KEY_NOT_YET_VALID
    )


def test_rotation_overlap(catalog: Catalog, clock: Clock) -> None:
    """Old and new key of one issuer are both good inside the overlap, and only then."""
    old, new = generate_key(ISSUER), generate_key(ISSUER)
    store = StaticTrustStore(
        [trusted(old, not_after=NOW + 100), trusted(new, not_before=NOW - 100)]
    )
    verifier = Verifier(store, audience=AUD, catalog=catalog, now=clock)
    old_signer = Signer(old, catalog=catalog, now=clock)
    new_signer = Signer(new, catalog=catalog, now=clock)
    assert verifier.verify(old_signer.sign(flow(), audience=AUD)).accepted
    clock.t += 1  # the new signer's seq must rise above the old one's
    assert verifier.verify(new_signer.sign(flow(clock.t), audience=AUD)).accepted
    clock.t = NOW + 101
    assert (
        verifier.verify(old_signer.sign(flow(clock.t), audience=AUD)).reason is Reason.KEY_EXPIRED
    )
    assert verifier.verify(new_signer.sign(flow(clock.t), audience=AUD)).accepted


def test_forged_signature(
    key: SigningKey, other_key: SigningKey, verifier: Verifier, claimed: Claims
) -> None:
    # Signed by another vendor's private key but naming this key's kid.
    verdict = verifier.verify(forge(header_of(key), claimed(), private=private_of(other_key)))
    assert verdict.reason is Reason.BAD_SIGNATURE and verdict.claims is None


def test_edited_claims_break_the_signature(signer: Signer, verifier: Verifier) -> None:
    token = signer.sign(flow(), audience=AUD)
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["payload"]["intensity"]["value"] = 0
    tampered = f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
    assert verifier.verify(tampered).reason is Reason.BAD_SIGNATURE


def test_short_signature(key: SigningKey, verifier: Verifier, claimed: Claims) -> None:
    token = forge(header_of(key), claimed(), signature=b"\x01" * 63)
    assert verifier.verify(token).reason is Reason.BAD_SIGNATURE


def test_a_key_speaking_for_another_issuer(
    other_key: SigningKey, verifier: Verifier, claimed: Claims
) -> None:
    claims = claimed()  # iss is ISSUER, but the key below is OTHER's
    verdict = verifier.verify(forge(header_of(other_key), claims, private=private_of(other_key)))
    assert verdict.reason is Reason.ISSUER_MISMATCH and OTHER in verdict.detail


def test_detached_payload(signer: Signer, verifier: Verifier) -> None:
    entity = flow()
    token = signer.sign(entity, audience=AUD, detached=True)
    text = json.dumps(entity, indent=2, sort_keys=False).encode()  # any spelling of the same JSON
    assert verifier.verify(token, payload=text).accepted


def test_detached_payload_digest_mismatch(signer: Signer, verifier: Verifier) -> None:
    entity = flow()
    token = signer.sign(entity, audience=AUD, detached=True)
    assert verifier.verify(token, payload=flow(intensity=15)).reason is Reason.DIGEST_MISMATCH
    assert verifier.verify(token).reason is Reason.DIGEST_MISMATCH
    assert verifier.verify(token, payload=b"[1]").reason is Reason.DIGEST_MISMATCH
    assert verifier.verify(token, payload=b"{bad").reason is Reason.DIGEST_MISMATCH
    assert verifier.verify(token, payload={"a": object()}).reason is Reason.DIGEST_MISMATCH
    assert (
        payload_digest(entity)
        == json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["payload_sha256"]
    )


def test_future_dated(key: SigningKey, verifier: Verifier, claimed: Claims) -> None:
    claims = claimed()
    claims["iat"], claims["exp"] = int(NOW) + 6, int(NOW) + 66
    verdict = verifier.verify(forge(header_of(key), claims, private=private_of(key)))
    assert verdict.reason is Reason.FUTURE_DATED


def test_clock_skew_is_tolerated(key: SigningKey, verifier: Verifier, claimed: Claims) -> None:
    claims = claimed()
    claims["iat"], claims["exp"] = int(NOW) + 4, int(NOW) + 64
    claims["payload"] = flow(NOW - 1)
    assert verifier.verify(forge(header_of(key), claims, private=private_of(key))).accepted


def test_stale(signer: Signer, verifier: Verifier, clock: Clock) -> None:
    envelope = signer.sign(flow(), audience=AUD)
    clock.t = NOW + 66  # exp is iat + 60, skew 5
    assert verifier.verify(envelope).reason is Reason.STALE


def test_too_old_even_when_exp_is_far(
    key: SigningKey, verifier: Verifier, claimed: Claims, clock: Clock
) -> None:
    claims = claimed()
    claims["exp"] = int(NOW) + 86_400
    token = forge(header_of(key), claims, private=private_of(key))
    clock.t = NOW + 66
    verdict = verifier.verify(token)
    assert verdict.reason is Reason.STALE and "issued" in verdict.detail


def test_replayed_jti(signer: Signer, verifier: Verifier) -> None:
    envelope = signer.sign(flow(), audience=AUD)
    assert verifier.verify(envelope).accepted
    verdict = verifier.verify(envelope)
    assert verdict.reason is Reason.REPLAYED_JTI and verdict.claims is not None


def test_seq_not_rising(key: SigningKey, verifier: Verifier, claimed: Claims) -> None:
    first, second = claimed(), claimed()
    assert verifier.verify(forge(header_of(key), second, private=private_of(key))).accepted
    # An envelope signed earlier (lower seq) but delivered later: reordered or held back.
    verdict = verifier.verify(forge(header_of(key), first, private=private_of(key)))
    assert verdict.reason is Reason.SEQ_NOT_RISING


def test_a_rejected_envelope_does_not_burn_its_seq(signer: Signer, verifier: Verifier) -> None:
    bad = signer.sign(flow(averageVehicleSpeed=300.0), audience=AUD)  # signed, but implausible
    assert verifier.verify(bad).reason is Reason.IMPLAUSIBLE
    assert verifier.verify(bad).reason is Reason.IMPLAUSIBLE  # not "replayed"


def test_the_jti_cache_is_bounded(
    signer: Signer, store: StaticTrustStore, catalog: Catalog, clock: Clock
) -> None:
    verifier = Verifier(
        store, audience=AUD, catalog=catalog, now=clock, policy=VerifierPolicy(jti_cache_size=3)
    )
    envelopes = [signer.sign(flow(), audience=AUD) for _ in range(5)]
    for envelope in envelopes:
        assert verifier.verify(envelope).accepted
    assert len(verifier._seen) == 3
    # The evicted first jti still cannot come back: its seq is below the last accepted one.
    assert verifier.verify(envelopes[0]).reason is Reason.SEQ_NOT_RISING


def test_wrong_audience(signer: Signer, verifier: Verifier) -> None:
    verdict = verifier.verify(signer.sign(flow(), audience="urn:cityx:city:bonn:tmc"))
    assert verdict.reason is Reason.WRONG_AUDIENCE
    assert verifier.verify(signer.sign(flow(), audience=["urn:cityx:city:bonn:tmc", AUD])).accepted


def test_no_audience_check_when_none_is_configured(
    signer: Signer, store: StaticTrustStore, catalog: Catalog, clock: Clock
) -> None:
    anyone = Verifier(store, audience=None, catalog=catalog, now=clock)
    assert anyone.verify(signer.sign(flow(), audience="urn:cityx:city:bonn:tmc")).accepted


def test_unpermitted_type(key: SigningKey, catalog: Catalog, clock: Clock, signer: Signer) -> None:
    store = StaticTrustStore([trusted(key, types=("Signal*",))])
    verifier = Verifier(store, audience=AUD, catalog=catalog, now=clock)
    verdict = verifier.verify(signer.sign(flow(), audience=AUD))
    assert verdict.reason is Reason.NOT_PERMITTED and "TrafficFlowObserved" in verdict.detail


def test_unpermitted_topic(key: SigningKey, catalog: Catalog, clock: Clock, signer: Signer) -> None:
    store = StaticTrustStore([trusted(key, topics=("cityx/v1/cologne/TrafficFlowObserved/*",))])
    verifier = Verifier(store, audience=AUD, catalog=catalog, now=clock)
    good = f"cityx/v1/cologne/TrafficFlowObserved/{ISSUER}"
    assert verifier.verify(signer.sign(flow(), audience=AUD, topic=good)).accepted
    for topic in (
        "cityx/v1/bonn/TrafficFlowObserved/x",
        "cityx/v1/cologne/TrafficFlowObserved/a/b",
    ):
        verdict = verifier.verify(signer.sign(flow(), audience=AUD, topic=topic))
        assert verdict.reason is Reason.NOT_PERMITTED
    # No topic at all is not allowed by a key restricted to topics.
    assert verifier.verify(signer.sign(flow(), audience=AUD)).reason is Reason.NOT_PERMITTED


def test_envelope_moved_to_another_topic(signer: Signer, verifier: Verifier) -> None:
    signed_for = f"cityx/v1/cologne/TrafficFlowObserved/{ISSUER}"
    envelope = signer.sign(flow(), audience=AUD, topic=signed_for)
    verdict = verifier.verify(envelope, topic="cityx/v1/cologne/SignalPhaseCommand/x")
    assert verdict.reason is Reason.NOT_PERMITTED and "arrived on" in verdict.detail
    assert verifier.verify(envelope, topic=signed_for).accepted


def test_unknown_type_and_schema(key: SigningKey, verifier: Verifier, claimed: Claims) -> None:
    claims = claimed()
    claims["type"] = "ParkingSpot"
    assert verifier.verify(forge(header_of(key), claims, private=private_of(key))).reason is (
        Reason.UNKNOWN_TYPE
    )
    claims = claimed()
    claims["schema"] = "https://cityx.dev/schemas/interop/TrafficFlowObserved/v9"
    assert verifier.verify(forge(header_of(key), claims, private=private_of(key))).reason is (
        Reason.UNKNOWN_TYPE
    )


def test_schema_invalid(key: SigningKey, verifier: Verifier, claimed: Claims) -> None:
    claims = claimed()
    claims["payload"]["intensity"] = {"type": "Property", "value": "many"}
    verdict = verifier.verify(forge(header_of(key), claims, private=private_of(key)))
    assert verdict.reason is Reason.SCHEMA_INVALID and "/intensity" in verdict.detail
    claims = claimed()
    del claims["payload"]["refRoadSegment"]
    assert verifier.verify(forge(header_of(key), claims, private=private_of(key))).reason is (
        Reason.SCHEMA_INVALID
    )


def test_entity_type_must_match_the_claimed_type(
    key: SigningKey, verifier: Verifier, claimed: Claims
) -> None:
    claims = claimed()
    claims["type"], claims["schema"] = "Road", "https://cityx.dev/schemas/interop/Road/v1"
    assert verifier.verify(forge(header_of(key), claims, private=private_of(key))).reason is (
        Reason.SCHEMA_INVALID
    )


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"averageVehicleSpeed": 400.0}, "averageVehicleSpeed"),
        ({"intensity": 500}, "intensity"),  # 500 vehicles on one lane in 60 s
        ({"laneId": 999}, "laneId"),
    ],
)
def test_implausible(
    signer: Signer, verifier: Verifier, changes: dict[str, Any], words: str
) -> None:
    verdict = verifier.verify(signer.sign(flow(**changes), audience=AUD))
    assert verdict.reason is Reason.IMPLAUSIBLE and words in verdict.detail


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("averageVehicleSpeed", -3.0, "/averageVehicleSpeed: -3.0 is less than the minimum of 0"),
        ("occupancy", 1.3, "/occupancy: 1.3 is greater than the maximum of 1"),
        ("laneId", 0, "/laneId: 0 is less than the minimum of 1"),
    ],
)
def test_what_the_smart_data_model_forbids_is_schema_invalid(
    key: SigningKey, verifier: Verifier, claimed: Claims, name: str, value: Any, words: str
) -> None:
    # The signer refuses these, so they are forged: a receiver must refuse them too.
    claims = claimed()
    claims["payload"][name] = {"type": "Property", "value": value}
    verdict = verifier.verify(forge(header_of(key), claims, private=private_of(key)))
    assert verdict.reason is Reason.SCHEMA_INVALID
    assert "Smart Data Models TrafficFlowObserved schema" in verdict.detail
    assert words in verdict.detail


def test_observation_dated_in_the_future_is_implausible(signer: Signer, verifier: Verifier) -> None:
    verdict = verifier.verify(signer.sign(flow(NOW + 3600), audience=AUD))
    assert verdict.reason is Reason.IMPLAUSIBLE and "future" in verdict.detail


def test_a_command_must_name_its_sender(signer: Signer, verifier: Verifier) -> None:
    def command(issued_by: str, duration: float = 30) -> dict[str, Any]:
        return signal_phase_command(
            "c1",
            intersection="cluster-42",
            phase_index=2,
            duration_s=duration,
            reason="queue on the north approach",
            issued_by=issued_by,
            issued_at=NOW,
        )

    assert verifier.verify(signer.sign(command(ISSUER), audience=AUD)).accepted
    verdict = verifier.verify(signer.sign(command(OTHER), audience=AUD))
    assert verdict.reason is Reason.IMPLAUSIBLE and "issuedBy" in verdict.detail
    assert (
        verifier.verify(signer.sign(command(ISSUER, 1), audience=AUD)).reason is Reason.IMPLAUSIBLE
    )


def test_verdict_json(signer: Signer, verifier: Verifier) -> None:
    out = verifier.verify(signer.sign(flow(), audience=AUD)).to_json()
    assert set(out) == {"accepted", "reason", "claims"} and out["accepted"] is True
    json.dumps(out)
    rejected = verifier.verify("nope").to_json()
    assert rejected == {"accepted": False, "reason": "malformed", "claims": None}


def test_policy_refuses_other_algorithms() -> None:
    with pytest.raises(ValueError, match="HS256"):
        VerifierPolicy(algorithms=frozenset({"HS256"}))
