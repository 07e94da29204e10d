"""The vendored JavaScript is what static/PROVENANCE.md says it is (npm versions, SHA-256)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cityx.server.console import pages

STATIC = Path(pages.__file__).parent / "static"
VENDOR = Path(__file__).parent / "vendor"


def test_vendored_files_match_their_recorded_digests() -> None:
    text = (STATIC / "PROVENANCE.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| (\S+\.js) \| [^|]+ \| ([0-9.]+) \| [0-9a-f]{64} \| ([0-9a-f]{64}) \|", text, re.M
    )
    assert {name for name, _, _ in rows} == {"htmx.min.js", "sse.min.js", "axe.min.js"}
    for name, _version, digest in rows:
        path = STATIC / name if (STATIC / name).exists() else VENDOR / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name
    versions = {name: version for name, version, _ in rows}
    # One matching pair: htmx 2.x with its SSE extension 2.x.
    assert versions["htmx.min.js"].startswith("2.") and versions["sse.min.js"].startswith("2.")


def test_pages_load_nothing_from_another_site() -> None:
    for template in (STATIC.parent / "templates").glob("*.j2"):
        assert not re.search(r'(src|href)="(https?:)?//', template.read_text()), template.name
