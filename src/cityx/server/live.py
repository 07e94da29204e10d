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

Not built: a queue of live runs waiting for a free slot (a start beyond the
cap is refused, 429).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cityx.core import InputError, Manifest
from cityx.interop import SigningKey, generate_key, load_signing_key, write_key_files
from cityx.interop.bus import TOPIC_ROOT, Transport
from cityx.interop.errors import InteropError
from cityx.interop.trust import trust_document
from cityx.oversight.channel import STATE_TYPE, StateReader, publish_command
from cityx.oversight.commands import ALL, Action, OperatorCommand
from cityx.oversight.signed import COMMAND_TYPE, sign_command, sign_heartbeat, sign_note
from cityx.store import LiveCommandRecord, LiveRunRecord, Store, now_text

from .config import ServerConfig
from .identity import check_name
from .policy import Role

_LOG = logging.getLogger("cityx.server.live")
ACTOR = "server:live"
BASELINES = ("max-pressure", "fixed")
STORE_ENV = "CITYX_LIVE_STORE"  # how a run's process learns the store's URL
MAX_SECONDS = 86_400
_SCENARIO = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_RANK = {"sent": 0, "accepted": 1, "refused": 1, "effective": 2}
_QUEUE_SIZE = 2000  # events a slow subscriber may fall behind by before states are dropped
HEARTBEAT_MAX_S = 2.0  # the longest gap between heartbeats of an open console
PING_S = 15.0  # a quiet stream (a long pause) says it is alive this often


class LiveError(InputError):
    """A live-run request the server refuses; ``status`` is the HTTP status it maps to."""

    def __init__(self, message: str, *, status: int, where: str = "run") -> None:
        super().__init__(message, where=where)
        self.status = status


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What to run live. ``controller``: a baseline name or a submission id (int)."""

    scenario: str
    seconds: int = 60
    seed: int = 0
    controller: str | int = "max-pressure"
    pace: float | None = None
    overseers: tuple[str, ...] = ()
    channel_timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event of a run's stream: ``kind`` is ``hello`` (the run and its commands when
    the subscription begins), ``state`` (a verified state message: ``token``, ``seq``,
    ``iat``, ``state``), ``command`` (a command's state changed), ``note`` (a command's
    reason reached the run), ``ping`` (nothing for :data:`PING_S`) or ``end`` (the
    run ended; ``data`` is the run);
    ``received_at`` is the server's wall clock (unix seconds) when it had it."""

    kind: str
    data: Mapping[str, Any]
    received_at: float


@dataclass
class _Live:
    """A running run's moving parts, in this process."""

    run: LiveRunRecord
    reader: StateReader
    process: subprocess.Popen[bytes] | None = None
    unsubscribe: Callable[[], None] | None = None
    # (the subscriber's event loop, its queue, the user who reads)
    subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[LiveEvent], str]] = field(
        default_factory=list
    )
    last_state: LiveEvent | None = None
    refused: int = 0  # state messages that failed verification
    killed: bool = False
    channel_timeout_s: float | None = None
    heartbeats: int = 0  # sent for an assigned overseer whose console is open
    commands: dict[str, LiveCommandRecord] = field(default_factory=dict)  # by id (jti)
    ended: threading.Event = field(default_factory=threading.Event)


def run_json(run: LiveRunRecord) -> dict[str, Any]:
    """A live run as the API shows it."""
    return {
        "id": run.id,
        "status": run.status,
        "scenario": run.scenario,
        "controller": run.controller,
        "seconds": run.seconds,
        "seed": run.seed,
        "pace": run.pace,
        "overseers": list(run.overseers),
        "requested_by": run.requested_by,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "result": dict(run.result) if run.result else None,
        "error": run.error,
        "decisions": str(Path(run.out_dir) / "decisions.jsonl"),
        "bus_namespace": f"{TOPIC_ROOT}/{run.id}",
    }


