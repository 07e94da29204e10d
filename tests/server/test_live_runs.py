"""Live runs over the API: a real server (uvicorn), the real broker, real SUMO.

An overseer starts a run, reads its signed state as server-sent events, sends
hold, phase and stop (with the stop's reason afterwards) and sees each reach
``effective``; other roles and an unassigned overseer get 403; commands
signed by an unassigned overseer's key or a stranger's key, put straight on
the bus, are refused by the run itself; a killed run ends ``incomplete``
with its decision log verifiable up to its last checkpoint.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn

from cityx.interop import generate_key
from cityx.interop.mqtt import MqttTransport
from cityx.oversight import Action, OperatorCommand
from cityx.oversight.channel import StateFeed, StateReader, publish_command
from cityx.oversight.decisions import ANCHOR_ACTION, verify_decisions
from cityx.oversight.signed import sign_command
from cityx.server import Role, add_user
from cityx.server.app import create_app
from cityx.server.live import LiveRuns
from cityx.server.live_api import read_sse
from cityx.store import Store

from ..support.paths import SUBMISSIONS
from ..worlds.traffic.conftest import needs_resco, needs_sumo
from .conftest import make_config, pack

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
ACME = SUBMISSIONS / "acme-signals"
WAIT_S = 120.0  # deadlines against a hang, not timing assertions
USERS = (
    ("olga", Role.OVERSEER),
    ("otto", Role.OVERSEER),
    ("rita", Role.REGULATOR),
    ("vera", Role.VENDOR),
)


@dataclass
class Server:
    url: str
    tokens: dict[str, str]
    store: Store
    live: LiveRuns
    keys: Path

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def post(self, path: str, user: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, headers=self.auth(user), timeout=60)

    def get(self, path: str, user: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.auth(user), timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    needs_sumo()
    needs_resco()
    root = tmp_path_factory.mktemp("live")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Seal often: a killed run keeps what its last checkpoint sealed.
    config = make_config(root, port=port, live_runs=1, live_checkpoint_every=10)
    store = Store.open(config.store)
    tokens = {
        name: add_user(
            store,
            name,
            organisation="acme-signals" if role is Role.VENDOR else "city",
            role=role,
            city="city",
            token_days=1,
        ).token
        for name, role in USERS
    }
    app = create_app(config, store)
    uv = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5
        )
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started
    yield Server(f"http://127.0.0.1:{port}", tokens, store, app.state.cityx.live, config.keys)
    uv.should_exit = True
    thread.join(WAIT_S)
    store.close()


@dataclass
class Stream:
    """An SSE reader on its own thread; ``wait`` blocks until an event matches."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def follow(self, server: Server, run_id: str, user: str) -> threading.Thread:
        def read() -> None:
            with httpx.stream(
                "GET",
                f"{server.url}/api/v1/runs/{run_id}/state",
                headers=server.auth(user),
                timeout=None,
            ) as answer:
                assert answer.status_code == 200, answer.read()
                for kind, data in read_sse(answer.iter_lines()):
                    with self.changed:
                        self.events.append((kind, data))
                        self.changed.notify_all()
                    if kind == "end":
                        return

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    def wait(self, test: Callable[[str, dict[str, Any]], bool]) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [d for k, d in self.events if test(k, d)]
            return bool(found)

        with self.changed:
            assert self.changed.wait_for(seen, WAIT_S), f"never seen; last {self.events[-3:]}"
        return found[0]

    def command_states(self, command_id: str) -> list[str]:
        return [d["state"] for k, d in self.events if k == "command" and d["id"] == command_id]


def settled(command: dict[str, Any]) -> bool:
    return command["state"] in ("effective", "refused")


