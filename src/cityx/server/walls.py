"""Walls around vendor code: each model worker runs inside a bubblewrap jail.

Words:

- a *jail* is the worker started by ``bwrap`` (Debian's bubblewrap, a
  well-kept sandbox on Linux namespaces) with: its own PID, IPC, UTS, cgroup
  and network namespaces (so no network at all, not even the host's
  loopback, where PostgreSQL listens); a root file system holding only the
  system's ``/usr``, the Python installation, cityx's own code and the
  model's submission folder, all read-only; a private, size-capped ``/tmp``
  (its *scratch*) and ``/dev/shm``; a fresh ``/proc`` and ``/dev``; no ``/etc``, ``/home`` or
  ``/var`` at all (so no ``/etc/passwd``, no PostgreSQL socket); and an
  environment scrubbed to the few variables the worker needs;
- the *organisation's uid*: with a server run as root, the jail's processes
  run as an unprivileged uid and gid of their own per organisation,
  :data:`UID_BASE` plus a hash of the organisation's name (and of the
  server's *realm*, its data folder, so two servers on one machine do not
  share uids) modulo :data:`UID_SPAN`, with no supplementary groups, no
  capabilities and ``no_new_privs``. ``RLIMIT_NPROC`` (``nproc``) counts
  processes per uid, so one vendor's fork bomb uses up its own
  organisation's processes and no one else's. bwrap then runs as root
  without a user namespace (it needs root to reach the Python installation
  under ``/root``), and ``setpriv`` (util-linux) drops to the uid inside the
  jail; a server that is not root gets the user-namespace jail of
  unprivileged bwrap, where every vendor shares the server's uid outside:
  there vendor code is refused (:attr:`Walls.holds_vendor_code`);
- the *seccomp filter*: a BPF program, generated with libseccomp (through
  pyseccomp, its ctypes binding) and passed to ``bwrap --seccomp``, that
  answers EPERM to the syscalls a model never needs and an escape does
  (:data:`DENIED_SYSCALLS`: ptrace, mount, namespaces, keyrings, bpf,
  perf_event_open, kexec, modules, reboot, io_uring, ...), refuses every
  socket family but ``AF_UNIX``, a ``clone`` that makes namespaces,
  personality changes and ``TIOCSTI``. It is installed where the kernel and
  libseccomp allow one; where not, the walls say why (:meth:`Walls.status`)
  and the server logs it;
- the walls *can be built* when ``bwrap`` is installed and a trial jail
  starts: :func:`probe` tries once, and checks from inside that the uid and
  the filter are what was asked for.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from platformdirs import user_cache_dir

from cityx.core import TargetLoadError

BWRAP = "bwrap"
# The jail's own private tmpfs, mounted over /tmp inside it; never the host's /tmp.
_SCRATCH = "/tmp"  # nosec B108
SCRATCH_MB = 256  # a tmpfs lives in memory, outside the worker's RLIMIT_AS: cap it
SHM_MB = 64
# Organisation uids (and gids): UID_BASE .. UID_BASE + UID_SPAN - 1, i.e.
# 1073741824-1342177279, inside the range systemd leaves to containers
# (524288-1879048191), far from the system's and people's uids.
UID_BASE = 0x4000_0000
UID_SPAN = 0x1000_0000
DEFAULT_NPROC = 64  # processes and threads per organisation, all its workers together

DENIED_SYSCALLS = (
    # Looking into or steering other processes.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "process_madvise",
    "kcmp",
    # File systems and namespaces: the jail's own shape is fixed.
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "name_to_handle_at",
    "open_by_handle_at",
    "fanotify_init",
    # The kernel's keyrings, BPF, performance counters, io_uring (which runs its own
    # operations past seccomp) and userfaultfd (a favourite of kernel exploits).
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    # The machine itself.
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "uselib",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "modify_ldt",
)
# clone() flags that make namespaces (clone3 hides its flags in memory: it gets ENOSYS,
# and the C library falls back to clone, which the filter can read).
_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
_TIOCSTI = 0x5412  # push characters into a terminal's input
_PERSONA_FLAGS = (
    0x0040000,  # ADDR_NO_RANDOMIZE
    0x0100000,  # MMAP_PAGE_ZERO
    0x0200000,  # ADDR_COMPAT_LAYOUT
    0x0400000,  # READ_IMPLIES_EXEC
    0x0800000,  # ADDR_LIMIT_32BIT
    0x8000000,  # ADDR_LIMIT_3GB
)
# bwrap reads the filter from this descriptor, opened by /bin/sh from the filter's file:
# the command prefix stays a tuple of strings, which crosses into a job's process.
_SECCOMP_FD = 3


class WallsError(TargetLoadError):
    """The walls cannot be put around this worker (its seccomp filter cannot be written)."""


@dataclass(frozen=True, slots=True)
class Walls:
    """How to build a jail on this machine.

    ``system`` are the read-only system folders; ``setpriv`` and ``prlimit``
    (util-linux) are set when the jail runs each organisation under its own
    uid (the server is root); ``seccomp`` is the filter's BPF file, None
    when none can be installed; ``missing`` says which wall is absent and why.
    """

    bwrap: str
    system: tuple[Path, ...]
    realm: str = ""
    setpriv: str | None = None
    prlimit: str | None = None
    seccomp: Path | None = None
    seccomp_bpf: bytes = field(default=b"", repr=False)
    nproc: int = DEFAULT_NPROC
    missing: tuple[tuple[str, str], ...] = ()

    @property
    def per_organisation_uid(self) -> bool:
        return self.setpriv is not None and self.prlimit is not None

    @property
    def holds_vendor_code(self) -> bool:
        """Whether vendor code (entry points) may run in these walls: each organisation
        under its own uid, so a fork bomb or a process-table probe stays its own."""
        return self.per_organisation_uid

    def uid_for(self, organisation: str) -> int:
        """The organisation's uid (and gid): stable for one organisation and realm."""
        digest = hashlib.sha256(f"{self.realm}\0{organisation}".encode()).digest()
        return UID_BASE + int.from_bytes(digest[:8], "big") % UID_SPAN

    def claim(self, organisation: str) -> int:
        """The organisation's uid, refused (WallsError) if another organisation of this
        realm already ran under it in this process: they would share a process limit."""
        uid = self.uid_for(organisation)
        with _CLAIMS_LOCK:
            holder = _CLAIMS.setdefault((self.realm, uid), organisation)
        if holder != organisation:
            raise WallsError(
                f"organisations {holder!r} and {organisation!r} hash to the same uid {uid}",
                where="walls",
                hint="they would share one process limit; rename one of them",
            )
        return uid

    def around(self, folder: Path, *, vendor: str) -> tuple[str, ...]:
        """The command prefix that runs a worker of ``vendor`` jailed with ``folder``."""
        folder = folder.resolve()
        uid = str(self.claim(vendor))
        prefix: list[str] = []
        setpriv, prlimit = self.setpriv, self.prlimit
        if self.seccomp is not None:
            self._keep_filter()
            # POSIX sh opens the filter as descriptor 3 of the command it becomes.
            prefix = ["/bin/sh", "-c", f'exec "$@" {_SECCOMP_FD}<"$0"', str(self.seccomp)]
        if setpriv is not None and prlimit is not None:
            limit = f"--nproc={self.nproc}:{self.nproc}"
            # Root needs no user namespace to mount, and the jail keeps only the
            # capabilities setpriv needs to become the organisation's uid.
            prefix += [prlimit, limit, self.bwrap, *_UNSHARE_ROOT]
            prefix += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            prefix += ["--cap-add", "CAP_SETPCAP"]
        else:
            # An unprivileged server: a user namespace, in which no other may be made.
            prefix += [self.bwrap, "--unshare-all", "--unshare-user", "--disable-userns"]
            prefix += ["--uid", uid, "--gid", uid]
        # Not --die-with-parent: its signal follows the spawning *thread*, and the web
        # server's worker threads come and go. The worker ends itself when its pipe
        # closes, and a kill takes the process group the worker was started in: both
        # bwraps, the jail's init among them, whose end ends the jail's PID namespace.
        # So not --new-session either (it would put the jail's init in a group of its
        # own): the group's session, new too, has no terminal to steal input from.
        prefix += ["--clearenv"]
        if self.seccomp is not None:
            prefix += ["--seccomp", str(_SECCOMP_FD)]
        # The scratch and the kernel's views first: a later bind may sit inside /tmp.
        prefix += ["--perms", "1777", "--size", str(SCRATCH_MB * 2**20), "--tmpfs", _SCRATCH]
        prefix += ["--proc", "/proc", "--dev", "/dev"]
        # POSIX semaphores (multiprocessing, joblib) live in /dev/shm: a fresh tmpfs of the jail's.
        prefix += ["--perms", "1777", "--size", str(SHM_MB * 2**20), "--tmpfs", "/dev/shm"]  # nosec B108
        prefix += ["--ro-bind", "/usr", "/usr"]
        for link in ("bin", "lib", "lib64", "sbin"):
            if (Path("/") / link).is_symlink():
                prefix += ["--symlink", f"usr/{link}", f"/{link}"]
        prefix += _binds((*self.system, folder))
        prefix += ["--chdir", str(folder)]
        if setpriv is not None and prlimit is not None:
            prefix += ["--", setpriv, "--reuid", uid, "--regid", uid, "--clear-groups"]
            prefix += ["--inh-caps=-all", "--bounding-set=-all", "--nnp"]
        return (*prefix, "--")

    def status(self) -> dict[str, object]:
        """What each wall is, or why it is missing: what the server logs and reports."""
        return {
            "namespaces": f"{self.bwrap}: own PID, IPC, UTS, cgroup and network namespaces; "
            "read-only /usr, Python, cityx and the model; private /tmp",
            "uids": f"one per organisation in {UID_BASE}-{UID_BASE + UID_SPAN - 1}, "
            f"RLIMIT_NPROC {self.nproc}"
            if self.per_organisation_uid
            else "shared: " + dict(self.missing).get("uids", "not set up"),
            "seccomp": f"on: {len(DENIED_SYSCALLS)} syscalls denied, sockets AF_UNIX only"
            if self.seccomp is not None
            else "off: " + dict(self.missing).get("seccomp", "not set up"),
            "vendor_code": self.holds_vendor_code,
        }

    def _keep_filter(self) -> None:
        # A long-lived server's cache folder can be cleaned under it: write it back.
        if self.seccomp is None:
            return
        try:
            if self.seccomp.read_bytes() == self.seccomp_bpf:
                return
        except OSError:
            pass
        try:
            _write_private(self.seccomp, self.seccomp_bpf)
        except OSError as exc:
            raise WallsError(
                f"the seccomp filter cannot be written: {exc}", where="walls"
            ) from None


