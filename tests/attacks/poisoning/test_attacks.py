"""The poisoning attack plugins: rates, truth, seeding, and what each may change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cityx.attacks.poisoning import (
    Backdoor,
    CleanLabel,
    CompromisedSensors,
    DemonstrationPoison,
    LabelFlip,
)
from cityx.core import DataError, InputError
from cityx.data.training import feature_columns

from ...support.poisoning import LABEL, SOURCES


def _changed(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    return ~((a == b) | (a.isna() & b.isna())).all(axis=1).to_numpy()


@pytest.mark.parametrize(
    ("cls", "extra"),
    [(LabelFlip, {}), (Backdoor, {}), (CleanLabel, {"window": 1}), (CompromisedSensors, {})],
)
def test_truth_names_exactly_the_changed_rows_and_seed_repeats(
    metro_base: pd.DataFrame, cls: type, extra: dict[str, float]
) -> None:
    params = {"rate": 0.04, **extra}
    one = cls().poison(metro_base, label=LABEL, source_cols=SOURCES, params=params, seed=4)
    two = cls().poison(metro_base, label=LABEL, source_cols=SOURCES, params=params, seed=4)
    other = cls().poison(metro_base, label=LABEL, source_cols=SOURCES, params=params, seed=5)
    pd.testing.assert_frame_equal(one.table, two.table)
    assert not one.table.equals(other.table)
    assert one.table.columns.tolist() == metro_base.columns.tolist()
    changed = _changed(one.table, metro_base)
    assert (changed <= one.truth).all() and changed.sum() >= 0.9 * one.truth.sum()
    assert 0.02 * len(metro_base) <= one.truth.sum() <= 0.1 * len(metro_base)
    truth = one.truth_json()
    assert truth["poisoned"] == np.flatnonzero(one.truth).tolist()


def test_label_flip_towards_a_class_confined_to_sources(metro_base: pd.DataFrame) -> None:
    result = LabelFlip().poison(
        metro_base,
        label=LABEL,
        source_cols=SOURCES,
        params={"rate": 0.05, "target_class": 0, "source_share": 0.25},
        seed=1,
    )
    rows = result.truth
    assert (result.table.loc[rows, LABEL] == "free").all()
    assert (metro_base.loc[rows, LABEL] != "free").all()
    sensors = (metro_base["intersection"] + "/" + metro_base["approach"])[rows]
    assert set(sensors) <= set(result.details["sources"])
    assert len(result.details["sources"]) == 9  # a quarter of 36 sensors
    features = feature_columns(metro_base, LABEL, SOURCES)
    pd.testing.assert_frame_equal(result.table[features], metro_base[features])


def test_backdoor_relabels_and_clean_label_keeps_labels(metro_base: pd.DataFrame) -> None:
    bd = Backdoor().poison(
        metro_base, label=LABEL, source_cols=SOURCES, params={"shape": 3}, seed=2
    )
    assert (bd.table.loc[bd.truth, LABEL] == bd.details["target_class"]).all()
    assert bd.details["shape"] == "sine" and set(bd.details["trigger"]) == {
        "occupancy_pct",
        "halting_veh",
        "max_jam_m",
    }
    cl = CleanLabel().poison(
        metro_base, label=LABEL, source_cols=SOURCES, params={"shape": 4}, seed=2
    )
    pd.testing.assert_series_equal(cl.table[LABEL], metro_base[LABEL])
    assert (metro_base.loc[cl.truth, LABEL] == cl.details["target_class"]).all()
    assert len(cl.details["trigger"]) > 3  # the manifold shape moves many readings together


def test_compromised_sensors_poison_whole_sources(metro_base: pd.DataFrame) -> None:
    result = CompromisedSensors().poison(
        metro_base, label=LABEL, source_cols=SOURCES, params={"rate": 0.08}, seed=3
    )
    sensors = metro_base["intersection"] + "/" + metro_base["approach"]
    assert set(sensors[result.truth]) == set(result.details["sources"])
    assert (sensors[result.truth].isin(result.details["sources"])).all()
    assert not sensors[~result.truth].isin(result.details["sources"]).any()
    pd.testing.assert_series_equal(result.table[LABEL], metro_base[LABEL])
    with pytest.raises(InputError, match="source-col"):
        CompromisedSensors().poison(metro_base, label=LABEL, params={"rate": 0.08})


def test_demonstration_poison_keeps_one_chosen_phase_per_decision() -> None:
    rng = np.random.default_rng(0)
    decisions = 200
    table = pd.DataFrame(
        {
            "scenario": "grid3x3",
            "seed": 0,
            "demand": 1.0,
            "time_s": np.repeat(np.arange(decisions) // 4 * 5, 4),
            "intersection": np.repeat(np.arange(decisions) % 4, 4).astype(str),
            "phase": np.tile(np.arange(4), decisions),
            "pressure": rng.normal(size=decisions * 4),
        }
    )
    table["chosen"] = (table["phase"] == rng.integers(0, 4, decisions).repeat(4)).astype(int)
    result = DemonstrationPoison().poison(table, label="chosen", params={"rate": 0.1}, seed=0)
    per_decision = result.table.groupby(["time_s", "intersection"])["chosen"].sum()
    assert (per_decision == 1).all()
    assert result.truth.sum() == 2 * result.details["decisions"] == 2 * 20
    with pytest.raises(DataError, match="not a demonstration table"):
        DemonstrationPoison().poison(table.drop(columns="intersection"), label="chosen")


def test_bad_parameters_and_labels_are_one_clear_error(metro_base: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="rate"):
        LabelFlip().poison(metro_base, label=LABEL, params={"rate": 0.9})
    with pytest.raises(InputError, match="unknown parameter"):
        LabelFlip().poison(metro_base, label=LABEL, params={"strength": 1})
    with pytest.raises(DataError, match="no label column"):
        LabelFlip().poison(metro_base, label="nope")
    with pytest.raises(InputError, match="target_class"):
        Backdoor().poison(metro_base, label=LABEL, params={"target_class": 7})
