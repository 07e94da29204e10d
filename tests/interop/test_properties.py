"""Property tests: the verifier never raises, and no mutation of a good envelope passes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityx.interop import Catalog, Reason, Signer, SigningKey, StaticTrustStore, Verifier

from .conftest import AUD, Clock, flow, trusted

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _fresh_verifier(key: SigningKey, catalog: Catalog, clock: Clock) -> Verifier:
    return Verifier(StaticTrustStore([trusted(key)]), audience=AUD, catalog=catalog, now=clock)


@SETTINGS
@given(data=st.binary(max_size=2048) | st.text(max_size=512))
def test_verify_never_raises_for_any_input(
    key: SigningKey, catalog: Catalog, data: bytes | str
) -> None:
    verdict = _fresh_verifier(key, catalog, Clock()).verify(data)
    assert not verdict.accepted and isinstance(verdict.reason, Reason)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


@SETTINGS
@given(
    parts=st.lists(st.text(alphabet=_ALPHABET, max_size=200), min_size=3, max_size=3),
)
def test_verify_never_raises_for_jws_shaped_input(
    key: SigningKey, catalog: Catalog, parts: list[str]
) -> None:
    verdict = _fresh_verifier(key, catalog, Clock()).verify(".".join(parts))
    assert not verdict.accepted


@SETTINGS
@given(data=st.data())
def test_no_mutation_of_a_valid_envelope_is_accepted(
    key: SigningKey, catalog: Catalog, data: st.DataObject
) -> None:
    clock = Clock()
    envelope = Signer(key, catalog=catalog, now=clock).sign(flow(), audience=AUD).encode()
    assert _fresh_verifier(key, catalog, clock).verify(envelope).accepted
    kind = data.draw(st.sampled_from(["flip", "replace", "insert", "delete", "truncate", "append"]))
    i = data.draw(st.integers(0, len(envelope) - 1))
    if kind == "flip":
        bit = data.draw(st.integers(0, 7))
        mutated = envelope[:i] + bytes([envelope[i] ^ (1 << bit)]) + envelope[i + 1 :]
    elif kind == "replace":
        byte = data.draw(st.integers(0, 255).filter(lambda b: b != envelope[i]))
        mutated = envelope[:i] + bytes([byte]) + envelope[i + 1 :]
    elif kind == "insert":
        mutated = envelope[:i] + data.draw(st.binary(min_size=1, max_size=4)) + envelope[i:]
    elif kind == "delete":
        n = data.draw(st.integers(1, 8))
        mutated = envelope[:i] + envelope[i + n :]
    elif kind == "truncate":
        mutated = envelope[:i]
    else:
        mutated = envelope + data.draw(st.binary(min_size=1, max_size=4))
    # A fresh verifier, so replay detection cannot be what saves us.
    verdict = _fresh_verifier(key, catalog, clock).verify(mutated)
    assert not verdict.accepted, (kind, i)


@SETTINGS
@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_verify_never_raises_for_any_detached_payload(
    key: SigningKey, catalog: Catalog, payload: object
) -> None:
    clock = Clock()
    envelope = Signer(key, catalog=catalog, now=clock).sign(flow(), audience=AUD, detached=True)
    verdict = _fresh_verifier(key, catalog, clock).verify(envelope, payload=payload)  # type: ignore[arg-type]
    assert verdict.reason in {Reason.DIGEST_MISMATCH, None}
