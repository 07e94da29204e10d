"""Stops and releases in the safety envelope, with a fake program (no SUMO needed)."""

from __future__ import annotations

from cityx.worlds.traffic.network import Intersection, Phase
from cityx.worlds.traffic.safety import SafetyEnvelope, StopStatus

PROGRAM = (
    Phase("GgrG", 30),
    Phase("yyry", 3),
    Phase("rrrr", 2),
    Phase("rrGr", 30),
    Phase("rryr", 3),
    Phase("rrrr", 2),
)
SIGNAL = Intersection(id="j", program_id="0", phases=PROGRAM, links=(("a", "b"),) * 4, lanes=("a",))


def envelope() -> SafetyEnvelope:
    env = SafetyEnvelope([SIGNAL], min_green_s=5.0, max_green_s=60.0)
    env.reset({"j": 0})
    return env


_LAST: dict[int, str] = {}  # what each envelope shows: step() returns changes only


def shown(env: SafetyEnvelope, steps: int, requests: dict[str, int] | None = None) -> list[str]:
    states = []
    for _ in range(steps):
        _LAST[id(env)] = env.step(requests or {}).get("j", _LAST.get(id(env), ""))
        states.append(_LAST[id(env)])
    return states


def test_a_stop_waits_for_the_minimum_green_then_clears_to_all_red() -> None:
    env = envelope()
    shown(env, 2)  # the green has shown 2 s of its 5 s minimum
    env.stop("j")
    assert env.stop_status("j") is StopStatus.PENDING
    states = shown(env, 12, {"j": 3})  # requests are ignored while stopping
    assert states[:3] == ["GgrG"] * 3  # the rest of the minimum green
    assert states[3:6] == ["yyry"] * 3  # the program's yellow on every moving link
    assert states[6:] == ["rrrr"] * 6  # all-red, then held
    assert env.stop_status("j") is StopStatus.STOPPED


def test_a_flashing_stop_goes_through_all_red_and_back() -> None:
    env = envelope()
    shown(env, 6)
    env.stop("j", flashing=True)
    states = shown(env, 8)
    assert states[:3] == ["yyry"] * 3 and states[3:5] == ["rrrr"] * 2 and states[5] == "oooo"
    env.release("j", 3)
    states = shown(env, 7)
    assert states[:5] == ["rrrr"] * 5  # yellow plus all-red time before any green
    assert states[5:] == ["rrGr"] * 2
    assert env.stop_status("j") is StopStatus.NONE


def test_a_stop_during_a_clearance_keeps_every_yellow_whole() -> None:
    env = envelope()
    shown(env, 6)
    shown(env, 1, {"j": 3})  # the program's yellow has begun
    env.stop("j")
    states = shown(env, 6)
    # No link goes from green or yellow straight to red: a full yellow follows.
    assert states[:3] == ["yyry"] * 3 and set(states[3:]) == {"rrrr"}


def test_release_before_the_stop_began_cancels_it() -> None:
    env = envelope()
    env.stop("j")
    env.release("j", 0)
    assert env.stop_status("j") is StopStatus.NONE
    assert set(shown(env, 10)) == {"GgrG"}
