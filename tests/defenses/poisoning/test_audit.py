"""The poisoning audit on golden datasets, and its answers to bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cityx.attacks.poisoning import Backdoor, CleanLabel, CompromisedSensors, LabelFlip
from cityx.core import DataError
from cityx.defenses.poisoning import (
    AuditReport,
    AuditVerdict,
    audit,
    retrain_and_compare,
    sanitise,
)
from cityx.defenses.poisoning._data import prepare
from cityx.defenses.poisoning.feature_evidence import ceilings
from cityx.defenses.poisoning.label_evidence import next_interval

from ...support.poisoning import LABEL, SOURCES


def _split(metro_base: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    trusted = np.random.default_rng(0).random(len(metro_base)) < 0.15
    return metro_base[~trusted].reset_index(drop=True), metro_base[trusted].reset_index(drop=True)


def _covered(report: AuditReport) -> dict[str, bool]:
    return {c.kind.value: c.covered for c in report.coverage}


def test_clean_data_with_a_trusted_set_rules_out_flips_only(
    metro_base: pd.DataFrame,
) -> None:
    rows, trusted = _split(metro_base)
    report = audit(rows, label=LABEL, source_cols=SOURCES, trusted=trusted)
    # Not clean: a trigger within the readings' ranges, or a sensor misreporting within
    # its range, is beyond the audit's reach, and it says so.
    assert report.verdict is AuditVerdict.UNDETERMINED, report.reasons
    assert _covered(report) == {"label-flips": True, "triggers": False, "sources": False}
    assert report.flagged.mean() < 0.01
    assert not any(s.flagged for s in report.sources)


def _f1(flagged: np.ndarray, truth: np.ndarray) -> float:
    return float(2 * (flagged & truth).sum() / (flagged.sum() + truth.sum()))


def test_clean_data_alone_is_not_poisoned_and_says_what_is_open(
    metro_base: pd.DataFrame,
) -> None:
    report = audit(metro_base, label=LABEL, source_cols=SOURCES)
    assert report.verdict is AuditVerdict.UNDETERMINED, report.reasons
    assert _covered(report)["label-flips"]  # the next interval checks the labels
    assert any("sensor misreporting" in r for r in report.reasons)
    assert report.flagged.mean() < 0.01
    body = report.to_json()
    assert set(body) >= {"rows", "flagged", "sources", "verdict", "detectors", "wall_s"}
    assert sorted(r["index"] for r in body["rows"]) == list(range(len(metro_base)))
    scores = [r["score"] for r in body["rows"]]
    assert scores == sorted(scores, reverse=True)
    assert len(body["sources"]) == 36
    assert "delay_s" in body["detectors"]["next_interval"]["note"]


@pytest.mark.parametrize(
    ("attack", "params"),
    [
        (Backdoor, {}),
        (Backdoor, {"shape": 1, "amplitude": 1.0}),
        (Backdoor, {"shape": 4, "amplitude": 2.0}),  # the adaptive, smooth trigger
        (LabelFlip, {}),
        (LabelFlip, {"source_share": 0.2}),
        (CleanLabel, {"window": 1}),
        (CleanLabel, {}),
        (CompromisedSensors, {}),
    ],
)
def test_each_attack_is_found_without_a_trusted_set(
    metro_base: pd.DataFrame, attack: type, params: dict[str, float]
) -> None:
    poisoned = attack().poison(
        metro_base, label=LABEL, source_cols=SOURCES, params={"rate": 0.05, **params}, seed=5
    )
    report = audit(poisoned.table, label=LABEL, source_cols=SOURCES, seed=5)
    assert report.verdict is AuditVerdict.POISONED, report.reasons
    assert _f1(report.flagged, poisoned.truth) >= 0.9


def test_label_flips_are_found_with_a_trusted_set(metro_base: pd.DataFrame) -> None:
    rows, trusted = _split(metro_base)
    poisoned = LabelFlip().poison(rows, label=LABEL, params={"rate": 0.1}, seed=7)
    report = audit(poisoned.table, label=LABEL, source_cols=SOURCES, trusted=trusted)
    assert report.verdict is AuditVerdict.POISONED
    assert _f1(report.flagged, poisoned.truth) >= 0.9


def test_a_ceiling_is_where_readings_saturate_not_a_lattice() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    jam = np.minimum(rng.gamma(2.0, 40.0, n), 100.0)  # saturates at the detector's 100 m
    jam[:200] += 166.0  # poison above the ceiling, scattered
    flow = 20.0 * rng.poisson(30, n)  # whole vehicles: a lattice of piles
    queue = np.round(rng.gamma(4.0, 3.0, n), 0)  # integers that go on through every pile
    halting = rng.gamma(4.0, 3.0, n)
    halting[:40] = 20.0  # one pile, but readings go on above it as densely as below
    limit = ceilings(np.column_stack([jam, flow, queue, halting]))
    assert limit[0] == 100.0
    assert np.isinf(limit[1:]).all()


def test_next_interval_applies_only_when_the_next_interval_explains_the_label(
    metro_base: pd.DataFrame,
) -> None:
    data = prepare(metro_base, label=LABEL, source_cols=SOURCES)
    assert next_interval(data, seed=0).applicable
    shuffled = metro_base.assign(
        **{LABEL: metro_base[LABEL].sample(frac=1.0, random_state=0).to_numpy()}
    )
    found = next_interval(prepare(shuffled, label=LABEL, source_cols=SOURCES), seed=0)
    assert not found.applicable and "no next-interval reading" in found.note
    # A label about the same interval persists into the next, but is no banding of it:
    # its legitimate changes must not count as disagreements.
    from cityx.worlds.traffic.dataset import congestion_state

    current = metro_base.drop(columns=[LABEL]).assign(
        now=congestion_state(metro_base["delay_s"].to_numpy())
    )
    assert not next_interval(prepare(current, label="now", source_cols=SOURCES), seed=0).applicable


def test_compromised_sensors_are_named(metro_base: pd.DataFrame) -> None:
    poisoned = CompromisedSensors().poison(
        metro_base, label=LABEL, source_cols=SOURCES, params={"rate": 0.1, "drift": 1.0}, seed=2
    )
    report = audit(poisoned.table, label=LABEL, source_cols=SOURCES)
    assert report.verdict is AuditVerdict.POISONED
    named = [s.source for s in report.sources if s.flagged]
    assert set(named) & set(poisoned.details["sources"])
    # Ranked first: the top-scored sources include a compromised one.
    assert {s.source for s in report.sources[:3]} & set(poisoned.details["sources"])
    # A trusted set must not switch source attribution off.
    _, trusted = _split(metro_base)
    with_trusted = audit(poisoned.table, label=LABEL, source_cols=SOURCES, trusted=trusted)
    assert {s.source for s in with_trusted.sources if s.flagged} & set(poisoned.details["sources"])


def test_sanitising_drops_flagged_rows_and_retrains(metro_base: pd.DataFrame) -> None:
    poisoned = LabelFlip().poison(metro_base, label=LABEL, params={"rate": 0.1}, seed=8)
    clean = sanitise(poisoned.table, poisoned.truth)
    assert len(clean) == len(metro_base) - poisoned.truth.sum()
    features = ["occupancy_pct", "halting_veh", "delay_s", "mean_speed_kmh"]
    result = retrain_and_compare(
        poisoned.table, poisoned.truth, label=LABEL, features=features, test=metro_base.tail(500)
    )
    assert result.rows_dropped == poisoned.truth.sum()
    assert 0.0 <= result.accuracy_before <= 1.0 and result.attack_success_before is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda t: t.drop(columns=[LABEL]), "no label column"),
        (lambda t: t.assign(delay_s=t["delay_s"].where(t.index != 5)), "NaN"),
        (lambda t: t.assign(**{LABEL: t[LABEL].where(t.index != 3)}), "no label"),
    ],
)
def test_bad_input_is_one_clear_error(metro_base: pd.DataFrame, change: object, match: str) -> None:
    with pytest.raises(DataError, match=match):
        audit(change(metro_base), label=LABEL, source_cols=SOURCES)  # type: ignore[operator]


def test_single_class_small_data_and_one_source_are_undetermined(metro_base: pd.DataFrame) -> None:
    one_class = metro_base.assign(**{LABEL: "free"})
    report = audit(one_class, label=LABEL)
    assert report.verdict is AuditVerdict.UNDETERMINED and "single class" in report.reasons[0]
    small = audit(metro_base.head(50), label=LABEL)
    assert small.verdict is AuditVerdict.UNDETERMINED and "too few" in small.reasons[0]
    one_source = audit(
        metro_base.assign(intersection="A0", approach="x"), label=LABEL, source_cols=SOURCES
    )
    assert any("1 source(s)" in r for r in one_source.reasons)
    assert not any(s.flagged for s in one_source.sources)
