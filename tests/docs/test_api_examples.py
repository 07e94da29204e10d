"""Every Python example of docs/api.md runs as written, in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..support.paths import ROOT

API = ROOT / "docs" / "api.md"
BLOCK = re.compile(r"^## (?P<title>.+?)$.*?^```python\n(?P<code>.*?)^```", re.M | re.S)


def _examples() -> list[tuple[str, str]]:
    return [(m["title"], m["code"]) for m in BLOCK.finditer(API.read_text())]


EXAMPLES = _examples()


def test_every_capability_has_an_example() -> None:
    titles = {t for t, _ in EXAMPLES}
    assert len(EXAMPLES) >= 10 and len(titles) == len(EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize(("title", "code"), EXAMPLES, ids=[t for t, _ in EXAMPLES])
def test_example_runs(tmp_path: Path, title: str, code: str) -> None:
    # A folder of the user's own, with the repository's examples beside it.
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "out").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")},
    )
    assert done.returncode == 0, f"{title}:\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{title} printed nothing"
