"""The in-memory transport and the secure channel over it."""

from __future__ import annotations

import pytest

from cityx.interop import (
    InMemoryTransport,
    Message,
    Reason,
    Rejection,
    SecureChannel,
    Signer,
    Verifier,
    topic_for,
    topic_matches,
)

from .conftest import AUD, ISSUER, flow


@pytest.mark.parametrize(
    ("pattern", "topic", "hit"),
    [
        ("cityx/v1/cologne/#", "cityx/v1/cologne/TrafficFlowObserved/x", True),
        ("cityx/v1/cologne/#", "cityx/v1/cologne", True),  # MQTT: # also matches the parent
        ("cityx/v1/+/TrafficFlowObserved/+", "cityx/v1/bonn/TrafficFlowObserved/x", True),
        ("cityx/v1/+/TrafficFlowObserved/+", "cityx/v1/bonn/TrafficFlowObserved/x/y", False),
        ("cityx/v1/cologne/Road/+", "cityx/v1/cologne/RoadSegment/x", False),
        ("a/#/b", "a/x/b", False),
    ],
)
def test_topic_matching(pattern: str, topic: str, hit: bool) -> None:
    assert topic_matches(pattern, topic) is hit


def test_topic_layout() -> None:
    assert topic_for("cologne", "TrafficFlowObserved", ISSUER) == (
        f"cityx/v1/cologne/TrafficFlowObserved/{ISSUER}"
    )
    for bad in (("Cologne", "T", ISSUER), ("cologne", "T/x", ISSUER), ("cologne", "T", "a+b")):
        with pytest.raises(ValueError):
            topic_for(*bad)


def test_in_memory_transport_delivers_and_unsubscribes() -> None:
    transport = InMemoryTransport()
    got: list[tuple[str, bytes]] = []
    stop = transport.subscribe("a/+", lambda t, d: got.append((t, d)))
    transport.publish("a/b", b"1")
    transport.publish("c/d", b"2")
    stop()
    transport.publish("a/b", b"3")
    assert got == [("a/b", b"1")]
    with pytest.raises(ValueError):
        transport.publish("a/+", b"x")


def test_secure_channel_delivers_accepted_and_logs_rejected(
    signer: Signer, verifier: Verifier
) -> None:
    transport = InMemoryTransport()
    sender = SecureChannel(transport, city="cologne", signer=signer)
    seen: list[Rejection] = []
    receiver = SecureChannel(transport, city="cologne", verifier=verifier, on_reject=seen.append)
    delivered: list[Message] = []
    receiver.subscribe("cityx/v1/cologne/#", delivered.append)

    topic = sender.send(flow(), audience=AUD)
    assert [m.topic for m in delivered] == [topic]
    assert delivered[0].entity["type"] == "TrafficFlowObserved"

    # An attacker replays a captured envelope, moves a not yet delivered one (intercepted) to
    # another topic, and sends junk.
    captured: list[bytes] = []
    transport.subscribe("cityx/v1/cologne/#", lambda t, d: captured.append(d))
    sender.send(flow(), audience=AUD)
    transport.publish(topic, captured[0])
    intercepted = signer.sign(flow(), audience=AUD, topic=topic).encode()
    transport.publish("cityx/v1/cologne/SignalPhaseCommand/x", intercepted)
    transport.publish(topic, b"junk")

    assert len(delivered) == 2
    reasons = [r.reason for r in receiver.rejections]
    assert reasons == [Reason.REPLAYED_JTI, Reason.NOT_PERMITTED, Reason.MALFORMED]
    assert seen == list(receiver.rejections)
    assert receiver.rejected[Reason.MALFORMED] == 1
    assert receiver.rejections[0].issuer == ISSUER and receiver.rejections[2].issuer is None


def test_rejection_log_is_bounded(verifier: Verifier) -> None:
    transport = InMemoryTransport()
    receiver = SecureChannel(transport, city="cologne", verifier=verifier, keep=3)
    receiver.subscribe("#", lambda m: None)
    for _ in range(10):
        transport.publish("cityx/v1/cologne/x/y", b"junk")
    assert len(receiver.rejections) == 3 and receiver.rejected[Reason.MALFORMED] == 10


def test_a_channel_without_signer_or_verifier_says_so(signer: Signer, verifier: Verifier) -> None:
    transport = InMemoryTransport()
    with pytest.raises(ValueError, match="signer"):
        SecureChannel(transport, city="cologne", verifier=verifier).send(flow(), audience=AUD)
    with pytest.raises(ValueError, match="verifier"):
        SecureChannel(transport, city="cologne", signer=signer).subscribe("#", lambda m: None)
