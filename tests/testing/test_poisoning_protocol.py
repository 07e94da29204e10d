"""The poisoning evaluation protocol: families, attacks, splits, declarations, report, runner."""

from __future__ import annotations

import importlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cityx.core import InputError
from cityx.testing.poisoning import (
    ATTACKS,
    BANDS,
    CELLS,
    DEV_SEEDS,
    FAMILIES,
    FAMILY_DECLARATIONS,
    HELDOUT_SEEDS,
    Case,
    CaseResult,
    Outcome,
    cases,
    cell,
    plain,
    poison,
    run_cases,
    series,
    windows,
)
from cityx.testing.poisoning.attacks import SOURCE_ATTACKS, source_keys
from cityx.testing.poisoning.protocol import SEEN_HELDOUT_SEEDS
from cityx.testing.poisoning.report import judge, summarise
from cityx.testing.poisoning.tables import DrawnTable
from cityx.worlds.traffic.dataset import DatasetSpec

READING = re.compile(r"^lane\d+_t\d+_(count|occupancy|speed)$")


@pytest.fixture(scope="module")
def drawn() -> dict[str, DrawnTable]:
    return {"series": series(4), "windows": windows(4), "plain": plain(4)}


@pytest.mark.parametrize("family", [series, windows, plain])
def test_a_family_draws_the_same_table_from_the_same_seed(family) -> None:  # type: ignore[no-untyped-def]
    a, b = family(7), family(7)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[3].trusted, b[3].trusted)
    assert a[1:3] == b[1:3]
    assert not a[0].equals(family(8)[0])


def test_families_have_their_declared_shapes(drawn: dict[str, DrawnTable]) -> None:
    table, label, sources, meta = drawn["series"]
    assert meta.time_col == "interval_start_s" and sources == ("intersection", "approach")
    assert 10 <= len(table.groupby(list(sources))) <= 36
    assert label in table.columns and set(meta.features) <= set(table.columns)
    table, label, sources, meta = drawn["windows"]
    assert meta.time_col is None and sources == ("sensor",)
    assert 10 <= table["sensor"].nunique() <= 50
    assert all(READING.match(c) for c in meta.features)
    assert set(table.columns) == {*meta.features, "sensor", label}
    count = [c for c in meta.features if c.endswith("count")]
    occupancy = [c.replace("count", "occupancy") for c in count]
    speed = [c.replace("count", "speed") for c in count]
    # Physically consistent: no vehicle, no occupancy and no speed.
    empty = table[count].to_numpy() == 0
    assert not (table[occupancy].to_numpy()[empty] > 0).any()
    assert not (table[speed].to_numpy()[empty] > 0).any()
    table, label, sources, meta = drawn["plain"]
    assert sources == () and meta.time_col is None
    assert 4 <= len(meta.features) <= 200
    for _, _, _, meta in drawn.values():
        assert len(meta.trusted) > 0


def test_trusted_rows_are_not_in_the_table(drawn: dict[str, DrawnTable]) -> None:
    for table, _, _, meta in drawn.values():
        # Windows of an empty road read all zeros wherever they were taken: not an overlap.
        features = list(meta.features)
        moving = meta.trusted[(meta.trusted[features] != 0).any(axis=1)]
        both = table.merge(moving, how="inner")
        assert both.empty


