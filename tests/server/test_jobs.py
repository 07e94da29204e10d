"""Trial jobs over the API: request, progress, the namespaced trial, tenancy, cancel, failure.

The trials here are of a tiny ONNX predictor (400 holdout rows) under a
two-check policy, so that one takes seconds; the cancel test uses an entry
point (run behind the walls) whose predict sleeps, so that it is still running
when cancelled. The same policy gives a controller (acme-signals) admission
and one short sandbox run against fixed-time control.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityx.server import Role, add_user
from cityx.server.app import create_app
from cityx.server.walls import probe
from cityx.store import Store

from ..conftest import ENTRYPOINT, write_submission
from ..support.paths import SUBMISSIONS
from .conftest import World, build_world, make_config, pack

POLICY = """\
schema_version = 1
id = "tiny"
version = "1"
[checks."admission"]
[checks."performance.nominal"]
options = { bootstrap = 50 }
[checks."sandbox.nominal"]
options = { scenario = "cologne1", seeds = [1], demands = [1.0], seconds = 60, \
baselines = ["fixed"] }
"""
ENTRY = "model:load"


@pytest.fixture(scope="module")
def jobs_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("jobs")
    policy = root / "tiny.toml"
    policy.write_text(POLICY)
    yield from build_world(root, trial_policy=policy, trial_workers=1)


def upload(world: World, folder: Path, user: str = "vendor") -> int:
    answer = world.client.post(
        "/api/v1/submissions",
        files={"archive": ("s.tar.gz", pack(folder), "application/gzip")},
        headers=world.auth(user),
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


@pytest.fixture(scope="module")
def tiny_id(
    jobs_world: World, onnx_model_bytes: bytes, tmp_path_factory: pytest.TempPathFactory
) -> int:
    folder = tmp_path_factory.mktemp("tiny") / "tiny"
    write_submission(folder, onnx_model_bytes, name="model.onnx", fmt="onnx")
    return upload(jobs_world, folder)


def wait(
    world: World, job: int, *, until: tuple[str, ...] = ("done", "failed"), s: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + s
    while True:
        found = world.client.get(f"/api/v1/jobs/{job}", headers=world.auth("regulator")).json()
        if found["status"] in until or time.monotonic() > deadline:
            return dict(found)
        time.sleep(0.2)


def request(world: World, sid: int, user: str = "vendor", seed: int = 0) -> int:
    answer = world.client.post(
        f"/api/v1/submissions/{sid}/trials", json={"seed": seed}, headers=world.auth(user)
    )
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == f"/api/v1/jobs/{answer.json()['job']}"
    return int(answer.json()["job"])


def actions(world: World, subject: str) -> list[str]:
    return [e.action for e in world.store.audit_entries() if e.subject == subject]


def test_a_requested_trial_runs_in_a_job_and_lands_on_the_namespaced_system(
    jobs_world: World, tiny_id: int
) -> None:
    job = request(jobs_world, tiny_id)
    done = wait(jobs_world, job)
    assert done["status"] == "done", done
    assert done["checks"] == {"done": 2, "total": 2}
    assert done["wall_s"] is not None and done["wall_s"] > 0
    trial_id = done["result"]["trial"]
    assert done["trial"] == trial_id and done["error"] is None
    trial = jobs_world.client.get(f"/api/v1/trials/{trial_id}", headers=jobs_world.auth("vendor"))
    assert trial.status_code == 200
    body = trial.json()
    # The server's namespaced id, not the manifest's own: the vendor owns the trial.
    assert body["system"] == "metro-analytics/tiny-congestion"
    assert body["status"] == "complete" and body["organisation"] == "metro-analytics"
    assert body["results"]["submission"]["id"] == body["system"]
    assert Path(jobs_world.config.data_dir / "trials" / trial_id / "results.json").is_file()
    assert actions(jobs_world, f"job {job}") == ["job.queued", "job.started", "job.done"]
    # The same progress as server-sent events: the job has ended, so the stream does too.
    events = jobs_world.client.get(f"/api/v1/jobs/{job}/events", headers=jobs_world.auth("vendor"))
    assert events.headers["content-type"].startswith("text/event-stream")
    lines = events.text.splitlines()
    assert lines[0] == "event: progress" and json.loads(lines[1][6:])["status"] == "done"
    assert events.text.endswith("event: end\ndata: {}\n\n")


def test_tenancy_and_roles_on_jobs(jobs_world: World, tiny_id: int) -> None:
    job = request(jobs_world, tiny_id, user="regulator", seed=1)
    c, auth = jobs_world.client, jobs_world.auth
    # The rival vendor: no such job, no such submission; and its listing leaves it out.
    assert c.get(f"/api/v1/jobs/{job}", headers=auth("rival")).status_code == 404
    assert c.post(f"/api/v1/jobs/{job}/cancel", headers=auth("rival")).status_code == 404
    assert c.post(f"/api/v1/submissions/{tiny_id}/trials", headers=auth("rival")).status_code == 404
    assert job not in [j["id"] for j in c.get("/api/v1/jobs", headers=auth("rival")).json()["jobs"]]
    assert job in [j["id"] for j in c.get("/api/v1/jobs", headers=auth("vendor")).json()["jobs"]]
    assert c.get(f"/api/v1/jobs/{job}", headers=auth("auditor")).status_code == 200
    assert c.post(f"/api/v1/jobs/{job}/cancel", headers=auth("auditor")).status_code == 403
    assert (
        c.post(f"/api/v1/submissions/{tiny_id}/trials", headers=auth("redteam")).status_code == 403
    )
    assert c.get("/api/v1/jobs/999999", headers=auth("vendor")).status_code == 404
    denied = [e for e in jobs_world.store.audit_entries() if e.action == "access.denied"]
    assert any(e.subject == f"/api/v1/jobs/{job}" and e.payload["status"] == 404 for e in denied)
    # Not this test's trial to finish: the regulator who asked cancels it.
    assert c.post(f"/api/v1/jobs/{job}/cancel", headers=auth("regulator")).status_code == 202
    assert wait(jobs_world, job)["status"] == "failed"


@pytest.mark.slow
def test_a_cancelled_job_fails_and_leaves_no_trial(jobs_world: World, tmp_path: Path) -> None:
    if probe()[0] is None:
        pytest.skip("bubblewrap walls cannot be built here: entry points are refused")
    code = ENTRYPOINT.format(body="time.sleep(0.5)").encode()
    sid = upload(
        jobs_world,
        write_submission(
            tmp_path / "slow", code, name="model.py", fmt="entrypoint", entrypoint=ENTRY
        ),
    )
    running = request(jobs_world, sid)
    queued = request(jobs_world, sid)  # one worker: this one waits
    started = wait(jobs_world, running, until=("running",), s=30)
    assert started["status"] == "running"
    # Wait until a check has begun: the trial is recorded, results not yet.
    deadline = time.monotonic() + 60
    while wait(jobs_world, running, until=("running",))["stage"] in ("starting", "admitting"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    c, auth = jobs_world.client, jobs_world.auth
    assert c.get(f"/api/v1/jobs/{queued}", headers=auth("vendor")).json()["status"] == "queued"
    cancelled = c.post(f"/api/v1/jobs/{queued}/cancel", headers=auth("vendor")).json()
    assert cancelled["status"] == "failed" and cancelled["error"] == "cancelled by user:vendor"
    assert c.post(f"/api/v1/jobs/{running}/cancel", headers=auth("vendor")).status_code == 202
    ended = wait(jobs_world, running, s=30)
    assert ended["status"] == "failed" and ended["error"] == "cancelled by user:vendor"
    assert ended["trial"] is None and ended["result"] is None
    trial_id = jobs_world.store.job(running).trial_id  # type: ignore[union-attr]
    assert trial_id is not None
    trial = jobs_world.store.trial(trial_id)
    assert trial is None or (trial.status == "incomplete" and trial.results is None)
    assert not (jobs_world.config.data_dir / "trials" / trial_id).exists()
    assert c.post(f"/api/v1/jobs/{running}/cancel", headers=auth("vendor")).status_code == 409
    assert "job.cancel" in actions(jobs_world, f"job {running}")


@pytest.mark.slow
def test_a_failing_trial_fails_its_job_with_one_line_and_writes_nothing(
    jobs_world: World, tmp_path: Path
) -> None:
    if probe()[0] is None:
        pytest.skip("bubblewrap walls cannot be built here: entry points are refused")
    broken = ENTRYPOINT.replace(
        "def load():\n    return Model()", "def load():\n    raise RuntimeError('no model here')"
    )
    sid = upload(
        jobs_world,
        write_submission(
            tmp_path / "broken",
            broken.format(body="pass").encode(),
            name="model.py",
            fmt="entrypoint",
            entrypoint=ENTRY,
        ),
    )
    job = request(jobs_world, sid)
    ended = wait(jobs_world, job)
    assert ended["status"] == "failed", ended
    assert "\n" not in ended["error"] and "no model here" in ended["error"]
    trial_id = jobs_world.store.job(job).trial_id  # type: ignore[union-attr]
    assert trial_id is not None and jobs_world.store.trial(trial_id) is None
    assert not (jobs_world.config.data_dir / "trials" / trial_id).exists()
    assert actions(jobs_world, f"job {job}")[-1] == "job.failed"


@pytest.mark.slow
def test_a_controller_trial_runs_through_the_same_jobs(jobs_world: World) -> None:
    pytest.importorskip("libsumo")
    sid = upload(jobs_world, SUBMISSIONS / "acme-signals", user="rival")
    job = request(jobs_world, sid, user="rival")
    done = wait(jobs_world, job, s=600)
    assert done["status"] == "done", done
    assert done["checks"] == {"done": 2, "total": 2}
    trial = jobs_world.client.get(
        f"/api/v1/trials/{done['trial']}", headers=jobs_world.auth("rival")
    ).json()
    assert trial["system"] == "acme-signals/acme-signals" and trial["status"] == "complete"
    ran = [c["id"] for c in trial["results"]["checks"]]
    assert ran == ["admission", "sandbox.nominal"]
    # The other vendor's job is not metro-analytics' to see.
    assert (
        jobs_world.client.get(f"/api/v1/jobs/{job}", headers=jobs_world.auth("vendor")).status_code
        == 404
    )


def test_a_job_left_running_is_rerun_once_when_the_worker_starts(
    tmp_path: Path, onnx_model_bytes: bytes
) -> None:
    # The server first runs no worker, so the job stays queued; a claim then stands for
    # a worker that took it and died (its trial never began).
    config = make_config(tmp_path, trial_policy=None, embedded_worker=False)
    policy = tmp_path / "tiny.toml"
    policy.write_text(POLICY)
    config = dataclasses.replace(config, trial_policy=policy)
    with Store.open(config.store) as store:
        token = add_user(store, "v", organisation="v", role=Role.VENDOR, city="city").token
        auth = {"Authorization": f"Bearer {token}"}
        folder = write_submission(
            tmp_path / "tiny", onnx_model_bytes, name="model.onnx", fmt="onnx"
        )
        with TestClient(create_app(config, store)) as client:
            sid = client.post(
                "/api/v1/submissions",
                files={"archive": ("s.tar.gz", pack(folder), "application/gzip")},
                headers=auth,
            ).json()["id"]
            job = client.post(f"/api/v1/submissions/{sid}/trials", headers=auth).json()["job"]
        lost = store.claim_job(job_id=job, trial_id="t-lost", actor="x")
        assert lost is not None and lost.status == "running"
        # Now a server with its worker: the job runs again, under a new trial id.
        with TestClient(create_app(dataclasses.replace(config, embedded_worker=True), store)):
            deadline = time.monotonic() + 90
            while (found := store.job(job)) is not None and not found.finished:
                assert time.monotonic() < deadline, found
                time.sleep(0.2)
        assert found is not None and found.status == "done", found
        assert found.trial_id not in (None, "t-lost")
        assert store.trial("t-lost") is None
        complete = [t for t in store.trials() if t.status == "complete"]
        assert [t.trial_id for t in complete] == [found.trial_id]
        assert [e.action for e in store.audit_entries() if e.subject == f"job {job}"] == [
            "job.queued",
            "job.started",
            "job.requeued",
            "job.started",
            "job.done",
        ]
