"""Vendor code behind walls: hostile entry points try every escape, and none works.

The entry point below tries, from inside ``predict``, what a vendor's code
was seen to do on an unwalled server, and more: read ``/etc/passwd``, the
store (its SQLite file, PostgreSQL's socket and its TCP port), another
vendor's artifact and the server's secrets (its environment, and init's
through ``/proc``), list the machine's folders, write into its own
artifact, trace a process, make a user namespace, and fork until the kernel
refuses. It then raises, naming each attempt ``held`` or ``ESCAPED``: the
model's failure is what a trial reports as a finding, and the message is the
evidence. The same code run without walls escapes (the control), so the
tests can fail.

What "held" means for ``/etc/passwd``: the jail has no ``/etc`` at all (no
account names, no stub), so reading it is FileNotFoundError.

The fork bomb is bounded for the machine's sake (at most 200 processes,
each asleep, gone with the jail) and runs only inside the walls, under a
low ``worker_nproc``; its control is a second model of the same vendor,
which cannot even start while the bomb holds the vendor's processes,
while another vendor's model starts and answers.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyseccomp  # type: ignore[import-untyped]
import pytest
from fastapi.testclient import TestClient

from cityx.core import TargetError
from cityx.server.app import create_app
from cityx.server.scoring import ModelPool
from cityx.server.walls import UID_BASE, UID_SPAN, Walls, WallsError, probe
from cityx.submissions import open_submission
from cityx.targets import Limits

from ..conftest import write_submission
from .conftest import World, build_world, make_config, pack
from .test_policy_matrix import ROW as METRO_ROW

SECRET = "CITYX_TEST_SECRET"
HOSTILE = """\
import ctypes
import errno
import os
import socket
import time

import numpy as np

LABELS = np.array(["free", "moderate", "heavy"])
TARGETS = __TARGETS__
SECRET = __SECRET__
OBJECTS = __OBJECTS__
BOMB = __BOMB__
LIBC = ctypes.CDLL(None, use_errno=True)


def refused(what):
    raise OSError(ctypes.get_errno(), what)


def reader(path):
    def read():
        with open(path, "rb") as handle:
            handle.read(1)
    return read


def secret():
    os.environ[SECRET]


def machine():
    # Python's own folders are there (read-only); the machine's and other models' are not.
    others = [n for n in os.listdir(OBJECTS) if n not in os.getcwd()]
    if any(p in os.listdir("/") for p in ("etc", "home", "var")) or others:
        return
    raise FileNotFoundError(errno.ENOENT, "no machine folders, no other models")


def write():
    with open("escaped.txt", "w") as handle:
        handle.write("x")


def network():
    socket.create_connection(("127.0.0.1", 5432), 1).close()


def postgres_socket():
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect("/var/run/postgresql/.s.PGSQL.5432")


def trace():
    # In a child of its own: a traced worker would be left stopped in the control.
    pid = os.fork()
    if pid == 0:
        os._exit(0 if LIBC.ptrace(0, 0, None, None) == 0 else ctypes.get_errno())
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code != 0:
        raise OSError(code, "ptrace(PTRACE_TRACEME)")


def namespace():
    if LIBC.unshare(0x10000000) != 0:  # CLONE_NEWUSER: the first step of most escapes
        refused("unshare(CLONE_NEWUSER)")


def bomb():
    # Fork until the kernel refuses; bounded at 200 should the walls not hold.
    for _ in range(200):
        if os.fork() == 0:
            time.sleep(60)  # hold the process slot; the jail's end ends it sooner
            os._exit(0)


ATTEMPTS = {
    **{name: reader(path) for name, path in TARGETS.items()},
    "env-secret": secret,  # the server's environment
    "init-env": reader("/proc/1/environ"),  # init's environment
    "dirs": machine,
    "write": write,  # into its own artifact folder
    "tcp": network,  # PostgreSQL on 127.0.0.1:5432
    "pg-socket": postgres_socket,
    "ptrace": trace,
    **({"bomb": bomb} if BOMB else {}),
    "userns": namespace,  # last: in the control it changes the worker's world
}


class Model:
    def predict(self, batch):
        seen = []
        for name, attempt in ATTEMPTS.items():
            try:
                attempt()
            except OSError as exc:
                seen.append(f"{name}={errno.errorcode.get(exc.errno, type(exc).__name__)}")
            except KeyError:
                seen.append(f"{name}=KeyError")
            else:
                seen.append(f"{name}=ESCAPED")
        # Short: the worker quotes 300 characters of a model's exception.
        raise RuntimeError("walls: " + " ".join(seen))