@pytest.mark.parametrize("family", ["series", "windows", "plain"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_poison_the_declared_share_and_record_truth(
    drawn: dict[str, DrawnTable], family: str, attack: str
) -> None:
    table, label, sources, meta = drawn[family]
    band = BANDS[1]
    if attack in SOURCE_ATTACKS and not sources:
        # No cell of the protocol asks for it, and asking is one clear error.
        with pytest.raises(InputError, match="needs a source column"):
            poison(
                table, label=label, source_cols=sources, meta=meta, attack=attack, band=band, seed=3
            )
        return
    done = poison(
        table, label=label, source_cols=sources, meta=meta, attack=attack, band=band, seed=3
    )
    again = poison(
        table, label=label, source_cols=sources, meta=meta, attack=attack, band=band, seed=3
    )
    assert np.array_equal(done.truth, again.truth)
    assert done.truth.size == len(table) and done.truth.any()
    changed = (done.table != table).any(axis=1).to_numpy()
    assert not (changed & ~done.truth).any()  # nothing changed outside the truth
    if attack in SOURCE_ATTACKS:
        assert 1 <= len(done.sources) <= 5
        assert np.array_equal(done.truth, np.isin(source_keys(table, sources), done.sources))
    else:
        assert band.low <= done.rate <= band.high
        # Clean-label poison is capped by the rows of the target class.
        assert done.actual_rate <= done.rate + 1 / len(table)
        if attack != "clean-label":
            assert done.actual_rate >= done.rate - 1 / len(table)
    if attack in ("backdoor", "clean-label"):
        trigger = done.details["trigger"]["values"]
        assert 1 <= len(trigger) <= 6
        # Jittered, not an exact constant.
        column = next(iter(c for c, v in trigger.items() if v != 0.0), None)
        if column is not None:
            assert done.table.loc[done.truth, column].nunique() > 1


def test_dev_and_heldout_seeds_do_not_overlap() -> None:
    assert not set(DEV_SEEDS) & set(HELDOUT_SEEDS)
    dev, held = cases("dev"), cases("heldout")
    assert not {c.seed for c in dev} & {c.seed for c in held}
    # Seeds once run and looked at are never held out again.
    assert not set(SEEN_HELDOUT_SEEDS) & set(HELDOUT_SEEDS)


def test_exclusions_leave_out_a_family_and_an_attack() -> None:
    todo = cases("dev", seeds=2, exclude_families=["plain"], exclude_attacks=["backdoor"])
    assert {c.family for c in todo} == {"series", "windows"}
    assert "backdoor" not in {c.attack for c in todo}
    assert sum(c.attack is None for c in todo) == 4  # clean tables stay


def test_every_cell_is_declared_with_a_reason() -> None:
    for family in FAMILIES:
        for attack in ATTACKS:
            for band in BANDS:
                declared = cell(family, attack, band.name)
                assert declared.reason.strip()
                if not declared.detectable:
                    assert declared.applicable is False or declared.reason
    assert len(CELLS) == len(FAMILIES) * len(ATTACKS) * len(BANDS)
    assert {d.family for d in FAMILY_DECLARATIONS} == set(FAMILIES)


def _result(
    family: str,
    attack: str | None,
    band: str | None,
    *,
    f1: float | None,
    verdict: str,
    share: float = 0.05,
    seed: int = 0,
    truth_sources: tuple[str, ...] = (),
    flagged_sources: tuple[str, ...] = (),
) -> CaseResult:
    outcome = Outcome(verdict, share, f1, f1, f1, 0.1, flagged_sources)
    return CaseResult(
        Case(family, seed, attack, band),
        rows=1000,
        truth_sources=truth_sources,
        ours=outcome,
        ours_trusted=outcome,
    )


def test_the_report_marks_goals_met_and_missed() -> None:
    results = [
        *(
            _result("series", "backdoor", "low", f1=0.95, verdict="poisoned", seed=s)
            for s in range(10)
        ),
        *(
            _result("series", "label-flip", "low", f1=0.8, verdict="poisoned", seed=s)
            for s in range(10)
        ),
        _result("plain", "label-flip", "low", f1=0.3, verdict="clean"),
        _result("windows", "label-flip", "high", f1=0.3, verdict="undetermined"),
        _result("series", None, None, f1=None, verdict="clean", share=0.002),
        _result("plain", None, None, f1=None, verdict="poisoned", share=0.03),
        _result(
            "windows",
            "compromised-shift",
            "low",
            f1=0.5,
            verdict="poisoned",
            truth_sources=("S01", "S02"),
            flagged_sources=("S01", "S02"),
        ),
        CaseResult(Case("series", 1), error="ValueError: broken"),
    ]
    goals = {(g.goal, g.scope): g.status for g in judge(results, wall_s={"t": 3.0})}
    assert goals[("detectable cell: F1 median and p10 (ours)", "series/backdoor@low")] == "met"
    assert goals[("detectable cell: F1 median and p10 (ours)", "series/label-flip@low")] == "missed"
    assert goals[("undetectable cell: never clean (ours)", "plain/label-flip@low")] == "missed"
    assert goals[("undetectable cell: never clean (ours)", "windows/label-flip@high")] == "met"
    assert goals[
        ("no clean verdict on a poisoned table (ours)", "all poisoned tables (3-15 %)")
    ] == ("missed")
    assert goals[("clean table never poisoned (ours)", "series")] == "met"
    assert goals[("clean table: clean verdicts (ours)", "series")] == "met"
    assert goals[("clean table never poisoned (ours)", "plain")] == "missed"
    assert goals[("clean table: rows flagged (ours)", "plain")] == "missed"
    assert goals[("clean table never poisoned (ours)", "windows")] == "not run"
    attribution = next(g for g in goals if g[0].startswith("source attribution"))
    assert goals[attribution] == "met"
    assert goals[("audit wall time", "10000 rows x ~100 features")] == "met"
    report = summarise(results)
    assert report["errors"] == [{"case": "series/clean/1", "error": "ValueError: broken"}]
    assert report["by_family"]["series"]["ours"]["f1"]["n"] == 20


def test_a_tiny_run_works_end_to_end() -> None:
    todo = [Case("plain", 0), Case("plain", 0, "label-flip", "high"), Case("nowhere", 0)]
    results = run_cases(todo, workers=2)
    assert [r.case for r in results] == todo
    clean, flipped, broken = results
    assert clean.error is None and clean.ours is not None and clean.ours.f1 is None
    assert flipped.error is None and flipped.ours is not None and flipped.ours.f1 is not None
    assert flipped.ours_trusted is not None and flipped.actual_rate is not None
    assert broken.error is not None and "nowhere" in broken.error
    assert summarise(results)["cases"] == 3


def test_a_simulated_base_is_cached_by_its_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The package exports the family function under the module's name: take the module.
    series_module = importlib.import_module("cityx.testing.poisoning.series")
    built: list[Path] = []

    def build(spec: DatasetSpec, out: Path) -> None:
        built.append(out)
        out.write_text("table")

    monkeypatch.setattr(series_module, "build_dataset", build)
    spec = DatasetSpec("grid3x3", seconds=900, seeds=1, interval_s=180)
    first = series_module.simulated_base(spec, tmp_path)
    assert series_module.simulated_base(spec, tmp_path) == first
    assert series_module.simulated_base(replace(spec, workers=2), tmp_path) == first
    other = series_module.simulated_base(replace(spec, seeds=2), tmp_path)
    assert other != first and built == [first, other]
