"""Decision-log seals are long-lived: a later revocation warns, an earlier compromise voids."""

from __future__ import annotations

import time
from pathlib import Path

from cityx.interop import StaticTrustStore, TrustedKey, generate_key
from cityx.oversight.decisions import DecisionLog, verify_decisions

KEY = generate_key("urn:cityx:city:test")


def _log(folder: Path) -> Path:
    log = DecisionLog(folder, KEY, run="r9", checkpoint_every=3)
    for k in range(7):
        log.append("choice", "controller", "tls1", {"k": k})
    log.close()
    return folder


def test_seals_outlive_a_later_revocation_with_a_warning(tmp_path: Path) -> None:
    folder = _log(tmp_path)
    later = StaticTrustStore([TrustedKey.of(KEY)], revoked={KEY.kid: time.time() + 3600})
    result = verify_decisions(folder, trust=later, run="r9")
    assert result.ok and result.key_anchored and result.sealed == result.entries
    assert result.warnings and KEY.kid in result.warnings[0]
    assert result.to_json()["warnings"] == list(result.warnings)
    assert verify_decisions(folder, trust=StaticTrustStore([TrustedKey.of(KEY)])).warnings == ()


def test_a_key_revoked_or_compromised_before_sealing_voids_the_seals(tmp_path: Path) -> None:
    folder = _log(tmp_path)
    now = time.time()
    revoked = StaticTrustStore([TrustedKey.of(KEY)], revoked={KEY.kid: now - 3600})
    result = verify_decisions(folder, trust=revoked)
    assert not result.ok and result.first_bad == 4 and "revoked" in str(result.reason)
    stolen = StaticTrustStore(
        [TrustedKey.of(KEY)], revoked={KEY.kid: now + 3600}, compromised={KEY.kid: now - 3600}
    )
    result = verify_decisions(folder, trust=stolen)
    assert not result.ok and "compromised" in str(result.reason)
    assert KEY.kid in str(result.reason)


def test_a_seal_of_another_run_is_named(tmp_path: Path) -> None:
    folder = _log(tmp_path)
    result = verify_decisions(folder, trust=StaticTrustStore([TrustedKey.of(KEY)]), run="r1")
    assert not result.ok and "belongs to run 'r9'" in str(result.reason)
