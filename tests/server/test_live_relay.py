"""The live-run relay's rules, without a broker or a simulation: what a command's state is
made of, states that only move forward, and a spoofed or foreign message dropped."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cityx.interop import InMemoryTransport, SigningKey, generate_key
from cityx.oversight.channel import StateFeed, StateReader
from cityx.server.live import LiveRuns
from cityx.server.live_relay import LiveItem, StateRelay, aggregate
from cityx.store import LiveCommandRecord, Store

from ..worlds.traffic.conftest import needs_resco
from .conftest import make_config

RUN = "lr-relay"


def rec(state: str, code: str | None = None) -> dict[str, object]:
    return {"state": state, "reason_code": code}


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ({}, ("sent", None)),
        ({"A": rec("accepted"), "B": rec("effective")}, ("accepted", None)),
        ({"A": rec("effective"), "B": rec("refused", "stopped")}, ("effective", "stopped")),
        ({"A": rec("refused", "unknown_phase")}, ("refused", "unknown_phase")),
        (
            {"A": rec("refused", "forged"), "B": rec("refused", "stopped")},
            ("refused", "forged,stopped"),
        ),
    ],
)
def test_a_commands_state_is_made_of_its_intersections(
    records: dict[str, dict[str, object]], expected: tuple[str, str | None]
) -> None:
    assert aggregate(records) == expected


def test_states_only_move_forward_and_foreign_messages_are_dropped(tmp_path: Path) -> None:
    store = Store.open(make_config(tmp_path).store)
    city = generate_key("urn:cityx:city:city")
    relay = StateRelay(store, threading.RLock())
    command = LiveCommandRecord(
        id="j1",
        run_id=RUN,
        operator="user:olga",
        issuer="urn:cityx:operator:olga",
        action="hold",
        intersection="A",
        phase=None,
        reason="",
        state="sent",
        reason_code=None,
        records={},
        note=None,
        sent_at="t",
        updated_at="t",
    )
    item = LiveItem(run=None, reader=StateReader(city.public_jwk(), run=RUN))  # type: ignore[arg-type]
    item.commands["j1"] = command
    seen: list[tuple[str, object]] = []
    relay.emit = lambda _item, event: seen.append((event.kind, event.data.get("state")))  # type: ignore[method-assign]
    relay.store_later = lambda _command: None  # type: ignore[method-assign]
    bus = InMemoryTransport()
    bus.subscribe("cityx/v1/+/OversightState/+", lambda _t, data: relay.relay(item, data))

    sequence = iter(range(1, 100))

    def publish(key: SigningKey, run: str, changes: list[dict[str, object]]) -> None:
        feed = StateFeed(bus, city="c")
        feed.start(key, run)
        feed.published = next(sequence) - 1  # numbered on, as one feed would be
        feed.publish({"time_s": 1.0, "commands": changes, "notes": []})

    publish(city, RUN, [{"ref": "j1", "intersection": "A", "state": "accepted"}])
    publish(city, RUN, [{"ref": "j1", "intersection": "A", "state": "effective"}])
    # A later copy refused as replayed does not undo it; nor does an older state.
    publish(
        city,
        RUN,
        [{"ref": "j1", "intersection": "A", "state": "refused", "reason_code": "replayed"}],
    )
    publish(city, RUN, [{"ref": "j1", "intersection": "A", "state": "accepted"}])
    # Signed by another key, or for another run: dropped, counted.
    publish(generate_key("urn:cityx:city:city"), RUN, [{"ref": "j1", "state": "refused"}])
    publish(city, "lr-other", [{"ref": "j1", "state": "refused"}])
    # A command the server did not send is not one of its records.
    publish(city, RUN, [{"ref": "someone-else", "intersection": "A", "state": "accepted"}])
    assert [s for k, s in seen if k == "command"] == ["accepted", "effective"]
    assert item.commands["j1"].state == "effective"
    assert item.refused == 2
    store.close()


def test_a_starting_server_ends_the_runs_it_finds_running_incomplete(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = Store.open(config.store)
    out = tmp_path / "out"
    out.mkdir()
    store.add_live_run(
        run_id=RUN,
        scenario="cologne1",
        controller="fixed",
        seconds=60,
        seed=0,
        pace=1.0,
        overseers=["olga"],
        out_dir=str(out),
        actor="user:olga",
    )
    city = generate_key("urn:cityx:city:city")
    assert LiveRuns(store, config, city_key=lambda: city).recover() == [RUN]
    run = store.live_run(RUN)
    assert run is not None and run.status == "incomplete"
    assert run.error is not None and "server stopped" in run.error
    assert [e.action for e in store.audit_entries()][-1] == "run.ended"
    store.close()


def test_a_bus_that_cannot_be_reached_is_a_503_and_the_run_failed(tmp_path: Path) -> None:
    needs_resco()
    from cityx.server import Role, add_user
    from cityx.server.live_api import LiveError, RunRequest

    config = make_config(tmp_path, bus="mqtt://127.0.0.1:1")  # nothing listens there
    store = Store.open(config.store)
    add_user(store, "olga", organisation="city", role=Role.OVERSEER, city="city")
    live = LiveRuns(store, config, city_key=lambda: generate_key("urn:cityx:city:city"))
    with pytest.raises(LiveError) as caught:
        live.start(RunRequest("cologne1", overseers=("olga",)), actor="user:olga")
    assert caught.value.status == 503
    (run,) = store.live_runs()
    assert run.status == "failed" and run.error is not None and "could not start" in run.error
    live.close()
    store.close()
