"""Walls around vendor code: each model worker runs inside a bubblewrap jail.

Words:

- a *jail* is the worker started by ``bwrap`` (Debian's bubblewrap, a
  well-kept setuid-free sandbox on Linux user namespaces) with: its own user,
  PID, IPC, UTS, cgroup and network namespaces (so no network at all, not even
  the host's loopback, where PostgreSQL listens); a root file system holding
  only the system's ``/usr``, the Python installation, cityx's own code and
  the model's submission folder, all read-only; a private ``/tmp`` (its
  *scratch*); a fresh ``/proc`` and ``/dev``; an environment scrubbed to the
  few variables the worker needs; and an in-namespace uid per vendor;
- the walls *can be built* when ``bwrap`` is installed and a trial jail
  starts (user namespaces allowed): :func:`probe` tries once.

What the jail does not give: the in-namespace uid maps to the server's own
uid outside, so RLIMIT_NPROC does not tell vendors apart (a fork bomb is
bounded only by the call timeout, which kills the jail's whole process
group); a seccomp filter is not installed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BWRAP = "bwrap"
# The jail's own private tmpfs, mounted over /tmp inside it; never the host's /tmp.
_SCRATCH = "/tmp"  # nosec B108


@dataclass(frozen=True, slots=True)
class Walls:
    """How to build a jail on this machine: bwrap's path and the read-only system folders."""

    bwrap: str
    system: tuple[Path, ...]

    def around(self, folder: Path, *, vendor: str) -> tuple[str, ...]:
        """The command prefix that runs a worker jailed with ``folder`` (read-only)."""
        folder = folder.resolve()
        uid = str(10_000 + int(hashlib.sha256(vendor.encode()).hexdigest()[:6], 16) % 50_000)
        args = [
            self.bwrap,
            "--unshare-all",
            # Not --die-with-parent: its signal follows the spawning *thread*, and the web
            # server's worker threads come and go. The worker ends itself when its pipe
            # closes, and a kill takes the jail's whole process group.
            "--new-session",
            "--clearenv",
            "--uid",
            uid,
            "--gid",
            uid,
            # The scratch and the kernel's views first: a later bind may sit inside /tmp.
            "--tmpfs",
            _SCRATCH,
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        for link in ("bin", "lib", "lib64", "sbin"):
            if (Path("/") / link).is_symlink():
                args += ["--symlink", f"usr/{link}", f"/{link}"]
        for path in (*self.system, folder):
            args += ["--ro-bind", str(path), str(path)]
        args += ["--chdir", str(folder)]
        return (*args, "--")


def _system_folders() -> tuple[Path, ...]:
    # What Python needs to start and import cityx and the model libraries: the base
    # installation, the environment (its site-packages hold every target plugin) and the
    # folder cityx itself is imported from. Not the rest of sys.path: a script's folder
    # there (/tmp, say) would open the whole folder to the vendor's code.
    found = {
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        Path(__file__).resolve().parents[2],
    }
    # A folder inside another is bound with it: keep the outermost ones.
    outer = sorted(p for p in found if not any(q != p and p.is_relative_to(q) for q in found))
    return tuple(outer)


def probe() -> tuple[Walls | None, str]:
    """Walls if they can be built here, and why not otherwise."""
    bwrap = shutil.which(BWRAP)
    if bwrap is None:
        return None, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    walls = Walls(bwrap, _system_folders())
    jail = walls.around(Path(sys.prefix), vendor="probe")
    try:
        done = subprocess.run(
            [*jail, sys.executable, "-P", "-c", "import cityx.targets.worker"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"bwrap could not start a jail: {exc}"
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no reason"]
        return None, f"bwrap could not start a jail: {why[0]}"
    return walls, "ok"


__all__ = ["Walls", "probe"]