def network_of(run: LiveRunRecord) -> dict[str, Any] | None:
    """The run's intersections and their signal programs (what a ``phase`` command may ask
    for: the indexes whose ``green`` is true); None until the run has written its network."""
    path = Path(run.out_dir) / "network.json"
    try:
        # lazy: the traffic world's network reader (no SUMO) only when asked
        from cityx.worlds.traffic.network import NetworkInfo

        network = NetworkInfo.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {
        i.id: [
            {"index": k, "state": p.state, "green": p.is_green, "duration_s": p.duration}
            for k, p in enumerate(i.phases)
        ]
        for i in network.intersections
    }


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._~-]", "-", name)[:100] or "-"


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
        self._live: dict[str, _Live] = {}
        self._lock = threading.RLock()
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-store")
        self._closed = False

    # -- life cycle -------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Runs left ``running`` by a server that stopped have no relay: end them incomplete
        (killing a child still alive). Called when the app starts; the ids ended."""
        ended = []
        for run in self.store.live_runs(running=True, limit=10_000):
            if run.pid is not None and _ours(run.pid, run.id):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(run.pid, signal.SIGKILL)
            result = _sealed(Path(run.out_dir))
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
        self._writes.shutdown(wait=True)
        if self._close_transport is not None:
            self._close_transport()
        self._transport = None

    def _bus(self) -> Transport:
        with self._lock:
            if self._transport is None:
                if self._make_transport is not None:
                    self._transport = self._make_transport()
                else:
                    # lazy: paho only when a live run starts
                    from cityx.interop.mqtt import MqttTransport

                    mqtt = MqttTransport(url=self.config.bus).connect()
                    self._transport, self._close_transport = mqtt, mqtt.close
            return self._transport

    # -- keys -------------------------------------------------------------------------

    def operator_key(self, user: str) -> SigningKey:
        """The overseer's signing key the server holds for them (made on first use)."""
        check_name(user, "user name")  # user names are file- and URN-safe: one folder each
        folder = self.config.keys / "operators" / _safe(user)
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(folder.parent, 0o700)
            os.chmod(folder, 0o700)
            found = sorted(folder.glob("*.key.jwk"))
            if found:
                return load_signing_key(found[0])
            key = generate_key(f"urn:cityx:operator:{_safe(user)}")
            write_key_files(key, folder)
            return key

    def _city_key_file(self) -> Path:
        self._city_key()  # made on first use
        (found,) = sorted(self.config.keys.glob("*.key.jwk"))
        return found

    # -- start ------------------------------------------------------------------------

    def start(self, request: RunRequest, *, actor: str, organisation: str = "") -> LiveRunRecord:
        """Start a live run (``run.started`` audited); its record, status ``running``."""
        overseers = self._check(request)
        controller = self._controller(request.controller, organisation)
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
                (trust / f"{_safe(user)}.json").write_text(json.dumps(document, indent=1))
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
            item = _Live(
                run=run,
                reader=StateReader(key.public_jwk(), run=run_id),
                channel_timeout_s=request.channel_timeout_s,
            )
            self._live[run_id] = item
        try:
            bus = self._bus()
            item.unsubscribe = bus.subscribe(
                f"{TOPIC_ROOT}/{run_id}/{STATE_TYPE}/+",
                lambda _topic, data: self._relay(item, data),
            )
            wait = getattr(bus, "wait_subscribed", None)
            if callable(wait):
                wait(5.0)  # the child's first state must not be published before we listen
            argv = self._argv(request, run_id, controller, out, trust)
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

    def _heartbeats(self, item: _Live) -> None:
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

    def _check(self, request: RunRequest) -> tuple[str, ...]:
        if not _SCENARIO.fullmatch(request.scenario):
            raise InputError("a scenario is named by its registry name", where="scenario")
        # lazy: the traffic world only when a run starts
        from cityx.worlds.traffic import get_scenario

        get_scenario(request.scenario)  # an unknown name is a clear InputError here
        if not 1 <= request.seconds <= MAX_SECONDS:
            raise InputError(f"seconds must be 1..{MAX_SECONDS}", where="seconds")
        if not 0 <= request.seed < 2**32:
            raise InputError("seed must be 0..2**32-1", where="seed")
        if request.pace is not None and not 0 < request.pace <= 1000:
            raise InputError("pace must be > 0 and <= 1000 (1 is real time)", where="pace")
        if request.channel_timeout_s is not None and not request.channel_timeout_s > 0:
            raise InputError("channel_timeout_s must be > 0", where="channel_timeout_s")
        if not request.overseers:
            raise InputError("a live run needs at least one overseer", where="overseers")
        for name in request.overseers:
            user = self.store.user(name)
            if user is None or user.role != Role.OVERSEER.value:
                raise InputError(f"{name!r} is not an overseer", where="overseers")
        return tuple(dict.fromkeys(request.overseers))

    def _controller(self, controller: str | int, organisation: str) -> str:
        """The ``--controller`` value: a baseline, or a visible controller submission's folder
        whose artifact runs no vendor code (the server gives no opt-in)."""
        if isinstance(controller, str) and not controller.isdigit():
            if controller not in BASELINES:
                raise InputError(
                    f"unknown controller {controller!r}",
                    where="controller",
                    hint=f"a baseline ({', '.join(BASELINES)}) or a submission id",
                )
            return controller
        sub = self.store.submission(int(controller))
        owner = self.store.owners().get(sub.system_id, self.config.city) if sub else ""
        if sub is None or (organisation and organisation not in (owner, self.config.city)):
            raise LiveError("no such submission", status=404, where="controller")
        if sub.kind != "controller":
            raise InputError(f"submission {sub.id} is a {sub.kind}, not a controller")
        # lazy: the runs layer only for a submitted controller
        from cityx.runs.submitted import check_trust

        check_trust(Path(sub.path), Manifest.model_validate(sub.manifest), {})
        return sub.path

    def _argv(
        self, request: RunRequest, run_id: str, controller: str, out: Path, trust: Path
    ) -> list[str]:
        argv = [sys.executable, "-m", "cityx.cli.main", "oversee", "run", "--in-process"]
        argv += ["--scenario", request.scenario, "--controller", controller]
        argv += ["--seconds", str(request.seconds), "--seed", str(request.seed)]
        argv += ["--out", str(out), "--run-id", run_id, "--sign-key", str(self._city_key_file())]
        argv += ["--bus", self.config.bus, "--city", run_id, "--operator-trust", str(trust)]
        argv += ["--checkpoint-every", str(self.config.live_checkpoint_every)]
        if self.config.store is not None:
            # Checkpoints anchored in the audit log; the URL (a password, maybe) by environment.
            argv += ["--store", f"env:{STORE_ENV}"]
        if request.pace is not None:
            argv += ["--pace", repr(request.pace)]
        if request.channel_timeout_s is not None:
            argv += ["--channel-timeout", repr(request.channel_timeout_s)]
        return [*argv, "--json"]

    # -- the run's process ------------------------------------------------------------

    def _watch(self, item: _Live) -> None:
        process = item.process
        assert process is not None
        code = process.wait()
        folder = Path(item.run.out_dir).parent
        out = Path(item.run.out_dir)
        try:
            if code in (0, 3) and not item.killed:
                obj = json.loads((folder / "result.json").read_text(encoding="utf-8"))
                self._end(item, status="done", result=_summary(obj), error=None)
                return
        except (OSError, ValueError) as exc:
            _LOG.warning("live run %s: unreadable result: %s", item.run.id, exc)
        tail = _last_line(folder / "child.log")
        if (out / "decisions.jsonl").is_file():
            how = (
                "killed"
                if item.killed or code < 0
                else f"the run's process ended with exit code {code}"
            )
            self._end(item, status="incomplete", result=_sealed(out), error=f"{how}: {tail}")
        else:
            self._end(item, status="failed", result=None, error=tail or f"exit code {code}")

    def _end(self, item: _Live, *, status: str, result: Any, error: str | None) -> None:
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
                self._store_later(updated)
                self._emit(item, LiveEvent("command", updated.to_json(), time.time()))
        with contextlib.suppress(RuntimeError):  # (a writer shut down has drained already)
            self._writes.submit(lambda: None).result()  # every state stored before the end
        ended = self.store.live_run(item.run.id)
        with self._lock:
            self._live.pop(item.run.id, None)
        item.ended.set()
        data = run_json(ended) if ended is not None else {"id": item.run.id}
        self._emit(item, LiveEvent("end", data, time.time()))

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

    # -- the state feed ---------------------------------------------------------------

    def _relay(self, item: _Live, data: bytes) -> None:
        """On the bus's thread: verify a state message, relay it and its command changes."""
        received = time.time()
        token = data.decode("ascii", "replace").strip()
        claims = item.reader.read(token)
        # The reader keeps what it read (for tests); a run of hours must not grow with it.
        item.reader.accepted.clear()
        item.reader.refused.clear()
        if claims is None:
            item.refused += 1
            return
        state = claims.get("state") or {}
        self._emit(
            item,
            LiveEvent(
                "state",
                {
                    "seq": claims.get("seq"),
                    "iat": claims.get("iat"),
                    "token": token,
                    "state": state,
                    "refused_so_far": item.refused,
                },
                received,
            ),
        )
        for change in state.get("commands") or ():
            self._command_changed(item, change, received)
        for note in state.get("notes") or ():
            ref = note.get("ref")
            if isinstance(ref, str):
                self._emit(item, LiveEvent("note", dict(note), received))

    def _command_changed(self, item: _Live, change: Mapping[str, Any], received: float) -> None:
        ref = change.get("ref")
        if not isinstance(ref, str):
            return
        found = item.commands.get(ref)
        if found is None:
            return  # not one the server sent to this run (a scripted or foreign command)
        records = dict(found.records)
        tls = str(change.get("intersection", ALL))
        new = str(change.get("state", "sent"))
        before = str(records.get(tls, {}).get("state", "sent"))
        # States only move forward; a copy refused as replayed or forged after the command
        # was accepted does not undo the acceptance.
        if _RANK.get(new, 0) < _RANK.get(before, 0) or (
            new == "refused" and before in ("accepted", "effective")
        ):
            return
        records[tls] = {
            "state": new,
            "reason_code": change.get("reason_code"),
            "accepted_at_s": change.get("accepted_at_s"),
            "effective_at_s": change.get("effective_at_s"),
            "detail": change.get("detail"),
        }
        state, code = _aggregate(records)
        updated = replace(
            found, state=state, reason_code=code, records=records, updated_at=now_text()
        )
        item.commands[ref] = updated
        # Told at once; stored behind, in order, off the bus's thread (a write can wait).
        self._emit(
            item,
            LiveEvent("command", {**updated.to_json(), "changed": {tls: records[tls]}}, received),
        )
        self._store_later(updated)

    def _store_later(self, command: LiveCommandRecord) -> None:
        def write() -> None:
            try:
                self.store.update_live_command(
                    command.id,
                    state=command.state,
                    reason_code=command.reason_code,
                    records=command.records,
                )
            except Exception:  # the store's hiccup must not stop the relay
                _LOG.exception("live command %s: state not stored", command.id)

        try:
            self._writes.submit(write)
        except RuntimeError:  # the writer has shut down (the server stops): write here
            write()

    def _emit(self, item: _Live, event: LiveEvent) -> None:
        if event.kind == "state":
            item.last_state = event
        with self._lock:
            subscribers = list(item.subscribers)
        for loop, queue, _user in subscribers:
            with contextlib.suppress(RuntimeError):  # a closed loop: its subscriber is gone
                loop.call_soon_threadsafe(_offer, queue, event)

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
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=_QUEUE_SIZE)
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

    def _running(self, run_id: str, user: str) -> _Live:
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
        self._emit(item, LiveEvent("command", record.to_json(), time.time()))
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
        self._emit(item, LiveEvent("command", updated.to_json(), time.time()))
        return updated

    def commands(self, run_id: str) -> list[LiveCommandRecord]:
        return self.store.live_commands(run_id)

    def get(self, run_id: str) -> LiveRunRecord | None:
        return self.store.live_run(run_id)

    def runs(self, *, limit: int = 100) -> Sequence[LiveRunRecord]:
        return self.store.live_runs(limit=limit)


