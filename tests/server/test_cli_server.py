"""``cityx users`` and ``cityx serve``: the token alone on stdout, a real uvicorn that stops."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cityx.server import ServerConfig
from cityx.server.demo import load_demo
from cityx.server.identity import TOKEN_RE
from cityx.store import Store

from ..support.cli import cityx


def test_users_add_prints_the_token_alone(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cityx.db'}"
    run = cityx("users", "add", "alice", "--org", "city", "--role", "regulator", "--store", store)
    assert run.code == 0, run.err
    assert TOKEN_RE.fullmatch(run.out.strip()) and run.out.count("\n") == 1
    again = cityx("users", "add", "alice", "--org", "city", "--role", "auditor", "--store", store)
    assert again.code == 2 and "already exists" in again.err and again.out == ""
    bad = cityx("users", "add", "bob", "--org", "city", "--role", "vendor", "--store", store)
    assert bad.code == 2 and "cannot belong" in bad.err
    listed = cityx("users", "list", "--store", store, "--json").json()
    assert listed == {
        "users": [
            {
                "name": "alice",
                "organisation": "city",
                "role": "regulator",
                "budget": None,
                "has_password": False,
            }
        ]
    }
    assert (
        cityx("users", "revoke", "alice", "--store", store).out == "revoked 1 token(s) of alice\n"
    )
    assert cityx("users", "revoke", "nobody", "--store", store).code == 2


def test_help_examples_run(tmp_path: Path) -> None:
    # Exactly as the --help texts give them; they name a relative sqlite:///cityx.db.
    for example in (
        "cityx users add alice --org city --role regulator --store sqlite:///cityx.db",
        "cityx users list --store sqlite:///cityx.db --json",
        "cityx users revoke alice --store sqlite:///cityx.db",
        "cityx serve --store sqlite:///cityx.db --port 8765 --duration 2",
        "cityx worker --store sqlite:///cityx.db --duration 2",
    ):
        assert example in _help_texts()
        run = cityx(*example.split()[1:], cwd=tmp_path)
        assert run.code == 0, (example, run.err)


def _help_texts() -> str:
    return "".join(
        cityx(*argv, "--help").out
        for argv in (
            ["serve"],
            ["worker"],
            ["users", "add"],
            ["users", "list"],
            ["users", "revoke"],
        )
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_starts_uvicorn_answers_and_stops_by_itself(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cityx.db'}"
    token = cityx("users", "add", "ada", "--org", "city", "--role", "auditor", "--store", store)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cityx.cli.main",
            "serve",
            "--store",
            store,
            "--port",
            str(port),
            "--duration",
            "8",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{base}/openapi.json", timeout=2) as answer:
                    assert "/api/v1/models/{model_id}/predict" in json.load(answer)["paths"]
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, server.stderr
                time.sleep(0.2)
        request = urllib.request.Request(
            f"{base}/me", headers={"Authorization": f"Bearer {token.out.strip()}"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.load(answer)["role"] == "auditor"
            assert answer.headers["X-Frame-Options"] == "DENY"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/me", timeout=5)
        assert refused.value.code == 401
        refused.value.close()
        assert server.wait(timeout=20) == 0
    finally:
        server.kill()
        server.communicate()


@pytest.mark.slow  # fourteen Argon2 hashes
def test_the_demo_makes_one_user_per_role(tmp_path: Path) -> None:
    config = ServerConfig(store=f"sqlite:///{tmp_path / 'c.db'}", data_dir=tmp_path / "data")
    with Store.open(config.store) as store:
        made = load_demo(store, config, run=False)
        assert {u.role for u in made} == {
            "regulator",
            "vendor",
            "red-teamer",
            "overseer",
            "auditor",
            "admin",
        }
        assert all(u.password and u.token for u in made)
        assert store.owners() == {"metro-congestion": "metro-analytics"}
        again = load_demo(store, config, run=False)
        assert all(u.password is None and u.token is None for u in again)
