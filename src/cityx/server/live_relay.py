"""The relay of a live run's signed state feed: verified states out to the subscribers.

Words as in :mod:`cityx.server.live`. A *live item* (:class:`LiveItem`) is a running
run's moving parts in the server's process; the :class:`StateRelay` checks each state
message the run publishes (signature, run id, sequence), hands it to the run's
subscribers and moves its commands' states forward (stored behind, off the bus's thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from cityx.oversight.channel import StateReader
from cityx.oversight.commands import ALL
from cityx.store import LiveCommandRecord, LiveRunRecord, Store, now_text

from .live_api import LiveEvent

_LOG = logging.getLogger("cityx.server.live")
_RANK = {"sent": 0, "accepted": 1, "refused": 1, "effective": 2}
QUEUE_SIZE = 2000  # events a slow subscriber may fall behind by before states are dropped


@dataclass
class LiveItem:
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


class StateRelay:
    """Verifies and relays the state feeds of the runs (one per :class:`LiveRuns`)."""

    def __init__(self, store: Store, lock: threading.RLock) -> None:
        self.store = store
        self._lock = lock
        self.writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-store")

    def relay(self, item: LiveItem, data: bytes) -> None:
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
        self.emit(
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
            self.command_changed(item, change, received)
        for note in state.get("notes") or ():
            ref = note.get("ref")
            if isinstance(ref, str):
                self.emit(item, LiveEvent("note", dict(note), received))

    def command_changed(self, item: LiveItem, change: Mapping[str, Any], received: float) -> None:
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
        state, code = aggregate(records)
        updated = replace(
            found, state=state, reason_code=code, records=records, updated_at=now_text()
        )
        item.commands[ref] = updated
        # Told at once; stored behind, in order, off the bus's thread (a write can wait).
        self.emit(
            item,
            LiveEvent("command", {**updated.to_json(), "changed": {tls: records[tls]}}, received),
        )
        self.store_later(updated)

    def store_later(self, command: LiveCommandRecord) -> None:
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
            self.writes.submit(write)
        except RuntimeError:  # the writer has shut down (the server stops): write here
            write()

    def emit(self, item: LiveItem, event: LiveEvent) -> None:
        if event.kind == "state":
            item.last_state = event
        with self._lock:
            subscribers = list(item.subscribers)
        for loop, queue, _user in subscribers:
            with contextlib.suppress(RuntimeError):  # a closed loop: its subscriber is gone
                loop.call_soon_threadsafe(offer, queue, event)


def offer(queue: asyncio.Queue[LiveEvent], event: LiveEvent) -> None:
    if queue.full() and event.kind == "state":
        return  # a subscriber this far behind misses states, never commands or the end
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(event)


def aggregate(records: Mapping[str, Mapping[str, Any]]) -> tuple[str, str | None]:
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