def may_read(run: LiveRunRecord, role: Role, user: str) -> bool:
    """An overseer reads the runs assigned to them or that they started; readers of every
    run (regulator, auditor) read all."""
    if role is not Role.OVERSEER:
        return True
    return user in run.overseers or run.requested_by == f"user:{user}"


def _offer(queue: asyncio.Queue[LiveEvent], event: LiveEvent) -> None:
    if queue.full() and event.kind == "state":
        return  # a subscriber this far behind misses states, never commands or the end
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(event)


def _aggregate(records: Mapping[str, Mapping[str, Any]]) -> tuple[str, str | None]:
    states = [str(r.get("state")) for r in records.values()]
    codes = sorted({str(r["reason_code"]) for r in records.values() if r.get("reason_code")})
    code = ",".join(codes) or None
    if not states:
        return "sent", None
    if all(s == "refused" for s in states):
        return "refused", code
    accepted = [s for s in states if s in ("accepted", "effective")]
    if accepted and all(s == "effective" for s in accepted):
        return "effective", code
    if accepted:
        return "accepted", code
    return "sent", code


def _summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    o = obj.get("oversight", {})
    commands = o.get("commands", [])
    return {
        "complete": obj.get("complete"),
        "steps": obj.get("steps"),
        "failure": obj.get("failure"),
        "violations": o.get("violations"),
        "alerts": o.get("alerts"),
        "commands": len(commands),
        "effective": sum(1 for c in commands if c.get("state") == "effective"),
        "refused": sum(1 for c in commands if c.get("state") == "refused"),
        "unverified_commands": len(o.get("unverified_commands", [])),
        "decisions": o.get("decisions"),
        "signer": o.get("signer"),
        "kpis": obj.get("kpis"),
        "wall_s": obj.get("wall_s"),
    }


