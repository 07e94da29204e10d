"""open_submission: the one way into a vendor's model checks the artifact's digest first."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cityx.core import InputError, ManifestError, TargetLoadError
from cityx.submissions import open_submission
from cityx.targets import IsolatedPredictor

from ..support.cli import cityx
from ..support.paths import SUBMISSIONS

EXAMPLE = SUBMISSIONS / "metro-congestion"
HOLDOUT = EXAMPLE / "data" / "holdout.csv"


@pytest.fixture
def swapped(tmp_path: Path) -> Path:
    """The example with its artifact changed after the manifest was written."""
    folder = tmp_path / "swapped"
    shutil.copytree(EXAMPLE, folder)
    model = folder / "model.onnx"
    model.write_bytes(model.read_bytes() + b"\0")
    return folder


@pytest.fixture
def no_worker_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record any attempt to start a model worker (there must be none)."""
    started: list[str] = []

    def start(self: IsolatedPredictor) -> IsolatedPredictor:
        started.append(str(self.artifact))
        raise AssertionError("a worker was started for a tampered artifact")

    monkeypatch.setattr(IsolatedPredictor, "start", start)
    return started


def test_an_intact_submission_opens_from_its_folder_manifest_or_artifact() -> None:
    for path in (EXAMPLE, EXAMPLE / "cityx.toml", EXAMPLE / "model.onnx"):
        submission = open_submission(path)
        assert submission.folder == EXAMPLE and submission.artifact.name == "model.onnx"
    with open_submission(EXAMPLE).predictor() as predictor:
        assert predictor.outputs.labels == ("free", "moderate", "heavy")


def test_a_swapped_artifact_is_refused_before_anything_loads(
    swapped: Path, no_worker_starts: list[str]
) -> None:
    with pytest.raises(ManifestError, match="digest mismatch") as info:
        open_submission(swapped)
    assert info.value.exit_code == 2
    assert no_worker_starts == []


def test_another_file_than_the_declared_artifact_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="declares the artifact"):
        open_submission(EXAMPLE / "datasheet.md")
    with pytest.raises(InputError, match="no such submission"):
        open_submission(tmp_path / "nothing")


@pytest.mark.parametrize(
    "command",
    [
        ("redteam", "evade", "--model", "{model}", "--label", "congestion_next"),
        ("redteam", "evade", "--model", "{model}/model.onnx", "--label", "congestion_next"),
        ("poison", "scan", "--model", "{model}"),
    ],
    ids=["evade-folder", "evade-artifact", "scan"],
)
def test_cli_commands_on_a_swapped_artifact_exit_2_and_load_nothing(
    swapped: Path, no_worker_starts: list[str], command: tuple[str, ...]
) -> None:
    done = cityx(*(part.format(model=swapped) for part in command), "--data", str(HOLDOUT))
    assert done.code == 2, done.err
    assert "digest mismatch" in done.err and done.err.count("\n") == 1
    assert no_worker_starts == []


def test_the_worker_also_refuses_an_artifact_changed_after_opening(swapped: Path) -> None:
    submission = open_submission(EXAMPLE)
    moved = submission.__class__(swapped, submission.manifest, swapped / "model.onnx", "x")
    with pytest.raises(TargetLoadError, match="digest mismatch"):
        moved.predictor().start()
