"""The overseer's pages without a browser: who may see and command a run, the replay of a
finished run read from its decision log, the command form's checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityx.core.errors import InputError
from cityx.oversight import Action, CommandQueue, OperatorCommand, OversightSpec, run_oversight
from cityx.server import Role, add_user
from cityx.server.app import create_app
from cityx.server.console import runs as console_runs
from cityx.server.console.base import template
from cityx.server.live_api import LiveError
from cityx.server.rulings import city_key
from cityx.store import Store

from ..worlds.traffic.conftest import needs_resco, needs_sumo
from .conftest import CSRF_RE, ONCE_RE, PASSWORD, Console, signed_in

TLS = "GS_cluster_357187_359543"
RUN = "lr-finishedreplay01"


def _store_run(store: Store, run_id: str, out: Path) -> None:
    """Record a 30 s cologne1 run of overseer ``overseer`` whose files are in ``out``."""
    store.add_live_run(
        run_id=run_id,
        scenario="cologne1",
        controller="max-pressure",
        seconds=30,
        seed=1,
        pace=None,
        overseers=("overseer",),
        out_dir=str(out),
        actor="user:overseer",
    )


@pytest.fixture(scope="module")
def finished(console: Console) -> str:
    """A finished live run (as the store records one), with its decision log: 30 s of
    cologne1, held at 5 s, stopped at 12 s (its reason given afterwards), resumed at 20 s."""
    needs_sumo()
    needs_resco()
    store = console.store
    if store.user("watcher") is None:
        add_user(
            store,
            "watcher",
            organisation="city",
            role=Role.OVERSEER,
            city="city",
            password=PASSWORD,
            token_days=1,
        )
    out = console.config.data_dir / "live" / RUN / "out"
    queue = CommandQueue()
    queue.extend(
        [
            OperatorCommand(TLS, Action.HOLD, at_s=5, reason="watch <the> queue"),
            OperatorCommand("*", Action.STOP, at_s=12),
            OperatorCommand(TLS, Action.RESUME, at_s=20, reason="clear"),
        ]
    )
    queue.annotate(2, "a crash on the junction")
    # Signed with the city's key, as the server's live runs are: the replay checks the seals.
    key = city_key(console.config.keys, console.config.city)
    run_oversight(OversightSpec("cologne1", seconds=30, seed=1, out=out), commands=queue, key=key)
    _store_run(store, RUN, out)
    store.finish_live_run(RUN, status="done", result={"complete": True}, error=None, actor="test")
    return RUN


@pytest.fixture
def client(console: Console) -> Iterator[TestClient]:
    with TestClient(create_app(console.config, console.store), follow_redirects=False) as c:
        yield c


def test_who_sees_the_runs(client: TestClient, console: Console, finished: str) -> None:
    for user, status in (
        ("overseer", 200),  # assigned
        ("regulator", 200),
        ("auditor", 200),
        ("watcher", 404),  # an overseer not assigned: as if the run did not exist
        ("vendor", 403),
        ("admin", 403),
    ):
        client.cookies.clear()
        signed_in(client, console, user)
        for path in (f"/console/runs/{finished}", f"/console/runs/{finished}/replay"):
            answer = client.get(path)
            assert answer.status_code == status, (user, path, answer.text[:300])
        listed = client.get("/console/runs")
        assert listed.status_code == (403 if status == 403 else 200)
        if status != 403:
            assert (finished in listed.text) is (status == 200), user


def test_the_replay_steps_through_the_ledger(
    client: TestClient, console: Console, finished: str
) -> None:
    signed_in(client, console, "auditor")
    page = client.get(f"/console/runs/{finished}/replay?t=8").text
    assert "✓ The decision log verifies" in page
    assert "<svg" in page and "manual" in page  # held at 5 s
    assert "watch &lt;the&gt; queue" in page  # escaped
    assert "reason for command #2: a crash on the junction" in page
    assert 'rel="next"' in page and 'rel="prev"' in page
    later = client.get(f"/console/runs/{finished}/replay?t=30").text
    assert re.search(r"<td>3</td><td>resume</td>.*?<td>effective</td>", later, re.S)
    # The auditor's page holds no form that changes anything.
    assert 'method="post"' not in later.split("</header>", 1)[1]
    assert client.get(f"/console/runs/{finished}/replay?t=abc").status_code == 422


def test_a_finished_run_takes_no_command(
    client: TestClient, console: Console, finished: str
) -> None:
    signed_in(client, console, "overseer")
    page = client.get(f"/console/runs/{finished}").text
    assert "The run has ended (done)" in page and 'command-form"' not in page
    assert "Without JavaScript" not in page  # an ended run needs no reloading
    csrf = CSRF_RE.search(page)
    assert csrf is not None
    sent = client.post(
        f"/console/runs/{finished}/commands",
        data={"action": "stop", "intersection": "*", "csrf": csrf.group(1), "once": "x1"},
    )
    assert sent.status_code == 422 and "has ended" in sent.text
    # Without the CSRF field nothing acts.
    assert (
        client.post(f"/console/runs/{finished}/commands", data={"action": "stop"}).status_code
        == 403
    )
    # Another overseer may not command it at all.
    client.cookies.clear()
    signed_in(client, console, "watcher")
    assert client.post(
        f"/console/runs/{finished}/commands", data={"action": "stop", "csrf": "x"}
    ).status_code in (403, 404)


def test_the_start_form_checks_its_fields(client: TestClient, console: Console) -> None:
    signed_in(client, console, "overseer")
    page = client.get("/console/runs").text
    csrf, once = CSRF_RE.search(page), ONCE_RE.search(page)
    assert csrf and once
    answer = client.post(
        "/console/runs",
        data={
            "scenario": "atlantis",
            "seconds": "-3",
            "pace": "fast",
            "csrf": csrf.group(1),
            "once": once.group(1),
        },
    )
    assert answer.status_code == 422
    for field in ("scenario", "seconds", "pace"):
        assert f'id="{field}-error"' in answer.text
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', answer.text)
    assert 'value="fast"' in answer.text  # what was typed stays


@pytest.mark.parametrize("user", ["vendor", "redteam"])
def test_roles_without_runs_get_403(client: TestClient, console: Console, user: str) -> None:
    signed_in(client, console, user)
    assert client.get("/console/runs").status_code == 403
    assert client.get("/console/runs/lr-nothing/feed").status_code == 403


@dataclass(frozen=True)
class _Sent:
    id: str


def test_command_forms_check_fields_and_act_once(
    console: Console, finished: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form's checks and its once token, with LiveRuns.command recording the calls (the
    signing and sending are LiveRuns' own tests; the browser journey runs them for real)."""
    app = create_app(console.config, console.store)
    calls: list[tuple[str, ...]] = []

    def command(run_id: str, user: str, action: str, **kw: object) -> _Sent:
        calls.append((run_id, user, action, str(kw["intersection"]), str(kw["reason"])))
        return _Sent(f"c{len(calls)}")

    with TestClient(app, follow_redirects=False) as client:
        monkeypatch.setattr(app.state.cityx.live, "command", command)
        # The run has ended: the form shows for a running one, as it would be here.
        monkeypatch.setattr(console_runs, "_may_command", lambda who, run: True)
        signed_in(client, console, "overseer")
        page = client.get(f"/console/runs/{finished}").text
        csrf = CSRF_RE.search(page)
        assert csrf is not None
        url = f"/console/runs/{finished}/commands"

        def post(**data: str) -> Any:
            return client.post(url, data={"csrf": csrf.group(1), **data})

        missing = post(action="hold", intersection=TLS, once="o1")
        assert missing.status_code == 422 and 'id="reason-error"' in missing.text
        assert re.search(r'id="reason"[^>]*aria-invalid="true"', missing.text)
        everywhere = post(action="phase", intersection="*", phase="", reason="r", once="o2")
        assert 'id="intersection-error"' in everywhere.text
        assert 'id="phase-error"' in everywhere.text
        assert post(action="jump", reason="r", once="o3").status_code == 422
        assert post(action="pause", reason="r", once="o6").status_code == 422  # API only
        assert calls == []  # nothing acted
        first = post(action="hold", intersection=TLS, reason="why not", once="o4")
        again = post(action="hold", intersection=TLS, reason="why not", once="o4")
        assert first.status_code == again.status_code == 303
        assert again.headers["location"] == first.headers["location"]
        stop = post(action="stop", intersection="*", once="o5")  # no reason: acts at once
        assert stop.headers["location"].startswith(f"/console/runs/{finished}?reason_for=c2")
        assert calls == [
            (finished, "overseer", "hold", TLS, "why not"),
            (finished, "overseer", "stop", "*", ""),
        ]