# Which organisation each (realm, uid) was first given to, in this process.
_CLAIMS: dict[tuple[str, int], str] = {}
_CLAIMS_LOCK = threading.Lock()

# Every namespace but the user's: root mounts in the jail's own mount namespace.
_UNSHARE_ROOT = (
    "--unshare-pid",
    "--unshare-net",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
)


def _binds(paths: tuple[Path, ...]) -> list[str]:
    """Read-only binds of ``paths``, each reachable by an unprivileged uid.

    bwrap makes a missing parent folder with its source's mode (``/root`` is
    0700): the parents are made first, 0755, so the organisation's uid can pass.
    """
    args: list[str] = []
    made: set[Path] = set()
    bound = [Path("/usr")]
    for path in paths:
        for parent in reversed(path.parents[:-1]):  # shallowest first, not "/"
            inside = any(parent == b or parent.is_relative_to(b) for b in bound)
            # The scratch is there already (a tmpfs): folders inside it are made.
            if inside or parent in made or parent == Path(_SCRATCH):
                continue
            args += ["--perms", "0755", "--dir", str(parent)]
            made.add(parent)
        args += ["--ro-bind", str(path), str(path)]
        bound.append(path)
    return args


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


def seccomp_program() -> bytes:
    """The filter as a BPF program for this machine's architecture (libseccomp).

    Raises OSError or ImportError where libseccomp or its binding is missing.
    """
    # pyseccomp loads libseccomp.so.2 with ctypes when imported: absent, ImportError/OSError.
    import pyseccomp as sc  # type: ignore[import-untyped]

    deny = sc.ERRNO(errno.EPERM)
    program = sc.SyscallFilter(sc.ALLOW)
    # A binary tree of syscall numbers: an allowed call walks a few comparisons, not all.
    with contextlib.suppress(ValueError, OSError, AttributeError):
        program.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
    for name in DENIED_SYSCALLS:
        with contextlib.suppress(ValueError, OSError):  # not a syscall on this architecture
            program.add_rule(deny, name)
    for call in ("socket", "socketpair"):
        program.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), call, sc.Arg(0, sc.NE, socket.AF_UNIX))
    for flag in _NAMESPACE_FLAGS:
        program.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    with contextlib.suppress(ValueError, OSError):
        program.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    # A persona that turns off address randomisation or makes data executable is
    # refused; PER_LINUX and the query (0xffffffff) pass. libseccomp compares one
    # argument once per rule, hence a rule per bit: a flag set with bit 31 clear, or
    # bit 31 set with any lower bit clear (anything but the query).
    top = 1 << 31
    for flag in _PERSONA_FLAGS:
        program.add_rule(deny, "personality", sc.Arg(0, sc.MASKED_EQ, flag | top, flag))
    for bit in range(31):
        program.add_rule(deny, "personality", sc.Arg(0, sc.MASKED_EQ, top | 1 << bit, top))
    program.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
    with tempfile.TemporaryFile() as out:
        program.export_bpf(out)
        out.seek(0)
        return out.read()


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".seccomp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _filter_file() -> tuple[Path | None, bytes, str]:
    """The filter's file (built and written), its bytes, and why not when None."""
    try:
        bpf = seccomp_program()
    except (ImportError, OSError, ValueError, RuntimeError) as exc:
        return None, b"", f"libseccomp cannot build a filter here: {exc}"
    if not Path("/proc/self/status").read_text().count("Seccomp:"):
        return None, b"", "the kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)"
    name = f"seccomp-{hashlib.sha256(bpf).hexdigest()[:16]}.bpf"
    path = Path(user_cache_dir("cityx")) / "walls" / name
    try:
        _write_private(path, bpf)
    except OSError as exc:
        return None, b"", f"the filter cannot be written to {path.parent}: {exc}"
    return path, bpf, "ok"


