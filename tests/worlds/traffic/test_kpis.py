"""KPIs from hand-written SUMO outputs (no simulation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cityx.core import DataError, TripTable
from cityx.worlds.traffic.kpis import compute_kpis, read_tripinfo, trip_table
from cityx.worlds.traffic.network import NetworkInfo
from cityx.worlds.traffic.trips import TRIPS_FILE, load_trips, read_trips, write_trips

TRIPS = """<tripinfos>
  <tripinfo id="a" depart="0" departLane="e1_0" arrival="50" duration="50" waitingTime="10"
            timeLoss="20" vType="car"/>
  <tripinfo id="b" depart="5" departLane="e2_0" arrival="-1" duration="95" waitingTime="60"
            timeLoss="80" vType="bus"/>
  <tripinfo id="c" depart="9" departLane="e1_0" arrival="70" duration="61" waitingTime="0"
            timeLoss="4" vType="car"/>
</tripinfos>
"""
STATS = """<statistics>
  <vehicles loaded="5" inserted="3" running="1" waiting="2"/>
  <teleports total="1" jam="1" yield="0" wrongLane="0"/>
  <safety collisions="0" emergencyStops="0" emergencyBraking="0"/>
</statistics>
"""
ROUTES = """<routes>
  <vehicle id="a"><route edges="e1 x"/></vehicle>
  <vehicle id="b"><routeDistribution><route edges="e2 y"/><route edges="e2 z x"/>
  </routeDistribution></vehicle>
  <vehicle id="c"><route edges="e1 q"/></vehicle>
</routes>
"""
NETWORK = NetworkInfo(
    intersections=(),
    vclass_of_vtype={"car": "passenger", "bus": "bus"},
    district_of_edge={"e1": "NE", "e2": "SW"},
    approach_edges=frozenset({"x", "z"}),
)


def write(folder: Path, *, stats: bool = True, trips: str = TRIPS) -> None:
    (folder / "tripinfo.xml").write_text(trips)
    (folder / "vehroutes.xml").write_text(ROUTES)
    if stats:
        (folder / "statistics.xml").write_text(STATS)
    (folder / "pending.json").write_text(
        json.dumps([["d", "car", "e2", "none"], ["e", "bus", "e1", "x"]])
    )


def test_overall_kpis_count_unfinished_trips_and_report_backlog(tmp_path: Path) -> None:
    write(tmp_path)
    kpis = compute_kpis(tmp_path, NETWORK)
    o = kpis.overall
    assert o["vehicles"] == 3
    assert o["arrived"] == 2
    assert o["mean_waiting_s"] == round((10 + 60 + 0) / 3, 3)
    assert o["max_time_loss_s"] == 80
    assert o["mean_travel_time_s"] == 55.5  # finished trips only
    assert o["backlog"] == 2 and o["teleports"] == 1 and o["collisions"] == 0
    assert o["bus_mean_delay_s"] == 80.0
    assert o["emergency_mean_delay_s"] is None
    assert o["co2_kg"] is None
    assert kpis.complete


def test_group_kpis_by_class_approach_and_district(tmp_path: Path) -> None:
    write(tmp_path)
    groups = compute_kpis(tmp_path, NETWORK).by_group
    assert groups["vclass"]["passenger"]["vehicles"] == 2
    assert groups["vclass"]["bus"]["backlog"] == 1
    assert groups["district"]["NE"]["vehicles"] == 2
    assert groups["district"]["SW"]["mean_waiting_s"] == 60.0
    # b was rerouted: its last route reaches the signal by edge z.
    assert groups["approach"]["z"]["vehicles"] == 1
    assert groups["approach"]["x"]["vehicles"] == 1
    assert groups["approach"]["none"]["vehicles"] == 1
    assert groups["approach"]["x"]["backlog"] == 1


def test_truncated_outputs_give_partial_kpis(tmp_path: Path) -> None:
    cut = TRIPS[: TRIPS.index('<tripinfo id="c"') + 40]
    write(tmp_path, stats=False, trips=cut)
    trips = read_tripinfo(tmp_path / "tripinfo.xml")
    assert trips.truncated and len(trips) == 2
    kpis = compute_kpis(tmp_path, NETWORK)
    assert not kpis.complete
    assert kpis.overall["teleports"] is None
    assert kpis.overall["backlog"] == 2  # from the pending list
    assert np.isnan(trips.co2_mg).all()


def test_the_trip_table_holds_each_trip_with_its_groups(tmp_path: Path) -> None:
    write(tmp_path)
    trips = trip_table(tmp_path, NETWORK)
    assert trips.vehicle.tolist() == ["a", "b", "c"]
    assert trips.vclass.tolist() == ["passenger", "bus", "passenger"]
    assert trips.district.tolist() == ["NE", "SW", "NE"]
    assert trips.approach.tolist() == ["x", "z", "none"]
    assert trips.depart_s.tolist() == [0.0, 5.0, 9.0]
    assert trips.finished.tolist() == [True, False, True]
    assert np.isnan(trips.arrival_s[1]) and trips.arrival_s[2] == 70.0
    assert np.isnan(trips.travel_time_s[1]) and trips.travel_time_s[0] == 50.0
    # The KPIs are the table's: the same numbers from the table as from the folder.
    assert compute_kpis(tmp_path, NETWORK, trips) == compute_kpis(tmp_path, NETWORK)


def test_the_trip_file_round_trips_byte_for_byte(tmp_path: Path) -> None:
    write(tmp_path)
    trips = trip_table(tmp_path, NETWORK)
    path = write_trips(trips, tmp_path / TRIPS_FILE)
    again = read_trips(path)
    assert again.equals(trips) and again.vclass.dtype.kind == "U"
    first = path.read_bytes()
    write_trips(again, path)
    assert path.read_bytes() == first  # the same trips give the same file
    cut = TRIPS[: TRIPS.index('<tripinfo id="c"') + 40]
    write(tmp_path, stats=False, trips=cut)
    partial = trip_table(tmp_path, NETWORK)
    assert partial.partial and read_trips(write_trips(partial, path)).partial
    empty = read_trips(write_trips(TripTable.empty(), tmp_path / "empty.parquet"))
    assert len(empty) == 0 and empty.equals(TripTable.empty())


def test_a_damaged_trip_file_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / TRIPS_FILE).write_text("not parquet")
    with pytest.raises(DataError, match="unreadable trip table"):
        read_trips(tmp_path / TRIPS_FILE)
    assert load_trips(tmp_path / "missing") is None
