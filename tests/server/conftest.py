"""A server on a real SQLite store, with one user per role in the city and two vendors.

``world`` is built once per test session (each test makes the users it spends or
changes): the metro-analytics vendor has
uploaded the metro-congestion example (a real ONNX model) and the store
holds a complete trial of it; acme-signals is a second vendor with nothing
of its own.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cityx.server import Role, ServerConfig, add_user
from cityx.server.app import create_app
from cityx.store import Store

from ..support.paths import SUBMISSIONS

METRO = SUBMISSIONS / "metro-congestion"
VENDOR_A, VENDOR_B = "metro-analytics", "acme-signals"
# (user, role, organisation); the first vendor owns the uploaded model.
USERS = (
    ("regulator", Role.REGULATOR, "city"),
    ("vendor", Role.VENDOR, VENDOR_A),
    ("rival", Role.VENDOR, VENDOR_B),
    ("redteam", Role.RED_TEAMER, "city"),
    ("overseer", Role.OVERSEER, "city"),
    ("auditor", Role.AUDITOR, "city"),
    ("admin", Role.ADMIN, "city"),
)


def pack(folder: Path, *, top: str = "sub") -> bytes:
    """``folder`` as a .tar.gz with one top-level folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=top)
    return buffer.getvalue()


@dataclass
class World:
    client: TestClient
    store: Store
    config: ServerConfig
    tokens: dict[str, str]
    model_id: int
    trial_id: str

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def make_config(root: Path, **changes: object) -> ServerConfig:
    options: dict[str, object] = {
        "store": f"sqlite:///{root / 'store.db'}",
        "data_dir": root / "data",
        "secure_cookies": False,  # TestClient speaks plain http to "testserver"
        "default_budget": 500,
    }
    options.update(changes)
    return ServerConfig(**options)  # type: ignore[arg-type]


def record_trial(store: Store, system_id: str, version: str, sha256: str, trial_id: str) -> None:
    """A complete trial of a recorded submission, through the store's own API."""
    store.begin_trial(
        trial_id=trial_id,
        system_id=system_id,
        version=version,
        sha256=sha256,
        seed=0,
        policy_id="cityx.default",
        policy_sha256="0" * 64,
        out_dir="/nowhere",
        plan={"checks": ["performance"]},
    )
    store.finish_trial(
        trial_id=trial_id,
        results={"ok": True},
        findings=[
            {
                "id": "f1",
                "check": "performance",
                "title": "accuracy below target",
                "severity": "medium",
                "principle": "robustness",
            }
        ],
        gate={"decision": "conditional", "reasons": ["accuracy 0.81 < 0.85"]},
    )


def build_world(root: Path, **changes: object) -> Iterator[World]:
    config = make_config(root, **changes)
    store = Store.open(config.store)
    tokens = {
        name: add_user(
            store,
            name,
            organisation=org,
            role=role,
            city="city",
            budget=100 if role is Role.RED_TEAMER else None,
            token_days=1,
        ).token
        for name, role, org in USERS
    }
    with TestClient(create_app(config, store)) as client:
        answer = client.post(
            "/api/v1/submissions",
            files={"archive": ("metro.tar.gz", pack(METRO), "application/gzip")},
            headers={"Authorization": f"Bearer {tokens['vendor']}"},
        )
        assert answer.status_code == 201, answer.text
        model_id = answer.json()["id"]
        sub = store.submission(model_id)
        assert sub is not None
        record_trial(store, sub.system_id, sub.version, sub.sha256, "trial-a")
        yield World(client, store, config, tokens, model_id, "trial-a")
    store.close()


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("server"))
