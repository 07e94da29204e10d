"""The ``poisoning.audit`` check on a submission whose training data has compromised sensors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from cityx.attacks.poisoning import CompromisedSensors
from cityx.core import CheckContext, CheckStatus, PluginKind, Registry, Severity
from cityx.defenses.poisoning.check import PoisoningAudit
from cityx.defenses.poisoning.details import PoisoningDetails, poisoning_section
from cityx.runs.drill import poisoning_drill
from cityx.submissions.manifest_file import read_manifest

from ...support.paths import SUBMISSIONS
from ...support.poisoning import LABEL, SOURCES

EXAMPLE = SUBMISSIONS / "metro-congestion"


def _context(folder: Path) -> CheckContext:
    manifest, problems = read_manifest(folder)
    assert manifest is not None, problems
    return CheckContext(submission_dir=folder, manifest=manifest, seed=0)


def test_registered_and_finds_compromised_sensors(tmp_path: Path, metro_base: pd.DataFrame) -> None:
    assert Registry().load(PluginKind.CHECK, "poisoning.audit") is PoisoningAudit
    folder = tmp_path / "sub"
    shutil.copytree(EXAMPLE, folder)
    poisoned = CompromisedSensors().poison(
        metro_base, label=LABEL, source_cols=SOURCES, params={"rate": 0.1, "drift": 1.0}, seed=2
    )
    training = _context(folder).manifest
    assert training is not None and training.data.training is not None
    poisoned.table.to_csv(folder / str(training.data.training), index=False)
    result = PoisoningAudit().run(_context(folder))
    assert result.status is CheckStatus.FAILED, result.message
    finding = next(f for f in result.findings if f.id.endswith("compromised-sources"))
    assert finding.severity is Severity.HIGH
    assert any(s in finding.title for s in poisoned.details["sources"])
    assert isinstance(result.details, PoisoningDetails)
    assert result.details.verdict == "poisoned"
    assert result.metrics["compromised_sources"].value >= 1


def test_skipped_without_training_data(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    shutil.copytree(EXAMPLE, folder)
    text = (folder / "cityx.toml").read_text()
    (folder / "cityx.toml").write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("training ="))
    )
    result = PoisoningAudit().run(_context(folder))
    assert result.status is CheckStatus.SKIPPED


def test_a_backdoor_is_named_with_its_trigger_and_sanitising_undoes_it(tmp_path: Path) -> None:
    drill = poisoning_drill(EXAMPLE, tmp_path, rate=0.05, seed=1)
    original = pd.read_csv(EXAMPLE / "data" / "train.csv")
    assert len(original) == drill.poisoned.size  # the example itself is untouched
    result = PoisoningAudit().run(_context(drill.submission))
    assert result.status is CheckStatus.FAILED
    details = result.details
    assert isinstance(details, PoisoningDetails) and details.trigger is not None
    assert details.trigger.target == "heavy"
    assert {"occupancy_pct", "halting_veh", "max_jam_m"} <= set(details.trigger.offsets)
    flagged = set(details.flagged_rows)
    poisoned = set(drill.poisoned.nonzero()[0].tolist())
    assert len(flagged & poisoned) / len(flagged | poisoned) > 0.9
    assert details.sanitising is not None and details.sanitising.comparison is not None
    compared = details.sanitising.comparison
    assert compared.attack_success_before is not None and compared.attack_success_before > 0.8
    assert compared.attack_success_after is not None and compared.attack_success_after < 0.2
    assert compared.accuracy_after >= compared.accuracy_before - 0.02
    # Keeping every row but fading the suspicious ones out also defuses the trigger.
    assert compared.attack_success_robust is not None and compared.attack_success_robust < 0.2


def test_clean_training_data_is_undetermined_and_not_retrained(tmp_path: Path) -> None:
    # Nothing is found, yet a sensor misreporting within range cannot be ruled out: the
    # check says so as its own state, never as a pass, and retrains nothing.
    result = PoisoningAudit().run(_context(EXAMPLE))
    assert result.status is CheckStatus.UNDETERMINED, [f.title for f in result.findings]
    assert "sensor misreporting" in result.message
    assert not result.findings
    assert isinstance(result.details, PoisoningDetails)
    assert result.details.verdict == "undetermined"
    assert result.details.sanitising is None and result.details.trigger is None
    # The details keep which kinds could be ruled out, and the report section shows them.
    assert result.details.coverage["sources"]["covered"] is False
    assert PoisoningDetails.from_json(result.details.to_json()) == result.details
    (table, *_) = poisoning_section(result.details, result.metrics, "poisoning.audit").tables
    assert table.rows[-1][:2] == ("sources", "no")
