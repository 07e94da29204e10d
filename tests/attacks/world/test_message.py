"""Message-path attacks on the secure loop's in-memory bus: verification must reject them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cityx.attacks import MessageAttack, world_attack
from cityx.core import InputError
from cityx.core.systems import Action, Observation
from cityx.interop import InMemoryTransport
from cityx.runs.secure_loop import SecureLoop

from .world_fixtures import network, observation


class Recorder:
    """A controller that keeps what it was shown and always asks for phase 0."""

    def __init__(self) -> None:
        self.seen: list[Observation] = []

    def act(self, observation: Observation) -> Action:
        self.seen.append(observation)
        return Action(phases={"tls": 0})


def run_loop(
    tmp_path: Path, attack: dict[str, Any] | None, seconds: int = 20
) -> tuple[Recorder, dict[str, Any]]:
    inner = Recorder()
    loop = SecureLoop(inner, network(), folder=tmp_path, message_attack=attack)
    for t in range(seconds):
        loop.act(observation(1000.0 + t))
    loop.close()
    return inner, json.loads((tmp_path / "interop.json").read_text())


def test_without_an_attack_every_observation_is_accepted(tmp_path: Path) -> None:
    inner, report = run_loop(tmp_path, None)
    assert report["observations"]["accepted"] == 16
    assert not any(k.startswith("rejected") for k in report["observations"])
    assert inner.seen[-1].halting.tolist() == [1, 2, 0, 0]
    assert "attack" not in report


@pytest.mark.parametrize(
    ("attack", "reasons"),
    [
        ("message.forge", {"rejected:unknown_key"}),
        ("message.replay", {"rejected:replayed_jti", "rejected:seq_not_rising", "rejected:stale"}),
        ("message.flood", {"rejected:malformed"}),
    ],
)
def test_injected_messages_are_rejected_and_change_nothing(
    tmp_path: Path, attack: str, reasons: set[str]
) -> None:
    inner, report = run_loop(
        tmp_path, {"attack": attack, "seed": 1, "intensity": 1.0, "start_s": 5}
    )
    obs = report["observations"]
    assert obs["accepted"] == 16 and obs.get("missing", 0) == 0
    rejected = {k for k in obs if k.startswith("rejected:")}
    assert rejected and rejected <= reasons
    # The controller saw only the genuine queue.
    assert all(o.halting.tolist() == [1, 2, 0, 0] for o in inner.seen[1:])
    assert report["attack"]["attack"] == attack and report["attack"]["attacked_messages"] > 0


def test_tampered_messages_fail_their_signature_and_the_lanes_go_missing(tmp_path: Path) -> None:
    inner, report = run_loop(
        tmp_path, {"attack": "message.tamper", "seed": 1, "intensity": 1.0, "start_s": 5}
    )
    obs = report["observations"]
    # The first interval (before start_s) is genuine; the next three are tampered.
    assert obs["accepted"] == 4 and obs["rejected:bad_signature"] == 12 and obs["missing"] == 12
    assert inner.seen[-1].halting.tolist() == [0, 0, 0, 0]
    assert report["attack"]["cost"]["magnitude"] == 12


def test_intensity_and_seed_decide_which_messages_are_hit(tmp_path: Path) -> None:
    def hits(seed: int) -> int:
        attack = world_attack("message.tamper")
        assert isinstance(attack, MessageAttack)
        transport = attack.transport(InMemoryTransport(), seed=seed, intensity=0.5)
        loop = SecureLoop(Recorder(), network(), folder=tmp_path, transport=transport)
        for t in range(100):
            loop.act(observation(float(t)))
        loop.close()
        return int(transport.report()["attacked_messages"])

    assert hits(3) == hits(3)
    assert 40 * 0.25 < hits(3) < 80 * 0.75


def test_a_sensor_attack_is_refused_on_the_message_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a message-path attack"):
        SecureLoop(Recorder(), network(), folder=tmp_path, message_attack={"attack": "world.stale"})
