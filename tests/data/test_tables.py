from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cityx.core import DataError, Feature, FeatureType, InputSchema, OutputSpec, Task
from cityx.data import labelled_batch, read_table

SCHEMA = InputSchema(
    (Feature("flow", FeatureType.INT, min=0, max=250), Feature("speed", min=0, max=70))
)
OUT = OutputSpec(Task.CLASSIFICATION, ("free", "heavy"))


def write(tmp_path: Path, df: pd.DataFrame, name: str = "d.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".csv"):
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path)
    return path


def rows(**override: list[object]) -> pd.DataFrame:
    base: dict[str, list[object]] = {
        "flow": [10, 20, 30],
        "speed": [50.0, 40.0, 10.0],
        "label": ["free", "free", "heavy"],
    }
    base.update(override)
    return pd.DataFrame(base)


@pytest.mark.parametrize("name", ["d.csv", "d.parquet"])
def test_reads_csv_and_parquet_into_schema_order(tmp_path: Path, name: str) -> None:
    df = rows()[["speed", "label", "flow"]]
    batch = labelled_batch(write(tmp_path, df, name), SCHEMA, OUT, "label")
    assert batch.features.tolist() == [[10, 50], [20, 40], [30, 10]]
    assert batch.truth.tolist() == ["free", "free", "heavy"]


def test_text_where_a_number_belongs_names_column_and_row(tmp_path: Path) -> None:
    path = write(tmp_path, rows(speed=[50, "fast", 10]))
    with pytest.raises(DataError, match=r"column 'speed'.*row 1 holds 'fast'"):
        labelled_batch(path, SCHEMA, OUT, "label")


def test_nans_are_an_error_with_count_and_first_row(tmp_path: Path) -> None:
    path = write(tmp_path, rows(flow=[1, None, None]))
    with pytest.raises(DataError, match=r"'flow'.*2 empty or NaN value\(s\), first at row 1"):
        labelled_batch(path, SCHEMA, OUT, "label")


def test_missing_column_suggests_the_close_one(tmp_path: Path) -> None:
    df = rows().rename(columns={"speed": "sped"})
    with pytest.raises(DataError, match=r"'speed'.*did you mean 'sped'"):
        labelled_batch(write(tmp_path, df), SCHEMA, OUT, "label")


def test_unknown_labels_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="jammed"):
        labelled_batch(
            write(tmp_path, rows(label=["free", "jammed", "heavy"])), SCHEMA, OUT, "label"
        )


def test_out_of_bounds_rows_are_rejected_and_reported_not_scored(tmp_path: Path) -> None:
    path = write(tmp_path, rows(flow=[10, 999, 30], speed=[50, 40, 10.5]))
    batch = labelled_batch(path, SCHEMA, OUT, "label")
    assert batch.features.shape == (2, 2)
    assert batch.rejected_rows == 1
    assert batch.rejected_by_feature == {"flow": 1}
    assert batch.rejected_examples[0]["row"] == 1


def test_non_integer_counts_are_rejected(tmp_path: Path) -> None:
    batch = labelled_batch(write(tmp_path, rows(flow=[10, 2.5, 30])), SCHEMA, OUT, "label")
    assert batch.rejected_rows == 1


def test_regression_truth_must_be_numeric(tmp_path: Path) -> None:
    out = OutputSpec(Task.REGRESSION)
    with pytest.raises(DataError, match="not a number"):
        labelled_batch(write(tmp_path, rows(label=[1, "x", 2])), SCHEMA, out, "label")
    batch = labelled_batch(write(tmp_path, rows(label=[1, 2.5, 3])), SCHEMA, out, "label")
    assert batch.truth.dtype == np.float64


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("d.parquet", b"not parquet", "cannot read parquet"),
        ("d.xlsx", b"", "unsupported file type"),
        ("d.csv", b"", "cannot read csv"),
        ("d.csv", b"flow,speed,label\n", "no rows"),
    ],
)
def test_unreadable_files_are_one_line_errors(
    tmp_path: Path, name: str, content: bytes, match: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as info:
        read_table(path)
    assert "\n" not in str(info.value)
