"""Congestion-prediction datasets from real SUMO runs (``cityx world dataset``).

Words used here:

- *run*: one SUMO simulation of a scenario for one seed and one demand
  level, with one baseline controller, in its own child process
  (:func:`~.runner.run_world`), one job of the execution engine
  (:mod:`cityx.worlds.engine`) in a folder of its own;
- *place*: one *approach* (an incoming edge, i.e. a road arm) of one
  signalised *intersection* in one run; the dataset has one row per place
  and *interval*;
- *interval*: a window of ``interval_s`` simulated seconds over which
  SUMO's own detector outputs are aggregated (``interval_start_s`` counts
  from the run's start; ``time_of_day_s`` is SUMO's clock modulo a day);
- *free-flow speed*: the approach's speed limit (mean over its detected
  lanes), the speed an undisturbed vehicle drives;
- *speed ratio*: the interval's mean speed on the approach's lane-area
  detectors divided by the free-flow speed (a feature, not the label);
- *delay*: the mean time loss per vehicle on the approach's lane-area
  detectors in the interval (SUMO's ``meanTimeLoss``: time spent below the
  vehicle's desired speed, weighted over lanes by vehicles seen), an
  estimate of the Highway Capacity Manual's *control delay*: the time a
  signal costs a vehicle, spent decelerating, queueing and starting again;
- *congestion state* of a place in an interval, from its delay, with the
  HCM's level-of-service (LOS) bands for signalised intersections (LOS A-C
  up to 35 s per vehicle, D-E up to 80 s, F above): ``free``
  (delay <= 35 s), ``moderate`` (35 s < delay <= 80 s), ``heavy``
  (delay > 80 s). An interval in which no vehicle was on the detectors is
  ``free``;
- *label* ``congestion_next``: the congestion state of the same place in
  the NEXT interval. The last interval of every place has no label and is
  dropped.

Why delay and not speed: the lane-area (e2) detector covers the last
100 m before the stop line, so its mean speed includes every vehicle that
brakes for a red or waits through one, even at an empty junction. A speed
ratio there reads "congested" at any signal (on grid3x3 at its base
demand, 85 % of 180 s intervals fall at or below HCM's 50 % speed band
while vehicles lose a median 10 s each). The HCM grades signalised approaches
by control delay for exactly this reason; the time loss measured over
those 100 m captures nearly all of it (braking from 50 km/h takes about
20 m), and when a queue spills back beyond the area the vehicles crawl
through all of it, so the delay there still grows with the queue.

The detectors are the sandbox's own (an e1 induction loop 5 m before the
stop line and an e2 lane-area detector over the last 100 m of every
incoming lane, see :mod:`.scenarios`): each run asks
:func:`~.scenarios.prepare_run` (through ``WorldSpec.detector_period_s``)
to aggregate their output files over ``interval_s``, and reads those files.
"""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cityx import __version__ as cityx_version
from cityx.core.errors import InputError
from cityx.core.seeding import check_seed

from ..engine import Engine, SpawnHook, hold
from .network import NetworkInfo, lane_edge
from .runner import WorldSpec, check_controller, run_world
from .scenarios import Scenario, get_scenario
from .sumo_env import sumo_tools

DATASET_SCHEMA_VERSION = 2
METADATA_KEY = b"cityx.dataset"
LABELS = ("free", "moderate", "heavy")
# Control-delay bands, s per vehicle (HCM signalised-intersection LOS: C/D
# boundary at 35 s, E/F at 80 s).
FREE_AT_OR_BELOW_S = 35.0
HEAVY_ABOVE_S = 80.0
_E1_FILE, _E2_FILE = "e1.out.xml", "e2.out.xml"  # as prepare_run names them
_RUN_FILE = "run.json"  # each run's record: its result.json, for the engine
_DAY_S = 86400

