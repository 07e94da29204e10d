"""Signed operator commands: forged, replayed, expired and unpermitted ones are refused."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from cityx.interop import InMemoryTransport, StaticTrustStore, TrustedKey, generate_key
from cityx.oversight import Action, CommandQueue, OperatorCommand, OversightSpec, run_oversight
from cityx.oversight.channel import listen, publish_command
from cityx.oversight.signed import CommandVerifier, sign_command

from ..worlds.traffic.conftest import needs_resco, needs_sumo

ALICE = generate_key("urn:cityx:operator:alice")
MALLORY = generate_key("urn:cityx:operator:mallory")
TRUST = StaticTrustStore(
    [TrustedKey.of(ALICE, types=("OperatorCommand",), topics=("oversight/A*", "oversight/B1"))]
)
HOLD_A0 = OperatorCommand("A0", Action.HOLD, at_s=5, reason="look", operator="urn:x:forged")


def test_a_good_command_carries_the_keys_identity() -> None:
    command, code, _ = CommandVerifier(TRUST).verify(sign_command(HOLD_A0, ALICE))
    assert code is None and command is not None
    assert command.operator == ALICE.issuer and command.at_s == 5 and command.reason == "look"


# Tokens are signed when the test runs, not at collection: a token signed minutes
# earlier in a long suite would be refused as expired, whatever the case tests.
@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: sign_command(HOLD_A0, MALLORY), "forged"),
        (lambda: sign_command(OperatorCommand("C2", Action.STOP), ALICE), "not_permitted"),
        (lambda: sign_command(OperatorCommand("*", Action.STOP), ALICE), "not_permitted"),
        (lambda: sign_command(HOLD_A0, ALICE, now=time.time() - 3600), "expired"),
        (lambda: "not.a.jws", "forged"),
    ],
    ids=["forged", "other-intersection", "every-intersection", "expired", "not-jws"],
)
def test_bad_commands_are_refused_with_a_reason(make: Callable[[], str], code: str) -> None:
    command, got, detail = CommandVerifier(TRUST).verify(make())
    assert command is None and got is not None and got.value == code and detail


def test_a_tampered_command_does_not_verify() -> None:
    head, body, sig = sign_command(HOLD_A0, ALICE).split(".")
    other = sign_command(OperatorCommand("A0", Action.STOP), ALICE).split(".")[1]
    _, code, _ = CommandVerifier(TRUST).verify(f"{head}.{other}.{sig}")
    assert code is not None and code.value == "forged"
    assert body != other


def test_a_replay_is_refused_and_the_bus_feeds_the_queue() -> None:
    bus, queue = InMemoryTransport(), CommandQueue()
    verifier = CommandVerifier(TRUST)
    listen(bus, queue, verifier, city="cologne")
    token = sign_command(OperatorCommand("B1", Action.STOP), ALICE)
    publish_command(bus, token, city="cologne", operator=ALICE.issuer)
    publish_command(bus, token, city="cologne", operator=ALICE.issuer)  # replayed
    due = queue.due(0.0)
    assert [c.action for _, c in due] == [Action.STOP]
    assert [code for _, code, _ in queue.rejected()] == ["replayed"]


def test_a_silent_channel_falls_back_to_the_fixed_time_plan(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    queue = CommandQueue()
    queue.submit_signed("forged.token.here", CommandVerifier(TRUST))  # refused, and logged
    spec = OversightSpec("cologne1", seconds=10, seed=1, out=tmp_path, channel_timeout_s=0.0)
    result = run_oversight(spec, commands=queue)
    assert set(result.modes.values()) == {"fixed-time"}
    assert result.to_json()["oversight"]["unverified_commands"][0]["reason_code"] == "forged"
    reasons = [
        line
        for line in (tmp_path / "decisions.jsonl").read_text().splitlines()
        if "operator channel lost" in line
    ]
    assert reasons


def test_the_state_feed_is_signed_numbered_and_refuses_spoofs(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    from cityx.oversight.channel import StateFeed, StateReader

    bus = InMemoryTransport()
    messages: list[bytes] = []
    bus.subscribe("cityx/v1/cologne/OversightState/+", lambda _t, data: messages.append(data))
    city = generate_key("urn:cityx:city:cologne")
    reader = StateReader(city.public_jwk())
    reader.subscribe(bus, city="cologne")
    spec = OversightSpec("cologne1", seconds=15, seed=1, out=tmp_path)
    run_oversight(spec, key=city, feed=StateFeed(bus, city="cologne"))
    # One message per step, and the last word: the run ended.
    assert len(reader.accepted) == 16 and not reader.refused
    assert reader.accepted[-1]["state"]["run"]["ended"] is True
    last = reader.accepted[-1]["state"]
    assert {"time_s", "intersections", "alerts"} <= set(last)
    (tls,) = last["intersections"]
    assert {"mode", "signals", "green", "queue", "choice"} <= set(last["intersections"][tls])
    assert reader.read(messages[3]) is None  # a replayed message
    spoof = StateFeed(bus, city="cologne")
    spoof.start(generate_key("urn:cityx:city:cologne"), "fake")
    spoof.publish({"time_s": 99})
    assert len(reader.accepted) == 16 and "bad signature" in reader.refused[-1]


@pytest.mark.mqtt
@pytest.mark.slow
def test_signed_commands_and_state_over_the_mqtt_broker(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    import threading

    from cityx.interop import write_key_files
    from cityx.interop.mqtt import MqttTransport

    from ..support.cli import cityx

    alice = generate_key("urn:cityx:operator:alice")
    files = write_key_files(alice, tmp_path / "keys")
    console = MqttTransport(url="mqtt://127.0.0.1:1883").connect()
    city = f"t{uuid.uuid4().hex[:8]}"
    states: list[bytes] = []
    console.subscribe(f"cityx/v1/{city}/OversightState/+", lambda _t, d: states.append(d))
    stop = threading.Event()

    def operator() -> None:  # sends one stop once the run publishes, then falls silent
        while not stop.is_set() and not states:
            time.sleep(0.02)
        token = sign_command(OperatorCommand("*", Action.STOP), alice)
        console.publish(f"cityx/v1/{city}/OperatorCommand/{alice.issuer}", token.encode())

    thread = threading.Thread(target=operator, daemon=True)
    thread.start()
    try:
        run = cityx(
            *("oversee", "run", "--scenario", "cologne1", "--seconds", "120", "--seed", "1"),
            *("--bus", "mqtt://127.0.0.1:1883", "--city", city),
            *("--operator-trust", files.public, "--json"),
        )
    finally:
        stop.set()
        thread.join(timeout=5)
        console.close()
    assert run.code == 0, run.err
    o = run.json()["oversight"]
    assert [c["action"] for c in o["commands"]] == ["stop"]
    assert o["commands"][0]["operator"] == alice.issuer
    assert o["commands"][0]["state"] == "effective"
    assert len(states) >= 100
