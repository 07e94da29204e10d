"""Live runs: world runs under oversight that the server starts, relays and commands.

Words:

- a *live run* is one ``cityx oversee run`` that the server starts in its own
  process (its own session, outside the web process; at most
  ``live_runs`` at a time), on the city's MQTT bus, assigned to
  *overseers* (users of the ``overseer`` role). Its status and result are
  rows of the store (:mod:`cityx.store._live`); its files (the run folder
  with the signed decision log, its trust folder, its output) are under
  ``DATA_DIR/live/RUN_ID``;
- its *state feed*: each simulated step the run publishes its state as a
  compact JWS signed with the city's key (which also seals its decision
  log) on its own topic namespace (``cityx/v1/RUN_ID/OversightState/...``).
  The server checks every message with :class:`~cityx.oversight.channel.StateReader`
  (signature, run id, sequence) and relays only verified ones; a spoofed,
  replayed or reordered message is counted and dropped;
- an *operator key* is an overseer's own Ed25519 key, which the server holds
  for them in its key folder (``KEY_DIR/operators/USER``, 0700, the private
  key 0600). When a run starts, the public halves of its overseers' keys are
  written to the run's trust folder with permission ``oversight/*``; the run
  verifies every command against them, so a command from anyone else (an
  unassigned overseer, a forger on the bus) is refused by the run itself;
- a *command* is signed as its overseer, bound to the run (``run`` claim),
  recorded (audited) and published; its id is the signed command's ``jti``.
  Its state (``sent``, then ``accepted`` or ``refused`` with a reason code,
  then ``effective``) comes back in the signed state feed and is kept in the
  store. A ``"*"`` command has one record per intersection: it is
  ``accepted`` while any accepted one is not yet effective, ``effective``
  when all accepted ones are, ``refused`` when all were refused;
- a *note* (:meth:`LiveRuns.annotate`) is a command's reason given after it
  was sent (a stop acts at once, its reason follows): signed and sent like a
  command, it becomes a ``command.reason`` record in the run's decision log;
- the run's *ending*: ``done`` (it ran to its end; ``result.complete`` says
  whether it was complete: end reached, no violation), ``incomplete`` (its
  process died or was killed; the result names how far its decision log is
  sealed) or ``failed`` (it refused its input before its log began).

The API for the web layer (routes, and the overseer console)::

    runs = LiveRuns(store, config, city_key=state.city_key)
    run = runs.start(RunRequest(scenario="cologne1", seconds=60, pace=1.0,
                                overseers=("olga",)), actor="user:olga")
    async for event in runs.subscribe(run.id):   # LiveEvent: kind, data, received_at
        ...                                      # "hello", "state", "command", "note", "end"
    cmd = runs.command(run.id, "olga", "stop", intersection="*")
    runs.annotate(run.id, cmd.id, "a crash on the junction", "olga")
    runs.commands(run.id)                        # each command with its state
    network_of(run)                              # intersections, their phases (green or not)
    runs.kill(run.id)                            # the run ends incomplete

A run started with ``channel_timeout_s`` falls back to the fixed-time plan
when its operator channel is silent that long: while an assigned overseer
reads its stream (the console is open), the server sends a signed
*heartbeat* as that overseer every quarter of the timeout (at most
:data:`HEARTBEAT_MAX_S`); when no assigned overseer reads it any more, the
heartbeats stop and the run falls back.

The parts: :mod:`~cityx.server.live_api` (requests, events, the JSON the API shows,
client readers), :mod:`~cityx.server.live_relay` (the relay of the signed state feed),
:mod:`~cityx.server.live_process` (the run's child process: its command line, its
ending), :mod:`~cityx.server.live_keys` (operator keys); this module is the facade.

Not built: a queue of live runs waiting for a free slot (a start beyond the
cap is refused, 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cityx.core import InputError
from cityx.interop import SigningKey
from cityx.interop.bus import TOPIC_ROOT, Transport
from cityx.interop.errors import InteropError
from cityx.interop.mqtt import MqttTransport
from cityx.interop.trust import trust_document
from cityx.oversight.channel import STATE_TYPE, StateReader, publish_command
from cityx.oversight.commands import ALL, Action, OperatorCommand
from cityx.oversight.signed import COMMAND_TYPE, sign_command, sign_heartbeat, sign_note
from cityx.store import LiveCommandRecord, LiveRunRecord, Store, now_text

from .config import ServerConfig
from .live_api import (
    HEARTBEAT_MAX_S,
    PING_S,
    LiveError,
    LiveEvent,
    RunRequest,
    network_of,
    run_json,
)
from .live_keys import operator_key, safe
from .live_process import (
    STORE_ENV,
    check_request,
    child_argv,
    controller_path,
    ending,
    ours,
    sealed,
)
from .live_relay import QUEUE_SIZE, LiveItem, StateRelay

_LOG = logging.getLogger("cityx.server.live")
ACTOR = "server:live"


class LiveRuns:
    """The server's live runs (see the module docstring); one per app."""

    def __init__(
        self,
        store: Store,
        config: ServerConfig,
        *,
        city_key: Callable[[], SigningKey],
        transport: Callable[[], Transport] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self._city_key = city_key
        self._make_transport = transport
        self._transport: Transport | None = None
        self._close_transport: Callable[[], None] | None = None
        self._live: dict[str, LiveItem] = {}
        self._lock = threading.RLock()
        self.relay = StateRelay(store, self._lock)
        self._closed = False

    # -- life cycle -------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Runs left ``running`` by a server that stopped have no relay: end them incomplete
        (killing a child still alive). Called when the app starts; the ids ended."""
        ended = []
        for run in self.store.live_runs(running=True, limit=10_000):
            if run.pid is not None and ours(run.pid, run.id):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(run.pid, signal.SIGKILL)
            result = sealed(Path(run.out_dir))
            if self.store.finish_live_run(
                run.id,
                status="incomplete",
                result=result,
                error="the server stopped while the run went on",
                actor=ACTOR,
            ):
                ended.append(run.id)
        return ended

    def close(self) -> None:
        """Kill the runs still going (they end incomplete) and leave the bus."""
        with self._lock:
            self._closed = True
            live = list(self._live.values())
        for item in live:
            self.kill(item.run.id)
        for item in live:
            if item.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    item.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while self._live and time.monotonic() < deadline:
            time.sleep(0.05)  # the watchers record each ending
        self.relay.writes.shutdown(wait=True)
        if self._close_transport is not None:
            self._close_transport()
        self._transport = None

    def _bus(self) -> Transport:
        with self._lock:
            if self._transport is None:
                if self._make_transport is not None:
                    self._transport = self._make_transport()
                else:
                    mqtt = MqttTransport(url=self.config.bus).connect()
                    self._transport, self._close_transport = mqtt, mqtt.close
            return self._transport

    # -- keys -------------------------------------------------------------------------

    def operator_key(self, user: str) -> SigningKey:
        """The overseer's signing key the server holds for them (made on first use)."""
        with self._lock:
            return operator_key(self.config.keys, user)

    def _city_key_file(self) -> Path:
        self._city_key()  # made on first use
        (found,) = sorted(self.config.keys.glob("*.key.jwk"))
        return found

    # -- start ------------------------------------------------------------------------

    def start(self, request: RunRequest, *, actor: str, organisation: str = "") -> LiveRunRecord:
        """Start a live run (``run.started`` audited); its record, status ``running``."""
        overseers = check_request(self.store, request)
        controller = controller_path(self.store, self.config, request.controller, organisation)
        with self._lock:
            if self._closed:
                raise LiveError("the server is stopping", status=503)
            if len(self._live) >= self.config.live_runs:
                raise LiveError(
                    f"{len(self._live)} live run(s) going, the most this server runs at once; "
                    "try again when one ends",
                    status=429,
                )
            run_id = f"lr-{uuid.uuid4().hex[:16]}"
            folder = self.config.data_dir / "live" / run_id
            out, trust = folder / "out", folder / "trust"
            trust.mkdir(parents=True, mode=0o700)
            for user in overseers:
                key = self.operator_key(user)
                document = trust_document(key, types=(COMMAND_TYPE,), topics=("oversight/*",))
                (trust / f"{safe(user)}.json").write_text(json.dumps(document, indent=1))
            self.store.add_live_run(
                run_id=run_id,
                scenario=request.scenario,
                controller=str(request.controller),
                seconds=request.seconds,
                seed=request.seed,
                pace=request.pace,
                overseers=overseers,
                out_dir=str(out),
                actor=actor,
            )
            run = self.store.live_run(run_id)
            assert run is not None
            key = self._city_key()
            item = LiveItem(
                run=run,
                reader=StateReader(key.public_jwk(), run=run_id),
                channel_timeout_s=request.channel_timeout_s,
            )
            self._live[run_id] = item
        try:
            bus = self._bus()
            item.unsubscribe = bus.subscribe(
                f"{TOPIC_ROOT}/{run_id}/{STATE_TYPE}/+",
                lambda _topic, data: self.relay.relay(item, data),
            )
            wait = getattr(bus, "wait_subscribed", None)
            if callable(wait):
                wait(5.0)  # the child's first state must not be published before we listen
            argv = child_argv(
                self.config,
                request,
                run_id=run_id,
                controller=controller,
                out=out,
                trust=trust,
                sign_key=self._city_key_file(),
            )
            log = (folder / "child.log").open("wb")
            result = (folder / "result.json").open("wb")
            # The run dies with the server (cityx.cli.oversight reads it): a paused run
            # whose server is gone would otherwise wait forever.
            env = {**os.environ, "CITYX_PARENT_PID": str(os.getpid())}
            if self.config.store is not None:
                env[STORE_ENV] = self.config.store
            item.process = subprocess.Popen(
                argv, stdout=result, stderr=log, start_new_session=True, cwd=folder, env=env
            )
            log.close()
            result.close()
        except Exception as exc:
            self._end(item, status="failed", result=None, error=f"could not start: {exc}")
            if isinstance(exc, InteropError):  # the broker is away: try again later
                raise LiveError(f"the bus cannot be reached: {exc}", status=503) from exc
            raise
        self.store.live_run_pid(run_id, item.process.pid)
        threading.Thread(
            target=self._watch, args=(item,), name=f"live-{run_id}", daemon=True
        ).start()
        if item.channel_timeout_s is not None:
            threading.Thread(
                target=self._heartbeats, args=(item,), name=f"live-{run_id}-hb", daemon=True
            ).start()
        return run

    def _heartbeats(self, item: LiveItem) -> None:
        """While an assigned overseer's console reads the stream, tell the run so (signed as
        that overseer): its operator channel stays alive; closed, the channel times out."""
        assert item.channel_timeout_s is not None
        every = min(item.channel_timeout_s / 4, HEARTBEAT_MAX_S)
        while not item.ended.wait(every):
            with self._lock:
                users = [u for _, _, u in item.subscribers if u in item.run.overseers]
            if not users:
                continue
            key = self.operator_key(users[0])
            token = sign_heartbeat(key, run=item.run.id)
            try:
                publish_command(self._bus(), token, city=item.run.id, operator=key.issuer)
            except Exception as exc:  # a bus hiccup: the next beat tries again
                _LOG.warning("live run %s: heartbeat not sent: %s", item.run.id, exc)
                continue
            item.heartbeats += 1

    # -- the run's process ------------------------------------------------------------

    def _watch(self, item: LiveItem) -> None:
        process = item.process
        assert process is not None
        code = process.wait()
        status, result, error = ending(Path(item.run.out_dir), code, killed=item.killed)
        self._end(item, status=status, result=result, error=error)

    def _end(self, item: LiveItem, *, status: str, result: Any, error: str | None) -> None:
        if item.unsubscribe is not None:
            item.unsubscribe()
        self.store.finish_live_run(
            item.run.id, status=status, result=result, error=error, actor=ACTOR
        )
        for command in list(item.commands.values()):
            if command.state == "sent":  # the run ended before it took the command
                records = {ALL: {"state": "refused", "reason_code": "after_end"}}
                updated = replace(
                    command,
                    state="refused",
                    reason_code="after_end",
                    records=records,
                    updated_at=now_text(),
                )
                item.commands[command.id] = updated
                self.relay.store_later(updated)
                self.relay.emit(item, LiveEvent("command", updated.to_json(), time.time()))
        with contextlib.suppress(RuntimeError):  # (a writer shut down has drained already)
            self.relay.writes.submit(lambda: None).result()  # every state stored before the end
        ended = self.store.live_run(item.run.id)
        with self._lock:
            self._live.pop(item.run.id, None)
        item.ended.set()
        data = run_json(ended) if ended is not None else {"id": item.run.id}
        self.relay.emit(item, LiveEvent("end", data, time.time()))

    def kill(self, run_id: str) -> bool:
        """Kill a running run's process (it ends ``incomplete``); False if none runs."""
        with self._lock:
            item = self._live.get(run_id)
        if item is None or item.process is None:
            return False
        item.killed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(item.process.pid, signal.SIGKILL)
        return True

    async def subscribe(self, run_id: str, user: str = "") -> AsyncIterator[LiveEvent]:
        """The run's events as they come: ``hello`` first, then verified ``state``
        messages, ``command`` changes and ``note``s, and ``end`` last (see :class:`LiveEvent`).
        A finished run gives ``hello`` and ``end`` at once. While ``user``, an overseer
        assigned to the run, is subscribed, the run's operator channel is kept alive
        (heartbeats, for a run with ``channel_timeout_s``)."""
        run = self.store.live_run(run_id)
        if run is None:
            raise LiveError("no such run", status=404)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=QUEUE_SIZE)
        with self._lock:
            item = self._live.get(run_id)
            if item is not None:
                item.subscribers.append((loop, queue, user))
                last = item.last_state
                known = list(item.commands.values())
        if item is None:
            known = self.store.live_commands(run_id)
        hello = {
            "run": run_json(run),
            "network": network_of(run),
            "commands": [c.to_json() for c in known],
            "last_state": None if item is None or last is None else dict(last.data),
        }
        yield LiveEvent("hello", hello, time.time())
        if item is None:
            ended = self.store.live_run(run_id)
            yield LiveEvent("end", run_json(ended or run), time.time())
            return
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), PING_S)
                except TimeoutError:
                    event = LiveEvent("ping", {}, time.time())
                yield event
                if event.kind == "end":
                    return
        finally:
            with self._lock, contextlib.suppress(ValueError):
                item.subscribers.remove((loop, queue, user))

    # -- commands ---------------------------------------------------------------------

    def _running(self, run_id: str, user: str) -> LiveItem:
        run = self.store.live_run(run_id)
        if run is None:
            raise LiveError("no such run", status=404)
        if user not in run.overseers:
            raise LiveError(f"{user} is not assigned to run {run_id}", status=403)
        with self._lock:
            item = self._live.get(run_id)
        if item is None:
            raise LiveError(f"run {run_id} has ended ({run.status})", status=409)
        return item

    def command(
        self,
        run_id: str,
        user: str,
        action: str,
        *,
        intersection: str = ALL,
        phase: int | None = None,
        reason: str = "",
        pace: float | None = None,
    ) -> LiveCommandRecord:
        """Sign ``action`` as overseer ``user``, record it (audited), send it; its record
        (state ``sent``). 403 unless ``user`` is assigned, 409 once the run has ended."""
        item = self._running(run_id, user)
        try:
            chosen = Action(action)
        except ValueError:
            raise InputError(
                f"unknown action {action!r}",
                where="action",
                hint=f"one of {', '.join(a.value for a in Action)}",
            ) from None
        if not intersection or len(intersection) > 200 or len(reason) > 2000:
            raise InputError("intersection 1-200 characters, reason at most 2000")
        command = OperatorCommand(intersection, chosen, phase=phase, reason=reason, pace=pace)
        key = self.operator_key(user)
        jti = uuid.uuid4().hex
        token = sign_command(command, key, jti=jti, run=run_id)
        record = self.store.add_live_command(
            command_id=jti,
            run_id=run_id,
            issuer=key.issuer,
            action=chosen.value,
            intersection=intersection,
            phase=phase,
            reason=reason,
            actor=f"user:{user}",
        )
        item.commands[jti] = record
        self.relay.emit(item, LiveEvent("command", record.to_json(), time.time()))
        publish_command(self._bus(), token, city=run_id, operator=key.issuer)
        return record

    def annotate(self, run_id: str, command_id: str, reason: str, user: str) -> LiveCommandRecord:
        """Give command ``command_id`` its reason afterwards (audited, signed, sent to the run,
        where it becomes a ``command.reason`` record); only its own overseer may."""
        item = self._running(run_id, user)
        found = self.store.live_command(command_id)
        if found is None or found.run_id != run_id:
            raise LiveError("no such command", status=404)
        if found.operator != f"user:{user}":
            raise LiveError("only the command's own overseer gives its reason", status=403)
        if not reason.strip() or len(reason) > 2000:
            raise InputError("a reason is 1-2000 characters", where="reason")
        key = self.operator_key(user)
        token = sign_note(command_id, reason, key, run=run_id)
        self.store.note_live_command(command_id, reason, actor=f"user:{user}")
        publish_command(self._bus(), token, city=run_id, operator=key.issuer)
        known = item.commands.get(command_id, found)
        updated = item.commands[command_id] = replace(known, note=reason)
        self.relay.emit(item, LiveEvent("command", updated.to_json(), time.time()))
        return updated

    def commands(self, run_id: str) -> list[LiveCommandRecord]:
        return self.store.live_commands(run_id)

    def get(self, run_id: str) -> LiveRunRecord | None:
        return self.store.live_run(run_id)

    def runs(self, *, limit: int = 100) -> Sequence[LiveRunRecord]:
        return self.store.live_runs(limit=limit)


__all__ = ["ACTOR", "LiveRuns"]
