from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cityx.core import InputError, Level, ManifestError, SystemKind
from cityx.submissions import scaffold_submission, validate_submission

from ..support.paths import SUBMISSIONS


def messages(folder: Path) -> list[str]:
    return [str(p) for p in validate_submission(folder).errors]


def test_a_good_submission_validates(tiny_submission: Path) -> None:
    result = validate_submission(tiny_submission)
    assert result.ok, result.problems
    assert result.artifact_sha256 and result.to_json()["submission"]["id"] == "tiny-congestion"


def test_scaffold_lists_what_is_missing_and_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "Acme Signals"
    scaffold_submission(folder, kind=SystemKind.PREDICTOR)
    errors = messages(folder)
    assert any("[artifact].path" in e and "model.onnx" in e for e in errors)
    assert any("[data].holdout" in e for e in errors)
    assert 'id = "acme-signals"' in (folder / "cityx.toml").read_text()
    with pytest.raises(InputError, match="already exists"):
        scaffold_submission(folder, kind=SystemKind.PREDICTOR)


def test_typos_name_the_field_and_suggest(tiny_submission: Path) -> None:
    toml = tiny_submission / "cityx.toml"
    toml.write_text(toml.read_text().replace("intended_use", "intendd_use"))
    errors = messages(tiny_submission)
    assert any(
        "[system].intendd_use: unknown field (did you mean 'intended_use'?)" in e for e in errors
    )
    assert any("[system].intended_use: required field is missing" in e for e in errors)


def test_bad_values_name_their_feature(tiny_submission: Path) -> None:
    toml = tiny_submission / "cityx.toml"
    toml.write_text(toml.read_text().replace('type = "int"', 'type = "integer"'))
    assert any("[inputs].features[0].type" in e for e in messages(tiny_submission))


def test_digest_mismatch_is_caught(tiny_submission: Path) -> None:
    with (tiny_submission / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    errors = messages(tiny_submission)
    assert any("digest mismatch" in e and "[artifact].sha256" in e for e in errors)


def test_paths_may_not_escape_the_folder(tiny_submission: Path, tmp_path: Path) -> None:
    shutil.copy(tiny_submission / "holdout.csv", tmp_path / "outside.csv")
    toml = tiny_submission / "cityx.toml"
    toml.write_text(
        toml.read_text().replace('holdout = "holdout.csv"', 'holdout = "../outside.csv"')
    )
    assert any("outside the submission folder" in e for e in messages(tiny_submission))


def test_data_problems_name_file_and_column(tiny_submission: Path) -> None:
    holdout = tiny_submission / "holdout.csv"
    holdout.write_text(holdout.read_text().replace("occupancy", "occ", 1))
    errors = messages(tiny_submission)
    assert any("holdout.csv: column 'occupancy'" in e for e in errors)


def test_broken_toml_is_one_problem_with_position(tiny_submission: Path) -> None:
    (tiny_submission / "cityx.toml").write_text("[system\nid=1")
    (problem,) = validate_submission(tiny_submission).problems
    assert "not valid TOML" in problem.message and "line 1" in problem.message


def test_raise_for_errors_gives_the_first_and_a_count(tiny_submission: Path) -> None:
    (tiny_submission / "model.onnx").unlink()
    (tiny_submission / "holdout.csv").unlink()
    with pytest.raises(ManifestError, match=r"not found.*1 more: run cityx submission validate"):
        validate_submission(tiny_submission).raise_for_errors()


def test_out_of_range_rows_are_a_warning_not_an_error(tiny_submission: Path) -> None:
    holdout = tiny_submission / "holdout.csv"
    lines = holdout.read_text().splitlines()
    first = lines[1].split(",")
    first[2] = "500"  # speed far above 70 km/h
    lines[1] = ",".join(first)
    holdout.write_text("\n".join(lines) + "\n")
    result = validate_submission(tiny_submission)
    assert result.ok
    assert [p.level for p in result.problems] == [Level.WARNING]


ACME = SUBMISSIONS / "acme-signals"


def test_the_controller_example_validates_without_warnings() -> None:
    result = validate_submission(ACME)
    assert result.ok and not result.problems
    manifest = result.manifest
    assert manifest is not None and manifest.controller is not None
    assert manifest.controller.observation == "phase-candidates/v1"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('score_label = "yes"', 'score_label = "maybe"'), "score_label must be one of"),
        (("[controller]", "[controllr]"), "unknown field"),
        (
            ('observation = "phase-candidates/v1"', 'observation = "lanes/v9"'),
            "phase-candidates/v1",
        ),
    ],
)
def test_controller_sections_are_checked(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    folder = tmp_path / "acme"
    shutil.copytree(ACME, folder, ignore=shutil.ignore_patterns("data"))
    (folder / "data").mkdir()
    toml = folder / "cityx.toml"
    toml.write_text(toml.read_text().replace(*edit))
    result = validate_submission(folder)
    assert not result.ok
    assert any(message in str(p) for p in result.errors), result.errors
