"""Pacing, pause and step: a paused run takes no step, keeps accepting commands, and its
pause is not mistaken for a lost operator channel."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cityx.core import InputError
from cityx.interop import InMemoryTransport, StaticTrustStore, TrustedKey, generate_key
from cityx.oversight import Action, CommandQueue, OperatorCommand, OversightSpec, run_oversight
from cityx.oversight.channel import StateFeed, StateReader, listen, publish_command
from cityx.oversight.commands import RefusalCode, load_operator_file
from cityx.oversight.pacing import Pacer
from cityx.oversight.signed import CommandVerifier, sign_command, sign_note

from ..worlds.traffic.conftest import needs_resco, needs_sumo

ALICE = generate_key("urn:cityx:operator:alice")
TRUST = StaticTrustStore(
    [TrustedKey.of(ALICE, types=("OperatorCommand",), topics=("oversight/*",))]
)
RUN = "pacing-test"
WAIT_S = 120.0  # a deadline against a hang, not a timing assertion


def control(action: Action) -> OperatorCommand:
    return OperatorCommand("*", action)


def test_continue_or_step_while_running_is_refused() -> None:
    queue = CommandQueue()
    queue.submit(control(Action.CONTINUE))
    queue.submit(control(Action.STEP))
    seen: list[Any] = []
    Pacer(None, queue).wait_turn(lambda cid, c, r: seen.append((c.action, r)), lambda: None)
    assert seen == [
        (Action.CONTINUE, RefusalCode.NOT_PAUSED),
        (Action.STEP, RefusalCode.NOT_PAUSED),
    ]


def test_a_paused_pacer_lets_one_step_through_per_step_then_goes_on() -> None:
    queue = CommandQueue()
    pacer = Pacer(None, queue)
    queue.submit(control(Action.PAUSE))
    idled = threading.Event()
    passed = threading.Event()

    def turn() -> None:
        pacer.wait_turn(lambda *_: None, idled.set)
        passed.set()

    for release in (Action.STEP, Action.CONTINUE):
        idled.clear()
        passed.clear()
        worker = threading.Thread(target=turn)
        worker.start()
        assert idled.wait(WAIT_S)  # blocked, reporting that it is paused
        assert not passed.is_set()
        queue.submit(control(release))
        worker.join(WAIT_S)
        assert passed.is_set()
    assert not pacer.paused and pacer.paused_s > 0


def test_a_paced_run_waits_for_each_turn_without_bursts() -> None:
    # A fake clock that moves only when the pacer sleeps: no wall time, exact turns.
    now = [100.0]

    def sleep(timeout_s: float) -> bool:
        now[0] += timeout_s
        return False

    pacer = Pacer(4.0, CommandQueue(), clock=lambda: now[0], wait=sleep)
    turns = []
    for _ in range(3):
        pacer.wait_turn(lambda *_: None, lambda: None)
        turns.append(now[0])
    assert turns == [100.0, 100.25, 100.5]
    now[0] += 10.0  # far behind: one step of catch-up, then the pace again
    pacer.wait_turn(lambda *_: None, lambda: None)
    pacer.wait_turn(lambda *_: None, lambda: None)
    pacer.wait_turn(lambda *_: None, lambda: None)
    assert now[0] == pytest.approx(110.75)


def test_a_pace_command_changes_the_pace_from_now_on() -> None:
    now = [0.0]

    def sleep(timeout_s: float) -> bool:
        now[0] += timeout_s
        return False

    queue = CommandQueue()
    pacer = Pacer(1.0, queue, clock=lambda: now[0], wait=sleep)
    seen: list[Any] = []
    pacer.wait_turn(lambda cid, c, r: seen.append(r), lambda: None)  # at 0.0
    queue.submit(OperatorCommand("*", Action.PACE, pace=4.0))
    pacer.wait_turn(lambda cid, c, r: seen.append(r), lambda: None)  # taken now, at once
    pacer.wait_turn(lambda cid, c, r: seen.append(r), lambda: None)
    assert now[0] == 0.25 and pacer.pace == 4.0 and seen == [None]
    queue.submit(OperatorCommand("*", Action.PACE, pace=0))  # as fast as it goes
    for _ in range(3):
        pacer.wait_turn(lambda *_: None, lambda: None)
    assert now[0] == 0.25 and pacer.pace is None
    with pytest.raises(InputError, match="takes a pace"):
        OperatorCommand("*", Action.PACE)


def test_a_command_between_paced_steps_is_taken_at_once() -> None:
    now = [0.0]
    arrivals = [True]  # one command arrives during the first wait

    def sleep(timeout_s: float) -> bool:
        now[0] += timeout_s
        return arrivals.pop() if arrivals else False

    pacer = Pacer(1.0, CommandQueue(), clock=lambda: now[0], wait=sleep)
    idled: list[float] = []
    pacer.wait_turn(lambda *_: None, lambda: None)  # the first turn: at once
    pacer.wait_turn(lambda *_: None, lambda: idled.append(now[0]))
    assert idled == [0.25] and now[0] == 1.0  # taken when it came; the step kept its turn


def test_an_operator_script_cannot_pause(tmp_path: Path) -> None:
    script = tmp_path / "op.toml"
    script.write_text('[[command]]\nat_s = 5\nintersection = "*"\naction = "pause"\n')
    with pytest.raises(InputError, match="live run control"):
        load_operator_file(script)
    with pytest.raises(InputError, match="acts on the whole run"):
        OperatorCommand("A0", Action.PAUSE)


class Operator:
    """The console's side on an in-memory bus: signed commands in, verified states out."""

    def __init__(self, bus: InMemoryTransport, city_key: Any) -> None:
        self.bus = bus
        self.reader = StateReader(city_key.public_jwk(), run=RUN)
        self.states: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self.sent = 0
        bus.subscribe("cityx/v1/c/OversightState/+", self._state)

    def _state(self, _topic: str, data: bytes) -> None:
        claims = self.reader.read(data)
        if claims is not None:
            with self.changed:
                self.states.append(claims["state"])
                self.changed.notify_all()

    def wait(self, test: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        with self.changed:
            found: list[dict[str, Any]] = []

            def seen() -> bool:
                found[:] = [s for s in self.states if test(s)]
                return bool(found)

            assert self.changed.wait_for(seen, WAIT_S), "the run never said so"
            return found[-1]

    def send(self, command: OperatorCommand, *, run: str = RUN) -> str:
        """Sign and publish ``command``; its jti (the ref the run's records carry)."""
        self.sent += 1
        jti = f"j{self.sent}-{command.action.value}"
        token = sign_command(command, ALICE, jti=jti, run=run)
        publish_command(self.bus, token, city="c", operator=ALICE.issuer)
        return jti

    def states_of(self, ref: str) -> list[str]:
        return [c["state"] for s in self.states for c in s["commands"] if c.get("ref") == ref]


def test_pause_step_and_continue_over_the_signed_channel(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    bus, queue = InMemoryTransport(), CommandQueue()
    listen(bus, queue, CommandVerifier(TRUST, run=RUN), city="c")
    city = generate_key("urn:cityx:city:c")
    op = Operator(bus, city)
    op.send(control(Action.PAUSE))  # before the start: the run pauses at 0 s
    refs: dict[str, str] = {}

    def operator() -> None:
        op.wait(lambda s: s["run"]["paused"] and s["time_s"] == 0.0)
        refs["step"] = op.send(control(Action.STEP))
        op.wait(lambda s: s["time_s"] == 1.0)
        refs["stop"] = op.send(OperatorCommand("*", Action.STOP))
        op.wait(lambda s: any(c.get("ref") == refs["stop"] for c in s["commands"]))
        note = sign_note(refs["stop"], "a crash in the junction", ALICE, run=RUN)
        publish_command(bus, note, city="c", operator=ALICE.issuer)
        op.wait(lambda s: bool(s["notes"]))
        refs["other"] = op.send(OperatorCommand("*", Action.HOLD), run="another-run")
        op.wait(lambda s: any(c.get("ref") == refs["other"] for c in s["commands"]))
        # Silent longer than the channel timeout, but paused: no fallback may follow.
        threading.Event().wait(2.5)
        refs["continue"] = op.send(control(Action.CONTINUE))

    thread = threading.Thread(target=operator, daemon=True)
    thread.start()
    spec = OversightSpec(
        "cologne1", seconds=20, seed=1, out=tmp_path, run_id=RUN, channel_timeout_s=2.0
    )
    result = run_oversight(spec, commands=queue, key=city, feed=StateFeed(bus, city="c"))
    thread.join(WAIT_S)
    assert not thread.is_alive()
    paused = [s for s in op.states if s["run"]["paused"]]
    # Paused, simulated time stood at 0 s and then, after the one step, at 1 s.
    assert {s["time_s"] for s in paused} == {0.0, 1.0}
    stop = op.states_of(refs["stop"])
    assert stop[0] == "accepted" and stop[-1] == "effective"
    accepted_while_paused = next(
        c for s in paused for c in s["commands"] if c.get("ref") == refs["stop"]
    )
    assert accepted_while_paused["accepted_at_s"] == 1.0
    assert op.states_of(refs["other"]) == ["refused"]
    other = [c for s in op.states for c in s["commands"] if c.get("ref") == refs["other"]]
    assert other[0]["reason_code"] == "other_run"
    assert op.states_of(refs["step"]) == ["effective"]
    assert op.states_of(refs["continue"]) == ["effective"]
    assert result.complete and result.steps == 20
    log = (tmp_path / "decisions.jsonl").read_text()
    assert "operator channel lost" not in log
    assert '"action":"command.reason"' in log.replace(" ", "")
    assert op.states[-1]["run"].get("ended") is True
    # Replayed as fast as it goes: the stop again, not the pause (which would never end).
    from cityx.oversight.replay import replay

    again = replay(tmp_path, out=tmp_path / "replay")
    assert again.commands == 1 and again.same, again.first


def test_heartbeats_keep_the_channel_alive_and_forged_ones_are_refused(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    from cityx.oversight.signed import sign_heartbeat

    bus, queue = InMemoryTransport(), CommandQueue()
    listen(bus, queue, CommandVerifier(TRUST, run=RUN), city="c")
    mallory = generate_key("urn:cityx:operator:mallory")
    publish_command(bus, sign_heartbeat(mallory, run=RUN), city="c", operator=mallory.issuer)
    done = threading.Event()

    def console() -> None:  # an open console: a signed heartbeat every 0.2 s
        while not done.wait(0.2):
            publish_command(bus, sign_heartbeat(ALICE, run=RUN), city="c", operator=ALICE.issuer)

    thread = threading.Thread(target=console, daemon=True)
    thread.start()
    # Paced to last longer (in wall time) than the timeout many times over.
    spec = OversightSpec(
        "cologne1", seconds=12, seed=1, out=tmp_path, run_id=RUN, pace=4, channel_timeout_s=1.0
    )
    try:
        result = run_oversight(spec, commands=queue)
    finally:
        done.set()
        thread.join(WAIT_S)
    assert set(result.modes.values()) == {"adaptive"}
    assert "operator channel lost" not in (tmp_path / "decisions.jsonl").read_text()
    (forged,) = result.to_json()["oversight"]["unverified_commands"]
    assert forged["reason_code"] == "forged" and "heartbeat" in forged["detail"]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_a_run_started_by_a_server_dies_with_it(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    import os
    import signal
    import subprocess
    import sys
    import time

    # The "server" starts a run so slow it would take days, then dies at once.
    script = (
        "import os, subprocess, sys\n"
        "env = dict(os.environ, CITYX_PARENT_PID=str(os.getpid()))\n"
        "argv = [sys.executable, '-m', 'cityx.cli.main', 'oversee', 'run', '--in-process',\n"
        "    '--scenario', 'cologne1', '--seconds', '1000', '--pace', '0.01',\n"
        f"    '--out', {str(tmp_path)!r}]\n"
        "child = subprocess.Popen(argv, env=env, start_new_session=True,\n"
        "    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(child.pid, flush=True)\n"
    )
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    pid = int(parent.stdout)
    deadline = time.monotonic() + WAIT_S
    try:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), "the run outlived the process that started it"
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
