"""Manifest v2, completeness gaps, the controller template and its contract, upgrade."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from cityx.core import CheckContext, CheckStatus, Level, Manifest, ManifestError, SystemKind
from cityx.governance.gate import Decision, decide
from cityx.governance.policy import load_policy
from cityx.submissions import (
    scaffold_submission,
    upgrade_manifest,
    validate_submission,
)
from cityx.submissions.admission import Admission
from cityx.submissions.completeness import manifest_gaps

from ..support.cli import cityx
from ..support.paths import SUBMISSIONS


def _raw(**extra: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "schema_version": 2,
        "system": {
            "id": "s",
            "vendor": "V",
            "version": "1",
            "kind": "predictor",
            "intended_use": "Predicts congestion for the tests.",
            "contact": "v@x.org",
        },
        "artifact": {"path": "m.onnx", "format": "onnx", "sha256": "0" * 64},
        "inputs": {"features": [{"name": "flow"}]},
        "outputs": {"task": "classification", "labels": ["a", "b"], "label_column": "y"},
        "data": {"holdout": "h.csv", "datasheet": "d.md"},
    }
    raw.update(extra)
    return raw


def test_v1_is_read_as_v2_with_its_sensitive_columns() -> None:
    raw = _raw(schema_version=1)
    raw["data"] = {"holdout": "h.csv", "datasheet": "d.md", "sensitive": ["district"]}
    manifest = Manifest.model_validate(raw)
    assert manifest.schema_version == 2 and manifest.fairness.sensitive == ["district"]
    assert manifest.claims == {}
    # Its dump reads back the same.
    assert Manifest.model_validate(manifest.model_dump(mode="json")) == manifest


def test_v2_fairness_and_claims() -> None:
    why = "One gantry on a motorway: no groups of people or places."
    manifest = Manifest.model_validate(
        _raw(
            fairness={"not_applicable": why},
            claims={"macro_f1": 0.8, "rows": 100, "scenarios": ["cologne3"]},
        )
    )
    assert manifest.fairness.not_applicable == why and manifest.fairness.declared
    assert manifest.claims == {"macro_f1": 0.8, "rows": 100.0, "scenarios": ["cologne3"]}


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"fairness": {"sensitive": ["d"], "not_applicable": "x" * 30}}, "not both"),
        ({"fairness": {"not_applicable": "n/a"}}, "at least 20"),
        ({"claims": {"macro_f1": True}}, "float"),
        ({"claims": {"macro_f1": float("nan")}}, "finite"),
        ({"data": {"holdout": "h.csv", "datasheet": "d.md", "sensitive": ["d"]}}, "[fairness]"),
    ],
)
def test_v2_mistakes_are_refused(extra: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)):
        Manifest.model_validate(_raw(**extra))


def test_a_scaffolded_submission_has_gaps_and_admission_keeps_it_from_pass(
    tiny_submission: Path,
) -> None:
    scaffold = tiny_submission.parent / "scaffold"
    scaffold_submission(scaffold, kind=SystemKind.PREDICTOR)
    template = tomllib.loads((scaffold / "cityx.toml").read_text())["system"]
    toml = tiny_submission / "cityx.toml"
    text = toml.read_text()
    for field in ("vendor", "intended_use", "contact"):
        text = re.sub(rf'^{field} = ".*"$', f'{field} = "{template[field]}"', text, flags=re.M)
    toml.write_text(text)
    (tiny_submission / "datasheet.md").write_text((scaffold / "datasheet.md").read_text())
    validation = validate_submission(tiny_submission)
    assert validation.ok  # gaps are warnings: a vendor may validate early
    manifest = validation.manifest
    assert manifest is not None
    gaps = manifest_gaps(tiny_submission, manifest)
    where = " ".join(g.where for g in gaps)
    for field in ("[system].vendor", "[system].intended_use", "[system].contact"):
        assert field in where
    assert "## Motivation" in where and all(g.level is Level.WARNING for g in gaps)
    result = Admission().run(
        CheckContext(tiny_submission, manifest, seed=0, problems=validation.problems)
    )
    assert result.status is CheckStatus.UNDETERMINED
    assert any(f.id.startswith("admission/incomplete-") for f in result.findings)
    # Even a policy that lets medium findings pass cannot pass it.
    lenient = tiny_submission.parent / "lenient.toml"
    lenient.write_text(
        'schema_version = 1\nid = "l"\nversion = "1"\n'
        '[gate]\nfail_at = "critical"\nconditional_at = "critical"\n[checks."admission"]\n'
    )
    assert decide([result], load_policy(lenient)).decision is Decision.CONDITIONAL


def test_an_undeclared_fairness_position_is_a_gap(tiny_submission: Path) -> None:
    toml = tiny_submission / "cityx.toml"
    toml.write_text(re.sub(r"\[fairness\]\nnot_applicable = .*\n", "", toml.read_text()))
    manifest = validate_submission(tiny_submission).manifest
    assert manifest is not None
    (gap,) = manifest_gaps(tiny_submission, manifest)
    assert gap.where.endswith("[fairness]") and "not_applicable" in gap.message


def test_an_empty_datasheet_is_a_gap(tiny_submission: Path) -> None:
    (tiny_submission / "datasheet.md").write_text("# Datasheet\n\n## Motivation\n")
    manifest = validate_submission(tiny_submission).manifest
    assert manifest is not None
    (gap,) = manifest_gaps(tiny_submission, manifest)
    assert "holds no answers" in gap.message


def test_the_examples_are_complete() -> None:
    for name in ("metro-congestion", "acme-signals"):
        result = validate_submission(SUBMISSIONS / name)
        assert result.manifest is not None and result.ok
        assert manifest_gaps(SUBMISSIONS / name, result.manifest) == ()


def test_the_controller_template_passes_its_own_validation(tmp_path: Path) -> None:
    folder = tmp_path / "ctl"
    run = cityx("submission", "init", folder, "--kind", "controller")
    assert run.code == 0, run.err
    text = (folder / "cityx.toml").read_text()
    assert 'kind = "controller"' in text and 'observation = "phase-candidates/v1"' in text
    errors = validate_submission(folder).errors
    # Only the model the vendor has yet to add.
    assert [e.where.rsplit(": ", 1)[-1] for e in errors] == ["[artifact].path"]


def test_validate_names_a_controller_feature_the_contract_lacks_or_its_wrong_unit(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "ctl"
    scaffold_submission(folder, kind=SystemKind.CONTROLLER)
    (folder / "model.onnx").write_bytes(b"x")
    toml = folder / "cityx.toml"
    text = toml.read_text().replace("0" * 64, hashlib.sha256(b"x").hexdigest())
    text = text.replace('name = "hour"', 'name = "hour_of_day"')
    text = text.replace('unit = "%"\nmin = 0\nmax = 100', 'unit = "fraction"\nmin = 0\nmax = 1')
    toml.write_text(text)
    run = cityx("submission", "validate", folder)
    assert run.code == 2
    assert "'hour_of_day' is not a feature of the phase-candidates/v1 observation" in run.out
    assert (
        "occupancy_in is in '%' in the phase-candidates/v1 observation, not 'fraction'" in run.out
    )
    assert "occupancy_in is declared within [0, 1]" in run.out


def test_a_manifest_wide_error_never_quotes_the_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "ctl"
    scaffold_submission(folder, kind=SystemKind.CONTROLLER)
    toml = folder / "cityx.toml"
    toml.write_text(re.sub(r"\[controller\]\n(.*\n){2}", "", toml.read_text()))
    run = cityx("submission", "validate", folder)
    assert run.code == 2 and "needs a [controller] section" in run.out
    assert "{'" not in run.out and "'system':" not in run.out


def test_validate_load_refuses_a_corrupt_model(tiny_submission: Path) -> None:
    assert cityx("submission", "validate", tiny_submission, "--load").code == 0
    (tiny_submission / "model.onnx").write_bytes(b"not an onnx graph")
    toml = tiny_submission / "cityx.toml"
    digest = hashlib.sha256(b"not an onnx graph").hexdigest()
    toml.write_text(re.sub(r'sha256 = "[0-9a-f]{64}"', f'sha256 = "{digest}"', toml.read_text()))
    assert cityx("submission", "validate", tiny_submission).code == 0  # it never loads
    run = cityx("submission", "validate", tiny_submission, "--load")
    assert run.code == 2 and "the model did not load and answer" in run.out
    (tiny_submission / "model.onnx").write_bytes(b"")
    toml.write_text(
        re.sub(
            r'sha256 = "[0-9a-f]{64}"',
            f'sha256 = "{hashlib.sha256(b"").hexdigest()}"',
            toml.read_text(),
        )
    )
    run = cityx("submission", "validate", tiny_submission)
    assert run.code == 2 and "empty (0 bytes)" in run.out


def test_validate_load_of_an_entry_point_needs_trust_code(
    entrypoint_submission: object,
) -> None:
    folder = entrypoint_submission()  # type: ignore[operator]
    run = cityx("submission", "validate", folder, "--load")
    assert run.code == 2 and "--trust-code" in run.out
    assert cityx("submission", "validate", folder, "--load", "--trust-code").code == 0


def test_upgrade_rewrites_v1_keeping_comments_and_is_idempotent(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "d.md").write_text("# Datasheet\n\nReal answers.\n")
    raw = (
        "# my comment\nschema_version = 1\n\n"
        '[system]\nid = "s"\nvendor = "V"\nversion = "1"\nkind = "predictor"\n'
        'intended_use = "Predicts congestion for the tests."\ncontact = "v@x.org"\n\n'
        f'[artifact]\npath = "m.onnx"\nformat = "onnx"\nsha256 = "{"0" * 64}"\n\n'
        '[[inputs.features]]\nname = "flow"\n\n'
        '[outputs]\ntask = "classification"\nlabels = ["a", "b"]\nlabel_column = "y"\n\n'
        '[data]\nholdout = "h.csv"\ndatasheet = "d.md"\nsensitive = ["district"]  # by area\n'
    )
    (folder / "cityx.toml").write_text(raw)
    run = cityx("submission", "upgrade", folder, "--json")
    assert run.code == 0 and run.json()["changed"] is True
    text = (folder / "cityx.toml").read_text()
    assert text.startswith("# my comment\nschema_version = 2\n")
    body = tomllib.loads(text)
    assert "sensitive" not in body["data"] and body["fairness"]["sensitive"] == ["district"]
    assert "# by area" in text
    again = upgrade_manifest(folder)
    assert not again.changed and (folder / "cityx.toml").read_text() == text
    (folder / "cityx.toml").write_text("schema_version = 1\n")
    with pytest.raises(ManifestError, match="nothing was written"):
        upgrade_manifest(folder)
    assert (folder / "cityx.toml").read_text() == "schema_version = 1\n"


def test_opening_an_entry_point_needs_trust_code(entrypoint_submission: object) -> None:
    from cityx.submissions import open_submission

    folder = entrypoint_submission()  # type: ignore[operator]
    submission = open_submission(folder)
    with pytest.raises(ManifestError, match="--trust-code"):
        submission.predictor()
    with submission.predictor(trust_code=True) as model:
        assert model.predict(np.zeros((1, 4))).values.shape == (1,)
    run = cityx(
        *("redteam", "evade", "--model", folder, "--data", folder / "holdout.csv"),
        *("--label", "congestion", "--budget", "16", "--samples", "5", "--no-fragility"),
    )
    assert run.code == 2 and "--trust-code" in run.err
