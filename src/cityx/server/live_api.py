"""What the web layer and clients see of a live run: requests, events, JSON, readers.

Words as in :mod:`cityx.server.live`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityx.core import InputError
from cityx.interop.bus import TOPIC_ROOT
from cityx.store import LiveRunRecord
from cityx.worlds.traffic.network import NetworkInfo

from .policy import Role

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


def may_read(run: LiveRunRecord, role: Role, user: str) -> bool:
    """An overseer reads the runs assigned to them or that they started; readers of every
    run (regulator, auditor) read all."""
    if role is not Role.OVERSEER:
        return True
    return user in run.overseers or run.requested_by == f"user:{user}"


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
    "HEARTBEAT_MAX_S",
    "PING_S",
    "LiveError",
    "LiveEvent",
    "RunRequest",
    "may_read",
    "network_of",
    "read_sse",
    "run_json",
    "state_claims",
]