def _sealed(out: Path) -> dict[str, Any]:
    """How far a dead run's decision log verifies (``cityx decisions verify``)."""
    # lazy: the decision log's verifier only for a run that died
    from cityx.oversight.decisions import verify_decisions

    if not (out / "decisions.jsonl").is_file():
        return {"complete": False, "decisions": None}
    check = verify_decisions(out)
    return {
        "complete": False,
        "decisions": str(out / "decisions.jsonl"),
        "decisions_check": check.to_json(),
    }


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:500] if lines else ""


def _ours(pid: int, run_id: str) -> bool:
    """Whether process ``pid`` is still this run's child (its command line names the run)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return run_id.encode() in cmdline


def read_sse(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs from the lines of a server-sent event stream (a client's side:
    tests, benchmarks, scripts); comments and unnamed events are skipped."""
    kind, data = "", []
    for line in lines:
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line.strip():
            if kind and data:
                yield kind, json.loads("\n".join(data))
            kind, data = "", []


def state_claims(token: str) -> dict[str, Any]:
    """A state message's claims, unverified (for a client that has checked it already)."""
    body = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


__all__ = [
    "BASELINES",
    "LiveError",
    "LiveEvent",
    "LiveRuns",
    "RunRequest",
    "may_read",
    "network_of",
    "read_sse",
    "run_json",
    "state_claims",
]
