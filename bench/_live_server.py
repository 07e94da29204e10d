"""What the live-run benches (live_lag.py, console_live.py) share: the server they measure
and how they summarise a list of lags.

The *bench server* is the real app under uvicorn on a free loopback port, in a thread of
the bench's own process, with a temporary SQLite store and one overseer, ``olga``, whose
API token the bench uses. Both benches must start it the same way so their figures stay
comparable (same config, same log level, same shutdown).
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn

from cityx.server import Role, ServerConfig, add_user
from cityx.server.app import create_app
from cityx.store import Store


@dataclass(frozen=True)
class BenchServer:
    """A running bench server: its config, its store, olga's API token."""

    config: ServerConfig
    store: Store
    token: str
    server: uvicorn.Server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.store.close()


def start_server(prefix: str) -> BenchServer:
    """Start the bench server (data in a new temporary folder named ``prefix``…) and wait
    until it serves."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ServerConfig(
        store=f"sqlite:///{root / 'store.db'}",
        data_dir=root / "data",
        port=port,
        secure_cookies=False,
    )
    store = Store.open(config.store)
    token = add_user(store, "olga", organisation="city", role=Role.OVERSEER, city="city").token
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, store),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return BenchServer(config=config, store=store, token=token, server=server)


def summary(values: list[float]) -> dict[str, Any]:
    """Lags in seconds -> their count, p50, p95 and max in milliseconds (None when empty)."""
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    ms = np.asarray(values) * 1000.0
    p50, p95 = np.percentile(ms, [50, 95])
    return {
        "n": len(values),
        "p50_ms": round(float(p50), 1),
        "p95_ms": round(float(p95), 1),
        "max_ms": round(float(ms.max()), 1),
    }