def load():
    return Model()
"""
ROW = {"flow": 10, "occupancy": 50.0, "speed": 30.0, "weekend": 0}
# Each attempt, and how the walls refuse it: no /etc, store or other artifact in the jail;
# no secret in its environment; init's /proc entry belongs to another uid; the artifact
# is read-only; the filter refuses an AF_INET socket, ptrace and a user namespace.
HELD: dict[str, str | tuple[str, ...]] = {
    "passwd": "ENOENT",
    "store": "ENOENT",
    "artifact": "ENOENT",
    "env-secret": "KeyError",
    "init-env": "EACCES",
    "dirs": "ENOENT",
    "write": "EROFS",
    "tcp": "EAFNOSUPPORT",
    "pg-socket": "ENOENT",
    "ptrace": "EPERM",
    "userns": "EPERM",
}


POLICY = """\
schema_version = 1
id = "tiny"
version = "1"
[checks."admission"]
[checks."performance.nominal"]
options = { bootstrap = 50 }
"""


# The tests' own server (its uploads would show in the session world's listings), whose
# organisations may have 16 processes each.
@pytest.fixture(scope="module")
def walls_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("bomb")
    policy = root / "tiny.toml"
    policy.write_text(POLICY)
    yield from build_world(root, trial_policy=policy, worker_nproc=16)


def hostile(world: World, folder: Path, *, bomb: bool = False) -> Path:
    other = world.store.submission(world.model_id)
    assert other is not None
    targets = {
        "passwd": "/etc/passwd",
        "store": str(world.config.store).removeprefix("sqlite:///"),
        "artifact": str(Path(other.path) / "model.onnx"),  # another vendor's
    }
    values = {
        "__TARGETS__": repr(targets),
        "__SECRET__": repr(SECRET),
        "__OBJECTS__": repr(str(world.config.data_dir / "objects")),
        "__BOMB__": repr(bomb),
    }
    code = HOSTILE
    for marker, value in values.items():
        code = code.replace(marker, value)
    return write_submission(
        folder, code.encode(), name="model.py", fmt="entrypoint", entrypoint="model:load"
    )


def upload(world: World, folder: Path, user: str, client: TestClient | None = None) -> int:
    """Upload ``folder`` as ``user``: its submission id (through ``client``, a server of the
    test's own config, when given; the world's otherwise)."""
    made = (client or world.client).post(
        "/api/v1/submissions",
        files={"archive": ("s.tar.gz", pack(folder), "application/gzip")},
        headers=world.auth(user),
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def predict(world: World, model_id: int, client: TestClient | None = None) -> tuple[int, str]:
    answer = (client or world.client).post(
        f"/api/v1/models/{model_id}/predict", json={"rows": [ROW]}, headers=world.auth("regulator")
    )
    return answer.status_code, answer.text


def assert_held(said: str, held: dict[str, str | tuple[str, ...]]) -> None:
    assert "ESCAPED" not in said, said
    for name, how in held.items():
        ways = (how,) if isinstance(how, str) else how
        assert any(f" {name}={way}" in said for way in ways), (name, said)


def full_walls() -> Walls:
    walls, why = probe()
    if walls is None or walls.missing:
        pytest.fail(f"the walls cannot all be built here: {why} (make installs what they need)")
    return walls


def test_a_hostile_entry_point_escapes_nothing_and_keeps_its_worker(
    walls_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = walls_world
    monkeypatch.setenv(SECRET, "hunter2")
    pool = world.client.app.state.cityx.pool  # type: ignore[attr-defined]
    if pool.code_walls() is None:
        pytest.fail(f"the server cannot hold vendor code here: {pool.why}")
    # What the server reports of its walls, to regulators and auditors.
    walls = world.client.get("/api/v1/walls", headers=world.auth("auditor")).json()
    assert walls["contained"] is True and walls["vendor_code"] is True and walls["why"] == "ok"
    assert walls["seccomp"].startswith("on: ") and walls["uids"].startswith("one per organisation")
    folder = hostile(world, tmp_path / "hostile")
    model_id = upload(world, folder, "rival")
    status, said = predict(world, model_id)
    assert status == 502 and "walls: " in said, said
    assert_held(said, HELD)
    # The walled worker lives on between calls: the same jail answers the next call.
    sub = world.store.submission(model_id)
    assert sub is not None
    worker = pool.predictor(model_id, Path(sub.path), owner="acme-signals")
    pid = worker.pid
    assert predict(world, model_id)[0] == 502
    assert worker.pid == pid and worker.restarts == 0
    # The control: the same code in the ordinary isolated worker escapes.
    escapes = (
        r"passwd=ESCAPED store=ESCAPED artifact=ESCAPED env-secret=ESCAPED init-env=\S+ "
        r"dirs=ESCAPED write=ESCAPED tcp=ESCAPED pg-socket=\S+ ptrace=ESCAPED"
    )
    with (
        open_submission(folder).predictor(trust_code=True) as unwalled,
        pytest.raises(TargetError, match=escapes),
    ):
        unwalled.predict(np.array([[10.0, 50.0, 30.0, 0.0]]))


def test_without_walls_vendor_code_is_refused_with_the_reason(
    walls_world: World, tmp_path: Path, entrypoint_submission: object
) -> None:
    world = walls_world
    config = make_config(tmp_path, contain=False)
    folder = entrypoint_submission("pass")  # type: ignore[operator]
    with TestClient(create_app(config, world.store)) as client:
        made = upload(world, folder, "rival", client)
        code, said = predict(world, made, client)
        trial = client.post(f"/api/v1/submissions/{made}/trials", headers=world.auth("rival"))
        status = client.get("/api/v1/walls", headers=world.auth("regulator")).json()
    assert code == 422
    assert "runs the vendor's code" in said and "switched off" in said
    assert trial.status_code == 422 and "switched off" in trial.text
    assert status == {"contained": False, "why": status["why"], "vendor_code": False}


def test_walls_without_their_own_uids_hold_no_vendor_code(
    walls_world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    entrypoint_submission: object,
) -> None:
    world = walls_world
    # A server that is not root gets the user-namespace jail: every vendor shares its uid.
    monkeypatch.setattr("cityx.server.walls.os.geteuid", lambda: 1000)
    walls, why = probe()
    assert walls is not None and not walls.holds_vendor_code, why
    assert "not root" in why and "not root" in str(walls.status()["uids"])
    args = walls.around(tmp_path, vendor="acme")
    assert "--unshare-all" in args and "setpriv" not in " ".join(args)
    # Such a server refuses entry points over the API, saying why.
    folder = entrypoint_submission("pass")  # type: ignore[operator]
    with TestClient(create_app(make_config(tmp_path), world.store)) as client:
        code, said = predict(world, upload(world, folder, "rival", client), client)
        status = client.get("/api/v1/walls", headers=world.auth("auditor")).json()
    assert code == 422 and "not root" in said, said
    assert status["contained"] is True and status["vendor_code"] is False


def test_without_a_seccomp_filter_the_walls_stand_and_say_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_libseccomp() -> bytes:
        raise OSError("libseccomp.so.2: cannot open shared object file")

    monkeypatch.setattr("cityx.server.walls.seccomp_program", no_libseccomp)
    pool = ModelPool(limits=Limits())
    with caplog.at_level(logging.WARNING, logger="cityx.server"):
        walls = pool.walls()
    assert walls is not None and walls.seccomp is None and walls.holds_vendor_code
    assert "libseccomp cannot build a filter here" in caplog.text
    status = pool.status()
    assert str(status["seccomp"]).startswith("off: libseccomp cannot build a filter here")
    assert "--seccomp" not in walls.around(Path("/usr"), vendor="acme")


def test_the_jail_binds_only_python_cityx_and_the_model_under_the_vendors_uid(
    tmp_path: Path,
) -> None:
    walls = full_walls()
    args = walls.around(tmp_path, vendor="acme")
    binds = {args[i + 1] for i, a in enumerate(args) if a == "--ro-bind"}
    assert binds == {"/usr", str(tmp_path.resolve()), *map(str, walls.system)}
    assert not {"/", "/tmp", "/etc", "/home", "/var"} & binds
    for wall in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--clearenv", "--seccomp"):
        assert wall in args
    # One uid per organisation, in the documented range, the same one every time; two
    # servers (realms) on one machine do not share them.
    uid = walls.uid_for("acme")
    assert UID_BASE <= uid < UID_BASE + UID_SPAN
    assert uid == walls.uid_for("acme") != walls.uid_for("metro")
    assert uid != replace(walls, realm="/srv/other").uid_for("acme")
    setpriv = args.index(str(walls.setpriv))
    assert args[setpriv:] == (
        str(walls.setpriv),
        *("--reuid", str(uid), "--regid", str(uid), "--clear-groups"),
        *("--inh-caps=-all", "--bounding-set=-all", "--nnp", "--"),
    )
    assert f"--nproc={walls.nproc}:{walls.nproc}" in args
    assert walls.status()["vendor_code"] is True


def test_two_organisations_whose_uids_collide_are_not_jailed_together(tmp_path: Path) -> None:
    walls = replace(full_walls(), realm=str(tmp_path))
    seen: dict[int, str] = {}
    for i in range(200_000):  # a birthday collision in 2**28 comes after ~20 000 names
        name = f"org-{i}"
        first = seen.setdefault(walls.uid_for(name), name)
        if first != name:
            break
    assert first != name, "no collision found"
    walls.around(tmp_path, vendor=first)
    with pytest.raises(WallsError, match="hash to the same uid"):
        walls.around(tmp_path, vendor=name)
    walls.around(tmp_path, vendor=first)  # the first keeps its uid


# Run inside a jail: each call's outcome, "ok" or the errno's name.
PROBE = r"""
import ctypes, errno, json, os, socket, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
NR = json.loads(sys.argv[2])  # this architecture's syscall numbers
out = {}
def outcome(name, result):
    out[name] = "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]