# Run in the jail by the probe: the worker imports, and the jail is what was asked for.
_PROBE = (
    "import os, cityx.targets.worker; "
    "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() "
    "if ':\\t' in l); "
    "print(os.getuid(), os.getgid(), len(os.getgroups()), status['Seccomp'].strip(), "
    "status['NoNewPrivs'].strip(), int(status['CapEff'], 16))"
)


def _try(walls: Walls) -> str | None:
    """None if a jail of ``walls`` starts and is as asked; else why not."""
    jail = walls.around(Path(sys.prefix), vendor="probe")
    try:
        done = subprocess.run(
            [*jail, sys.executable, "-P", "-c", _PROBE],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired, WallsError) as exc:
        return f"bwrap could not start a jail: {exc}"
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no reason"]
        return f"bwrap could not start a jail: {why[0]}"
    seen = done.stdout.decode().split()
    uid = str(walls.uid_for("probe"))
    expected = {
        "uid": (seen[0], uid),
        "groups": (seen[2], "0" if walls.per_organisation_uid else seen[2]),
        "seccomp": (seen[3], "2" if walls.seccomp is not None else seen[3]),
        "no_new_privs": (seen[4], "1" if walls.per_organisation_uid else seen[4]),
        "capabilities": (seen[5], "0"),
    }
    wrong = [f"{k} {got} (wanted {want})" for k, (got, want) in expected.items() if got != want]
    return f"the jail is not as asked: {', '.join(wrong)}" if wrong else None


