"""The server's configuration: defaults, a TOML file, environment variables, in that order.

A TOML file holds one ``[server]`` table whose keys are the fields of
:class:`ServerConfig`; an environment variable ``CITYX_SERVER_<FIELD>``
(upper case) overrides the file; command-line options override both. An
unknown key is an error naming it, never silently ignored.

Words: the *data folder* holds uploaded submissions (content-addressed by the
SHA-256 of their archive) and the *key folder* (the city's signing key, mode
0700); a *unit* is one predicted row (see :mod:`cityx.server.scoring`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from cityx.core import InputError

ENV_PREFIX = "CITYX_SERVER_"


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("cityx")) / "server"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Everything ``cityx serve`` can be told; the defaults suit one machine on loopback."""

    store: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = field(default_factory=_default_data_dir)
    key_dir: Path | None = None  # default: DATA_DIR/keys
    city: str = "city"  # the regulator's organisation
    # Uploads: compressed size, unpacked size and member count (archive bombs).
    max_upload_mb: int = 64
    max_unpacked_mb: int = 512
    max_members: int = 2000
    max_request_kb: int = 1024  # every request but an upload
    # Model access.
    max_rows: int = 5000
    default_budget: int = 1000  # units per user and system when the user has no budget
    token_days: int = 90
    session_hours: int = 8
    # Hardening. Cookies are Secure unless told otherwise (plain-HTTP loopback tests).
    secure_cookies: bool = True
    login_lock_after: int = 5
    login_lock_s: int = 900
    login_per_minute: int = 10
    # The extraction monitor (see cityx.server.monitor).
    monitor_min_queries: int = 30
    monitor_threshold: float = 0.90
    # The model workers: jailed with bubblewrap unless contain = false (see cityx.server.walls).
    contain: bool = True
    worker_memory_mb: int = 2048
    call_timeout_s: float = 30.0
    # Processes and threads one organisation's jailed workers may have at once, together
    # (RLIMIT_NPROC on the organisation's own uid: a fork bomb stops there).
    worker_nproc: int = 64
    # Jobs (see cityx.server.jobs): trials run at most this many at a time, each in its
    # own process, under this policy (None: the default policy). The worker that runs
    # them is a child of the server unless embedded_worker = false (then: cityx worker).
    trial_workers: int = 1
    trial_policy: Path | None = None
    embedded_worker: bool = True
    # Live runs (see cityx.server.live): at most this many at once, on this MQTT broker.
    live_runs: int = 1
    bus: str = "mqtt://127.0.0.1:1883"
    # A live run seals its decision log every this many records: what a killed run keeps.
    live_checkpoint_every: int = 100

    def __post_init__(self) -> None:
        for name in (
            "port",
            "max_upload_mb",
            "max_unpacked_mb",
            "max_members",
            "max_request_kb",
            "max_rows",
            "token_days",
            "session_hours",
            "login_lock_after",
            "login_lock_s",
            "login_per_minute",
            "monitor_min_queries",
            "worker_memory_mb",
            "worker_nproc",
            "trial_workers",
            "live_runs",
            "live_checkpoint_every",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.default_budget < 0:
            raise InputError(f"default_budget must be >= 0, got {self.default_budget!r}")
        if not 0 < self.monitor_threshold < 1:
            raise InputError("monitor_threshold must be between 0 and 1")

    @property
    def keys(self) -> Path:
        """Where the city's signing key lives."""
        return self.key_dir if self.key_dir is not None else self.data_dir / "keys"


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """Defaults, then ``path``'s ``[server]`` table, then ``CITYX_SERVER_*``, then ``overrides``."""
    fields = {f.name: f for f in dataclasses.fields(ServerConfig)}
    values: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InputError(
                f"cannot read the server configuration: {exc}", where=str(path)
            ) from exc
        table = raw.get("server", {})
        if not isinstance(table, dict) or set(raw) - {"server"}:
            raise InputError("expected one [server] table", where=str(path))
        for key, value in table.items():
            if key not in fields:
                raise InputError(
                    f"unknown key {key!r}", where=f"{path}: [server]", hint=_known(fields)
                )
            values[key] = _coerce(key, value, fields[key].type, f"{path}: [server].{key}")
    environ = os.environ if env is None else env
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in fields:
            raise InputError(f"unknown setting {name}", where="environment", hint=_known(fields))
        values[key] = _coerce(key, text, fields[key].type, name)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return ServerConfig(**values)


def _known(fields: Mapping[str, Any]) -> str:
    return "known: " + ", ".join(sorted(fields))


def _coerce(key: str, value: Any, kind: Any, where: str) -> Any:
    kind = str(kind)
    try:
        if "bool" in kind:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if "Path" in kind:
            return Path(str(value)).expanduser()
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(f"not a whole number: {value!r}")
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except ValueError as exc:
        raise InputError(f"bad value for {key}: {exc}", where=where) from None


__all__ = ["ENV_PREFIX", "ServerConfig", "load_config"]