def forked(name, call):
    pid = os.fork()
    if pid == 0:
        os._exit(0 if call() >= 0 else ctypes.get_errno())
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    out[name] = "ok" if code == 0 else errno.errorcode[code]
outcome("unshare(CLONE_NEWUSER)", libc.unshare(0x10000000))
outcome("add_key", libc.syscall(NR['add_key'], b"user", b"cityx", b"x", 1, -2))
outcome("personality(ADDR_NO_RANDOMIZE)", libc.personality(0x0040000))
outcome("personality(PER_LINUX)", libc.personality(0))
outcome("personality(query)", libc.personality(0xFFFFFFFF))
for family in ("AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"):
    try:
        socket.socket(getattr(socket, family), socket.SOCK_DGRAM).close()
        out[family] = "ok"
    except OSError as exc:
        out[family] = errno.errorcode[exc.errno]
thread = threading.Thread(target=lambda: None)
thread.start()
thread.join()
forked("fork", lambda: 0)
if sys.argv[1] == "filtered":
    forked("ptrace(PTRACE_TRACEME)", lambda: libc.ptrace(0, 0, None, None))
    outcome("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
    outcome("bpf", libc.syscall(NR['bpf'], 5, None, 0))
    outcome("perf_event_open", libc.syscall(NR['perf_event_open'], None, 0, -1, -1, 0))
    outcome("keyctl", libc.syscall(NR['keyctl'], 0, -3, 0))
    outcome("setns", libc.syscall(NR['setns'], 0, 0))
    outcome("io_uring_setup", libc.syscall(NR['io_uring_setup'], 1, None))
    outcome("kexec_load", libc.syscall(NR['kexec_load'], 0, 0, None, 0))
    forked("clone(CLONE_NEWNET)", lambda: libc.syscall(NR['clone'], 0x40000000 | 17, 0, 0, 0, 0))
status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines())
out["seccomp mode"] = status["Seccomp"].strip()
out["uid"] = os.getuid()
print(json.dumps(out))
"""


# Called by number (libc wraps few of them), resolved for this architecture by libseccomp.
CALLS = ("add_key", "bpf", "perf_event_open", "keyctl", "setns", "io_uring_setup")
CALLS += ("kexec_load", "clone")


def in_jail(walls: Walls, folder: Path, mode: str) -> dict[str, object]:
    jail = walls.around(folder, vendor="acme")
    arch = pyseccomp.system_arch()
    numbers = {name: pyseccomp.resolve_syscall(arch, name) for name in CALLS}
    done = subprocess.run(
        [*jail, sys.executable, "-c", PROBE, mode, json.dumps(numbers)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    found: dict[str, object] = json.loads(done.stdout)
    return found


def test_the_seccomp_filter_refuses_what_an_escape_needs_and_a_model_does_not(
    tmp_path: Path,
) -> None:
    walls = full_walls()
    filtered = in_jail(walls, tmp_path, "filtered")
    denied = {
        **dict.fromkeys(("AF_INET", "AF_INET6", "AF_NETLINK"), "EAFNOSUPPORT"),
        **dict.fromkeys(
            (
                "unshare(CLONE_NEWUSER)",
                "add_key",
                "personality(ADDR_NO_RANDOMIZE)",
                "ptrace(PTRACE_TRACEME)",
                "mount",
                "bpf",
                "perf_event_open",
                "keyctl",
                "setns",
                "io_uring_setup",
                "kexec_load",
                "clone(CLONE_NEWNET)",
            ),
            "EPERM",
        ),
    }
    allowed = ("AF_UNIX", "fork", "personality(PER_LINUX)", "personality(query)")
    assert {k: filtered[k] for k in denied} == denied
    assert {k: filtered[k] for k in allowed} == dict.fromkeys(allowed, "ok")
    assert filtered["seccomp mode"] == "2" and filtered["uid"] == walls.uid_for("acme")
    # The control: the same jail without the filter lets these through, so it is the
    # filter that refuses them (the namespaces alone do not).
    unfiltered = in_jail(replace(walls, seccomp=None), tmp_path, "control")
    assert unfiltered["seccomp mode"] == "0"
    for name in ("unshare(CLONE_NEWUSER)", "add_key", "personality(ADDR_NO_RANDOMIZE)", "AF_INET"):
        assert unfiltered[name] == "ok", (name, unfiltered)


# ---------------------------------------------------------------------------------------
# One vendor's fork bomb, on a server whose organisations may have 16 processes each.

CALM = """\
import numpy as np

