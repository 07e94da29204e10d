"""The trip table: columns normalised and checked once, groups by kind, equality."""

from __future__ import annotations

import numpy as np
import pytest

from cityx.core import TripTable, WorldCell, WorldOutcome


def table(n: int = 2, **changes: object) -> TripTable:
    columns: dict[str, object] = {name: [f"{name}{i}" for i in range(n)] for name in TripTable.TEXT}
    columns |= {name: [float(i) for i in range(n)] for name in TripTable.NUMBERS}
    columns |= {"finished": [True] * n}
    columns |= changes
    return TripTable.from_columns(columns)


def test_columns_become_typed_arrays_of_one_length() -> None:
    trips = table(3, finished=[1, 0, 1])
    assert len(trips) == 3 and trips.finished.dtype == np.bool_
    assert trips.vclass.dtype.kind == "U" and trips.waiting_s.dtype == np.float64
    assert trips.group("district").tolist() == ["district0", "district1", "district2"]
    assert np.isnan(trips.travel_time_s[1]) and trips.travel_time_s[2] == 2.0
    with pytest.raises(ValueError, match="'waiting_s' has 2 rows, not 3"):
        table(3, waiting_s=[1.0, 2.0])
    with pytest.raises(ValueError, match="without column\\(s\\) finished"):
        TripTable.from_columns({k: v for k, v in table().columns().items() if k != "finished"})
    with pytest.raises(ValueError, match="unknown group kind 'vtype'"):
        trips.group("vtype")


def test_equality_is_by_column_with_nan_equal_to_nan() -> None:
    a = table(2, co2_mg=[np.nan, 1.0])
    assert a.equals(table(2, co2_mg=[np.nan, 1.0]))
    assert not a.equals(table(2, co2_mg=[np.nan, 2.0]))
    assert not a.equals(TripTable.from_columns(a.columns(), partial=True))


def test_an_outcome_keeps_its_trips_beside_its_json() -> None:
    cell = WorldCell("cologne1", "fixed", 1, 1.0, 60)
    outcome = WorldOutcome(cell, {"arrived": 3}, complete=True, out="/x", trips=table())
    obj = outcome.to_json()
    assert "trips" not in obj and obj["cell"]["controller"] == "fixed"
    back = WorldOutcome.from_json(obj, trips=outcome.trips)
    assert back.to_json() == obj and back.trips is outcome.trips
