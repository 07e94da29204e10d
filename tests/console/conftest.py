"""A console on a real SQLite store: one user per role (with passwords) and two vendors.

metro-analytics has uploaded the metro-congestion example and holds complete
trials of two versions of it (``trial-v1``, ``trial-v2``) and spare trials
for the tests that record a ruling; acme-signals is a second vendor with
nothing of its own (the cross-tenant checks).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cityx.server import Role, ServerConfig, add_user
from cityx.server.app import create_app
from cityx.server.console.session import CONSOLE_COOKIE
from cityx.server.identity import SESSION, issue_token
from cityx.store import Store

from ..server.conftest import METRO, make_config, pack, record_trial

PASSWORD = "correct horse battery staple"
USERS = (
    ("regulator", Role.REGULATOR, "city"),
    ("vendor", Role.VENDOR, "metro-analytics"),
    ("rival", Role.VENDOR, "acme-signals"),
    ("redteam", Role.RED_TEAMER, "city"),
    ("overseer", Role.OVERSEER, "city"),
    ("auditor", Role.AUDITOR, "city"),
    ("admin", Role.ADMIN, "city"),
)
TRIALS = ("trial-v1", "trial-v2", "trial-spare-1", "trial-spare-2", "trial-browser")
CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')
ONCE_RE = re.compile(r'name="once" value="([^"]*)"')


@dataclass
class Console:
    config: ServerConfig
    store: Store
    tokens: dict[str, str]
    submission_id: int
    system: str

    def client(self) -> TestClient:
        return TestClient(create_app(self.config, self.store), follow_redirects=False)


def build_console(root: Path) -> Console:
    config = make_config(root, login_per_minute=10_000)
    store = Store.open(config.store)
    tokens = {
        name: add_user(
            store, name, organisation=org, role=role, city="city", password=PASSWORD, token_days=1
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
    sub = store.submission(answer.json()["id"])
    assert sub is not None
    # An older version of the same system, recorded directly (the same model file).
    store.record_submission(
        system_id=sub.system_id,
        version="1.0.0",
        vendor=sub.vendor,
        kind=sub.kind,
        sha256=sub.sha256,
        path=sub.path,
        manifest=dict(sub.manifest),
    )
    for trial_id in TRIALS:
        version = "1.0.0" if trial_id == "trial-v1" else sub.version
        record_trial(store, sub.system_id, version, sub.sha256, trial_id)
    return Console(config, store, tokens, sub.id, sub.system_id)


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    built = build_console(tmp_path_factory.mktemp("console"))
    yield built
    built.store.close()


def session_for(console: Console, user: str) -> str:
    """A browser session token for ``user``, issued as the login form would (without the
    Argon2 check, which the login tests exercise: it costs a second a login here)."""
    return issue_token(
        console.store, user, kind=SESSION, lifetime=timedelta(hours=1), actor="test"
    ).token


def signed_in(client: TestClient, console: Console, user: str) -> TestClient:
    client.cookies.set(CONSOLE_COOKIE, session_for(console, user))
    return client


def login(client: TestClient, user: str, *, next_: str = "/console") -> None:
    """Log ``client`` in through the form, as a browser would."""
    page = client.get(f"/login?next={next_}")
    csrf = CSRF_RE.search(page.text)
    assert csrf, page.text
    answer = client.post(
        "/login",
        data={"username": user, "password": PASSWORD, "csrf": csrf.group(1), "next": next_},
    )
    assert answer.status_code == 303, answer.text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test, so fixtures can tell that it failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