def test_an_overseer_runs_reads_and_commands_a_live_run(server: Server) -> None:
    answer = server.post(
        "/api/v1/runs",
        "olga",
        {
            "scenario": "cologne1",
            "seconds": 40,
            "seed": 1,
            "pace": 10,
            "controller": "max-pressure",
            # The open console's heartbeats keep the channel alive: no fallback.
            "channel_timeout_s": 5,
        },
    )
    assert answer.status_code == 202, answer.text
    run = answer.json()
    assert run["status"] == "running" and run["overseers"] == ["olga"]
    rid = run["id"]
    stream = Stream()
    reader = stream.follow(server, rid, "olga")
    first = stream.wait(lambda k, d: k == "state")
    # Paused while the refusals below are checked: simulated time waits for the overseer.
    pause = server.post(f"/api/v1/runs/{rid}/commands", "olga", {"action": "pause"}).json()
    stream.wait(lambda k, d: k == "command" and d["id"] == pause["id"] and settled(d))
    # The relayed token verifies on its own against the city's public key.
    (trust,) = server.keys.glob("*.trust.json")
    public = json.loads(trust.read_text())["keys"][0]
    claims = StateReader(public, run=rid).read(first["token"])
    assert claims is not None and claims["state"] == first["state"]
    (tls, info), *_ = first["state"]["intersections"].items()
    program = server.get(f"/api/v1/runs/{rid}", "olga").json()["network"][tls]
    assert program[info["green"]]["green"] and not all(p["green"] for p in program)

    # Nobody but the assigned overseer commands the run.
    for user in ("otto", "rita", "vera"):
        refused = server.post(f"/api/v1/runs/{rid}/commands", user, {"action": "hold"})
        assert refused.status_code == 403, (user, refused.text)
    assert server.post("/api/v1/runs", "vera", {"scenario": "cologne1"}).status_code == 403
    assert server.get(f"/api/v1/runs/{rid}", "otto").status_code == 404
    assert server.get(f"/api/v1/runs/{rid}/state", "vera").status_code == 403

    # Signed with keys the run does not trust, put straight on the bus: refused by the run.
    bus = MqttTransport(url="mqtt://127.0.0.1:1883").connect()
    try:
        for key in (server.live.operator_key("otto"), generate_key("urn:cityx:operator:eve")):
            token = sign_command(OperatorCommand("*", Action.STOP), key, run=rid)
            publish_command(bus, token, city=rid, operator=key.issuer)
        # A spoofed state feed on the run's topic: the server drops it, and counts it.
        spoof = StateFeed(bus, city=rid)
        spoof.start(generate_key("urn:cityx:city:city"), rid)
        spoof.publish({"time_s": 999.0, "intersections": {}, "commands": [], "notes": []})
        bus.flush()
    finally:
        bus.close()

    sent = {"pause": pause["id"]}
    for action, body in (
        ("continue", {"action": "continue"}),
        ("pace", {"action": "pace", "pace": 20}),
        ("hold", {"action": "hold", "intersection": tls, "reason": "a look"}),
        ("phase", {"action": "phase", "intersection": tls, "phase": info["green"]}),
        ("stop", {"action": "stop"}),
    ):
        answer = server.post(f"/api/v1/runs/{rid}/commands", "olga", body)
        assert answer.status_code == 202, answer.text
        assert answer.json()["state"] == "sent"
        sent[action] = answer.json()["id"]
        stream.wait(
            lambda k, d, c=sent[action]: (
                k == "command" and d["id"] == c and d["state"] in ("effective", "refused")
            )
        )
    reason = server.post(
        f"/api/v1/runs/{rid}/commands/{sent['stop']}/reason", "olga", {"reason": "a crash"}
    )
    assert reason.status_code == 202, reason.text
    assert (
        server.post(
            f"/api/v1/runs/{rid}/commands/{sent['stop']}/reason", "otto", {"reason": "mine"}
        ).status_code
        == 403
    )
    stream.wait(lambda k, d: k == "note" and d["ref"] == sent["stop"])
    ended = stream.wait(lambda k, d: k == "end")
    reader.join(WAIT_S)

    for action, cid in sent.items():
        states = stream.command_states(cid)
        assert states[0] == "sent" and states[-1] == "effective", (action, states)
        controls = ("stop", "pause", "continue", "pace")
        assert "accepted" in states or action in controls, (action, states)
    listed = server.get(f"/api/v1/runs/{rid}/commands", "olga").json()["commands"]
    assert {c["id"]: c["state"] for c in listed} == dict.fromkeys(sent.values(), "effective")
    assert next(c for c in listed if c["id"] == sent["stop"])["note"] == "a crash"

    states = [d for k, d in stream.events if k == "state"]
    assert {d["state"]["run"]["pace"] for d in states} == {10.0, 20.0}
    assert all(d["state"]["time_s"] != 999.0 for d in states)
    assert states[-1]["refused_so_far"] == 1
    assert ended["status"] == "done"
    final = server.get(f"/api/v1/runs/{rid}", "rita").json()
    assert final["status"] == "done" and final["result"]["complete"] is True
    assert final["result"]["unverified_commands"] == 2  # otto's key and eve's
    log = Path(final["decisions"])
    assert verify_decisions(log.parent).ok
    assert '"command.reason"' in log.read_text()
    assert "operator channel lost" not in log.read_text()
    actions = [e.action for e in server.store.audit_entries()]
    assert {"run.started", "run.command", "run.command.reason", "run.ended"} <= set(actions)
    assert ANCHOR_ACTION in actions  # the run's checkpoints, anchored in the audit log
    assert rid in {r["id"] for r in server.get("/api/v1/runs", "olga").json()["runs"]}
    assert rid not in {r["id"] for r in server.get("/api/v1/runs", "otto").json()["runs"]}


def test_a_killed_run_is_incomplete_with_its_log_verifiable(server: Server) -> None:
    # The controller under oversight is a vendor's uploaded submission (ONNX: no vendor code).
    upload = httpx.post(
        f"{server.url}/api/v1/submissions",
        files={"archive": ("acme.tar.gz", pack(ACME), "application/gzip")},
        headers=server.auth("vera"),
        timeout=60,
    )
    assert upload.status_code == 201, upload.text
    answer = server.post(
        "/api/v1/runs",
        "rita",
        {
            "scenario": "cologne1",
            "seconds": 3000,
            "pace": 20,
            "overseers": ["otto"],
            "controller": upload.json()["id"],
        },
    )
    assert answer.status_code == 202, answer.text
    rid = answer.json()["id"]
    busy = server.post("/api/v1/runs", "olga", {"scenario": "cologne1", "seconds": 10})
    assert busy.status_code == 429, busy.text  # one live run at a time on this server
    stream = Stream()
    reader = stream.follow(server, rid, "otto")
    stream.wait(lambda k, d: k == "state" and d["state"]["time_s"] >= 30)
    assert server.live.kill(rid)
    ended = stream.wait(lambda k, d: k == "end")
    reader.join(WAIT_S)
    assert ended["status"] == "incomplete"
    check = ended["result"]["decisions_check"]
    # Verifiable up to its last checkpoint; the tail is reported as unsealed.
    assert check["sealed"] > 0 and not check["ok"] and "no final seal" in check["reason"]
    again = verify_decisions(Path(ended["decisions"]).parent)
    assert again.sealed == check["sealed"]
    assert (
        server.post(f"/api/v1/runs/{rid}/commands", "otto", {"action": "hold"}).status_code == 409
    )