# The file's columns, in order, with their Arrow types.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("scenario", "string"),
    ("seed", "int64"),
    ("demand", "float64"),
    ("controller", "string"),
    ("intersection", "string"),
    ("approach", "string"),
    ("district", "string"),
    ("interval_start_s", "int64"),
    ("time_of_day_s", "int64"),
    ("lanes", "int64"),
    ("flow_veh", "int64"),
    ("flow_veh_h", "float64"),
    ("occupancy_pct", "float64"),
    ("area_occupancy_pct", "float64"),
    ("mean_speed_kmh", "float64"),
    ("free_flow_kmh", "float64"),
    ("speed_ratio", "float64"),
    ("halting_veh", "float64"),
    ("max_jam_m", "float64"),
    ("delay_s", "float64"),
    ("congestion", "string"),
    ("congestion_next", "string"),
)
FEATURES = tuple(name for name, _ in COLUMNS[9:20])


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """What to simulate and how to cut it: runs are ``seeds`` x ``demands``."""

    scenario: str
    seconds: int
    seeds: int
    demands: tuple[float, ...] = (1.0,)
    controller: str = "fixed"
    interval_s: int = 300
    workers: int = 1

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise InputError(
                f"interval must be a positive number of seconds, got {self.interval_s}",
                where="interval",
            )
        if self.seconds < 2 * self.interval_s:
            raise InputError(
                f"seconds ({self.seconds}) must cover at least two intervals of "
                f"{self.interval_s} s: a label is the next interval's state",
                where="seconds",
            )
        if self.seeds < 1:
            raise InputError(f"seeds must be at least 1, got {self.seeds}", where="seeds")
        check_seed(self.seeds - 1)
        if not self.demands:
            raise InputError("give at least one demand level", where="demand")
        for demand in self.demands:
            if not demand > 0 or not np.isfinite(demand):
                raise InputError(
                    f"demand must be a positive scale factor, got {demand}", where="demand"
                )
        if len(set(self.demands)) != len(self.demands):
            raise InputError("demand levels repeat", where="demand")
        if self.workers not in (1, 2):
            raise InputError(f"workers must be 1 or 2, got {self.workers}", where="workers")


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """What :func:`build_dataset` wrote."""

    out: Path
    rows: int
    runs: int
    places: int
    label_counts: dict[str, int]
    sumo_version: str
    cityx_version: str


