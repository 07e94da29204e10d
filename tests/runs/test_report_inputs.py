"""The report's inputs from outside the trial folder: the store's ruling and answers, and
runs under oversight; and the evidence package that carries them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cityx.core import InputError
from cityx.governance.external import RULING_PURPOSE
from cityx.governance.regulator import render
from cityx.governance.trial_folder import open_trial
from cityx.interop import SigningKey, StaticTrustStore, TrustedKey, generate_key, sign_value
from cityx.runs.evidence import pack_evidence, read_package, verify_evidence
from cityx.runs.report_inputs import build_report, check_ruling, read_oversight_run
from cityx.store import AnswerIn, RulingRecord, Store

GOLDEN = Path(__file__).parents[1] / "governance" / "golden" / "results-example.json"
TRIAL_ID = "t-20261129T035000Z-3fa9c2"  # the golden results' trial


@pytest.fixture(scope="module")
def city() -> SigningKey:
    return generate_key("urn:cityx:city:test")


@pytest.fixture(scope="module")
def trust(city: SigningKey) -> StaticTrustStore:
    return StaticTrustStore([TrustedKey.of(city)])


def _ruling(city: SigningKey, **changes: object) -> RulingRecord:
    body = {
        "trial": TRIAL_ID,
        "decision": "approve-with-conditions",
        "reasons": ["accuracy within limits"],
        "conditions": ["re-trial after 6 months"],
        "regulator": "regulator",
        "ruled_at": "2026-12-07T05:00:00.000000Z",
    }
    signature = sign_value(body, city, purpose=RULING_PURPOSE, about=body)
    fields = {k: v for k, v in body.items() if k != "trial"} | changes
    return RulingRecord(
        TRIAL_ID,
        str(fields["decision"]),
        tuple(fields["reasons"]),  # type: ignore[arg-type]
        tuple(fields["conditions"]),  # type: ignore[arg-type]
        str(fields["regulator"]),
        signature,
        7,
        str(fields["ruled_at"]),
    )


def test_a_ruling_verifies_only_against_the_trust_and_as_signed(
    city: SigningKey, trust: StaticTrustStore
) -> None:
    assert check_ruling(_ruling(city), trust).signature_check == "verified"
    assert check_ruling(_ruling(city), None).signature_check == "not checked"
    stranger = StaticTrustStore([TrustedKey.of(generate_key("urn:cityx:city:other"))])
    unknown = check_ruling(_ruling(city), stranger)
    assert unknown.signature_check == "failed" and "unknown" in unknown.signature_detail
    edited = check_ruling(_ruling(city, decision="approve", conditions=[]), trust)
    assert edited.signature_check == "failed"
    assert "decision" in edited.signature_detail and "conditions" in edited.signature_detail


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, city: SigningKey) -> tuple[Path, str]:
    return make_world(tmp_path_factory.mktemp("inputs"), city)


def make_world(root: Path, city: SigningKey) -> tuple[Path, str]:
    """A trial folder and a store holding its trial, a ruling (signed by ``city``) and two
    stored answers."""
    trial = root / "trial"
    trial.mkdir()
    shutil.copy(GOLDEN, trial / "results.json")
    url = f"sqlite:///{root / 'store.db'}"
    with Store.open(url) as store:
        store.record_submission(
            system_id="metro-congestion",
            version="1.0.0",
            vendor="Metro Analytics Ltd",
            kind="predictor",
            sha256="9" * 64,
            path=str(root),
            manifest={},
        )
        store.begin_trial(
            trial_id=TRIAL_ID,
            system_id="metro-congestion",
            version="1.0.0",
            sha256="9" * 64,
            seed=0,
            policy_id="p",
            policy_sha256="0" * 64,
            out_dir=str(trial),
            plan={},
        )
        store.finish_trial(
            trial_id=TRIAL_ID, results={}, findings=[], gate={"decision": "pass", "reasons": []}
        )
        r = _ruling(city)
        store.record_ruling(
            trial_id=TRIAL_ID,
            decision=r.decision,
            reasons=r.reasons,
            conditions=r.conditions,
            regulator=r.regulator,
            ruled_at=r.ruled_at,
            signature=r.signature,
            kid=city.kid,
            actor="test",
        )
        answers = [
            AnswerIn("aiverify.9.1.2", "yes", "committee since 2025"),
            AnswerIn("aiverify.5.5.3", "no", "none yet"),
        ]
        first = store.record_answers(
            system_id="metro-congestion",
            version="1.0.0",
            answers=answers,
            author="vera",
            organisation="metro-analytics",
            actor="user:vera",
        )
        again = store.record_answers(
            system_id="metro-congestion",
            version="1.0.0",
            answers=answers,
            author="vera",
            organisation="metro-analytics",
            actor="user:vera",
        )
        assert len(first) == 2 and again == []  # the same answers twice act once
    return trial, url


def test_the_report_shows_the_ruling_and_stored_attestations(
    world: tuple[Path, str], trust: StaticTrustStore
) -> None:
    trial, url = world
    report = build_report(open_trial(trial), store_url=url, trust=trust)
    ruling = report.external.ruling
    assert ruling is not None and ruling.signature_check == "verified"
    assert ruling.conditions == ("re-trial after 6 months",)
    rows = {r.requirement.id: r for r in report.assessments[0].rows}
    (att,) = [e for e in rows["9.1.2"].evidence if e.kind == "attestation"]
    assert att.author == "vera" and rows["9.1.2"].status.value == "met"
    assert rows["5.5.3"].status.value == "not met"
    html = render(report, "html").decode()
    assert "approve-with-conditions" in html and "re-trial after 6 months" in html
    assert "stored in the console" in report.answers_source
    doc = json.loads(render(report, "json"))
    assert doc["ruling"]["signature_check"] == "verified"


def test_the_evidence_package_carries_the_ruling_and_answers(
    world: tuple[Path, str], city: SigningKey, trust: StaticTrustStore, tmp_path: Path
) -> None:
    trial, url = world
    packed = pack_evidence(trial, city, tmp_path / "pkg", pdf=False, trust=trust, store_url=url)
    files = read_package(packed.path)
    ruling = json.loads(files["ruling.json"])
    assert ruling["decision"] == "approve-with-conditions" and ruling["signature"]
    answers = {i["id"]: i for i in json.loads(files["checklist.json"])["items"]}
    assert answers["aiverify.9.1.2"]["author"] == "vera"
    assert verify_evidence(packed.path, trust).ok
    # an auditor who does not trust the city's key cannot verify the package or its ruling
    other = StaticTrustStore([TrustedKey.of(generate_key("urn:cityx:city:other"))])
    assert not verify_evidence(packed.path, other).ok


def test_an_oversight_folder_must_be_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not a run under oversight"):
        read_oversight_run(tmp_path)


# The golden results' submission folder: a run of this controller is about the trial's system.
SUBMISSION = "/srv/cityx/submissions/metro-congestion"


def _oversight_folder(
    root: Path, city: SigningKey, *, passed: bool, controller: str = SUBMISSION
) -> Path:
    """A run folder as 'cityx oversee drill --out' leaves it: a sealed decision log,
    oversight.json and drill.json (written here without running SUMO)."""
    from cityx.oversight.decisions import DecisionLog

    folder = root / f"run-{passed}-{Path(controller).name}"
    folder.mkdir()
    log = DecisionLog(folder, city, run="run-7", checkpoint_every=3)
    for t in range(5):
        log.append("choice", "controller", "J1", {"t": t, "phase": t % 2})
    log.append("command", "urn:cityx:operator:drill", "*", {"action": "stop", "state": "effective"})
    log.close()
    art14 = [
        {
            "point": f"14(4)({x})",
            "requirement": "r",
            "served_by": ["s"],
            "status": "shown",
            "evidence": {"stops": 1},
        }
        for x in "abcde"
    ]
    run = {
        "run_id": "run-7",
        "spec": {"scenario": "cologne1", "seconds": 150, "controller": controller},
        "complete": True,
        "oversight": {"violations": {"conflict": 0}, "art14": art14},
    }
    (folder / "oversight.json").write_text(json.dumps(run))
    drill = {
        "attack": "world.blackout",
        "passed": passed,
        "time_to_alert_s": 3.0,
        "time_to_fallback_s": 1.0,
        "stop_to_safe_s": 5.0,
        "art14": art14,
    }
    (folder / "drill.json").write_text(json.dumps(drill))
    return folder


def test_a_run_under_oversight_is_evidence_and_its_log_is_verified(
    world: tuple[Path, str], city: SigningKey, trust: StaticTrustStore, tmp_path: Path
) -> None:
    trial, _url = world
    good = _oversight_folder(tmp_path, city, passed=True)
    run = read_oversight_run(good, trust)
    assert run.decision_log.ok and run.decision_log.key_anchored
    report = build_report(open_trial(trial), framework="euai", oversight=[good], trust=trust)
    rows = {r.requirement.id: r for r in report.assessments[0].rows}
    refs = " ".join(e.ref for e in rows["Art. 14(4)(e)"].evidence)
    assert "oversight.drill (oversight run run-7)" in refs
    assert "oversight.art14(4)(e)" in refs
    # one edited record breaks the chain: the log is no longer evidence for, but against
    lines = (good / "decisions.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace('"phase":0', '"phase":1')
    assert lines[2] != (good / "decisions.jsonl").read_text().splitlines()[2]
    (good / "decisions.jsonl").write_text("\n".join(lines) + "\n")
    broken = read_oversight_run(good, trust)
    assert not broken.decision_log.ok
    report = build_report(open_trial(trial), framework="euai", oversight=[good], trust=trust)
    rows = {r.requirement.id: r for r in report.assessments[0].rows}
    assert rows["Art. 14(4)(d)"].status.value == "not met"
    packed = pack_evidence(trial, city, tmp_path / "pkg", pdf=False, oversight=[good])
    assert "oversight/run-7/decisions.jsonl" in read_package(packed.path)


def test_a_run_of_another_controller_is_shown_but_not_evidence(
    world: tuple[Path, str], city: SigningKey, tmp_path: Path
) -> None:
    trial, _url = world
    other = _oversight_folder(tmp_path, city, passed=True, controller="max-pressure")
    report = build_report(open_trial(trial), framework="euai", oversight=[other])
    (run,) = report.external.oversight
    assert not run.same_system and run.controller == "max-pressure"
    rows = {r.requirement.id: r for r in report.assessments[0].rows}
    row = rows["Art. 14(4)(e)"]
    assert not [e for e in row.evidence if e.ref.startswith("oversight.")]
    assert "is about another controller" in " ".join(row.missing)


def test_a_store_that_is_not_there_is_bad_input_and_is_not_created(tmp_path: Path) -> None:
    trial = tmp_path / "trial"
    trial.mkdir()
    shutil.copy(GOLDEN, trial / "results.json")
    missing = tmp_path / "no-store.db"
    with pytest.raises(InputError, match="no store here"):
        build_report(open_trial(trial), store_url=f"sqlite:///{missing}")
    assert not missing.exists()


def test_a_packed_ruling_by_an_untrusted_key_fails_the_package(
    city: SigningKey, trust: StaticTrustStore, tmp_path: Path
) -> None:
    stranger = generate_key("urn:cityx:city:elsewhere")
    (tmp_path / "w").mkdir()
    trial, url = make_world(tmp_path / "w", stranger)
    packed = pack_evidence(trial, city, tmp_path / "pkg", pdf=False, trust=trust, store_url=url)
    assert json.loads(read_package(packed.path)["ruling.json"])["signature_check"] == "failed"
    result = verify_evidence(packed.path, trust)
    assert not result.ok
    assert [p.subject for p in result.problems] == ["ruling.json"]
