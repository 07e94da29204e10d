"""Requirement-by-requirement mapping: data files, statuses earned only by evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityx.core import InputError, TrialResults
from cityx.governance.checklist import Answer, load_checklist
from cityx.governance.requirements import (
    FRAMEWORKS,
    Status,
    TrialEvidence,
    assess,
    frameworks,
    load_framework,
)

GOLDEN = Path(__file__).parent / "golden" / "results-example.json"
CHECKS = (
    "admission",
    "performance.nominal",
    "sandbox.nominal",
    "redteam.campaign",
    "redteam.evasion",
    "input.contract",
    "fairness.groups",
    "poisoning.audit",
)
STATUSES = ("passed", "failed", "undetermined", "error", "skipped")


def golden() -> TrialResults:
    return TrialResults.from_json(json.loads(GOLDEN.read_text("utf-8")))


def test_every_framework_is_pinned_and_its_ids_are_unique() -> None:
    items = {i.id for i in load_checklist()}
    for fw in frameworks():
        assert fw.source and fw.source_version and fw.version
        ids = [r.id for r in fw.requirements]
        assert len(ids) == len(set(ids)), fw.id
        for r in fw.requirements:
            assert r.text and r.title and r.group
            # every checklist item a requirement names exists
            assert set(r.checklist) <= items, (fw.id, r.id)
    nist = {r.id for r in load_framework("nist").requirements}
    assert {"GOVERN 1.1", "MAP 5.2", "MEASURE 2.13", "MANAGE 4.3"} <= nist
    assert len(nist) == 72  # every subcategory of AI RMF 1.0
    euai = {r.id for r in load_framework("euai").requirements}
    assert {f"Art. 14(4)({x})" for x in "abcde"} <= euai
    assert {
        "Art. 9(1)",
        "Art. 10(2)",
        "Art. 11(1)",
        "Art. 12(1)",
        "Art. 13(1)",
        "Art. 26(1)",
    } <= euai
    groups = {r.group for r in load_framework("aiverify").requirements}
    assert len(groups) == 11  # every AI Verify principle


def test_an_unknown_framework_is_bad_input() -> None:
    with pytest.raises(InputError, match="unknown framework 'iso42001'"):
        frameworks("iso42001")


def test_nothing_measured_means_not_assessed_everywhere() -> None:
    evidence = TrialEvidence(TrialResults())
    for fw in frameworks():
        rows = assess(fw, evidence).rows
        assert {r.status for r in rows} == {Status.NOT_ASSESSED}
        assert all(not r.evidence for r in rows)


def test_rows_of_the_golden_trial() -> None:
    evidence = TrialEvidence(golden(), tuple(_answers(author="")))
    rows = {r.requirement.id: r for r in assess(load_framework("euai"), evidence).rows}
    # performance.nominal failed: accuracy is not met, and the check is named.
    assert rows["Art. 15(3)"].status is Status.NOT_MET
    assert [e.ref for e in rows["Art. 15(3)"].evidence] == ["performance.nominal"]
    # explanations.fidelity errored: said, never counted as evidence
    nist = {r.requirement.id: r for r in assess(load_framework("nist"), evidence).rows}
    assert nist["GOVERN 2.2"].status is Status.NOT_ASSESSED


def _answers(*, author: str, answer: str = "yes") -> list[Answer]:
    return [
        Answer(i.id, i.principle, i.question, answer, "user", "", "", author)
        for i in load_checklist()
    ]


def test_organisational_rows_need_a_named_attestation_to_be_met() -> None:
    fw = load_framework("nist")
    anonymous = assess(fw, TrialEvidence(TrialResults(), tuple(_answers(author=""))))
    named = assess(fw, TrialEvidence(TrialResults(), tuple(_answers(author="A. Regulator"))))
    anon_rows = {r.requirement.id: r for r in anonymous.rows}
    named_rows = {r.requirement.id: r for r in named.rows}
    # MAP 3.5 is organisational, names one item and has no gap
    assert anon_rows["MAP 3.5"].status is Status.PARTLY_MET
    assert "names no author" in " ".join(anon_rows["MAP 3.5"].missing)
    assert named_rows["MAP 3.5"].status is Status.MET
    (item,) = named_rows["MAP 3.5"].evidence
    assert item.kind == "attestation" and item.author == "A. Regulator"
    assert "attestation" in item.label
    for row in anonymous.rows:
        if row.requirement.kind == "organisational":
            assert row.status is not Status.MET
    no = assess(fw, TrialEvidence(TrialResults(), tuple(_answers(author="B", answer="no"))))
    assert {r.requirement.id: r for r in no.rows}["MAP 3.5"].status is Status.NOT_MET


@st.composite
def trials(draw: st.DrawFn) -> TrialResults:
    checks = []
    for check in draw(st.lists(st.sampled_from(CHECKS), unique=True)):
        status = draw(st.sampled_from(STATUSES))
        checks.append({"id": check, "status": status, "metrics": {"m": {"value": 0.5}}})
    doc: dict[str, object] = {"checks": checks}
    if draw(st.booleans()):
        doc["versions"] = {"cityx": "1"}
        doc["policy"] = {"id": "p", "version": "1", "sha256": "0" * 64}
    if draw(st.booleans()):
        doc["findings"] = [
            {
                "id": "f",
                "check": "redteam.campaign",
                "severity": draw(st.sampled_from(("info", "low", "medium", "high", "critical"))),
                "atlas": ["AML.T0043"],
            }
        ]
    return TrialResults.from_json(doc)


@settings(max_examples=60, deadline=None)
@given(trials(), st.sampled_from(("", "C. Officer")), st.sampled_from(("yes", "no", "n/a", "")))
def test_no_row_claims_met_without_evidence(
    results: TrialResults, author: str, answer: str
) -> None:
    evidence = TrialEvidence(results, tuple(_answers(author=author, answer=answer)))
    for name in FRAMEWORKS:
        for row in assess(load_framework(name), evidence).rows:
            if not row.evidence:
                assert row.status is Status.NOT_ASSESSED
            if row.status is Status.MET:
                assert row.evidence
                assert not row.requirement.partial
                if row.requirement.kind != "technical":
                    assert any(e.kind == "attestation" and e.author for e in row.evidence)
                else:
                    assert any(e.kind in ("check", "artifact") for e in row.evidence)
