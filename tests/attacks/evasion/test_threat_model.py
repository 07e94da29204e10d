"""Reading threat models, and the constraints they put on attacked inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityx.attacks.evasion import (
    ThreatModel,
    ThreatModelError,
    check_against_data,
    consistency_gap,
    load_threat_model,
    parse_threat_model,
    previous_rows,
    project,
    schema_threat_model,
    violations,
)
from cityx.core import InputError, InputSchema

from .conftest import loop_rows, loop_schema, threat_toml


def test_parse_fills_defaults_from_the_schema(threat: ThreatModel) -> None:
    assert threat.controlled_features == ("flow_a", "occupancy_a", "speed_a")
    assert threat.integer == {"flow_a", "flow_b", "weekend"}
    low, high, change = threat.arrays()
    assert (low[0], high[0], change[0]) == (0, 250, 20)
    assert change[-1] == np.inf  # weekend: no max change declared
    assert threat.consistency is not None and threat.consistency.max_length_m == 25.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"max_change": {"flow_x": 3}},
            "max_change: unknown feature 'flow_x'.*did you mean 'flow_",
        ),
        ({"max_change": {"flow_a": -1}}, "max_change.flow_a: must be zero or more, got -1"),
        ({"controlled": ["z"]}, "controlled: unknown sensor 'z'"),
        ({"bounds": {"speed_a": [50, 10]}}, "lower bound 50 is above upper 10"),
        ({"integer": ["nope"]}, "integer: unknown feature 'nope'"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"schema_version": 2}, "schema_version 2 is not supported"),
        ({"consistency": {"min_length_m": 30}}, "min_length_m is above max_length_m"),
        ({"temporal": {"group_by": "s", "order_by": "t", "max_step": {"flow_a": -2}}}, "max_step"),
    ],
)
def test_bad_threat_models_are_one_clear_line(
    schema: InputSchema, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ThreatModelError, match=message) as caught:
        parse_threat_model(threat_toml(**overrides), schema, where="tm.toml")
    assert isinstance(caught.value, InputError) and caught.value.exit_code == 2
    assert "\n" not in str(caught.value) and str(caught.value).startswith("tm.toml: ")


def test_a_feature_in_two_sensors_is_refused(schema: InputSchema) -> None:
    raw = threat_toml()
    raw["sensors"]["b"]["features"].append("flow_a")
    with pytest.raises(ThreatModelError, match="belongs to both sensors"):
        parse_threat_model(raw, schema)


def test_load_reports_missing_and_broken_files(tmp_path: Path, schema: InputSchema) -> None:
    with pytest.raises(ThreatModelError, match="not found"):
        load_threat_model(tmp_path / "none.toml", schema)
    bad = tmp_path / "bad.toml"
    bad.write_text("controlled = [")
    with pytest.raises(ThreatModelError, match="not valid TOML"):
        load_threat_model(bad, schema)


def test_constraints_that_contradict_the_data_are_refused(schema: InputSchema) -> None:
    rows = loop_rows(200, 0)
    check_against_data(parse_threat_model(threat_toml(), schema), rows, where="d.csv")
    narrow = parse_threat_model(threat_toml(bounds={"flow_a": [0, 50]}), schema, where="tm")
    with pytest.raises(ThreatModelError, match=r"bounds of 'flow_a' are \[0, 50\] but \d+ of 200"):
        check_against_data(narrow, rows, where="d.csv")
    tight = parse_threat_model(
        threat_toml(consistency={"min_length_m": 20, "max_length_m": 21, "slack": 0}), schema
    )
    with pytest.raises(ThreatModelError, match="break the linked-feature relation"):
        check_against_data(tight, rows, where="d.csv")
    fractional = rows.copy()
    fractional[0, 0] = 1.5
    with pytest.raises(ThreatModelError, match="must be a multiple of 1"):
        check_against_data(parse_threat_model(threat_toml(), schema), fractional, where="d.csv")


def test_schema_threat_model_controls_every_feature_within_bounds(schema: InputSchema) -> None:
    model = schema_threat_model(schema)
    assert model.controlled_features == schema.names and model.consistency is None


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), spread=st.floats(0.1, 500.0))
def test_projection_is_always_feasible(seed: int, spread: float) -> None:
    schema = loop_schema()
    model = parse_threat_model(
        threat_toml(
            controlled=["a", "b"],
            temporal={"group_by": "s", "order_by": "t", "max_step": {"flow_a": 10, "speed_b": 5}},
        ),
        schema,
    )
    rng = np.random.default_rng(seed)
    origin = loop_rows(8, seed)
    previous = np.where(rng.random(origin.shape) < 0.3, np.nan, loop_rows(8, seed + 1))
    candidates = origin[:, None, :] + rng.normal(0, spread, (8, 5, origin.shape[1]))
    projected = project(model, candidates, origin[:, None, :], previous[:, None, :])
    broken = violations(model, projected, origin[:, None, :], previous[:, None, :])
    assert broken.shape == (8, 5) and not broken.any()
    # Uncontrolled features never move; the origin is a fixed point.
    assert np.array_equal(projected[..., -1], np.broadcast_to(origin[:, None, -1], (8, 5)))
    assert np.allclose(project(model, origin, origin, previous), origin)


def test_violations_catch_each_kind_of_break(threat: ThreatModel) -> None:
    origin = loop_rows(1, 3)[0]
    cases = {
        "uncontrolled": (3, 1.0),  # flow_b
        "max change": (2, 16.0),  # speed_a
        "integer": (0, 0.5),  # flow_a
        "bounds": (1, 500.0),  # occupancy_a
    }
    for name, (j, step) in cases.items():
        x = origin.copy()
        x[j] += step
        assert violations(threat, x, origin) >= 1, name
    # Many vehicles at high speed cannot leave the loop nearly empty.
    fast = origin.copy()
    fast[0], fast[1], fast[2] = 60, 0.0, origin[2]
    fast_origin = fast.copy()
    fast_origin[0] = 45
    fast_origin[1] = 1.2 * 6 * 45 / origin[2]
    sensor = threat.sensor("a")
    assert consistency_gap(threat, sensor, fast)[()] > 0
    assert violations(threat, fast, fast_origin) >= 1


def test_previous_rows_follow_each_sensor_group_in_time(threat: ThreatModel) -> None:
    timed = ThreatModel(**{**_fields(threat), "temporal": _temporal()})
    rows = loop_rows(4, 1)
    table = pd.DataFrame(rows, columns=list(threat.features))
    table["sensor"] = ["x", "y", "x", "x"]
    table["time"] = [3, 1, 1, 2]
    prev = previous_rows(timed, table, where="d.csv")
    assert prev is not None
    assert np.isnan(prev[1]).all() and np.isnan(prev[2]).all()  # first of their group
    assert np.array_equal(prev[3], rows[2]) and np.array_equal(prev[0], rows[3])
    with pytest.raises(ThreatModelError, match="column 'sensor' is not in the data"):
        previous_rows(timed, table.drop(columns="sensor"), where="d.csv")
    assert previous_rows(threat, table, where="d.csv") is None


def _fields(model: ThreatModel) -> dict[str, Any]:
    return {name: getattr(model, name) for name in ThreatModel.__slots__}


def _temporal() -> Any:
    from cityx.attacks.evasion import Temporal

    return Temporal(("sensor",), "time", {"flow_a": 5.0})


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), spread=st.floats(0.1, 3000.0))
def test_projection_with_hourly_flow_summed_over_lanes_is_feasible(
    seed: int, spread: float
) -> None:
    from cityx.core import Feature

    schema = InputSchema(
        (
            Feature("lanes", "int", "lanes", 1, 8),
            Feature("flow_veh_h", "float", "veh/h", 0, 12000),
            Feature("occupancy_pct", "float", "%", 0, 100),
            Feature("mean_speed_kmh", "float", "km/h", 0, 150),
        )
    )
    model = parse_threat_model(
        {
            "controlled": ["approach"],
            "sensors": {
                "approach": {
                    "features": ["lanes", "flow_veh_h", "occupancy_pct", "mean_speed_kmh"],
                    "lanes": "lanes",
                    "flow": "flow_veh_h",
                    "occupancy": "occupancy_pct",
                    "speed": "mean_speed_kmh",
                }
            },
            "max_change": {"lanes": 1, "flow_veh_h": 600, "occupancy_pct": 20},
            "consistency": {"interval_s": 3600},
        },
        schema,
    )
    rng = np.random.default_rng(seed)
    lanes = rng.integers(1, 5, 16).astype(float)
    flow = rng.uniform(0, 800, 16) * lanes
    speed = rng.uniform(10, 60, 16)
    occ = np.clip(0.1 * rng.uniform(4, 9, 16) * (flow / lanes) / speed, 0, 100)
    origin = np.stack([lanes, flow, occ, speed], axis=1)
    check_against_data(model, origin, where="rows")
    candidates = origin[:, None, :] + rng.normal(0, spread, (16, 6, 4))
    projected = project(model, candidates, origin[:, None, :])
    assert not violations(model, projected, origin[:, None, :]).any()


def test_resolution_and_ratios_hold_after_projection() -> None:
    from cityx.core import Feature

    schema = InputSchema(
        (
            Feature("flow_veh_h", "float", "veh/h", 0, 3000),
            Feature("mean_speed_kmh", "float", "km/h", 0, 150),
            Feature("free_flow_kmh", "float", "km/h", 5, 150),
            Feature("speed_ratio", "float", "", 0, 3),
        )
    )
    raw = {
        "controlled": ["all"],
        "sensors": {"all": {"features": list(schema.names)}},
        "resolution": {"flow_veh_h": 20},
        "ratio": [
            {
                "feature": "speed_ratio",
                "numerator": "mean_speed_kmh",
                "denominator": "free_flow_kmh",
            }
        ],
        "max_change": {"flow_veh_h": 100, "mean_speed_kmh": 10, "free_flow_kmh": 0},
    }
    model = parse_threat_model(raw, schema)
    rng = np.random.default_rng(4)
    speed = rng.uniform(5, 50, 50).round(2)
    origin = np.stack(
        [rng.integers(0, 100, 50) * 20.0, speed, np.full(50, 50.0), (speed / 50).round(3)], axis=1
    )
    check_against_data(model, origin, where="rows")
    projected = project(model, origin + rng.normal(0, 40, origin.shape), origin)
    assert not violations(model, projected, origin).any()
    assert np.allclose(projected[:, 0] % 20, 0)
    assert np.allclose(projected[:, 3], projected[:, 1] / 50)
    # Moving the ratio alone is a violation, as is a flow off the 20 veh/h grid.
    bad = origin.copy()
    bad[:, 3] += 0.1
    assert violations(model, bad, origin).all()
    bad = origin.copy()
    bad[:, 0] += 7
    assert violations(model, bad, origin).all()
    with pytest.raises(ThreatModelError, match="must be a multiple of 20"):
        check_against_data(model, bad, where="rows")
    wrong = {**raw, "ratio": [{**raw["ratio"][0], "feature": "flow_veh_h"}]}  # type: ignore[dict-item]
    with pytest.raises(ThreatModelError, match="fails on 100% of the data rows"):
        check_against_data(parse_threat_model(wrong, schema), origin, where="rows")
