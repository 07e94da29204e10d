"""AI Verify's process checks: each that applies is mapped, answerable, and earns its status."""

from __future__ import annotations

import re

from cityx.core import TrialResults
from cityx.governance.checklist import PROCESS_CHECK_PREFIX, Answer, load_checklist
from cityx.governance.external import DecisionLogCheck, ExternalEvidence, OversightRun
from cityx.governance.requirements import (
    ExternalCheck,
    Status,
    TrialEvidence,
    assess,
    load_framework,
)

# Left out on purpose (see the mapping's header): personal data, continual learning.
NOT_APPLICABLE = {"1.1.1", "1.1.2", "5.6.1", "5.6.2"}


def _answers(*, author: str, answer: str = "yes") -> tuple[Answer, ...]:
    return tuple(
        Answer(i.id, i.principle, i.question, answer, "user", "", "", author)
        for i in load_checklist()
    )


def test_every_applicable_process_check_is_mapped_and_answerable() -> None:
    fw = load_framework("aiverify")
    ids = [r.id for r in fw.requirements]
    assert len(ids) >= 90 and len(ids) == len(set(ids))
    assert all(re.fullmatch(r"\d{1,2}\.\d{1,2}\.\d", i) for i in ids)
    assert not NOT_APPLICABLE & set(ids)
    assert {r.group for r in fw.requirements} == {
        "transparency",
        "explainability",
        "repeatability",
        "safety",
        "security",
        "robustness",
        "fairness",
        "data_governance",
        "accountability",
        "human_agency",
        "inclusive_growth",
    }
    items = {i.id: i for i in load_checklist()}
    for r in fw.requirements:
        own = f"{PROCESS_CHECK_PREFIX}{r.id}"
        # each process check is its own checklist item, answered by a person
        assert r.checklist[0] == own and own in items
        assert items[own].principle.value == r.group and items[own].evidence is None
    assert fw.version == "2" and "process-checklist" in fw.source


def test_process_checks_earn_met_only_with_a_named_attestation() -> None:
    fw = load_framework("aiverify")
    nothing = assess(fw, TrialEvidence(TrialResults()))
    assert {r.status for r in nothing.rows} == {Status.NOT_ASSESSED}
    anonymous = assess(fw, TrialEvidence(TrialResults(), _answers(author="")))
    named = assess(fw, TrialEvidence(TrialResults(), _answers(author="J. Vendor")))
    for row in anonymous.rows:
        assert row.status is not Status.MET, row.requirement.id
        assert any(e.kind == "attestation" for e in row.evidence)
    by_id = {r.requirement.id: r for r in named.rows}
    # organisational, no gap: a named "yes" meets it, and says it is an attestation
    assert by_id["9.1.2"].status is Status.MET
    (item,) = by_id["9.1.2"].evidence
    assert item.label.startswith("attestation") and item.author == "J. Vendor"
    # a gap keeps it partly met however it is answered
    assert by_id["7.1.1"].status is Status.PARTLY_MET
    # technical rows need a measurement: the attestation alone is not enough
    assert by_id["3.8.1"].status is Status.PARTLY_MET
    no = assess(fw, TrialEvidence(TrialResults(), _answers(author="J. Vendor", answer="no")))
    assert {r.status for r in no.rows} == {Status.NOT_MET}


def _run(*, passed: bool, shown: str = "shown", ok: bool = True) -> OversightRun:
    art14 = tuple(
        {
            "point": f"14(4)({x})",
            "requirement": "r",
            "served_by": [],
            "status": shown,
            "evidence": {"stops": 1},
        }
        for x in "abcde"
    )
    return OversightRun(
        run_id="run-1",
        folder="/runs/1",
        scenario="cologne1",
        seconds=120.0,
        complete=True,
        decision_log=DecisionLogCheck(
            ok=ok,
            entries=40,
            sealed=40 if ok else 10,
            reason="" if ok else "record 11: hash mismatch",
        ),
        art14=art14,
        drill={
            "attack": "world.blackout",
            "passed": passed,
            "time_to_alert_s": 2.0,
            "time_to_fallback_s": 1.0,
            "stop_to_safe_s": 4.0,
        },
    )


def _euai(external: ExternalEvidence, author: str = "O. Verseer") -> dict[str, Status]:
    ev = TrialEvidence(TrialResults(), _answers(author=author), external=external.checks())
    return {r.requirement.id: r.status for r in assess(load_framework("euai"), ev).rows}


def test_oversight_runs_are_evidence_for_art_14() -> None:
    good = _euai(ExternalEvidence(oversight=(_run(passed=True),)))
    assert good["Art. 14(4)(e)"] is Status.MET
    assert good["Art. 14(4)(d)"] is Status.MET
    failed = _euai(ExternalEvidence(oversight=(_run(passed=False),)))
    assert failed["Art. 14(4)(e)"] is Status.NOT_MET
    # a decision log that does not verify contradicts the rows that rest on it
    tampered = _euai(ExternalEvidence(oversight=(_run(passed=True, ok=False),)))
    assert tampered["Art. 14(4)(d)"] is Status.NOT_MET
    # a point the run did not exercise is not evidence, and the row says so
    ev = TrialEvidence(
        TrialResults(),
        _answers(author="O. Verseer"),
        external=ExternalEvidence(oversight=(_run(passed=True, shown="not shown"),)).checks(),
    )
    rows = {r.requirement.id: r for r in assess(load_framework("euai"), ev).rows}
    assert "oversight run run-1 did not exercise it" in " ".join(rows["Art. 14(4)(d)"].missing)
    # without any run, the oversight rows rest on attestations only: never met
    none = _euai(ExternalEvidence())
    assert none["Art. 14(4)(e)"] is Status.PARTLY_MET


def test_an_external_check_is_labelled_and_names_its_run() -> None:
    check = ExternalCheck(
        "oversight.decision-log", "decision log", "oversight run r", "passed", "ok"
    )
    ev = TrialEvidence(TrialResults(), external=(check,))
    rows = {r.requirement.id: r for r in assess(load_framework("aiverify"), ev).rows}
    (item,) = [e for e in rows["9.2.1"].evidence if e.kind == "decision log"]
    assert item.label == "decision log (verified)" and "oversight run r" in item.ref
