"""The process checklist: our questions and AI Verify's process checks, under its 11 principles.

A *checklist item* is one question under one principle: our own questions
(``checklist.v1.toml``), then one item per AI Verify *process check* that
applies to a city traffic AI, ``aiverify.<id>`` (e.g. ``aiverify.4.5.1``),
read from the AI Verify mapping (``frameworks/aiverify.v2.toml``) so the two
cannot drift apart. An *answer* is
``yes``, ``no``, ``n/a`` or empty (*open*). Items with *evidence* rules (see
``checklist.v1.toml``) are answered from a trial's ``results.json`` when it
holds that evidence, with ``source = trial``; the rest are the user's to
answer (``source = user``). A principle's status is ``met`` when every item
is ``yes`` or ``n/a``, ``not_met`` once one is ``no``, else ``open``.

Answers travel as CSV, XLSX or JSON with the columns of :data:`COLUMNS`
(``author``, the named person who gave the answer, may be left out);
importing validates every row and names the line of the first bad one.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from cityx.core import DataError, InputError, Principle

COLUMNS = ("id", "principle", "question", "answer", "source", "evidence", "comment", "author")
ANSWERS = ("yes", "no", "n/a", "")
_FORMATS = (".csv", ".xlsx", ".json")
AIVERIFY_MAPPING = "aiverify.v2.toml"
PROCESS_CHECK_PREFIX = "aiverify."
CHECKLIST_VERSION = "2"
"""Version 2 added AI Verify's process checks to our own 17 questions."""


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    principle: Principle
    question: str
    evidence: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    id: str
    principle: Principle
    question: str
    answer: str = ""
    source: str = "user"
    evidence: str = ""
    comment: str = ""
    # Who gave the answer (a named person): an answer with an author is an attestation
    # a requirement can rest on; optional, so older files still read.
    author: str = ""

    def row(self) -> dict[str, str]:
        return {
            "id": self.id,
            "principle": self.principle.value,
            "question": self.question,
            "answer": self.answer,
            "source": self.source,
            "evidence": self.evidence,
            "comment": self.comment,
            "author": self.author,
        }


@cache
def load_checklist() -> tuple[Item, ...]:
    """The shipped checklist: our own questions, then AI Verify's process checks."""
    package = resources.files("cityx.governance")
    data = tomllib.loads((package / "checklist.v1.toml").read_text("utf-8"))
    own = tuple(
        Item(
            id=str(raw["id"]),
            principle=Principle(raw["principle"]),
            question=str(raw["question"]),
            evidence=raw.get("evidence"),
        )
        for raw in data["items"]
    )
    mapping = tomllib.loads((package / "frameworks" / AIVERIFY_MAPPING).read_text("utf-8"))
    checks = tuple(
        Item(
            id=f"{PROCESS_CHECK_PREFIX}{raw['id']}",
            principle=Principle(raw["group"]),
            question=f"AI Verify process check {raw['id']}: {raw['text']}",
        )
        for raw in mapping["requirements"]
    )
    return own + checks


def answer_from_trial(items: Sequence[Item], trial: Path | None) -> list[Answer]:
    """Every item, answered from ``trial/results.json`` where the trial has the evidence."""
    results = _read_results(trial) if trial is not None else None
    answers = []
    for item in items:
        blank = Answer(item.id, item.principle, item.question)
        answers.append(_from_evidence(blank, item.evidence, results) if results else blank)
    return answers


def _read_results(trial: Path) -> dict[str, Any]:
    path = Path(trial) / "results.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("not a trial folder: results.json is missing", where=str(trial)) from None
    except ValueError as exc:
        raise DataError(f"results.json is not valid JSON: {exc}", where=str(path)) from None
    return data


def _from_evidence(
    blank: Answer, rule: Mapping[str, Any] | None, results: Mapping[str, Any]
) -> Answer:
    if not rule:
        return blank
    if "field" in rule:
        value: Any = results
        for part in str(rule["field"]).split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value:
            return replace(
                blank, answer="yes", source="trial", evidence=f"results: {rule['field']}"
            )
        return blank
    status = next(
        (c["status"] for c in results.get("checks", []) if c["id"] == rule["check"]), None
    )
    if status is None:
        return blank
    where = f"trial {results.get('trial_id', '?')}: check {rule['check']} {status}"
    if status in rule.get("yes", ()):
        return replace(blank, answer="yes", source="trial", evidence=where)
    if status in rule.get("no", ()):
        return replace(blank, answer="no", source="trial", evidence=where)
    return blank


