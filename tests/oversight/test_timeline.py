"""A finished run read back from its decision log: events, and the state at any second."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityx.interop import generate_key
from cityx.interop.bus import InMemoryTransport
from cityx.oversight import Action, CommandQueue, OperatorCommand, OversightSpec, run_oversight
from cityx.oversight.channel import StateFeed, StateReader
from cityx.oversight.timeline import read_timeline, state_at

from ..worlds.traffic.conftest import needs_resco, needs_sumo

TLS = "GS_cluster_357187_359543"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    """40 s of cologne1: hold at 10 s, stop at 20 s (its reason given afterwards), resume
    at 30 s; the state feed read back as a console would."""
    needs_sumo()
    needs_resco()
    out = tmp_path_factory.mktemp("timeline")
    queue = CommandQueue()
    queue.extend(
        [
            OperatorCommand(TLS, Action.HOLD, at_s=10, reason="watch the queue"),
            OperatorCommand("*", Action.STOP, at_s=20),
            OperatorCommand(TLS, Action.RESUME, at_s=30, reason="all clear"),
        ]
    )
    queue.annotate(2, "a crash on the junction")
    key = generate_key("urn:cityx:city:test")
    bus = InMemoryTransport()
    reader = StateReader(key.public_jwk())
    reader.subscribe(bus, city="test")
    feed = StateFeed(bus, city="test")
    run_oversight(
        OversightSpec("cologne1", seconds=40, seed=2, out=out), commands=queue, key=key, feed=feed
    )
    return out, [c["state"] for c in reader.accepted]  # type: ignore[misc]


def test_events_are_the_ledger_in_time_order(run: tuple[Path, list[dict[str, object]]]) -> None:
    timeline = read_timeline(run[0])
    assert timeline.end_s == 40.0 and timeline.intersections == (TLS,)
    assert timeline.choices > 0  # choices make the state; they are not events
    times = [e.time_s for e in timeline.events]
    assert times == sorted(times)
    said = [e.summary for e in timeline.events]
    assert said[0] == "start: every intersection adaptive"
    assert "command #1 hold accepted: watch the queue" in said
    assert any(s.startswith("command #1 hold effective") for s in said)
    assert "reason for command #2: a crash on the junction" in said
    assert any(s.startswith("mode stopping → stopped") for s in said)
    assert timeline.times()[0] == 0.0 and 10.0 in timeline.times()


def test_state_at_rebuilds_modes_commands_and_choices(
    run: tuple[Path, list[dict[str, object]]],
) -> None:
    timeline = read_timeline(run[0])
    before = state_at(timeline, 5)
    assert before["intersections"][TLS]["mode"] == "adaptive"
    assert before["commands"] == []
    choice = before["intersections"][TLS]["choice"]
    assert choice["chosen"] is not None and choice["reasons"][0].startswith("max-pressure")
    assert before["intersections"][TLS]["queue"] is not None  # from the choice's queue_total
    held = state_at(timeline, 15)
    assert held["intersections"][TLS]["mode"] == "manual"
    assert [(c["id"], c["state"]) for c in held["commands"]] == [(1, "effective")]
    stopping = state_at(timeline, 20)
    states = {c["id"]: c for c in stopping["commands"]}
    assert states[2]["state"] == "accepted" and states[2]["reason"] == "a crash on the junction"
    assert stopping["intersections"][TLS]["mode"] == "stopping"
    end = state_at(timeline, timeline.end_s)
    assert end["intersections"][TLS]["mode"] == "adaptive"
    assert {c["id"]: c["state"] for c in end["commands"]} == {
        1: "effective",
        2: "effective",
        3: "effective",
    }


def test_the_live_feed_carries_approach_queues_reasons_and_alert_detail(
    run: tuple[Path, list[dict[str, object]]],
) -> None:
    states = run[1]
    assert len(states) >= 39
    one = states[-1]["intersections"][TLS]  # type: ignore[index]
    assert (
        set(one["approaches"])
        <= {
            "-32038056#3",
            "23429231#1",
            "27115123#3",
            "28198821#3",
        }
        and one["approaches"]
    )
    assert sum(one["approaches"].values()) == pytest.approx(one["queue"])
    adaptive = [s["intersections"][TLS] for s in states if s["intersections"][TLS]["choice"]]  # type: ignore[index]
    assert adaptive and all(c["choice"]["reasons"] for c in adaptive)
    json.dumps(states)  # plain JSON all through


def test_a_missing_log_is_one_clear_error(tmp_path: Path) -> None:
    from cityx.core.errors import InputError

    with pytest.raises(InputError, match="no decision log"):
        read_timeline(tmp_path)