def test_the_reason_form_says_why_it_refused_and_acts_once(
    console: Console, finished: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop's reason given afterwards: a missing reason or a refusal is a 422 (the once token
    freed), a 403/404 is the page's answer, one that acts redirects."""
    app = create_app(console.config, console.store)
    calls: list[tuple[str, ...]] = []
    refusal: list[Exception] = []

    def annotate(run_id: str, command_id: str, reason: str, user: str) -> _Sent:
        if refusal:
            raise refusal.pop()
        calls.append((run_id, command_id, reason, user))
        return _Sent(command_id)

    with TestClient(app, follow_redirects=False) as client:
        monkeypatch.setattr(app.state.cityx.live, "annotate", annotate)
        signed_in(client, console, "overseer")
        csrf = CSRF_RE.search(client.get(f"/console/runs/{finished}").text)
        assert csrf is not None
        url = f"/console/runs/{finished}/commands/c1/reason"

        def post(reason: str, once: str) -> Any:
            return client.post(url, data={"csrf": csrf.group(1), "reason": reason, "once": once})

        assert post(" ", "r1").status_code == 422
        refusal.append(LiveError("the run has ended", status=409))
        # The same once token each time: nothing acted before. (The error shows beside the
        # command's own form, which this stored run, with no commands, does not list.)
        assert post("a crash", "r1").status_code == 422
        refusal.append(InputError("a reason is 1-2000 characters", where="reason"))
        assert post("a crash", "r1").status_code == 422
        refusal.append(LiveError("no such command", status=404))
        assert post("a crash", "r1").status_code == 404
        assert calls == []
        done = post("a crash", "r1")
        assert done.status_code == 303
        assert done.headers["location"] == f"/console/runs/{finished}#commands"
        assert calls == [(finished, "c1", "a crash", "overseer")]


