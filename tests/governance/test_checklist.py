"""The process checklist: answers from trial evidence, CSV/XLSX/JSON round trips, validation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from cityx.core import DataError, InputError, Principle
from cityx.governance.checklist import (
    answer_from_trial,
    load_checklist,
    principle_summary,
    read_answers,
    write_answers,
)


@pytest.fixture
def trial(tmp_path: Path) -> Path:
    folder = tmp_path / "trial"
    folder.mkdir()
    (folder / "results.json").write_text(
        json.dumps(
            {
                "trial_id": "t-9",
                "submission": {"intended_use": "Predicts congestion for operators."},
                "versions": {"cityx": "0.1"},
                "checks": [
                    {"id": "admission", "status": "passed"},
                    {"id": "performance.nominal", "status": "failed"},
                    {"id": "fairness.groups", "status": "passed"},
                ],
            }
        )
    )
    return folder


def test_every_principle_has_an_item_and_ids_are_unique() -> None:
    items = load_checklist()
    assert {i.principle for i in items} == set(Principle)
    assert len({i.id for i in items}) == len(items)


def test_answers_come_from_trial_evidence_where_it_exists(trial: Path) -> None:
    answers = {a.id: a for a in answer_from_trial(load_checklist(), trial)}
    assert answers["robustness.nominal"].answer == "no"
    assert answers["robustness.nominal"].source == "trial"
    assert "performance.nominal failed" in answers["robustness.nominal"].evidence
    assert answers["fairness.within-limits"].answer == "yes"
    assert answers["transparency.intended-use"].answer == "yes"
    assert answers["robustness.input-contract"].answer == ""  # the check did not run
    assert answers["human-agency.override"].source == "user"
    summary = principle_summary(list(answers.values()))
    assert summary["robustness"]["status"] == "not_met"
    # both our fairness items are answered; AI Verify's fairness process checks are left open
    assert summary["fairness"]["yes"] == 2 and summary["fairness"]["status"] == "open"
    assert summary["safety"]["status"] == "open"


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".json"])
def test_round_trip(tmp_path: Path, trial: Path, suffix: str) -> None:
    items = load_checklist()
    answers = answer_from_trial(items, trial)
    path = write_answers(answers, tmp_path / f"checklist{suffix}")
    assert read_answers(path, items) == answers


def _edit_csv(path: Path, row: int, column: str, value: str) -> None:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[row][column] = value
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_a_bad_csv_row_is_reported_with_its_line(tmp_path: Path) -> None:
    items = load_checklist()
    path = write_answers(answer_from_trial(items, None), tmp_path / "c.csv")
    _edit_csv(path, 3, "answer", "maybe")
    with pytest.raises(DataError, match=r"c\.csv:5: answer 'maybe' for 'repeatability.seeded'"):
        read_answers(path, items)
    _edit_csv(path, 3, "answer", "YES")  # case is forgiven
    assert read_answers(path, items)[3].answer == "yes"
    _edit_csv(path, 0, "principle", "safety")
    with pytest.raises(DataError, match=r"c\.csv:2: .*belongs to principle 'transparency'"):
        read_answers(path, items)


def test_a_bad_xlsx_row_is_reported_with_its_row(tmp_path: Path) -> None:
    items = load_checklist()
    path = write_answers(answer_from_trial(items, None), tmp_path / "c.xlsx")
    book = load_workbook(path)
    book["checklist"]["A7"] = "no.such.item"
    book.save(path)
    with pytest.raises(DataError, match=r"c\.xlsx: row 7: unknown checklist item 'no.such.item'"):
        read_answers(path, items)


def test_missing_items_duplicates_and_formats(tmp_path: Path) -> None:
    items = load_checklist()
    path = write_answers(answer_from_trial(items, None), tmp_path / "c.json")
    doc = json.loads(path.read_text())
    doc["items"] = doc["items"][:-1]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"1 checklist item.* missing, first 'aiverify.11.1.1'"):
        read_answers(path, items)
    doc["items"].append(doc["items"][0])
    path.write_text(json.dumps(doc))
    with pytest.raises(
        DataError, match=rf"items\[{len(items) - 1}\]: item 'transparency.intended-use' appears"
    ):
        read_answers(path, items)
    with pytest.raises(InputError, match=r"unsupported checklist format '\.ods'"):
        write_answers([], tmp_path / "c.ods")
