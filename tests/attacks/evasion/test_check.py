"""The trial check ``redteam.evasion`` on the metro-congestion example, with and without
its threat-model.toml, and on a controller submission (skipped).

Small options (rows, budget) keep each run to about a second.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cityx.attacks.evasion import DEFAULT_THREAT_MODEL
from cityx.attacks.evasion.check import EvasionCheck
from cityx.attacks.evasion.details import EvasionDetails, evasion_section
from cityx.core import (
    CheckContext,
    CheckStatus,
    Direction,
    PluginKind,
    Predictor,
    Registry,
    Severity,
    Threshold,
)
from cityx.data import labelled_batch
from cityx.governance import load_policy
from cityx.submissions import validate_submission
from cityx.targets import open_predictor

from ...support.paths import SUBMISSIONS

METRO = SUBMISSIONS / "metro-congestion"
OPTIONS = {"rows": 12, "budget": 40}
THRESHOLDS = {
    "evasion_success": Threshold("evasion_success", Direction.MAX, fail=0.5, conditional=0.25),
    "violations": Threshold("violations", Direction.MAX, fail=0),
}


@pytest.fixture(scope="module")
def predictor() -> Iterator[Predictor]:
    manifest = validate_submission(METRO).raise_for_errors()
    with open_predictor(manifest, METRO) as opened:
        yield opened


def _context(folder: Path, predictor: Predictor | None, *, seed: int = 3) -> CheckContext:
    manifest = validate_submission(folder).raise_for_errors()
    holdout = (
        labelled_batch(
            folder / "data" / "holdout.csv",
            manifest.input_schema(),
            manifest.output_spec(),
            manifest.outputs.label_column,
        )
        if predictor is not None
        else None
    )
    return CheckContext(
        submission_dir=folder,
        manifest=manifest,
        seed=seed,
        predictor=predictor,
        holdout=holdout,
        thresholds=THRESHOLDS,
        options=OPTIONS,
    )


def test_the_declared_threat_model_is_named_with_its_digest(predictor: Predictor) -> None:
    result = EvasionCheck().run(_context(METRO, predictor))
    assert result.status in (CheckStatus.PASSED, CheckStatus.FAILED), result.message
    details = result.details
    assert isinstance(details, EvasionDetails)
    path = METRO / "threat-model.toml"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    # Named as the submission holds it: results read the same on every machine.
    assert details.threat_model == f"threat-model.toml (sha256 {digest})"
    assert result.message.startswith(f"threat model: {details.threat_model};")
    assert details.controlled == ("loop",)
    # The declared attacker holds the stop-line loops only: nothing else may change.
    assert set(details.changed) <= {"flow_veh_h", "occupancy_pct"}
    assert (details.rows, details.budget, details.seed) == (12, 40, 3)
    assert result.metrics["violations"].value == 0
    success = result.metrics["evasion_success"]
    assert success.value == details.evaded / details.rows
    assert success.ci_low is not None and success.ci_high is not None
    assert success.ci_low <= success.value <= success.ci_high
    assert not [f for f in result.findings if f.id.endswith("/violations")]
    # The details survive results.json, and the report section states the threat model first.
    assert EvasionDetails.from_json(details.to_json()) == details
    section = evasion_section(details, result.metrics, "ev")
    assert section.tables[0].rows[0] == ("Threat model", details.threat_model)


def test_without_a_threat_model_file_the_default_is_used_and_named(
    predictor: Predictor, tmp_path: Path
) -> None:
    folder = tmp_path / "metro-no-threat-model"
    shutil.copytree(METRO, folder, ignore=shutil.ignore_patterns("threat-model.toml"))
    result = EvasionCheck().run(_context(folder, predictor))
    assert result.status in (CheckStatus.PASSED, CheckStatus.FAILED), result.message
    details = result.details
    assert isinstance(details, EvasionDetails)
    assert details.threat_model == DEFAULT_THREAT_MODEL == "default: schema bounds, every sensor"
    assert result.message.startswith(f"threat model: {DEFAULT_THREAT_MODEL}")
    assert len(details.controlled) == 10  # every feature its own sensor, all controlled
    assert result.metrics["violations"].value == 0
    for finding in result.findings:
        assert DEFAULT_THREAT_MODEL in finding.description
    # Any in-bounds value of any feature flips nearly every row on this model; that
    # upper bound makes the gate conditional at most, never failed on its own.
    success = [f for f in result.findings if f.id == "redteam.evasion/evasion_success"]
    assert success and success[0].severity is Severity.MEDIUM
    assert "upper bound" in success[0].severity_reason


def test_the_same_seed_gives_the_same_result(predictor: Predictor) -> None:
    a, b = (EvasionCheck().run(_context(METRO, predictor, seed=9)) for _ in range(2))
    assert a.details == b.details and a.metrics == b.metrics


def test_a_controller_submission_is_skipped_with_a_reason() -> None:
    result = EvasionCheck().run(_context(SUBMISSIONS / "acme-signals", None))
    assert result.status is CheckStatus.SKIPPED
    assert "controller" in result.message


def test_a_predictor_without_holdout_data_is_skipped(predictor: Predictor) -> None:
    ctx = _context(METRO, predictor)
    result = EvasionCheck().run(replace(ctx, holdout=None))
    assert result.status is CheckStatus.SKIPPED
    assert "holdout" in result.message


def test_the_check_is_registered_and_the_default_policy_runs_it_on_predictors() -> None:
    assert Registry().load(PluginKind.CHECK, "redteam.evasion") is EvasionCheck
    policy = load_policy(None)
    rules = policy.checks["redteam.evasion"]
    assert rules.options == {"rows": 100, "budget": 200}
    assert set(rules.thresholds) == {"evasion_success", "violations"}


def test_too_small_options_are_refused_naming_the_option(predictor: Predictor) -> None:
    ctx = _context(METRO, predictor)
    result = EvasionCheck().run(replace(ctx, options={"rows": 5, "budget": 2}))
    assert result.status is CheckStatus.ERROR
    assert "budget" in result.message
