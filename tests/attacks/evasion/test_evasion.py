"""Constrained evasion: feasible successes only, within budget, seeded, and the fragility map."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cityx.attacks.evasion import (
    DEFAULT_THREAT_MODEL,
    THREAT_MODEL_FILE,
    ConstrainedEvasion,
    ThreatModel,
    ThreatModelError,
    evade,
    parse_threat_model,
    search,
    violations,
)
from cityx.core import InputError, InputSchema, stream

from ...support.paths import SUBMISSIONS
from .conftest import RulePredictor, loop_rows, threat_toml

EXAMPLE = SUBMISSIONS / "metro-congestion"


def _near_threshold(n: int) -> np.ndarray:
    """Rows whose mean occupancy lies 2 to 10 points below the 'heavy' threshold."""
    rows = loop_rows(4000, 7)
    mean = (rows[:, 1] + rows[:, 4]) / 2
    return rows[(mean > 10) & (mean < 18)][:n]


def test_search_flips_only_with_feasible_points(threat: ThreatModel) -> None:
    model = RulePredictor()
    rows = _near_threshold(40)
    target = np.full(rows.shape[0], "free")
    out = search(model, rows, target, threat, budget=64, rng=stream(1, "t"))
    assert out.success.mean() > 0.5
    assert not violations(threat, out.attacked, rows).any()
    assert (out.queries <= 64).all() and model.queries == out.queries.sum()
    flipped = model.predict(out.attacked[out.success]).values
    assert (flipped == "heavy").all()
    # Only sensor a's features moved; failures keep the true row.
    moved = np.abs(out.attacked - rows) > 0
    assert not moved[:, 3:].any()
    assert np.array_equal(out.attacked[~out.success], rows[~out.success])


def test_shrinking_finds_smaller_changes_than_the_first_hit(threat: ThreatModel) -> None:
    rows = _near_threshold(40)
    target = np.full(rows.shape[0], "free")
    # With only the find phase's worth of queries, against with room to shrink.
    short = search(RulePredictor(), rows, target, threat, budget=24, rng=stream(2, "t"))
    long = search(RulePredictor(), rows, target, threat, budget=200, rng=stream(2, "t"))
    both = short.success & long.success
    assert both.sum() >= 10
    change_short = np.abs(short.attacked - rows)[both].sum()
    change_long = np.abs(long.attacked - rows)[both].sum()
    assert change_long < change_short


def test_no_reach_means_no_success_and_no_queries(schema: InputSchema) -> None:
    frozen = parse_threat_model(
        threat_toml(max_change={"flow_a": 0, "occupancy_a": 0, "speed_a": 0}), schema
    )
    model = RulePredictor()
    rows = _near_threshold(10)
    out = search(model, rows, np.full(10, "free"), frozen, budget=50, rng=stream(0, "t"))
    assert not out.success.any() and model.queries == 0


def test_run_is_seeded_and_reports_fragility(threat: ThreatModel) -> None:
    rows = _near_threshold(60)
    truth = RulePredictor().predict(rows).values
    a = ConstrainedEvasion().run(
        RulePredictor(), rows, truth, threat, seed=5, budget=48, samples=30
    )
    b = ConstrainedEvasion().run(
        RulePredictor(), rows, truth, threat, seed=5, budget=48, samples=30
    )
    c = ConstrainedEvasion().run(
        RulePredictor(), rows, truth, threat, seed=6, budget=48, samples=30
    )
    assert np.array_equal(a.attacked, b.attacked) and a.to_json() | {"wall_s": 0} == b.to_json() | {
        "wall_s": 0
    }
    assert not np.array_equal(a.rows, c.rows)
    assert a.samples == 30 and a.constraint_violations == 0
    assert a.queries_per_sample <= 48
    assert set(a.median_change) == {"flow_a", "occupancy_a", "speed_a"}
    assert a.median_change["occupancy_a"] > 0
    # Both loops drive the rule equally, so each alone flips some rows.
    assert {f.sensor for f in a.fragility} == {"a", "b"}
    assert all(f.success_rate > 0 for f in a.fragility)
    doc = a.to_json()
    assert {"success_rate", "queries_per_sample", "median_change", "constraint_violations"} <= set(
        doc
    )


def test_run_refuses_bad_parameters(threat: ThreatModel) -> None:
    rows = _near_threshold(5)
    with pytest.raises(InputError, match="'budget' must be an integer in \\[8, 100000\\]"):
        ConstrainedEvasion().run(
            RulePredictor(), rows, np.full(5, "free"), threat, seed=0, budget=2
        )


def _example_threat(schema: InputSchema) -> ThreatModel:
    """A threat model for whatever features the example declares.

    flow_X, occupancy_X and speed_X form linked sensor X when the names allow;
    otherwise every feature is its own sensor, moving at most a tenth of its range.
    """
    groups: dict[str, dict[str, str]] = {}
    for name in schema.names:
        role, _, sensor = name.partition("_")
        if role in {"flow", "occupancy", "speed"} and sensor:
            groups.setdefault(sensor, {})[role] = name
    sensors = {s: {"features": list(r.values()), **r} for s, r in groups.items() if len(r) == 3}
    if sensors:
        raw: dict[str, object] = {
            "controlled": [sorted(sensors)[0]],
            "sensors": sensors,
            "max_change": {f: 20 for r in sensors.values() for f in r["features"]},
            "consistency": {"max_length_m": 40, "slack": 5},
        }
    else:
        raw = {
            "controlled": [schema.names[0]],
            "sensors": {f.name: {"features": [f.name]} for f in schema.features},
            "max_change": {f.name: ((f.max or 1.0) - (f.min or 0.0)) / 10 for f in schema.features},
        }
    return parse_threat_model(raw, schema)


def test_the_example_model_in_its_isolated_worker() -> None:
    from cityx.data.tables import inspect_table, read_table
    from cityx.submissions import read_manifest
    from cityx.targets import open_predictor

    manifest, _ = read_manifest(EXAMPLE)
    assert manifest is not None and manifest.data.holdout
    schema = manifest.input_schema()
    threat = _example_threat(schema)
    found = inspect_table(
        read_table(EXAMPLE / manifest.data.holdout),
        schema,
        manifest.output_spec(),
        manifest.outputs.label_column,
        where="holdout",
    )
    assert found.features is not None and found.truth is not None and found.rejected is not None
    rows, truth = found.features[~found.rejected], found.truth[~found.rejected]
    with open_predictor(manifest, EXAMPLE) as model:
        report = ConstrainedEvasion().run(
            model, rows, truth, threat, seed=3, budget=40, samples=40, fragility=False
        )
        calls = model.calls
    assert report.constraint_violations == 0 and report.samples == 40
    assert report.queries_per_sample <= 40
    # Batched: a few calls in all, never one per row or per candidate.
    assert calls <= 10
    if report.success.any():
        assert report.median_change


def test_the_shipped_example_threat_model_fits_the_example_data() -> None:
    from cityx.attacks.evasion import check_against_data, load_threat_model, previous_rows
    from cityx.data.tables import read_table
    from cityx.submissions import read_manifest

    manifest, _ = read_manifest(EXAMPLE)
    assert manifest is not None and manifest.data.holdout
    schema = manifest.input_schema()
    try:
        threat = load_threat_model(EXAMPLE / "threat-model.toml", schema)
    except ThreatModelError as exc:
        if "unknown feature" not in str(exc):
            raise
        pytest.skip(f"the example's features changed; threat-model.toml must follow: {exc}")
    table = read_table(EXAMPLE / manifest.data.holdout)
    check_against_data(threat, table[list(schema.names)].to_numpy(dtype=float), where="holdout")
    previous = previous_rows(threat, table, where="holdout")
    assert previous is None or previous.shape == (len(table), len(schema.names))


def _without_threat_model(folder: Path) -> Path:
    """A copy of the example submission with no threat-model.toml."""
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(THREAT_MODEL_FILE, "*.py"))
    return folder


def _threat_model_named(folder: Path) -> dict[str, Any]:
    """How a small evasion run on ``folder``'s holdout names its threat model."""
    report = evade(
        folder,
        folder / "data" / "holdout.csv",
        label="congestion_next",
        budget=16,
        samples=5,
        fragility=False,
        seed=1,
    )
    return dict(report.to_json()["threat_model"])


def test_evade_names_the_default_threat_model_when_the_submission_declares_none(
    tmp_path: Path,
) -> None:
    named = _threat_model_named(_without_threat_model(tmp_path / "sub"))
    assert named["source"] == DEFAULT_THREAT_MODEL and named["default"] is True
    assert named["sha256"] is None


def test_evade_names_the_declared_threat_model_by_path_and_digest() -> None:
    declared = EXAMPLE / THREAT_MODEL_FILE
    named = _threat_model_named(EXAMPLE)
    assert named["source"] == str(declared) and named["default"] is False
    assert named["sha256"] == hashlib.sha256(declared.read_bytes()).hexdigest()


def test_the_budget_counts_every_query_of_a_row(threat: ThreatModel) -> None:
    # Rows flipped early spend the rest on shrinking their change, so up to the whole budget:
    # the query that read each row's own label is one of them (it used to be the 201st of 200).
    rows = _near_threshold(40)
    model = RulePredictor()
    truth = model.predict(rows).values
    report = ConstrainedEvasion().run(
        model, rows, truth, threat, seed=1, budget=200, samples=40, fragility=False
    )
    assert report.success.any()
    assert int(report.queries.max()) <= 200 and report.queries_per_sample <= 200
