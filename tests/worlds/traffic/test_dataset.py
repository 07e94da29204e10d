"""``cityx world dataset``: detector time series with next-interval congestion labels.

One small dataset (grid3x3, 2 seeds x demand 1 and 2, 600 s cut into 60 s
intervals) is built once in-process; the CLI builds it again in a child
process, which must give the same bytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cityx.core.errors import InputError
from cityx.worlds.errors import ScenarioError
from cityx.worlds.traffic.dataset import (
    COLUMNS,
    FEATURES,
    LABELS,
    DatasetSpec,
    DatasetSummary,
    build_dataset,
    congestion_state,
    read_metadata,
)
from cityx.worlds.traffic.scenarios import get_scenario, prepare_run

from ...support.cli import cityx
from .conftest import needs_sumo

SPEC = DatasetSpec(
    scenario="grid3x3", seconds=600, seeds=2, demands=(1.0, 2.0), interval_s=60, workers=2
)
CLI_ARGS = [
    "--scenario",
    "grid3x3",
    "--seconds",
    "600",
    "--seeds",
    "2",
    "--demand",
    "1,2",
    "--interval",
    "60",
    "--workers",
    "2",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetSummary, pd.DataFrame]:
    needs_sumo()
    out = tmp_path_factory.mktemp("dataset") / "grid.parquet"
    summary = build_dataset(SPEC, out)
    return summary, pd.read_parquet(out)


def test_columns_dtypes_and_no_missing_values(
    built: tuple[DatasetSummary, pd.DataFrame],
) -> None:
    summary, frame = built
    assert list(frame.columns) == [name for name, _ in COLUMNS]
    for name, kind in COLUMNS:
        if kind == "string":
            assert pd.api.types.is_string_dtype(frame[name]), name
        else:
            assert str(frame[name].dtype) == kind, name
    assert not frame.isna().any().any()
    assert np.isfinite(frame[list(FEATURES)].to_numpy(dtype=float)).all()
    # 36 approaches x 4 runs, 10 intervals each minus the unlabelled last.
    assert summary.runs == 4 and summary.places == len(frame) // 9
    assert len(frame) == summary.rows and summary.rows > 500
    assert set(frame["congestion"]) <= set(LABELS)
    assert set(frame["congestion_next"]) <= set(LABELS)
    assert set(frame["district"]) <= {"NE", "NW", "SE", "SW"}
    assert frame["interval_start_s"].max() == 600 - 2 * 60
    assert (frame["flow_veh"] >= 0).all() and (frame["speed_ratio"] >= 0).all()


def test_more_delay_at_double_demand(built: tuple[DatasetSummary, pd.DataFrame]) -> None:
    _, frame = built
    # Ten minutes from an empty grid do not reach congestion; delay still grows with demand.
    delay = frame.groupby("demand")["delay_s"].mean()
    assert delay[2.0] > delay[1.0] > 0
    assert (frame["delay_s"] >= 0).all() and (frame["delay_s"] <= SPEC.interval_s).all()


def test_label_is_the_next_interval_state_of_the_same_place(
    built: tuple[DatasetSummary, pd.DataFrame],
) -> None:
    _, frame = built
    assert (frame["congestion"] == congestion_state(frame["delay_s"].to_numpy())).all()
    place = ["scenario", "demand", "seed", "intersection", "approach"]
    nxt = frame.assign(interval_start_s=frame["interval_start_s"] - SPEC.interval_s)[
        [*place, "interval_start_s", "congestion"]
    ].rename(columns={"congestion": "state_then"})
    joined = frame.merge(nxt, on=[*place, "interval_start_s"], how="inner")
    # Every row but each place's last kept one has its next interval in the file.
    assert len(joined) == len(frame) - frame.groupby(place).ngroups
    assert (joined["congestion_next"] == joined["state_then"]).all()


def test_congestion_state_uses_the_hcm_delay_bands() -> None:
    delay = np.array([0.0, 10.0, 35.0, 35.01, 80.0, 80.01, 300.0])
    states = congestion_state(delay)
    assert list(states) == ["free", "free", "free", "moderate", "moderate", "heavy", "heavy"]


def test_prepare_run_writes_the_asked_detector_period(tmp_path: Path) -> None:
    needs_sumo()
    grid = get_scenario("grid3x3")

    def periods(folder: Path) -> set[str]:
        root = ET.parse(folder / "detectors.add.xml").getroot()
        return {element.get("period", "") for element in root}

    default = prepare_run(grid, tmp_path / "a", seed=0, seconds=60)
    assert periods(default.folder) == {"300"}
    asked = prepare_run(grid, tmp_path / "b", seed=0, seconds=60, detector_period_s=180)
    assert periods(asked.folder) == {"180"}
    # Only the period differs: the same detectors in the same places.
    text = (asked.folder / "detectors.add.xml").read_text().replace('"180"', '"300"')
    assert text == (default.folder / "detectors.add.xml").read_text()
    for bad in (0, -60, 1.5, True):
        with pytest.raises(ScenarioError, match="detector period"):
            prepare_run(grid, tmp_path / "c", seed=0, seconds=60, detector_period_s=bad)


def test_metadata_records_inputs_and_versions(
    built: tuple[DatasetSummary, pd.DataFrame],
) -> None:
    summary, _ = built
    meta = read_metadata(summary.out)
    assert meta["scenario"] == "grid3x3" and meta["controller"] == "fixed"
    assert meta["seeds"] == [0, 1] and meta["demand"] == [1.0, 2.0]
    assert meta["interval_s"] == 60 and meta["sumo_version"] == summary.sumo_version
    assert meta["cityx_version"] == summary.cityx_version
    assert meta["schema_version"] == 2 and "delay_s <= 35" in meta["label_rule"]


def test_cli_gives_byte_identical_output(
    built: tuple[DatasetSummary, pd.DataFrame], tmp_path: Path
) -> None:
    summary, _ = built
    out = tmp_path / "again.parquet"
    done = cityx("world", "dataset", *CLI_ARGS, "--out", out, inprocess=False, timeout_s=120)
    assert done.code == 0, done.err
    assert f"{summary.rows} rows" in done.out
    assert out.read_bytes() == summary.out.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["again.parquet"]  # no temp file left


def test_cli_help_has_an_example() -> None:
    done = cityx("world", "dataset", "--help")
    assert done.code == 0
    assert "example:" in done.out and "cityx world dataset --scenario" in done.out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--scenario", "nowhere", "--seconds", "600", "--seeds", "1"], "unknown scenario"),
        (
            ["--scenario", "grid3x3", "--seconds", "100", "--seeds", "1", "--interval", "60"],
            "two intervals",
        ),
        (
            ["--scenario", "grid3x3", "--seconds", "600", "--seeds", "1", "--demand", "1,0"],
            "positive",
        ),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args: list[str], words: str, tmp_path: Path) -> None:
    out = tmp_path / "x.parquet"
    done = cityx("world", "dataset", *args, "--out", out)
    assert done.code == 2
    assert len(done.err.strip().splitlines()) == 1 and words in done.err
    assert not out.exists()


def test_unwritable_output_fails_before_simulating(tmp_path: Path) -> None:
    needs_sumo()
    with pytest.raises(InputError, match="cannot write"):
        build_dataset(SPEC, tmp_path / "missing" / "x.parquet")
    with pytest.raises(InputError, match="folder"):
        build_dataset(SPEC, tmp_path)
    assert list(tmp_path.iterdir()) == []
