"""The submissions cityx.testing builds are complete version 2 manifests: no v1 warning."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cityx.core import Level
from cityx.submissions import validate_submission
from cityx.testing.fixtures import controller_submission, predictor_submission


@pytest.mark.parametrize("build", [predictor_submission, controller_submission])
def test_a_fixture_submission_is_a_complete_v2_manifest(tmp_path: Path, build: object) -> None:
    folder = build(tmp_path / "s")  # type: ignore[operator]
    toml = tomllib.loads((folder / "cityx.toml").read_text())
    assert toml["schema_version"] == 2
    assert "sensitive" not in toml.get("data", {})
    validation = validate_submission(folder)
    # Not one problem: no "version 1, read as version 2" warning, no placeholder or gap.
    assert validation.ok and validation.problems == (), validation.problems
    assert not [p for p in validation.problems if p.level is Level.WARNING]
    manifest = validation.manifest
    assert manifest is not None
    if manifest.system.kind.value == "predictor":
        assert toml["fairness"] == {"sensitive": ["district"]}
        assert manifest.fairness.declared
