"""The sample entities in examples/interop and the commands docs/interop.md shows for them.

The console block of the "Profiles" section is run command by command, in
process, from a folder that holds a copy of ``examples/``: ``$ cityx ...``
lines are commands (globs expanded, ``> FILE`` writes standard output
there), the lines after one are what it must print, with ``...`` matching
anything (a kid, a sequence number).
"""

from __future__ import annotations

import glob
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from cityx.interop import Catalog, Profile

from ..support.cli import CliRun, cityx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "interop"
DOC = ROOT / "docs" / "interop.md"


def _profiles_block() -> list[tuple[str, list[str]]]:
    """(command, expected lines) for each ``$`` line of the Profiles section's console block."""
    section = DOC.read_text("utf-8").split("\n## Profiles\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```console\n", 1)[1].split("```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip():
            steps[-1][1].append(line)
    return steps


def _matches(expected: str, printed: list[str]) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return any(re.fullmatch(pattern, line) for line in printed)


def _run(command: str, folder: Path) -> CliRun:
    """One shell line ``cityx ... [> FILE]`` in ``folder``: globs expanded, stdout to FILE."""
    words = shlex.split(command)
    target = None
    if ">" in words:
        at = words.index(">")
        words, target = words[:at], words[at + 1]
    assert words[0] == "cityx"
    argv: list[str] = []
    for word in words[1:]:
        found = sorted(glob.glob(word, root_dir=folder)) if "*" in word else [word]
        assert found, f"{word} matches nothing in: {command}"
        argv += found
    run = cityx(*argv, cwd=folder)
    if target is not None:
        assert run.code == 0, (command, run.err)
        (folder / target).write_text(run.out)
    return run


def test_the_profiles_section_runs_as_documented(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples" / "interop")
    steps = _profiles_block()
    assert len(steps) >= 8
    for command, expected in steps:
        run = _run(command, tmp_path)
        printed = (run.out + run.err).splitlines()
        for line in expected:
            assert _matches(line, printed), (command, line, printed)
        failed = any(line.startswith(("cityx: error", "rejected")) for line in expected)
        assert (run.code != 0) == failed, (command, run.code, run.err)


@pytest.mark.parametrize(
    ("name", "kind", "base", "city"),
    [
        ("traffic-flow-city.json", "TrafficFlowObserved", True, True),
        ("traffic-flow-location-only.json", "TrafficFlowObserved", True, False),
        ("road-segment.json", "RoadSegment", True, True),
    ],
)
def test_each_example_meets_the_profiles_it_says(
    name: str, kind: str, base: bool, city: bool
) -> None:
    entity = json.loads((EXAMPLES / name).read_text("utf-8"))
    assert entity["type"] == kind
    for profile, valid in ((Profile.BASE, base), (Profile.CITY, city)):
        problem = Catalog.builtin(profile=profile).first_error(kind, entity)
        assert (problem is None) == valid, (profile, problem)


def test_every_example_is_covered() -> None:
    assert {p.name for p in EXAMPLES.glob("*.json")} == {
        "traffic-flow-city.json",
        "traffic-flow-location-only.json",
        "road-segment.json",
    }


def test_the_sign_help_examples_run(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples" / "interop")
    made = cityx(
        "interop", "keygen", "--issuer", "urn:cityx:vendor:acme:d-1", "--out", "keys", cwd=tmp_path
    )
    assert made.code == 0
    help_text = cityx("interop", "sign", "--help").out
    examples = [line.strip() for line in help_text.split("example:\n", 1)[1].splitlines()]
    assert len(examples) == 2 and all("examples/interop/" in line for line in examples)
    for line in examples:
        run = _run(line, tmp_path)
        assert run.code == 0, (line, run.err)
        assert (tmp_path / "flow.jws").read_text().count(".") == 2  # a compact JWS