def congestion_state(delay_s: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The congestion state of each delay, s per vehicle (see the module docstring)."""
    return np.where(
        delay_s <= FREE_AT_OR_BELOW_S,
        LABELS[0],
        np.where(delay_s <= HEAVY_ABOVE_S, LABELS[1], LABELS[2]),
    ).astype(object)


def build_dataset(
    spec: DatasetSpec, out: Path, *, progress: Callable[[int, int], None] | None = None
) -> DatasetSummary:
    """Run every (seed, demand), aggregate the detectors, write ``out`` atomically."""
    scenario = get_scenario(spec.scenario)
    check_controller(spec.controller)
    out = Path(out)
    _check_writable(out)
    sumo_version = sumo_tools().version
    # The busiest runs first: they take longest, so two workers finish together.
    runs = {
        f"run-s{seed}-d{demand:g}": (seed, demand)
        for demand in sorted(spec.demands, reverse=True)
        for seed in range(spec.seeds)
    }
    done = 0

    def finished(_key: str, _record: Mapping[str, Any]) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(runs))

    with (
        tempfile.TemporaryDirectory(prefix="cityx-dataset-") as tmp,
        hold(Path(tmp)) as folder,
    ):
        Engine(workers=spec.workers).run(
            folder,
            runs,
            partial(_simulate, spec),
            result_file=_RUN_FILE,
            resume=False,
            on_done=finished,
        )
        frames = [
            _run_frame(scenario, spec, folder.root / key, seed=seed, demand=demand)
            for key, (seed, demand) in runs.items()
        ]
    table = pd.concat(frames, ignore_index=True)
    keys = ["scenario", "demand", "seed", "intersection", "approach", "interval_start_s"]
    table = table.sort_values(keys, kind="mergesort").reset_index(drop=True)
    metadata = {
        "schema_version": DATASET_SCHEMA_VERSION,
        "scenario": scenario.name,
        "scenario_source": scenario.source.value,
        "controller": spec.controller,
        "seconds": spec.seconds,
        "interval_s": spec.interval_s,
        "seeds": list(range(spec.seeds)),
        "demand": list(spec.demands),
        "labels": list(LABELS),
        "label_rule": f"delay_s <= {FREE_AT_OR_BELOW_S:g}: free; <= {HEAVY_ABOVE_S:g}: moderate; "
        "else heavy (HCM signalised-intersection LOS C/D and E/F control-delay boundaries); "
        "congestion_next = the same place's state in the next interval",
        "features": list(FEATURES),
        "sumo_version": sumo_version,
        "cityx_version": cityx_version,
    }
    _write_parquet(table, out, metadata)
    counts = table["congestion_next"].value_counts()
    return DatasetSummary(
        out=out,
        rows=len(table),
        runs=len(runs),
        places=int(table.groupby(keys[:5]).ngroups),
        label_counts={label: int(counts.get(label, 0)) for label in LABELS},
        sumo_version=sumo_version,
        cityx_version=cityx_version,
    )


def _check_writable(out: Path) -> None:
    # Fail before minutes of simulation, not after.
    if out.is_dir():
        raise InputError("the output is a folder; give a file name", where=str(out))
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(
            "cannot write the output: its folder is missing or read-only", where=str(out)
        )


def _write_parquet(table: pd.DataFrame, out: Path, metadata: dict[str, Any]) -> None:
    # heavy: pyarrow loads when a dataset is written, not when the sandbox is imported
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
    schema = pa.schema(
        [pa.field(name, types[kind], nullable=False) for name, kind in COLUMNS],
        # Only our metadata: pandas' would add nothing a reader needs.
        metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()},
    )
    arrays = [
        pa.array(table[name].to_numpy(), type=types[kind], from_pandas=True)
        for name, kind in COLUMNS
    ]
    arrow = pa.Table.from_arrays(arrays, schema=schema)
    # A temp file beside the target, then one rename: never a partial file at ``out``.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        pq.write_table(arrow, tmp_name, compression="zstd")
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


# -- one run --------------------------------------------------------------------------


def _simulate(
    spec: DatasetSpec, run: tuple[int, float], folder: Path, on_spawn: SpawnHook | None
) -> dict[str, Any]:
    """One run, as the engine's job: the world's result.json is its record."""
    seed, demand = run
    result = run_world(
        WorldSpec(
            scenario=spec.scenario,
            controller=spec.controller,
            seconds=spec.seconds,
            seed=seed,
            demand=demand,
            out=folder,
            detector_period_s=spec.interval_s,
            detectors=True,  # the features are the detectors' own aggregates
        ),
        on_spawn=on_spawn,
    )
    return result.to_json()


def _run_frame(
    scenario: Scenario, spec: DatasetSpec, world: Path, *, seed: int, demand: float
) -> pd.DataFrame:
    """The rows of one finished run, from the detector outputs in its folder."""
    network = NetworkInfo.from_json(json.loads((world / "network.json").read_text()))
    config = world / "scenario.sumocfg"
    frame = _aggregate(
        e1=_read_intervals(world / _E1_FILE, ("nVehContrib", "occupancy")),
        e2=_read_intervals(
            world / _E2_FILE,
            (
                "sampledSeconds",
                "nVehSeen",
                "meanSpeed",
                "meanTimeLoss",
                "meanOccupancy",
                "jamLengthInVehiclesSum",
                "maxJamLengthInMeters",
            ),
        ),
        places=_places(network, _lane_speeds(config, network)),
        begin=_begin(config),
        interval_s=spec.interval_s,
        seconds=spec.seconds,
    )
    frame.insert(0, "scenario", scenario.name)
    frame.insert(1, "seed", seed)
    frame.insert(2, "demand", float(demand))
    frame.insert(3, "controller", spec.controller)
    return frame


def _begin(config: Path) -> float:
    begin = ET.parse(config).getroot().find("time/begin")
    return float(begin.get("value", "0")) if begin is not None else 0.0


def _lane_speeds(config: Path, network: NetworkInfo) -> dict[str, float]:
    wanted = {lane for i in network.intersections for lane in i.lanes}
    net_file = ET.parse(config).getroot().find("input/net-file")
    assert net_file is not None
    speeds: dict[str, float] = {}
    for _, element in ET.iterparse(config.parent / net_file.get("value", "")):
        if element.tag == "lane" and element.get("id") in wanted:
            # 13.89 m/s (50 km/h) is SUMO's own default lane speed.
            speeds[element.get("id", "")] = float(element.get("speed", "13.89"))
        elif element.tag == "edge":
            element.clear()
    return speeds


def _places(network: NetworkInfo, speeds: dict[str, float]) -> pd.DataFrame:
    rows = [
        (
            i.id,
            lane,
            lane_edge(lane),
            network.district_of_edge.get(lane_edge(lane), "none"),
            speeds[lane],
        )
        for i in network.intersections
        for lane in i.lanes
    ]
    return pd.DataFrame(
        rows, columns=["intersection", "lane", "approach", "district", "free_speed"]
    )


def _read_intervals(path: Path, fields: Sequence[str]) -> pd.DataFrame:
    columns: dict[str, list[Any]] = {"id": [], "begin": [], "end": []}
    columns.update({f: [] for f in fields})
    for _, element in ET.iterparse(path):
        if element.tag == "interval":
            attrib = element.attrib
            columns["id"].append(attrib["id"])
            for key in ("begin", "end", *fields):
                columns[key].append(attrib[key])
        element.clear()
    frame = pd.DataFrame(columns)
    for key in ("begin", "end", *fields):
        frame[key] = frame[key].astype(np.float64)
    frame["lane"] = frame["id"].str.slice(3)  # e1_LANE -> LANE (network.e1_id, e2_id)
    return frame.drop(columns="id")


def _aggregate(
    *,
    e1: pd.DataFrame,
    e2: pd.DataFrame,
    places: pd.DataFrame,
    begin: float,
    interval_s: int,
    seconds: int,
) -> pd.DataFrame:
    # SUMO also writes the unfinished last period at the end: keep whole intervals only.
    def whole(frame: pd.DataFrame) -> pd.DataFrame:
        keep = (frame["end"] - frame["begin"] == interval_s) & (
            frame["end"] <= begin + seconds + 1e-6
        )
        return frame[keep].drop(columns="end")

    lanes = places.merge(whole(e1), on="lane", how="inner").merge(
        whole(e2), on=["lane", "begin"], how="inner"
    )
    lanes["speed_x_s"] = np.where(
        lanes["sampledSeconds"] > 0, lanes["meanSpeed"] * lanes["sampledSeconds"], 0.0
    )
    # SUMO writes meanTimeLoss -1 when no vehicle was seen: weight by vehicles seen.
    lanes["loss_s"] = np.where(
        lanes["nVehSeen"] > 0, lanes["meanTimeLoss"] * lanes["nVehSeen"], 0.0
    )
    grouped = lanes.groupby(["intersection", "approach", "district", "begin"], sort=True)
    agg = grouped.agg(
        lanes=("lane", "size"),
        flow_veh=("nVehContrib", "sum"),
        occupancy_pct=("occupancy", "mean"),
        area_occupancy_pct=("meanOccupancy", "mean"),
        sampled_s=("sampledSeconds", "sum"),
        speed_x_s=("speed_x_s", "sum"),
        free_speed=("free_speed", "mean"),
        jam_sum=("jamLengthInVehiclesSum", "sum"),
        max_jam_m=("maxJamLengthInMeters", "max"),
        seen=("nVehSeen", "sum"),
        loss_s=("loss_s", "sum"),
    ).reset_index()
    # An empty approach has no measured speed; an empty road is a free road.
    speed = np.where(
        agg["sampled_s"] > 0,
        agg["speed_x_s"] / agg["sampled_s"].where(agg["sampled_s"] > 0, 1),
        agg["free_speed"],
    )
    agg["mean_speed_kmh"] = speed * 3.6
    agg["free_flow_kmh"] = agg["free_speed"] * 3.6
    agg["speed_ratio"] = np.clip(speed / agg["free_speed"], 0.0, None)
    agg["flow_veh"] = agg["flow_veh"].round().astype(np.int64)
    agg["flow_veh_h"] = agg["flow_veh"] * 3600.0 / interval_s
    # jamLengthInVehiclesSum adds the queue of every 1 s step: / steps = mean queue.
    agg["halting_veh"] = agg["jam_sum"] / interval_s
    # No vehicle, no delay: an empty road is a free road.
    agg["delay_s"] = np.where(agg["seen"] > 0, agg["loss_s"] / agg["seen"].clip(lower=1), 0.0)
    agg["interval_start_s"] = (agg["begin"] - begin).round().astype(np.int64)
    agg["time_of_day_s"] = (agg["begin"].round().astype(np.int64)) % _DAY_S
    agg["congestion"] = congestion_state(agg["delay_s"].to_numpy())
    # The label: the next interval of the same place (rows are sorted by time
    # within a place, so a shift within the group is the next interval).
    place = ["intersection", "approach"]
    nxt = agg.groupby(place, sort=False)["congestion"].shift(-1)
    following = agg.groupby(place, sort=False)["interval_start_s"].shift(-1)
    contiguous = following == agg["interval_start_s"] + interval_s
    agg["congestion_next"] = nxt
    agg = agg[contiguous & nxt.notna()]
    return agg[
        [name for name, _ in COLUMNS if name not in ("scenario", "seed", "demand", "controller")]
    ].reset_index(drop=True)


def read_metadata(path: Path) -> dict[str, Any]:
    """The dataset's recorded inputs and versions (the Parquet schema metadata)."""
    import pyarrow.parquet as pq  # heavy: only reading a dataset's metadata needs it

    raw = pq.read_schema(path).metadata or {}
    value: dict[str, Any] = json.loads(raw[METADATA_KEY])
    return value


__all__ = [
    "COLUMNS",
    "DATASET_SCHEMA_VERSION",
    "FEATURES",
    "LABELS",
    "DatasetSpec",
    "DatasetSummary",
    "build_dataset",
    "congestion_state",
    "read_metadata",
]
