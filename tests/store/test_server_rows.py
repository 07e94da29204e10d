"""The server's rows on both backends: identities, budgets charged concurrently, rulings once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from cityx.core import StoreError
from cityx.store import Store


def test_identities_tokens_and_owners(any_url: str) -> None:
    with Store.open(any_url) as store:
        assert store.ensure_organisation("city", kind="city", actor="t")
        assert not store.ensure_organisation("city", kind="city", actor="t")
        store.add_user(
            "ada", organisation="city", role="auditor", password_hash=None, budget=None, actor="t"
        )
        with pytest.raises(StoreError, match="already exists"):
            store.add_user(
                "ada", organisation="city", role="admin", password_hash=None, budget=None, actor="t"
            )
        store.add_token(
            "t1",
            user_name="ada",
            kind="api",
            secret_sha256="0" * 64,
            scopes=["*"],
            expires_at="2999-01-01T00:00:00Z",
            actor="t",
        )
        token = store.token("t1")
        assert token is not None and token.user.name == "ada" and token.scopes == ("*",)
        assert store.revoke_tokens(actor="t", user_name="ada") == 1
        assert store.token("t1").revoked_at is not None  # type: ignore[union-attr]
        store.set_owner("city/x", "city", actor="t")
        store.ensure_organisation("acme", kind="vendor", actor="t")
        with pytest.raises(StoreError, match="another organisation"):
            store.set_owner("city/x", "acme", actor="t")
        assert store.verify_audit().ok


def test_concurrent_charges_never_overrun_a_budget(any_url: str) -> None:
    with Store.open(any_url) as store:

        def spend(i: int) -> bool:
            return store.charge(
                grants={"user:a": 25, "org:o": 40},
                system_id="o/m",
                units=1,
                actor="user:a",
                payload={"i": i},
            ).spent

        with ThreadPoolExecutor(max_workers=16) as pool:
            spent = list(pool.map(spend, range(40)))
        assert spent.count(True) == 25
        assert store.budgets("user:a") == {"o/m": (25, 25)}
        assert store.budgets("org:o") == {"o/m": (40, 25)}
        refused = store.charge(
            grants={"user:a": 25}, system_id="o/m", units=1, actor="a", payload={}
        )
        assert (refused.spent, refused.remaining) == (False, 0)
        assert store.verify_audit().ok
