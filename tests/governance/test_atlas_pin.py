"""MITRE ATLAS: the mapping's ids, names and tactics are those of the pinned release."""

from __future__ import annotations

import json
import tomllib
from importlib import resources

from cityx.core.taxonomy import ATLAS_NAMES
from cityx.governance.requirements import load_framework

FRAMEWORKS = resources.files("cityx.governance") / "frameworks"


def pinned() -> dict[str, object]:
    mapping = tomllib.loads((FRAMEWORKS / "atlas.v1.toml").read_text("utf-8"))
    data: dict[str, object] = json.loads((FRAMEWORKS / mapping["pinned_ids"]).read_text("utf-8"))
    return data


def test_the_vendored_ids_are_the_pinned_release() -> None:
    data = pinned()
    fw = load_framework("atlas")
    assert data["tag"] == f"v{data['version']}"
    assert str(data["version"]) in fw.source_version
    assert len(str(data["commit"])) == 40 and len(str(data["sha256"])) == 64
    assert len(data["techniques"]) > 50  # type: ignore[arg-type]


def test_every_mapped_technique_exists_with_its_name_and_tactic() -> None:
    data = pinned()
    techniques: dict[str, dict[str, object]] = data["techniques"]  # type: ignore[assignment]
    tactics: dict[str, str] = data["tactics"]  # type: ignore[assignment]
    for r in load_framework("atlas").requirements:
        assert r.id in techniques, f"{r.id} is not a technique of the pinned ATLAS release"
        t = techniques[r.id]
        assert r.title == t["name"], r.id
        assert r.group in {tactics[x] for x in t["tactics"]}, r.id  # type: ignore[attr-defined]


def test_findings_tags_use_pinned_ids_and_names() -> None:
    techniques: dict[str, dict[str, object]] = pinned()["techniques"]  # type: ignore[assignment]
    for tid, name in ATLAS_NAMES.items():
        assert tid in techniques and techniques[tid]["name"] == name, tid
