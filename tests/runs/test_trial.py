from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cityx.core import (
    DataError,
    ManifestError,
    PluginKind,
    PolicyError,
    Registry,
    TrialResults,
)
from cityx.governance.report import render_html
from cityx.runs import TrialPlan, run_trial
from cityx.store import Store
from cityx.targets import Limits

CONTRACT_KEYS = {
    "schema_version",
    "trial_id",
    "submission",
    "seed",
    "versions",
    "checks",
    "findings",
    "gate",
}
FINDING_KEYS = {
    "id",
    "check",
    "title",
    "severity",
    "principle",
    "atlas",
    "nist",
    "eu_ai_act",
    "evidence",
}


def test_a_trial_writes_results_report_events_and_store(
    tiny_submission: Path, tmp_path: Path, store_url: str
) -> None:
    out = tmp_path / "out"
    outcome = run_trial(TrialPlan(submission=tiny_submission, out=out, seed=5, store=store_url))
    results = json.loads((out / "results.json").read_text())
    assert set(results) >= CONTRACT_KEYS
    assert results["submission"]["sha256"] == outcome.results["submission"]["sha256"]
    assert {c["id"] for c in results["checks"]} == {
        "admission",
        "performance.nominal",
        "input.contract",
        "fairness.groups",
        "poisoning.audit",
        "redteam.evasion",
        "explain.fidelity",
    }
    for check in results["checks"]:
        assert {"id", "status", "metrics", "findings"} <= set(check)
    for finding in results["findings"]:
        assert set(finding) >= FINDING_KEYS
    assert results["gate"]["decision"] in {"pass", "conditional", "fail"}
    assert results["seed"] == 5 and results["versions"]["onnxruntime"] != "absent"
    html = (out / "report.html").read_text()
    assert "tiny-congestion" in html and "<svg" in html
    assert html == render_html(results)  # the report is a function of results.json alone
    assert outcome.document == TrialResults.from_json(results, registry=Registry())
    assert results["plugins"][0] == Registry().record(PluginKind.CHECK, "admission")
    events = [
        json.loads(line)["event"] for line in (out / "events.jsonl").read_text().split("\n") if line
    ]
    assert events[0] == "trial.started" and events[-1] == "trial.finished"
    with Store.open(store_url) as store:
        record = store.trial(outcome.trial_id)
        assert record is not None and record.status == "complete"
        assert store.verify_audit().ok


def test_the_same_seed_gives_the_same_numbers(
    tiny_submission: Path, tmp_path: Path, store_url: str
) -> None:
    def checks(seed: int, name: str) -> list[dict[str, object]]:
        plan = TrialPlan(
            submission=tiny_submission, out=tmp_path / name, seed=seed, store=store_url
        )
        doc = run_trial(plan).results
        return [
            {k: c[k] for k in ("id", "metrics", "details")}
            for c in doc["checks"]
            if c["id"] != "admission"
        ]

    assert checks(1, "a") == checks(1, "b")
    assert checks(1, "a") != checks(2, "c")


def test_a_hanging_model_is_stopped_and_reported(
    entrypoint_submission: Callable[[str], Path], tmp_path: Path, store_url: str
) -> None:
    folder = entrypoint_submission("if batch.shape[0] == 400: time.sleep(60)")
    start = time.perf_counter()
    outcome = run_trial(
        TrialPlan(
            submission=folder,
            out=tmp_path / "o",
            store=store_url,
            limits=Limits(call_timeout_s=2.0),
            trust_code=True,
            operator="ops@city",
        )
    )
    assert time.perf_counter() - start < 30
    ids = {f["id"]: f for f in outcome.results["findings"]}
    hung = ids["performance.nominal/target-timeout"]
    assert hung["severity"] == "high" and "took longer than" in hung["description"]
    assert (
        "because ops@city passed --trust-code" in ids["admission/trusted-code"]["severity_reason"]
    )
    assert outcome.gate.decision.value == "fail"


@pytest.mark.parametrize(
    ("damage", "error", "match"),
    [
        (lambda d: (d / "model.onnx").write_bytes(b"garbage"), ManifestError, "digest mismatch"),
        (lambda d: (d / "model.onnx").unlink(), ManifestError, "not found"),
        (lambda d: (d / "cityx.toml").write_text("x = ["), ManifestError, "not valid TOML"),
    ],
)
def test_bad_submissions_stop_before_anything_is_stored(
    tiny_submission: Path,
    tmp_path: Path,
    store_url: str,
    damage: Callable[[Path], object],
    error: type[Exception],
    match: str,
) -> None:
    damage(tiny_submission)
    with pytest.raises(error, match=match):
        run_trial(TrialPlan(submission=tiny_submission, out=tmp_path / "o", store=store_url))
    assert not (tmp_path / "store.db").exists() or _trials(store_url) == 0


