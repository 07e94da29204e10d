"""Every route x every role against the written matrix; a route missing from it fails.

The matrix below is written out by hand, apart from the policy module, so a
change of policy must be made twice to pass: once in cityx.server.policy,
once here.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from cityx.server import ROUTE_RULES

from .conftest import World

R, V, T, OV, A, M = "regulator", "vendor", "redteam", "overseer", "auditor", "admin"
EVERYONE = {R, V, T, OV, A, M}
PUBLIC = "public"
MATRIX: dict[tuple[str, str], set[str] | str] = {
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("POST", "/api/v1/session"): PUBLIC,
    ("DELETE", "/api/v1/session"): EVERYONE,
    ("GET", "/api/v1/me"): EVERYONE,
    ("GET", "/api/v1/budgets"): EVERYONE,
    ("POST", "/api/v1/submissions"): {V},
    ("GET", "/api/v1/submissions"): {R, V, T, A},
    ("GET", "/api/v1/submissions/{submission_id}"): {R, V, T, A},
    ("GET", "/api/v1/submissions/{submission_id}/artifact"): {V},
    ("GET", "/api/v1/trials"): {R, V, A},
    ("GET", "/api/v1/trials/{trial_id}"): {R, V, A},
    ("POST", "/api/v1/trials/{trial_id}/ruling"): {R},
    ("GET", "/api/v1/trials/{trial_id}/ruling"): {R, V, A},
    ("POST", "/api/v1/models/{model_id}/predict"): {R, V, T},
    ("GET", "/api/v1/audit/verify"): {R, A},
    ("GET", "/api/v1/audit/entries"): {R, A},
    ("GET", "/api/v1/alerts"): {R, A},
    ("GET", "/api/v1/walls"): {R, A},
    ("GET", "/api/v1/users"): {M},
    ("POST", "/api/v1/submissions/{submission_id}/trials"): {R, V},
    ("GET", "/api/v1/jobs"): {R, V, A},
    ("GET", "/api/v1/jobs/{job_id}"): {R, V, A},
    ("GET", "/api/v1/jobs/{job_id}/events"): {R, V, A},
    ("POST", "/api/v1/jobs/{job_id}/cancel"): {R, V},
    ("POST", "/api/v1/runs"): {R, OV},
    ("GET", "/api/v1/runs"): {R, OV, A},
    ("GET", "/api/v1/runs/{run_id}"): {R, OV, A},
    ("GET", "/api/v1/runs/{run_id}/state"): {R, OV, A},
    ("GET", "/api/v1/runs/{run_id}/commands"): {R, OV, A},
    ("POST", "/api/v1/runs/{run_id}/commands"): {OV},
    ("POST", "/api/v1/runs/{run_id}/commands/{command_id}/reason"): {OV},
}
ROW = {
    "lanes": 2,
    "flow_veh_h": 120.0,
    "occupancy_pct": 30.3,
    "area_occupancy_pct": 2.8,
    "mean_speed_kmh": 15.7,
    "free_flow_kmh": 50.0,
    "speed_ratio": 0.31,
    "halting_veh": 0.65,
    "max_jam_m": 12.5,
    "delay_s": 16.1,
}


def app_routes(world: World) -> set[tuple[str, str]]:
    found = set()
    for route in world.client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, APIRoute | Route) and route.path.startswith("/api/v1"):
            found |= {(m, route.path) for m in (route.methods or ()) if m != "HEAD"}
    return found


def test_every_route_has_a_policy_rule_and_a_matrix_row(world: World) -> None:
    routes = app_routes(world)
    assert routes == set(ROUTE_RULES), "a route without a policy rule, or a rule without a route"
    assert routes == set(MATRIX), "a route missing from the written matrix"
    assert not [r for r in world.client.app.routes if not hasattr(r, "path")]  # type: ignore[attr-defined]


_ENDED: dict[int, int] = {}


def ended_job(world: World) -> int:
    """A job of the first vendor's model that has ended (cancelled while queued), so that
    the cells read and cancel it without running a trial; one per world."""
    if id(world) in _ENDED:
        return _ENDED[id(world)]
    sub = world.store.submission(world.model_id)
    assert sub is not None
    job = world.store.add_job(
        kind="trial",
        submission_id=sub.id,
        system_id=sub.system_id,
        organisation="metro-analytics",
        actor="matrix-test",
        params={"seed": 0},
    )
    world.store.request_cancel(job, actor="matrix-test")
    _ENDED[id(world)] = job
    return job


_RUNS: dict[int, str] = {}


def ended_run(world: World) -> str:
    """A live run assigned to the overseer that has ended (recorded, never started), so
    that the cells read and command it without a simulation; one per world."""
    if id(world) not in _RUNS:
        run_id = f"lr-matrix{id(world) % 10**8}"
        world.store.add_live_run(
            run_id=run_id,
            scenario="cologne1",
            controller="fixed",
            seconds=10,
            seed=0,
            pace=None,
            overseers=["overseer"],
            out_dir="/nowhere",
            actor="matrix-test",
        )
        world.store.finish_live_run(
            run_id, status="failed", result=None, error="matrix test", actor="matrix-test"
        )
        _RUNS[id(world)] = run_id
    return _RUNS[id(world)]


def call(world: World, method: str, path: str, user: str | None) -> Any:
    url = (
        path.replace("{run_id}", ended_run(world) if "{run_id}" in path else "")
        .replace("{command_id}", "no-such-command")
        .replace("{job_id}", str(ended_job(world)) if "{job_id}" in path else "")
        .replace("{submission_id}", str(world.model_id))
        .replace("{model_id}", str(world.model_id))
        .replace("{trial_id}", world.trial_id)
    )
    headers = world.auth(user) if user else {}
    body: dict[str, Any] = {}
    if path.endswith("/predict"):
        body = {"json": {"rows": [ROW]}}
    elif path.endswith("/ruling") and method == "POST":
        body = {"json": {"decision": "reject", "reasons": ["matrix test"]}}
    elif path.endswith("/session") and method == "POST":
        body = {"json": {"name": "nobody", "password": "not a password at all"}}
    elif path == "/api/v1/runs" and method == "POST":
        # An unknown scenario: the cell is checked (422 past the guard), no run starts.
        body = {"json": {"scenario": "no-such-scenario", "seconds": 5}}
    elif path.endswith("/commands") and method == "POST":
        body = {"json": {"action": "hold", "intersection": "*"}}  # the run ended: 409
    elif path.endswith("/reason") and method == "POST":
        body = {"json": {"reason": "matrix test"}}
    elif path.endswith("/submissions") and method == "POST":
        body = {"files": {"archive": ("x.tar.gz", b"not an archive", "application/gzip")}}
    answer = world.client.request(method, url, headers=headers, **body)
    if path.endswith("/trials") and answer.status_code == 202:
        # The cell is checked; the trial itself is not this test's business.
        job = answer.json()["job"]
        world.client.post(f"/api/v1/jobs/{job}/cancel", headers=world.auth(R))
        # A running job ends (and is audited) when the runner has killed it: wait for that,
        # so that no later test counts its entry.
        deadline = time.monotonic() + 30
        while not getattr(world.store.job(job), "finished", True) and time.monotonic() < deadline:
            time.sleep(0.05)
    return answer


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
def test_route_by_role(world: World, method: str, path: str) -> None:
    # A ruling to read, whatever order the cells run in (a second ruling is a 409).
    call(world, "POST", "/api/v1/trials/{trial_id}/ruling", R)
    allowed = MATRIX[(method, path)]
    anonymous = call(world, method, path, None)
    if allowed == PUBLIC:
        # Past the guard: a wrong login is the handler's 401, without the guard's challenge.
        assert anonymous.status_code != 403, anonymous.text
        assert "WWW-Authenticate" not in anonymous.headers
        return
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    for user in sorted(EVERYONE):
        answer = call(world, method, path, user)
        if user in allowed:
            assert answer.status_code not in (401, 403, 404), (user, answer.text)
        else:
            assert answer.status_code == 403, (user, answer.text)
