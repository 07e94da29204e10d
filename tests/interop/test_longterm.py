"""The long-lived detached signature profile: validity at signing time, revoked vs compromised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityx.interop import (
    LongReason,
    LongStatus,
    SigningKey,
    StaticTrustStore,
    TrustedKey,
    generate_key,
    load_trust,
    sign_digest,
    sign_value,
    trust_document,
    trust_of_jwk,
    verify_digest,
    verify_value,
)
from cityx.interop.longterm import sha256_hex

T = 1_700_000_000.0  # signing time used throughout
PURPOSE = "test.evidence"
KEY = generate_key("urn:cityx:city:test")


def _store(key: SigningKey = KEY, **window: float | None) -> StaticTrustStore:
    return StaticTrustStore([TrustedKey.of(key)], **window)  # type: ignore[arg-type]


def test_a_signature_verifies_years_later_with_no_expiry() -> None:
    token = sign_value({"a": 1}, KEY, purpose=PURPOSE, now=T)
    result = verify_value(token, {"a": 1}, _store(), purpose=PURPOSE, now=T + 10 * 365 * 86400)
    assert result.status is LongStatus.VALID and result.reason is LongReason.OK
    assert result.ok and result.warning is None
    assert result.kid == KEY.kid and result.statement is not None
    assert result.statement.signed_at == pytest.approx(T)


def test_the_digest_binds_the_evidence_and_the_purpose_binds_its_kind() -> None:
    digest = sha256_hex(b"manifest bytes")
    token = sign_digest(digest, KEY, purpose=PURPOSE, now=T)
    assert verify_digest(token, digest, _store(), purpose=PURPOSE, now=T).ok
    changed = verify_digest(token, sha256_hex(b"manifest bytez"), _store(), purpose=PURPOSE, now=T)
    assert changed.reason is LongReason.DIGEST_MISMATCH and not changed.ok
    other = verify_digest(token, digest, _store(), purpose="another.kind", now=T)
    assert other.reason is LongReason.WRONG_PURPOSE


@pytest.mark.parametrize(
    ("trust", "status", "reason"),
    [
        ({}, LongStatus.VALID, LongReason.OK),
        (
            {"revoked": {KEY.kid: T + 60}},
            LongStatus.VALID_WITH_WARNING,
            LongReason.REVOKED_AFTER_SIGNING,
        ),
        ({"revoked": {KEY.kid: T - 1}}, LongStatus.INVALID, LongReason.REVOKED_BEFORE_SIGNING),
        ({"revoked": {KEY.kid: T}}, LongStatus.INVALID, LongReason.REVOKED_BEFORE_SIGNING),
        (
            {"revoked": {KEY.kid: T + 60}, "compromised": {KEY.kid: T - 3600}},
            LongStatus.INVALID,
            LongReason.COMPROMISED_BEFORE_SIGNING,
        ),
        (
            {"revoked": {KEY.kid: T + 60}, "compromised": {KEY.kid: T + 30}},
            LongStatus.VALID_WITH_WARNING,
            LongReason.REVOKED_AFTER_SIGNING,
        ),
    ],
)
def test_revocation_after_signing_warns_compromise_before_signing_voids(
    trust: dict[str, dict[str, float]], status: LongStatus, reason: LongReason
) -> None:
    token = sign_value([1, 2], KEY, purpose=PURPOSE, now=T)
    result = verify_value(
        token,
        [1, 2],
        StaticTrustStore([TrustedKey.of(KEY)], **trust),
        purpose=PURPOSE,
        now=T + 86400,
    )
    assert (result.status, result.reason) == (status, reason)
    if status is not LongStatus.VALID:
        assert KEY.kid in result.detail  # the reason names the key


def test_the_key_window_must_hold_the_signing_time() -> None:
    token = sign_value("x", KEY, purpose=PURPOSE, now=T)
    base = TrustedKey.of(KEY)
    from dataclasses import replace

    early = StaticTrustStore([replace(base, not_before=T + 1)])
    late = StaticTrustStore([replace(base, not_after=T - 1)])
    later = StaticTrustStore([replace(base, not_before=T - 10, not_after=T + 10)])
    assert verify_value(token, "x", early, purpose=PURPOSE).reason is LongReason.KEY_NOT_YET_VALID
    assert verify_value(token, "x", late, purpose=PURPOSE).reason is LongReason.KEY_EXPIRED
    # An expired key's signature made inside its window stays valid long after.
    assert verify_value(token, "x", later, purpose=PURPOSE, now=T + 1e8).status is LongStatus.VALID


def test_unknown_and_forged_signatures_are_invalid_future_ones_warn() -> None:
    token = sign_value("x", KEY, purpose=PURPOSE, now=T)
    stranger = generate_key("urn:cityx:city:other")
    assert (
        verify_value(token, "x", _store(stranger), purpose=PURPOSE).reason is LongReason.UNKNOWN_KEY
    )
    head, _, _ = token.split(".")
    forged = sign_value("y", stranger, purpose=PURPOSE, now=T).split(".")
    spliced = ".".join([head, forged[1], forged[2]])
    assert verify_value(spliced, "y", _store(), purpose=PURPOSE).reason is LongReason.BAD_SIGNATURE
    assert verify_value("not a jws", "x", _store(), purpose=PURPOSE).reason is LongReason.MALFORMED
    future = sign_value("x", KEY, purpose=PURPOSE, now=T + 3600)
    ahead = verify_value(future, "x", _store(), purpose=PURPOSE, now=T)
    assert ahead.reason is LongReason.SIGNED_IN_FUTURE and ahead.warning is not None
    revoked = StaticTrustStore([TrustedKey.of(KEY)], revoked={KEY.kid: T})
    assert verify_value(future, "x", revoked, purpose=PURPOSE, now=T).reason is (
        LongReason.REVOKED_BEFORE_SIGNING
    )


def test_a_self_contained_statement_carries_its_value_in_about() -> None:
    body = {"decision": "approve", "trial": "t-1"}
    token = sign_value(body, KEY, purpose=PURPOSE, about=body, now=T)
    result = verify_digest(token, None, trust_of_jwk(KEY.public_jwk()), purpose=PURPOSE)
    assert result.ok and result.statement is not None and result.statement.about == body
    other = sign_value({"decision": "reject"}, KEY, purpose=PURPOSE, about=body, now=T)
    assert verify_digest(other, None, _store(), purpose=PURPOSE).reason is (
        LongReason.DIGEST_MISMATCH
    )


def test_trust_documents_carry_compromised_since(tmp_path: Path) -> None:
    document = trust_document(KEY)
    document["revoked"] = [
        {
            "kid": KEY.kid,
            "at": "2025-01-15T08:00:00Z",
            "reason": "laptop stolen",
            "compromised_since": "2025-01-10T00:00:00Z",
        }
    ]
    path = tmp_path / "city.json"
    path.write_text(json.dumps(document))
    trusted = load_trust(path).key(KEY.kid)
    assert trusted is not None and trusted.compromised_since is not None
    # Compromise voids from its own time, so the short-lived verifier refuses from then too.
    assert trusted.revoked_at == trusted.compromised_since
    before = sign_value(1, KEY, purpose=PURPOSE, now=trusted.compromised_since - 1)
    after = sign_value(1, KEY, purpose=PURPOSE, now=trusted.compromised_since + 1)
    store = load_trust(path)
    assert verify_value(before, 1, store, purpose=PURPOSE).status is LongStatus.VALID_WITH_WARNING
    assert verify_value(after, 1, store, purpose=PURPOSE).reason is (
        LongReason.COMPROMISED_BEFORE_SIGNING
    )


@settings(max_examples=60, deadline=None)
@given(
    signed=st.floats(0, 2e9),
    revoked=st.none() | st.floats(0, 2e9),
    compromised=st.none() | st.floats(0, 2e9),
)
def test_the_status_follows_the_times(
    signed: float, revoked: float | None, compromised: float | None
) -> None:
    token = sign_value("v", KEY, purpose=PURPOSE, now=signed)
    store = StaticTrustStore(
        [TrustedKey.of(KEY)],
        revoked={} if revoked is None else {KEY.kid: revoked},
        compromised={} if compromised is None else {KEY.kid: compromised},
    )
    # The statement keeps microseconds: compare against the time as signed.
    result = verify_value(token, "v", store, purpose=PURPOSE, now=2.1e9)
    assert result.statement is not None
    at = result.statement.signed_at
    effective = min(t for t in (revoked, compromised, float("inf")) if t is not None)
    if compromised is not None and compromised <= at:
        assert result.reason is LongReason.COMPROMISED_BEFORE_SIGNING
    elif effective <= at:
        assert result.reason is LongReason.REVOKED_BEFORE_SIGNING
    elif revoked is not None or compromised is not None:
        assert result.status is LongStatus.VALID_WITH_WARNING
    else:
        assert result.status is LongStatus.VALID


def test_the_database_store_folds_a_compromise_into_the_revocation(tmp_path: Path) -> None:
    # The tables have no compromise column: a compromise must not be read as a mere retirement.
    from cityx.interop import DbTrustStore
    from cityx.store import Store

    document = trust_document(KEY)
    document["revoked"] = [
        {"kid": KEY.kid, "at": "2025-01-15T08:00:00Z", "compromised_since": "2023-01-01T00:00:00Z"}
    ]
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        trust = DbTrustStore(store)
        trust.import_documents([(document, "city.json")])
        token = sign_value(1, KEY, purpose=PURPOSE, now=T)  # 2023-11: after the compromise
        result = verify_value(token, 1, trust, purpose=PURPOSE)
    assert not result.ok and result.reason is LongReason.REVOKED_BEFORE_SIGNING
