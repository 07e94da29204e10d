"""The trial's event log: one JSON object per line, appended as things happen.

If a run is killed, the log shows how far it got; the report never depends
on it (the report is computed from ``results.json``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

EVENT_SCHEMA_VERSION = 1


class EventLog:
    def __init__(self, path: Path, *, trial_id: str) -> None:
        self.path = path
        self.trial_id = trial_id
        self._fh: IO[str] | None = None

    def __enter__(self) -> EventLog:
        self._fh = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.emit("trial.aborted", error=f"{type(exc).__name__}: {exc}")
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def emit(self, event: str, **payload: Any) -> None:
        if self._fh is None:
            raise RuntimeError("EventLog used outside its with-block")
        record = {
            "v": EVENT_SCHEMA_VERSION,
            "at": datetime.now(UTC).isoformat(),
            "trial_id": self.trial_id,
            "event": event,
            **payload,
        }
        self._fh.write(json.dumps(record, default=str) + "\n")
        self._fh.flush()  # a killed run still leaves every finished step on disk
