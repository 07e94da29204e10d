"""``cityx serve --demo``: the demo's predictor trial in the store, and one user per role.

The demo vendor ``metro-analytics`` owns the ``metro-congestion`` system (its
trial is run here, into the server's store, if the store holds none); a
second vendor, ``acme-signals``, has nothing of its own to see, which shows
tenancy at work. Each demo user gets a fresh random password and API token,
printed once; a user that already exists is left alone (its secrets cannot
be printed again: they are not stored).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from cityx.runs import TrialPlan, run_trial
from cityx.runs.demo import example_submission
from cityx.store import Store

from .config import ServerConfig
from .identity import add_user
from .policy import Role

DEMO_SYSTEM = "metro-congestion"
DEMO_VENDOR = "metro-analytics"
OTHER_VENDOR = "acme-signals"


@dataclass(frozen=True, slots=True)
class DemoUser:
    name: str
    role: str
    organisation: str
    password: str | None  # None: the user existed already
    token: str | None


def demo_users(config: ServerConfig) -> list[tuple[str, Role, str]]:
    """(name, role, organisation) of the demo's users."""
    city = config.city
    return [
        ("regulator", Role.REGULATOR, city),
        ("metro", Role.VENDOR, DEMO_VENDOR),
        ("acme", Role.VENDOR, OTHER_VENDOR),
        ("redteam", Role.RED_TEAMER, city),
        ("overseer", Role.OVERSEER, city),
        ("auditor", Role.AUDITOR, city),
        ("admin", Role.ADMIN, city),
    ]


def load_demo(
    store: Store, config: ServerConfig, *, out: Path | None = None, run: bool = True
) -> list[DemoUser]:
    """Put the demo's trial (unless ``run`` is False) and users into ``store``."""
    if run and not any(t.system_id == DEMO_SYSTEM for t in store.trials(limit=1000)):
        run_trial(
            TrialPlan(
                submission=example_submission(DEMO_SYSTEM),
                out=out or config.data_dir / "demo" / DEMO_SYSTEM,
                store=store.url,
            )
        )
    actor = "cityx-demo"
    store.ensure_organisation(DEMO_VENDOR, kind="vendor", actor=actor)
    store.set_owner(DEMO_SYSTEM, DEMO_VENDOR, actor=actor)
    made = []
    for name, role, org in demo_users(config):
        if store.user(name) is not None:
            made.append(DemoUser(name, role.value, org, None, None))
            continue
        password = secrets.token_urlsafe(12)
        issued = add_user(
            store,
            name,
            organisation=org,
            role=role,
            city=config.city,
            budget=200 if role is Role.RED_TEAMER else None,
            password=password,
            token_days=1,
            actor=actor,
        )
        made.append(DemoUser(name, role.value, org, password, issued.token))
    return made


__all__ = ["DEMO_SYSTEM", "DEMO_VENDOR", "DemoUser", "demo_users", "load_demo"]
