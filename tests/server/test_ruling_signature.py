"""Rulings are signed with the long-lived profile: they outlive the city's key."""

from __future__ import annotations

import pytest

from cityx.interop import LongReason, LongStatus, StaticTrustStore, TrustedKey, generate_key
from cityx.server.rulings import check_ruling_signature, sign_ruling, verify_ruling

BODY = {"trial": "t-1", "decision": "reject", "reasons": ["fails the gate"], "conditions": []}


def test_a_ruling_carries_its_body_and_survives_a_later_revocation() -> None:
    key = generate_key("urn:cityx:city:test")
    signature = sign_ruling(BODY, key)
    assert verify_ruling(signature, key.public_jwk()) == BODY
    retired = StaticTrustStore([TrustedKey.of(key)], revoked={key.kid: 4e9})
    assert check_ruling_signature(signature, retired).status is LongStatus.VALID_WITH_WARNING
    stolen = StaticTrustStore(
        [TrustedKey.of(key)], revoked={key.kid: 4e9}, compromised={key.kid: 0}
    )
    checked = check_ruling_signature(signature, stolen)
    assert checked.reason is LongReason.COMPROMISED_BEFORE_SIGNING and key.kid in checked.detail


def test_a_ruling_signed_by_another_key_does_not_verify() -> None:
    key, other = generate_key("urn:cityx:city:test"), generate_key("urn:cityx:city:test")
    with pytest.raises(ValueError, match="does not verify"):
        verify_ruling(sign_ruling(BODY, other), key.public_jwk())