LABELS = np.array(["free", "moderate", "heavy"])


class Model:
    def predict(self, batch):
        return LABELS[(batch[:, 1] // 34).astype(int).clip(0, 2)]


def load():
    return Model()
"""


@pytest.mark.slow
def test_a_fork_bomb_starves_only_its_own_vendor_and_its_trial_reports_every_escape(
    walls_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET, "hunter2")
    world = walls_world
    pool = world.client.app.state.cityx.pool  # type: ignore[attr-defined]
    if pool.code_walls() is None:
        pytest.fail(f"the server cannot hold vendor code here: {pool.why}")
    bomber = upload(world, hostile(world, tmp_path / "bomber", bomb=True), "rival")
    calm = tmp_path / "calm"
    write_submission(
        calm, CALM.encode(), name="model.py", fmt="entrypoint", entrypoint="model:load"
    )
    bomber_calm = upload(world, calm, "rival")
    # Vendor A (acme-signals) bombs: its worker forks until its uid's processes run out.
    status, said = predict(world, bomber)
    assert status == 502, said
    assert_held(said, {**HELD, "bomb": "EAGAIN"})
    # While the bomb holds them, vendor B's model (metro-analytics) starts and answers...
    answer = world.client.post(
        f"/api/v1/models/{world.model_id}/predict",
        json={"rows": [METRO_ROW]},
        headers=world.auth("regulator"),
    )
    assert answer.status_code == 200, answer.text
    # (an ONNX model runs no vendor code, and gets the same walls: B's own uid)
    assert not gone(pool.walls().uid_for("metro-analytics"), s=0)
    # ...and A's own second model cannot even start (the control: the limit bites).
    status, said = predict(world, bomber_calm)
    assert status == 502 and "worker died while loading" in said, said
    # A's trial: the bomb goes off again inside the trial's jail, and is a finding.
    pool.close()  # ends A's jail, and the bomb with it: nothing of A's uid is left
    uid = pool.walls().uid_for("acme-signals")
    assert gone(uid), f"processes of uid {uid} outlived their jail"
    job = world.client.post(f"/api/v1/submissions/{bomber}/trials", headers=world.auth("rival"))
    assert job.status_code == 202, job.text
    done = wait_job(world, int(job.json()["job"]))
    assert done["status"] == "done", done
    trial = world.client.get(f"/api/v1/trials/{done['trial']}", headers=world.auth("rival"))
    findings = trial.json()["results"]["findings"]
    failure = [f for f in findings if f["id"].endswith("/target-failure")]
    assert failure, findings
    assert gone(uid), f"processes of uid {uid} outlived the trial's jail"
    # A second call in the same jail finds the processes still held: even the ptrace
    # attempt's own fork is refused then.
    assert_held(
        failure[0]["description"], {**HELD, "ptrace": ("EPERM", "EAGAIN"), "bomb": "EAGAIN"}
    )


def wait_job(world: World, job: int, s: float = 180) -> dict[str, object]:
    deadline = time.monotonic() + s
    while True:
        found = world.client.get(f"/api/v1/jobs/{job}", headers=world.auth("regulator")).json()
        if found["status"] in ("done", "failed") or time.monotonic() > deadline:
            return dict(found)
        time.sleep(0.3)


def gone(uid: int, s: float = 10) -> bool:
    """Whether no process of ``uid`` is left (a killed jail's end takes a moment)."""
    deadline = time.monotonic() + s
    while True:
        left = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                text = status.read_text()
            except OSError:  # ended meanwhile
                continue
            line = next((x for x in text.splitlines() if x.startswith("Uid:")), "")
            if line.split()[1:2] == [str(uid)]:
                left.append(status.parent.name)
        if not left or time.monotonic() > deadline:
            return not left
        time.sleep(0.2)
