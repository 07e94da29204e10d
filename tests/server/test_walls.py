"""Vendor code behind walls: a hostile entry point tries every escape, and none works.

The entry point below tries, from inside ``predict``, what a vendor's code
was seen to do on an unwalled server: read /etc/passwd, the store, another
vendor's artifact and the server's environment secrets, list the machine's
folders, write outside its scratch, and connect to PostgreSQL on loopback.
It raises naming every escape that worked, so a 200 answer means none did.
The same code run without walls escapes (the control), so the test can fail.
A fork bomb is not tried: on a shared machine, and with the server running
as root here, nothing but the call timeout would stop it (docs/server.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from cityx.core import TargetError
from cityx.server.app import create_app
from cityx.server.walls import probe
from cityx.submissions import open_submission

from ..conftest import write_submission
from .conftest import World, make_config, pack

SECRET = "CITYX_TEST_SECRET"
HOSTILE = """\
import os
import socket

import numpy as np

LABELS = np.array(["free", "moderate", "heavy"])
TARGETS = {targets!r}


class Model:
    def predict(self, batch):
        escaped = []
        for name, path in TARGETS.items():
            try:
                with open(path, "rb") as handle:
                    handle.read(1)
                escaped.append(name)
            except OSError:
                pass
        if {secret!r} in os.environ:
            escaped.append("environment secret")
        # Python's own folders are there (read-only); the machine's and other models' are not.
        objects = {objects!r}
        others = [n for n in os.listdir(objects) if n not in os.getcwd()]
        if any(p in os.listdir("/") for p in ("etc", "home", "var")) or others:
            escaped.append("machine folders")
        try:
            with open("escaped.txt", "w") as handle:
                handle.write("x")
            escaped.append("write into the artifact folder")
        except OSError:
            pass
        try:
            socket.create_connection(("127.0.0.1", 5432), 1).close()
            escaped.append("network")
        except OSError:
            pass
        with open("/tmp/scratch.txt", "w") as handle:  # its private scratch works
            handle.write("ok")
        if escaped:
            raise RuntimeError("escaped: " + ", ".join(escaped))
        return LABELS[(batch[:, 1] // 34).astype(int).clip(0, 2)]


def load():
    return Model()
"""
ROW = {"flow": 10, "occupancy": 50.0, "speed": 30.0, "weekend": 0}


def hostile(world: World, folder: Path) -> Path:
    other = world.store.submission(world.model_id)
    assert other is not None
    targets = {
        "/etc/passwd": "/etc/passwd",
        "the store": str(world.config.store).removeprefix("sqlite:///"),
        "another vendor's artifact": str(Path(other.path) / "model.onnx"),
    }
    objects = str(world.config.data_dir / "objects")
    code = HOSTILE.format(targets=targets, secret=SECRET, objects=objects)
    return write_submission(
        folder, code.encode(), name="model.py", fmt="entrypoint", entrypoint="model:load"
    )


def test_a_hostile_entry_point_escapes_nothing(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET, "hunter2")
    if world.client.app.state.cityx.pool.walls() is None:  # type: ignore[attr-defined]
        pytest.fail(
            "bubblewrap cannot build walls here: make installs it (apt-get install bubblewrap)"
        )
    folder = hostile(world, tmp_path / "hostile")
    made = world.client.post(
        "/api/v1/submissions",
        files={"archive": ("h.tar.gz", pack(folder), "application/gzip")},
        headers=world.auth("rival"),
    )
    assert made.status_code == 201, made.text
    answer = world.client.post(
        f"/api/v1/models/{made.json()['id']}/predict",
        json={"rows": [ROW]},
        headers=world.auth("regulator"),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == ["moderate"]
    # The control: the same code in the ordinary isolated worker escapes.
    escapes = r"escaped: /etc/passwd, the store, another vendor's artifact, environment secret"
    with (
        open_submission(folder).predictor() as unwalled,
        pytest.raises(TargetError, match=escapes),
    ):
        unwalled.predict(np.array([[10.0, 50.0, 30.0, 0.0]]))


def test_without_walls_vendor_code_is_refused_with_the_reason(
    world: World, tmp_path: Path, entrypoint_submission: Any
) -> None:
    config = make_config(tmp_path, contain=False)
    folder = entrypoint_submission("pass")
    with TestClient(create_app(config, world.store)) as client:
        made = client.post(
            "/api/v1/submissions",
            files={"archive": ("e.tar.gz", pack(folder), "application/gzip")},
            headers=world.auth("rival"),
        )
        answer = client.post(
            f"/api/v1/models/{made.json()['id']}/predict",
            json={"rows": [ROW]},
            headers=world.auth("regulator"),
        )
    assert answer.status_code == 422
    assert "runs the vendor's code" in answer.text and "switched off" in answer.text


def test_the_jail_binds_only_python_cityx_and_the_model(tmp_path: Path) -> None:
    walls, why = probe()
    assert walls is not None, why
    args = walls.around(tmp_path, vendor="acme")
    binds = {args[i + 1] for i, a in enumerate(args) if a == "--ro-bind"}
    assert binds == {"/usr", str(tmp_path.resolve()), *map(str, walls.system)}
    assert not {"/", "/tmp", "/etc", "/home"} & binds
    assert "--unshare-all" in args and "--clearenv" in args
    # One uid per vendor inside the jail, the same one every time.
    uid = args[args.index("--uid") + 1]
    assert uid == walls.around(tmp_path, vendor="acme")[args.index("--uid") + 1]
    assert uid != walls.around(tmp_path, vendor="metro")[args.index("--uid") + 1]