def test_a_regulator_names_the_overseers(client: TestClient, console: Console) -> None:
    signed_in(client, console, "regulator")
    page = client.get("/console/runs").text
    csrf, once = CSRF_RE.search(page), ONCE_RE.search(page)
    assert csrf and once
    data = {"scenario": "cologne1", "seconds": "10", "pace": "1", "csrf": csrf.group(1)}
    nobody = client.post("/console/runs", data={**data, "overseers": "", "once": once.group(1)})
    assert nobody.status_code == 422 and 'id="overseers-error"' in nobody.text
    assert "at least one overseer" in nobody.text
    wrong = client.post("/console/runs", data={**data, "overseers": "auditor", "once": "n2"})
    assert "not an overseer" in wrong.text and 'id="overseers-error"' in wrong.text


def test_the_lag_banner_says_how_old_the_view_is() -> None:
    lag = template("run_lag.html.j2")
    fresh = lag.render(age=0.25, late_s=1.0)
    assert "✓ Live: the view is 0.2 s old" in fresh and 'role="alert"' not in fresh
    late = lag.render(age=3.5, late_s=1.0)
    assert "⚠ Late:" in late and "3.5 s old" in late and 'role="alert"' in late
    assert 'data-age="3.50"' in late  # live.js counts on from here when the feed goes silent
    assert "Waiting for the run's first verified state" in lag.render(age=None, late_s=1.0)


def test_a_log_still_being_written_is_no_replay_yet(client: TestClient, console: Console) -> None:
    out = console.config.data_dir / "live" / "lr-halfwritten" / "out"
    out.mkdir(parents=True)
    (out / "decisions.jsonl").write_text('{"seq": 1, "at": "2026-')  # cut mid-line
    _store_run(console.store, "lr-halfwritten", out)
    signed_in(client, console, "regulator")
    answer = client.get("/console/runs/lr-halfwritten/replay")
    assert answer.status_code == 409 and "still being written" in answer.text
    assert client.get("/console/runs/lr-nosuchrun/replay").status_code == 404