def write_answers(answers: Sequence[Answer], path: Path) -> Path:
    """Write as CSV, XLSX or JSON, by the suffix of ``path``."""
    path = Path(path)
    suffix = _suffix(path)
    rows = [a.row() for a in answers]
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".json":
        document = {
            "schema_version": 1,
            "checklist": f"cityx.checklist/{CHECKLIST_VERSION}",
            "items": rows,
        }
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    else:
        from openpyxl import Workbook  # type: ignore[import-untyped]

        book = Workbook()
        sheet = book.active
        assert sheet is not None  # a new workbook always has one sheet
        sheet.title = "checklist"
        sheet.append(list(COLUMNS))
        for row in rows:
            sheet.append([row[c] for c in COLUMNS])
        book.save(path)
    return path


def read_answers(path: Path, items: Sequence[Item]) -> list[Answer]:
    """Read and validate a filled-in checklist; DataError naming the bad line."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise DataError("file not found", where=str(path))
    if suffix == ".csv":
        text = path.read_text(encoding="utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        _check_header(reader.fieldnames or [], f"{path}:1")
        rows = [(f"{path}:{reader.line_num}", dict(r)) for r in reader]
    elif suffix == ".json":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            raw = document["items"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"not a checklist JSON file: {exc}", where=str(path)) from None
        rows = [(f"{path}: items[{i}]", r) for i, r in enumerate(raw)]
    else:
        rows = _xlsx_rows(path)
    known = {item.id: item for item in items}
    seen: set[str] = set()
    answers = []
    for where, row in rows:
        answers.append(_validate(row, where, known, seen))
    missing = [i for i in known if i not in seen]
    if missing:
        raise DataError(
            f"{len(missing)} checklist item(s) are missing, first {missing[0]!r}",
            where=str(path),
            hint="export a fresh checklist with: cityx checklist export --out FILE",
        )
    return answers


def _xlsx_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    from openpyxl import load_workbook  # heavy: only spreadsheets need it

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise DataError(f"cannot read the XLSX file: {exc}", where=str(path)) from None
    sheet = book["checklist"] if "checklist" in book.sheetnames else book.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    book.close()
    if not values:
        raise DataError("the sheet is empty", where=str(path))
    header = [str(v) if v is not None else "" for v in values[0]]
    _check_header(header, f"{path}: row 1")
    return [
        (
            f"{path}: row {n}",
            {h: ("" if v is None else str(v)) for h, v in zip(header, r, strict=False)},
        )
        for n, r in enumerate(values[1:], start=2)
        if any(v not in (None, "") for v in r)
    ]


def _check_header(header: Sequence[str], where: str) -> None:
    missing = [c for c in ("id", "principle", "answer") if c not in header]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}", where=where)


def _validate(
    row: Mapping[str, Any], where: str, known: Mapping[str, Item], seen: set[str]
) -> Answer:
    item_id = str(row.get("id") or "").strip()
    item = known.get(item_id)
    if item is None:
        raise DataError(f"unknown checklist item {item_id!r}", where=where)
    if item_id in seen:
        raise DataError(f"item {item_id!r} appears twice", where=where)
    seen.add(item_id)
    principle = str(row.get("principle") or "").strip()
    if principle != item.principle.value:
        raise DataError(
            f"item {item_id!r} belongs to principle {item.principle.value!r}, not {principle!r}",
            where=where,
        )
    answer = str(row.get("answer") or "").strip().lower()
    if answer not in ANSWERS:
        raise DataError(
            f"answer {answer!r} for {item_id!r} is not one of yes, no, n/a or empty",
            where=where,
        )
    source = str(row.get("source") or "user").strip() or "user"
    return Answer(
        item.id,
        item.principle,
        item.question,
        answer,
        source,
        str(row.get("evidence") or ""),
        str(row.get("comment") or ""),
        str(row.get("author") or "").strip(),
    )


def principle_summary(answers: Sequence[Answer]) -> dict[str, dict[str, Any]]:
    """Per principle (all 11, in order): counts of answers and a status."""
    table: dict[str, dict[str, Any]] = {
        p.value: {"yes": 0, "no": 0, "na": 0, "open": 0, "status": "open"} for p in Principle
    }
    for a in answers:
        key = {"yes": "yes", "no": "no", "n/a": "na"}.get(a.answer, "open")
        table[a.principle.value][key] += 1
    for row in table.values():
        total = row["yes"] + row["no"] + row["na"] + row["open"]
        if row["no"]:
            row["status"] = "not_met"
        elif total and not row["open"]:
            row["status"] = "met"
    return table


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise InputError(
            f"unsupported checklist format {suffix or '(none)'!r}",
            where=str(path),
            hint="use .csv, .xlsx or .json",
        )
    return suffix


__all__ = [
    "AIVERIFY_MAPPING",
    "ANSWERS",
    "CHECKLIST_VERSION",
    "COLUMNS",
    "PROCESS_CHECK_PREFIX",
    "Answer",
    "Item",
    "answer_from_trial",
    "load_checklist",
    "principle_summary",
    "read_answers",
    "write_answers",
]
