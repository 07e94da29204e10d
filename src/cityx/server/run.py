"""Running the server: uvicorn around the app, for a set time or until stopped.

TLS ends either in uvicorn (``ssl_certfile``/``ssl_keyfile``) or in a reverse
proxy in front of it; cookies are ``Secure`` by default either way (browsers
also accept them on ``http://127.0.0.1``, which they treat as secure).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from cityx.store import Store

from .app import create_app
from .config import ServerConfig


def serve(
    config: ServerConfig,
    *,
    duration_s: float | None = None,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    on_ready: Callable[[Store], None] | None = None,
) -> None:
    """Serve until interrupted, or for ``duration_s`` seconds; ``on_ready`` runs first."""
    with Store.open(config.store) as store:
        if on_ready is not None:
            on_ready(store)
        app = create_app(config, store)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.port,
                log_level="warning",
                ssl_certfile=None if ssl_certfile is None else str(ssl_certfile),
                ssl_keyfile=None if ssl_keyfile is None else str(ssl_keyfile),
                # One worker process: the model workers and the monitor live in it.
                workers=1,
                server_header=False,
            )
        )
        timer = None
        if duration_s is not None:
            timer = threading.Timer(duration_s, lambda: setattr(server, "should_exit", True))
            timer.daemon = True
            timer.start()
        try:
            server.run()
        finally:
            if timer is not None:
                timer.cancel()


__all__ = ["serve"]
