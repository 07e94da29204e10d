"""The envelope with a fake four-phase program (no SUMO needed)."""

from __future__ import annotations

import pytest

from cityx.worlds.traffic.network import Intersection, Phase
from cityx.worlds.traffic.safety import SafetyEnvelope, clearance

# Links: 0 north-south through, 1 north-south left, 2 east-west through, 3 east-west left.
PROGRAM = (
    Phase("GgrG", 30),  # 0 green: NS through (+ permissive left) and EW left (odd but legal here)
    Phase("yyry", 3),  # 1 yellow
    Phase("rrrr", 2),  # 2 all-red
    Phase("rrGr", 30),  # 3 green: EW through
    Phase("rryr", 3),  # 4 yellow
    Phase("rrrr", 2),  # 5 all-red
    Phase("rGrr", 10),  # 6 green: NS left protected
    Phase("ryrr", 3),  # 7 yellow
)
SIGNAL = Intersection(id="j", program_id="0", phases=PROGRAM, links=(("a", "b"),) * 4, lanes=("a",))


def envelope(**kw: float) -> SafetyEnvelope:
    env = SafetyEnvelope([SIGNAL], **{"min_green_s": 5.0, "max_green_s": 60.0, **kw})
    env.reset({"j": 0})
    return env


def run(env: SafetyEnvelope, requests: list[int | None]) -> list[str]:
    shown, states = "", []
    for want in requests:
        changes = env.step({} if want is None else {"j": want})
        shown = changes.get("j", shown)
        states.append(shown)
    return states


def test_program_transition_is_used_unchanged() -> None:
    env = envelope()
    states = run(env, [None] * 5 + [3] * 6)
    assert states[:5] == ["GgrG"] * 5
    assert states[5:11] == ["yyry"] * 3 + ["rrrr"] * 2 + ["rrGr"]
    assert env.report().switches == 1


def test_built_clearance_gives_yellow_to_every_link_losing_green() -> None:
    # 0 -> 6 is not the program's own order: the yellow is built link by link.
    steps = clearance(PROGRAM, 0, 6)
    assert steps[0] == ("ygry", 3.0)  # link 1 stays green (g), 0 and 3 lose it
    assert steps[1] == ("rgrr", 2.0)  # the program has all-red: only kept greens stay
    env = envelope()
    states = run(env, [None] * 5 + [6] * 7)
    assert states[5:8] == ["ygry"] * 3
    assert states[8:10] == ["rgrr"] * 2
    assert states[10] == "rGrr"


def test_every_green_to_green_change_passes_yellow() -> None:
    greens = [0, 3, 6]
    for a in greens:
        for b in greens:
            if a == b:
                continue
            first = clearance(PROGRAM, a, b)[0][0]
            for old, new, mid in zip(PROGRAM[a].state, PROGRAM[b].state, first, strict=True):
                if old in "Gg" and new not in "Gg":
                    assert mid == "y"


def test_an_unsafe_program_clearance_is_rebuilt() -> None:
    # This program cuts link 1 from green to red with no yellow between.
    bad = (Phase("GG", 20), Phase("yr", 3), Phase("rG", 20), Phase("Gy", 3))
    assert clearance(bad, 0, 2) == [("yg", 3)]  # link 1 keeps its green throughout


def test_too_short_green_is_refused_and_counted() -> None:
    env = envelope(min_green_s=10.0)
    states = run(env, [3] * 4)
    assert states == ["GgrG"] * 4
    assert env.report().refused["min_green"] == 4
    assert env.phase("j") == (0, 4.0, False)


@pytest.mark.parametrize(
    ("wanted", "kind"),
    [(8, "unknown_phase"), (-1, "unknown_phase"), (1, "not_green"), (2, "not_green")],
)
def test_missing_phases_and_yellow_skipping_are_refused(wanted: int, kind: str) -> None:
    env = envelope()
    states = run(env, [None] * 10 + [wanted] * 3)
    assert set(states) == {"GgrG"}
    report = env.report()
    assert report.refused[kind] == 3
    assert report.switches == 0


def test_unknown_intersection_and_requests_during_clearance_are_refused() -> None:
    env = envelope()
    run(env, [None] * 6)
    env.step({"nowhere": 0})
    run(env, [3, 6, 6])
    refused = env.report().refused
    assert refused["unknown_intersection"] == 1
    assert refused["in_transition"] == 2


def test_maximum_green_forces_the_next_program_green() -> None:
    env = envelope(max_green_s=20.0)
    states = run(env, [0] * 26)
    assert states[19] == "GgrG"
    assert states[20] == "yyry"
    assert states[25] == "rrGr"
    assert env.report().forced_max_green == 1


def test_reset_in_a_yellow_finishes_the_program_clearance_first() -> None:
    env = SafetyEnvelope([SIGNAL], min_green_s=5.0, max_green_s=60.0)
    env.reset({"j": 1})
    states = run(env, [None] * 6)
    assert states == ["yyry"] * 3 + ["rrrr"] * 2 + ["rrGr"]


def test_report_json_lists_every_kind() -> None:
    obj = envelope().report().to_json()
    assert set(obj["refused"]) == {
        "unknown_intersection",
        "unknown_phase",
        "not_green",
        "min_green",
        "in_transition",
    }
    assert obj["refused_total"] == 0


def test_bad_bounds_are_rejected() -> None:
    with pytest.raises(ValueError, match="min_green_s"):
        SafetyEnvelope([SIGNAL], min_green_s=10.0, max_green_s=5.0)
