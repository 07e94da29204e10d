"""Several processes on one store: appends never fork the chain; a killed trial stays incomplete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

from cityx.store import Store

APPENDER = """
import sys
from cityx.store import Store
with Store.open(sys.argv[1], busy_timeout_s=30) as store:
    print("ready", flush=True)
    sys.stdin.readline()  # start together with the test process
    for i in range(50):
        store.append_audit(actor="child", action="test.append", subject=str(i),
                           payload={"i": i})
"""


TRIAL_THEN_HANG = """
import sys, time
from cityx.store import Store
sub = {"system_id": "tiny-congestion", "version": "1.0.0", "sha256": "a" * 64}
with Store.open(sys.argv[1]) as store:
    store.record_submission(vendor="Test Vendor", kind="predictor", path="/subs/tiny",
                            manifest={"schema_version": 1}, **sub)
    store.begin_trial(trial_id="t-killed", seed=3, policy_id="cityx.default",
                      policy_sha256="b" * 64, out_dir="/tmp/t-killed", plan={}, **sub)
    print("started", flush=True)
    time.sleep(60)  # the checks would run here; the test kills us first
    store.finish_trial(trial_id="t-killed", results={}, findings=[],
                       gate={"decision": "pass", "reasons": []})
"""


def test_two_processes_appending_keep_one_chain(any_url: str) -> None:
    """This process and a child append 50 entries each, at the same time."""
    with Store.open(any_url, busy_timeout_s=30) as store:
        child = subprocess.Popen(
            [sys.executable, "-c", APPENDER, any_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        with child, child.stdin, child.stdout:
            assert child.stdout.readline().strip() == "ready"
            child.stdin.write("go\n")
            child.stdin.flush()
            for i in range(50):
                store.append_audit(
                    actor="parent", action="test.append", subject=str(i), payload={"i": i}
                )
            assert child.wait(60) == 0
        result = store.verify_audit()
        entries = store.audit_entries()
    assert (result.ok, result.entries) == (True, 100)
    assert [e.seq for e in entries] == list(range(1, 101))
    for actor in ("parent", "child"):  # each process's entries keep its own order
        assert [e.payload["i"] for e in entries if e.actor == actor] == list(range(50))


def test_a_killed_trial_stays_incomplete_and_the_next_one_completes(
    any_url: str, start: Callable[[Store, str], None], finish: Callable[..., None]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", TRIAL_THEN_HANG, any_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    with Store.open(any_url) as store:
        killed = store.trial("t-killed")
        assert killed is not None and (killed.status, killed.finished_at) == ("incomplete", None)
        verification = store.verify_audit()
        assert (verification.ok, verification.entries) == (True, 2)
        start(store, "t-next")  # the same submission, recorded once already
        finish(store, "t-next")
        statuses = {t.trial_id: t.status for t in store.trials()}
        assert statuses == {"t-killed": "incomplete", "t-next": "complete"}
        assert [e.action for e in store.audit_entries()] == [
            "submission.recorded",
            "trial.started",
            "trial.started",
            "trial.completed",
            "gate.decided",
        ]
        assert store.verify_audit().ok
