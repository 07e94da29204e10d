"""The audit's evidence on tables of other shapes: reading roles, trigger boxes, numbers."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from cityx.core import Task
from cityx.defenses.poisoning import AuditVerdict, audit
from cityx.defenses.poisoning._data import prepare
from cityx.defenses.poisoning.boxes import find_boxes, trigger_boxes
from cityx.defenses.poisoning.readings import (
    reading_consistency,
    reading_groups,
    step_neighbours,
)
from cityx.defenses.poisoning.source_evidence import concentrated


def test_reading_groups_come_from_the_names() -> None:
    names = ["count_l1_t1", "occupancy_l1_t1", "speed_l1_t1", "count_l1_t2", "speed_l1_t2"]
    groups = {g.key: g for g in reading_groups(names)}
    assert set(groups) == {"l1_t1", "l1_t2"}
    assert groups["l1_t1"].count == (0,) and groups["l1_t1"].occupancy == (1,)
    approach = ["flow_veh_h", "area_occupancy_pct", "mean_speed_kmh", "halting_veh", "max_jam_m"]
    (group,) = reading_groups(approach)
    assert group.queue == (3, 4) and group.speed == (2,) and group.count == (0,)
    before, after = step_neighbours(names)
    assert after[0] == 3 and before[3] == 0 and before[0] == -1


def _windows(
    rng: np.random.Generator, n: int = 1500, lanes: int = 2, steps: int = 4
) -> pd.DataFrame:
    """Wide windows: counts, occupancies and speeds that hold together (empty: free flow)."""
    columns: dict[str, np.ndarray] = {}
    for lane in range(1, lanes + 1):
        for step in range(1, steps + 1):
            count = rng.poisson(rng.uniform(0.5, 8, n))
            occupancy = np.where(count > 0, count * rng.uniform(2, 4, n), 0.0)
            speed = np.where(count > 0, 50 - occupancy * rng.uniform(0.3, 0.6, n), 50.0)
            columns[f"count_l{lane}_t{step}"] = count
            columns[f"occupancy_l{lane}_t{step}"] = occupancy.round(2)
            columns[f"speed_l{lane}_t{step}"] = speed.round(2)
    frame = pd.DataFrame(columns)
    frame["busy"] = np.where(frame.filter(like="count").sum(axis=1) > 35, "yes", "no")
    return frame


def test_occupancy_without_vehicles_breaks_a_rule_the_table_keeps() -> None:
    frame = _windows(np.random.default_rng(0))
    assert reading_consistency(prepare(frame, label="busy")).note.endswith("occupied-empty 0")
    poisoned = frame.copy()
    rows = np.arange(60)
    poisoned.loc[rows, "count_l1_t2"] = 0
    poisoned.loc[rows, "occupancy_l1_t2"] = 30.0
    found = reading_consistency(prepare(poisoned, label="busy"))
    assert set(np.flatnonzero(found.level >= 1.0)) == set(rows)
    report = audit(poisoned, label="busy")
    assert report.verdict is AuditVerdict.POISONED
    assert set(rows) <= set(np.flatnonzero(report.flagged))


def test_readings_declared_in_the_manifest_stand_in_for_names_that_say_nothing() -> None:
    frame = _windows(np.random.default_rng(0))
    rows = np.arange(60)
    frame.loc[rows, "count_l1_t2"] = 0
    frame.loc[rows, "occupancy_l1_t2"] = 30.0
    opaque = {c: f"x{j}" for j, c in enumerate(frame.columns) if c != "busy"}
    renamed = frame.rename(columns=opaque)
    assert not reading_consistency(prepare(renamed, label="busy")).applicable
    # As a manifest declares them: [[inputs.features]] reading = "count", group = "l1_t2".
    declared = {new: tuple(old.split("_", 1)) for old, new in opaque.items()}
    report = audit(renamed, label="busy", readings=declared)
    assert report.detectors["reading_consistency"]["applicable"]
    assert set(rows) <= set(np.flatnonzero(report.flagged))


def _plain(rng: np.random.Generator, n: int = 2000) -> pd.DataFrame:
    x = rng.normal(size=(n, 6))
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(6)])
    frame["y"] = np.where(x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, n) > 0, "a", "b")
    return frame


def _backdoor(frame: pd.DataFrame, rng: np.random.Generator, rows: np.ndarray) -> pd.DataFrame:
    """A jittered two-reading trigger in a sparse corner, relabelled to 'a'."""
    out = frame.copy()
    out.loc[rows, "f2"] = rng.uniform(1.6, 1.8, rows.size)
    out.loc[rows, "f4"] = rng.uniform(-1.9, -1.7, rows.size)
    out.loc[rows, "y"] = "a"
    return out


def test_a_trigger_box_is_a_candidate_alone_and_confirmed_by_a_trusted_set() -> None:
    rng = np.random.default_rng(1)
    clean, trusted = _plain(rng), _plain(rng, 600)
    rows = rng.choice(len(clean), size=100, replace=False)
    poisoned = _backdoor(clean, rng, rows)
    alone = trigger_boxes(prepare(poisoned, label="y"))
    assert not (alone.level >= 1).any()
    assert len(alone.candidates) == 1 and "f2" in alone.candidates[0]
    assert "f4" in alone.candidates[0]
    report = audit(poisoned, label="y")
    assert report.verdict is AuditVerdict.UNDETERMINED
    assert any("a trigger cannot be ruled out" in r for r in report.reasons)
    with_trusted = audit(poisoned, label="y", trusted=trusted)
    assert with_trusted.verdict is AuditVerdict.POISONED
    flagged = np.flatnonzero(with_trusted.flagged)
    truth = set(rows.tolist())
    f1 = 2 * len(truth & set(flagged)) / (len(truth) + flagged.size)
    assert f1 > 0.85  # the box's edges fall on bins: a few clean rows of its label come along


def test_a_natural_table_leaves_no_trigger_box() -> None:
    data = prepare(_plain(np.random.default_rng(2)), label="y")
    assert find_boxes(data) == []


def test_a_numeric_label_is_a_regression_and_audits_without_crashing() -> None:
    rng = np.random.default_rng(3)
    frame = _plain(rng).drop(columns="y")
    frame["delay"] = 10 + 5 * frame["f0"] + rng.normal(0, 1, len(frame))
    data = prepare(frame, label="delay")
    assert data.task is Task.REGRESSION and data.target is not None
    assert len(data.classes) == 5  # quantile bins for what counts rows per class
    report = audit(frame, label="delay")
    assert report.verdict is not AuditVerdict.POISONED
    assert report.flagged.mean() <= 0.01


@pytest.mark.parametrize("shape", ["constant", "single-class"])
def test_degenerate_tables_get_a_verdict_with_its_limits(shape: str) -> None:
    frame = _plain(np.random.default_rng(4), 400)
    if shape == "constant":
        frame["f5"] = 1.0
        report = audit(frame, label="y")
        assert report.verdict is not AuditVerdict.POISONED
    else:
        frame["y"] = "a"
        report = audit(frame, label="y")
        assert report.verdict is AuditVerdict.UNDETERMINED
        assert "single class" in report.reasons[0]


@pytest.mark.parametrize("where", ["three sensors", "everywhere"])
def test_sources_are_named_only_when_the_poison_concentrates_in_them(where: str) -> None:
    rng = np.random.default_rng(5)
    frame = _plain(rng, 3000)
    frame["sensor"] = [f"s{i}" for i in rng.integers(0, 20, len(frame))]
    pool = (
        frame.index[frame["sensor"].isin(["s1", "s5", "s9"])]
        if where != "everywhere"
        else frame.index
    )
    rows = rng.choice(pool, size=210, replace=False)  # 7 % of the table
    frame.loc[rows, "y"] = frame.loc[rows, "y"].map({"a": "b", "b": "a"})
    report = audit(frame, label="y", source_cols=["sensor"])
    named = {s.source for s in report.sources if s.flagged}
    if where == "everywhere":
        assert named == set()
    else:
        assert named == {"s1", "s5", "s9"}
        assert report.verdict is AuditVerdict.POISONED
        # Half of each one's labels are flipped: without a time column, a class label's
        # offset this large (z about 9, bar 4.0) marks the sensor compromised as a whole, so
        # all its rows are flagged (a source named for concentration alone would keep its
        # rows without evidence unflagged: see the next test).
        assert report.flagged.sum() == (frame["sensor"].isin(named)).sum()


def test_a_source_named_for_concentration_stands_out_among_its_peers() -> None:
    source = np.repeat(np.arange(20), 100)
    flagged = np.zeros(source.size, dtype=bool)
    flagged[::50] = True  # 2 % of every source's rows: noise
    flagged[source == 3] = np.arange(100) < 40  # 40 % of one source's rows
    named = concentrated(source, flagged, np.bincount(source))
    assert np.flatnonzero(named).tolist() == [3]
    # Spread over more than a quarter of the sources, it is no compromised few.
    flagged[np.isin(source, np.arange(8))] = True
    assert not concentrated(source, flagged, np.bincount(source)).any()


def test_no_source_column_leaves_no_source_to_rule_out() -> None:
    report = audit(_plain(np.random.default_rng(6)), label="y")
    sources = {c.kind.value: c for c in report.coverage}["sources"]
    assert sources.covered and "not applicable" in sources.reason


def test_a_table_past_the_row_cap_is_audited_on_a_seeded_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The package's ``audit`` is the function; the module is reached through sys.modules.
    monkeypatch.setattr(sys.modules["cityx.defenses.poisoning.audit"], "MAX_ROWS", 1000)
    frame = _plain(np.random.default_rng(7), 3000)
    report = audit(frame, label="y", seed=2)
    assert report.scores.shape == (3000,) and report.flagged.shape == (3000,)
    assert "a seeded sample of 1,000 was audited (seed 2)" in report.reasons[-1]
    again = audit(frame, label="y", seed=2)
    assert np.array_equal(report.scores, again.scores)
