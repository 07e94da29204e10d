"""Is the manifest complete enough for a deployment gate to pass?

A manifest can be *valid* (it parses and its files exist) and still
*incomplete*: a *gap* is a part a reviewer needs that the vendor never
filled in. The gaps are:

- a *scaffold placeholder*: ``vendor``, ``intended_use`` or ``contact``
  still holds the text ``cityx submission init`` wrote;
- an *unfilled datasheet*: empty, only headings, or a section of the
  scaffold's datasheet whose body is still only the scaffold's questions;
- an undeclared *fairness* position (predictors): neither sensitive
  columns nor a written reason why there are none (``[fairness]``).

A controller's group fairness is measured in the sandbox by its own groups
(district, approach, vehicle class), so it needs no ``[fairness]`` section.
Validation lists gaps as warnings (a vendor may validate early); the
admission check turns them into an ``undetermined`` result, which keeps the
gate from ``pass`` under any policy.
"""

from __future__ import annotations

import re
from pathlib import Path

from cityx.core import MANIFEST_FILE, Level, Manifest, Problem, SystemKind

from .paths import resolve_inside
from .scaffold import DATASHEET_QUESTIONS, PLACEHOLDERS

GAP = "incomplete"  # the first word of every gap's message, so a reader can filter them


def manifest_gaps(folder: Path, manifest: Manifest) -> tuple[Problem, ...]:
    """Every gap of the manifest in ``folder``, each a warning naming its field."""
    toml = str(Path(folder) / MANIFEST_FILE)
    found: list[Problem] = []
    system = manifest.system
    for name, value in (
        ("vendor", system.vendor),
        ("intended_use", system.intended_use),
        ("contact", system.contact),
    ):
        if _normal(value) in {_normal(p) for p in PLACEHOLDERS[name]}:
            found.append(
                _gap(f"{toml}: [system].{name}", "still the scaffold's placeholder; say it in full")
            )
    datasheet = resolve_inside(Path(folder), manifest.data.datasheet)
    if datasheet is not None and datasheet.is_file():
        for where, message in datasheet_gaps(datasheet):
            found.append(_gap(where, message))
    if manifest.system.kind is SystemKind.PREDICTOR and not manifest.fairness.declared:
        found.append(
            _gap(
                f"{toml}: [fairness]",
                "declares neither sensitive columns (sensitive = [...]) nor, in writing, why "
                'there are none (not_applicable = "...")',
            )
        )
    return tuple(found)


def datasheet_gaps(path: Path) -> list[tuple[str, str]]:
    """Where the datasheet at ``path`` is unfilled: (where, what) pairs."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [(str(path), f"cannot be read as UTF-8 text: {exc}")]
    lines = [line.strip() for line in _strip_comments(text).splitlines()]
    body = [line for line in lines if line and not line.startswith("#")]
    questions = {_normal(q) for qs in DATASHEET_QUESTIONS.values() for q in qs}
    if not [line for line in body if _normal(line) not in questions]:
        return [(str(path), "holds no answers, only headings or the scaffold's questions")]
    gaps = []
    for heading, answers in _sections(lines).items():
        asked = {_normal(q) for q in DATASHEET_QUESTIONS.get(heading, ())}
        if asked and not [a for a in answers if _normal(a) not in asked]:
            gaps.append((f"{path}: ## {heading}", "still only the scaffold's questions"))
    return gaps


def _sections(lines: list[str]) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
        elif line.startswith("#"):
            current = None
        elif line and current is not None:
            current.append(line)
    return sections


def _strip_comments(text: str) -> str:
    return re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def _gap(where: str, message: str) -> Problem:
    return Problem(where, f"{GAP}: {message}", Level.WARNING)


__all__ = ["GAP", "datasheet_gaps", "manifest_gaps"]