def test_vendor_code_needs_trust_code_and_a_refusal_leaves_no_folder(
    entrypoint_submission: Callable[[str], Path], tmp_path: Path, store_url: str
) -> None:
    folder = entrypoint_submission("pass")
    with pytest.raises(ManifestError, match="--trust-code"):
        run_trial(TrialPlan(submission=folder, out=tmp_path / "o", store=store_url))
    assert not (tmp_path / "o").exists()


def test_a_model_that_does_not_load_is_refused_at_admission_with_no_folder(
    tiny_submission: Path, tmp_path: Path, store_url: str
) -> None:
    (tiny_submission / "model.onnx").write_bytes(b"not an onnx graph")
    toml = tiny_submission / "cityx.toml"
    digest = hashlib.sha256(b"not an onnx graph").hexdigest()
    toml.write_text(re.sub(r'sha256 = "[0-9a-f]{64}"', f'sha256 = "{digest}"', toml.read_text()))
    with pytest.raises(ManifestError, match="the model did not load: "):
        run_trial(TrialPlan(submission=tiny_submission, out=tmp_path / "o", store=store_url))
    assert not (tmp_path / "o").exists()
    assert not (tmp_path / "store.db").exists() or _trials(store_url) == 0


def test_bad_data_and_policy_are_input_errors(
    tiny_submission: Path, tmp_path: Path, store_url: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("flow,occupancy,speed,weekend,congestion\n1,2,x,0,free\n")
    with pytest.raises(DataError, match="'speed'"):
        run_trial(TrialPlan(submission=tiny_submission, data=bad, store=store_url))
    policy = tmp_path / "p.toml"
    policy.write_text(
        "schema_version = 1\nid = 'p'\nversion = '1'\n"
        '[checks."performance.nominal"]\nacuracy = { fail_below = 0.5 }\n'
    )
    with pytest.raises(PolicyError, match="unknown metric"):
        run_trial(TrialPlan(submission=tiny_submission, policy=policy, store=store_url))


def _trials(store_url: str) -> int:
    with Store.open(store_url) as store:
        return len(store.trials())


@pytest.mark.slow
def test_a_killed_trial_stays_incomplete_and_a_rerun_completes(
    entrypoint_submission: Callable[[str], Path], tmp_path: Path, store_url: str
) -> None:
    folder = entrypoint_submission("if batch.shape[0] == 400: time.sleep(120)")
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cityx.cli.main",
            "trial",
            str(folder),
            "--out",
            str(out),
            "--store",
            store_url,
            "--timeout",
            "300",
            "--trust-code",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    events = out / "events.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if events.exists() and "performance.nominal" in events.read_text():
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the trial never reached its performance check")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with Store.open(store_url) as store:
        (record,) = store.trials()
        assert record.status == "incomplete"
        assert store.verify_audit().ok
    assert not (out / "results.json").exists()

    (folder / "model.py").write_text(
        (folder / "model.py").read_text().replace("time.sleep(120)", "pass")
    )
    toml = folder / "cityx.toml"
    digest = hashlib.sha256((folder / "model.py").read_bytes()).hexdigest()
    lines = [
        f'sha256 = "{digest}"' if line.startswith("sha256") else line
        for line in toml.read_text().splitlines()
    ]
    toml.write_text("\n".join(lines) + "\n")
    outcome = run_trial(TrialPlan(submission=folder, out=out, store=store_url, trust_code=True))
    with Store.open(store_url) as store:
        statuses = sorted(t.status for t in store.trials())
        assert statuses == ["complete", "incomplete"]
        assert store.trial(outcome.trial_id).status == "complete"  # type: ignore[union-attr]
        assert store.verify_audit().ok


def test_a_policy_with_an_unknown_or_mistyped_check_option_stops_before_anything_runs(
    tiny_submission: Path, tmp_path: Path, store_url: str
) -> None:
    from cityx.core import PolicyError

    for body, word in (("bootstrapp = 10", "bootstrapp"), ('bootstrap = "many"', "bootstrap")):
        policy = tmp_path / f"{word}.toml"
        policy.write_text(
            'schema_version = 1\nid = "p"\nversion = "1"\n'
            f'[checks."performance.nominal"]\noptions = {{ {body} }}\n'
        )
        out = tmp_path / f"out-{word}"
        with pytest.raises(PolicyError, match=word):
            run_trial(
                TrialPlan(submission=tiny_submission, policy=policy, out=out, store=store_url)
            )
        assert not out.exists()
