"""A live run's child process: the request checked, its command line, its ending read.

Words as in :mod:`cityx.server.live`. The run is ``cityx oversee run`` in its own
process; these are the pure parts around it (what to start, how it ended).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cityx.core import InputError, Manifest
from cityx.oversight.decisions import verify_decisions
from cityx.runs.submitted import check_trust
from cityx.store import Store
from cityx.worlds.traffic import get_scenario

from .config import ServerConfig
from .live_api import LiveError, RunRequest
from .policy import Role

_LOG = logging.getLogger("cityx.server.live")
BASELINES = ("max-pressure", "fixed")
STORE_ENV = "CITYX_LIVE_STORE"  # how a run's process learns the store's URL
MAX_SECONDS = 86_400
_SCENARIO = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def check_request(store: Store, request: RunRequest) -> tuple[str, ...]:
    if not _SCENARIO.fullmatch(request.scenario):
        raise InputError("a scenario is named by its registry name", where="scenario")
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
        user = store.user(name)
        if user is None or user.role != Role.OVERSEER.value:
            raise InputError(f"{name!r} is not an overseer", where="overseers")
    return tuple(dict.fromkeys(request.overseers))


def controller_path(
    store: Store, config: ServerConfig, controller: str | int, organisation: str
) -> str:
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
    sub = store.submission(int(controller))
    owner = store.owners().get(sub.system_id, config.city) if sub else ""
    if sub is None or (organisation and organisation not in (owner, config.city)):
        raise LiveError("no such submission", status=404, where="controller")
    if sub.kind != "controller":
        raise InputError(f"submission {sub.id} is a {sub.kind}, not a controller")
    check_trust(Path(sub.path), Manifest.model_validate(sub.manifest), {})
    return sub.path


def child_argv(
    config: ServerConfig,
    request: RunRequest,
    *,
    run_id: str,
    controller: str,
    out: Path,
    trust: Path,
    sign_key: Path,
) -> list[str]:
    """The run's command line (``cityx oversee run``)."""
    argv = [sys.executable, "-m", "cityx.cli.main", "oversee", "run", "--in-process"]
    argv += ["--scenario", request.scenario, "--controller", controller]
    argv += ["--seconds", str(request.seconds), "--seed", str(request.seed)]
    argv += ["--out", str(out), "--run-id", run_id, "--sign-key", str(sign_key)]
    argv += ["--bus", config.bus, "--city", run_id, "--operator-trust", str(trust)]
    argv += ["--checkpoint-every", str(config.live_checkpoint_every)]
    if config.store is not None:
        # Checkpoints anchored in the audit log; the URL (a password, maybe) by environment.
        argv += ["--store", f"env:{STORE_ENV}"]
    if request.pace is not None:
        argv += ["--pace", repr(request.pace)]
    if request.channel_timeout_s is not None:
        argv += ["--channel-timeout", repr(request.channel_timeout_s)]
    return [*argv, "--json"]


def summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The run's result (its ``--json`` output) as the store keeps it."""
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


def sealed(out: Path) -> dict[str, Any]:
    """How far a dead run's decision log verifies (``cityx decisions verify``)."""
    if not (out / "decisions.jsonl").is_file():
        return {"complete": False, "decisions": None}
    check = verify_decisions(out)
    return {
        "complete": False,
        "decisions": str(out / "decisions.jsonl"),
        "decisions_check": check.to_json(),
    }


def last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:500] if lines else ""


def ours(pid: int, run_id: str) -> bool:
    """Whether process ``pid`` is still this run's child (its command line names the run)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return run_id.encode() in cmdline


def ending(out: Path, code: int, *, killed: bool) -> tuple[str, dict[str, Any] | None, str | None]:
    """How a run whose process exited with ``code`` ended: (status, result, error)."""
    folder = out.parent
    try:
        if code in (0, 3) and not killed:
            obj = json.loads((folder / "result.json").read_text(encoding="utf-8"))
            return "done", summary(obj), None
    except (OSError, ValueError) as exc:
        _LOG.warning("live run %s: unreadable result: %s", folder.name, exc)
    tail = last_line(folder / "child.log")
    if (out / "decisions.jsonl").is_file():
        how = "killed" if killed or code < 0 else f"the run's process ended with exit code {code}"
        return "incomplete", sealed(out), f"{how}: {tail}"
    return "failed", None, tail or f"exit code {code}"