def probe(*, realm: str = "", nproc: int = DEFAULT_NPROC) -> tuple[Walls | None, str]:
    """Walls if they can be built here (as many as can), and what is missing, or why not.

    The second value is ``"ok"`` when every wall stands; otherwise it names the
    missing ones (logged as a warning by the server).
    """
    bwrap = shutil.which(BWRAP)
    if bwrap is None:
        return None, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    base = Walls(bwrap, _system_folders(), realm=realm, nproc=nproc)
    missing: dict[str, str] = {}
    setpriv, prlimit = shutil.which("setpriv"), shutil.which("prlimit")
    if os.geteuid() != 0:
        missing["uids"] = (
            f"the server runs as uid {os.geteuid()}, not root, so it cannot give each "
            "organisation a uid of its own"
        )
    elif setpriv is None or prlimit is None:
        missing["uids"] = "setpriv and prlimit (util-linux) are not installed"
    else:
        base = replace(base, setpriv=setpriv, prlimit=prlimit)
    path, bpf, why = _filter_file()
    if path is None:
        missing["seccomp"] = why
    tries = [replace(base, seccomp=path, seccomp_bpf=bpf)] if path is not None else []
    tries.append(base)
    if base.per_organisation_uid:
        tries.append(replace(base, setpriv=None, prlimit=None))
    failures: list[str] = []
    for walls in tries:
        failed = _try(walls)
        if failed is None:
            if path is not None and walls.seccomp is None:
                missing.setdefault("seccomp", failures[0] if failures else "not installed")
            if base.per_organisation_uid and not walls.per_organisation_uid:
                missing.setdefault("uids", failures[-1] if failures else "not set up")
            walls = replace(walls, missing=tuple(sorted(missing.items())))
            said = "; ".join(f"{k}: {v}" for k, v in sorted(missing.items()))
            return walls, said or "ok"
        failures.append(failed)
    return None, failures[-1] if failures else "no jail was tried"


__all__ = [
    "DEFAULT_NPROC",
    "DENIED_SYSCALLS",
    "UID_BASE",
    "UID_SPAN",
    "Walls",
    "WallsError",
    "probe",
    "seccomp_program",
]
