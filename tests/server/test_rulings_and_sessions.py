"""Rulings (signed, chained, once per trial) and the life of credentials (sessions, CSRF,
lockout, expiry, revocation, scopes)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from cityx.core import InputError
from cityx.server import Role, add_user, load_config
from cityx.server.identity import issue_token
from cityx.server.rulings import verify_ruling

from .conftest import World, record_trial


def fresh_trial(world: World, name: str) -> str:
    sub = world.store.submission(world.model_id)
    assert sub is not None
    record_trial(world.store, sub.system_id, sub.version, sub.sha256, name)
    return name


def test_a_ruling_is_signed_chained_and_final(world: World) -> None:
    trial = fresh_trial(world, "trial-ruling")
    body = {
        "decision": "approve-with-conditions",
        "reasons": ["meets the policy"],
        "conditions": ["quarterly drift report"],
    }
    url = f"/api/v1/trials/{trial}/ruling"
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(
                lambda _: world.client.post(url, json=body, headers=world.auth("regulator")),
                range(4),
            )
        )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]  # type: ignore[attr-defined]
    ruling = world.client.get(url, headers=world.auth("vendor")).json()
    signed = verify_ruling(ruling["signature"], ruling["key"])
    assert signed["decision"] == "approve-with-conditions"
    assert signed["trial"] == trial and signed["gate"] == "conditional"
    assert signed["conditions"] == ["quarterly drift report"]
    entry = world.store.audit_entries()[ruling["audit_seq"] - 1]
    assert entry.action == "ruling.recorded" and entry.payload["signature"] == ruling["signature"]
    assert world.client.get("/api/v1/audit/verify", headers=world.auth("auditor")).json()["ok"]
    tampered = ruling["signature"][:-4] + ("AAAA" if ruling["signature"][-4:] != "AAAA" else "BBBB")
    with pytest.raises(ValueError, match="does not verify"):
        verify_ruling(tampered, ruling["key"])
    assert world.client.get(url, headers=world.auth("rival")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "maybe", "reasons": ["x"]},
        {"decision": "approve", "reasons": []},
        {"decision": "approve-with-conditions", "reasons": ["x"]},
        {"decision": "reject", "reasons": ["x"], "conditions": ["y"]},
    ],
)
def test_malformed_rulings_are_422_and_nothing_is_written(world: World, body: dict) -> None:  # type: ignore[type-arg]
    trial = fresh_trial(world, f"trial-bad-{len(world.store.audit_entries())}")
    answer = world.client.post(
        f"/api/v1/trials/{trial}/ruling", json=body, headers=world.auth("regulator")
    )
    assert answer.status_code == 422
    assert world.store.ruling(trial) is None


def test_the_city_key_is_private_to_the_server(world: World) -> None:
    keys = world.config.keys
    assert keys.stat().st_mode & 0o777 == 0o700
    assert [oct(p.stat().st_mode & 0o777) for p in keys.glob("*.key.jwk")] == ["0o600"]


def test_a_browser_session_needs_its_csrf_token(world: World) -> None:
    add_user(
        world.store,
        "browser",
        organisation="city",
        role=Role.AUDITOR,
        city="city",
        password="a long enough password",
    )
    client = world.client
    login = client.post(
        "/api/v1/session", json={"name": "browser", "password": "a long enough password"}
    )
    assert login.status_code == 200
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/api/v1" in cookie
    assert client.get("/api/v1/me").json()["via"] == "session"
    assert client.delete("/api/v1/session").status_code == 403  # no CSRF token
    csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
    assert client.delete("/api/v1/session", headers=csrf).status_code == 200
    assert client.get("/api/v1/me").status_code == 401
    client.cookies.clear()


@pytest.mark.slow  # six Argon2 verifications
def test_logins_lock_out_after_repeated_failures(world: World) -> None:
    add_user(
        world.store,
        "guessed",
        organisation="city",
        role=Role.AUDITOR,
        city="city",
        password="the right password",
    )
    for _ in range(world.config.login_lock_after):
        wrong = world.client.post("/api/v1/session", json={"name": "guessed", "password": "nope"})
        assert wrong.status_code == 401
    right = world.client.post(
        "/api/v1/session", json={"name": "guessed", "password": "the right password"}
    )
    assert right.status_code == 429 and "locked" in right.text
    world.client.cookies.clear()


def test_expired_revoked_and_narrowed_tokens(world: World) -> None:
    add_user(world.store, "temp", organisation="city", role=Role.REGULATOR, city="city")
    expired = issue_token(world.store, "temp", lifetime=timedelta(seconds=-1), actor="t").token
    narrow = issue_token(
        world.store, "temp", scopes=("self",), lifetime=timedelta(hours=1), actor="t"
    ).token
    live = issue_token(world.store, "temp", lifetime=timedelta(hours=1), actor="t").token

    def me(token: str, path: str = "/api/v1/me") -> int:
        return world.client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code

    assert me(expired) == 401
    assert me(narrow) == 200 and me(narrow, "/api/v1/trials") == 403
    assert me(live, "/api/v1/trials") == 200
    # The three above and the one add_user issued.
    assert world.store.revoke_tokens(actor="t", user_name="temp") == 4
    assert me(live) == 401


def test_security_headers_on_every_answer(world: World) -> None:
    for answer in (world.client.get("/api/v1/openapi.json"), world.client.get("/api/v1/me")):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["Cache-Control"] == "no-store"


def test_no_default_users_and_roles_stay_in_their_organisation(world: World) -> None:
    with pytest.raises(InputError, match="city's organisation"):
        add_user(
            world.store, "x1", organisation="metro-analytics", role=Role.REGULATOR, city="city"
        )
    with pytest.raises(InputError, match="cannot belong"):
        add_user(world.store, "x2", organisation="city", role=Role.VENDOR, city="city")
    with pytest.raises(InputError, match="12 characters"):
        add_user(
            world.store, "x3", organisation="city", role=Role.AUDITOR, city="city", password="short"
        )


def test_configuration_from_toml_and_environment(tmp_path: Path) -> None:
    toml = tmp_path / "server.toml"
    toml.write_text("[server]\nport = 9001\nmax_rows = 10\n")
    config = load_config(toml, env={"CITYX_SERVER_MAX_ROWS": "20"}, overrides={"host": "0.0.0.0"})
    assert (config.port, config.max_rows, config.host) == (9001, 20, "0.0.0.0")
    toml.write_text("[server]\nprot = 9001\n")
    with pytest.raises(InputError, match="unknown key 'prot'"):
        load_config(toml, env={})
    with pytest.raises(InputError, match="CITYX_SERVER_NOPE"):
        load_config(None, env={"CITYX_SERVER_NOPE": "1"})
