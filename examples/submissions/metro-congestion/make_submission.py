#!/usr/bin/env python3
"""Build the metro-congestion example submission: data, model, manifest and datasheet.

Metro Analytics Ltd (a fictional vendor) sells a *congestion predictor*: from the
last 5-minute *interval* of loop-detector readings at a signalised intersection it
predicts the *congestion level* of the next interval. This script makes every file
of its CityXchange submission from one seed:

    data/train.csv, data/holdout.csv   rows of readings and next-interval labels
    model.onnx                         a gradient-boosted classifier, exported to ONNX
    cityx.toml                         the manifest, with the model's SHA-256
    datasheet.md                       the datasheet, filled in with measured numbers

Until the SUMO sandbox can produce this data, it comes from the seeded generator
below. Domain words used throughout:

- *intersection* (or *sensor*): a signalised crossing of two roads with a detector
  station on each of its four *approaches*, the roads entering it, named by the
  compass side they come from (``n``, ``e``, ``s``, ``w``). Traffic on the ``n``
  approach drives southbound. Intersections belong to one of four *districts*.
- *loop detector*: an induction loop in the road surface, here a fixed *setback*
  (tens of metres) upstream of the stop line. Every interval it reports the *flow*
  (vehicles that crossed it), the *occupancy* (the share of time a vehicle was over
  it, in %) and the *speed* (the mean speed of the vehicles that crossed it).
- *demand*: vehicles arriving at an approach; *capacity*: the most vehicles the
  stop line can discharge, = saturation flow x lanes x *green share* (the share of
  the signal cycle the approach has green). Their ratio is the *degree of saturation*.
- *queue*: vehicles waiting at the stop line. It forms at every red (the *cyclic*
  queue) and grows from interval to interval while demand exceeds capacity (the
  *residual* queue). When it reaches back over the loop (*spillback*), the loop
  sees dense, crawling traffic: occupancy rises and speed collapses.
- *density* (vehicles per km per lane) links flow and speed: flow = density x speed.
  On the uncongested side of the *fundamental diagram* (Greenshields' model),
  speed falls linearly as density rises towards the *jam density*.
- *incident*: a lane blockage (crash, breakdown, double-parked delivery van, short
  roadworks) that lasts a while, cutting the approach's capacity and the speed of
  the traffic passing it.
- *congestion level*: ``free``, ``moderate`` or ``heavy``, from the *speed ratio*
  (vehicle-weighted mean speed over the four approaches / free-flow speed) with the
  Highway Capacity Manual's urban-street level-of-service bands: above 50 % is LOS
  A-C (free), 30-50 % is LOS D-E (moderate), 30 % or below is LOS F (heavy).

Run ``python make_submission.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.signal import lfilter

HERE = Path(__file__).resolve().parent
DEFAULT_SEED = 7
GENERATOR_VERSION = "1"

FArray = NDArray[np.float64]

# ---------------------------------------------------------------------------
# The world: calendar, intersections and traffic physics
# ---------------------------------------------------------------------------

INTERVAL_MIN = 5
PER_DAY = 24 * 60 // INTERVAL_MIN  # 288 intervals a day
# Four weeks starting on a Monday, with no daylight-saving change inside them,
# so local time needs no time zone. Three weeks train, the last one is held out.
START = np.datetime64("2025-09-01T00:00")
DAYS = 28
TRAIN_DAYS = 21
TRAIN_ROWS = 6000
HOLDOUT_ROWS = 2000

APPROACHES = ("n", "e", "s", "w")
OPPOSITE = (2, 3, 0, 1)  # index of the approach across the intersection
LABELS = ("free", "moderate", "heavy")

SATURATION_FLOW = 1800.0  # veh/h per lane of green, the usual planning value
CYCLE_S = 90.0  # signal cycle length
CAR_M, TRUCK_M = 4.5, 16.5  # vehicle lengths
GAP_M = 2.0  # bumper gap at standstill; also the loop length, so a jam reads 100 %
QUEUE_DENSITY = 0.8  # crawling queue density as a share of jam density
LOS_FREE, LOS_HEAVY = 0.50, 0.30  # speed-ratio bands of HCM urban-street LOS (C/D, E/F)


@dataclass(frozen=True, slots=True)
class District:
    """How traffic behaves in one district.

    ``saturation`` bounds the degree of saturation at an approach's busiest weekday
    interval; the peak weights shape the daily demand profile; ``inbound`` is the
    approach that carries morning traffic towards the centre (evening traffic leaves
    by the opposite one); ``noise`` scales the detector errors (older loops are noisier).
    """

    name: str
    code: str
    sensors: int
    saturation: tuple[float, float]
    am_weight: float
    am_hour: float
    pm_weight: float
    pm_hour: float
    midday: float
    weekend: float
    inbound: int | None
    truck_share: float
    free_speed: tuple[float, float]
    noise: float


DISTRICTS = (
    # Dense grid, short blocks, busy all day, no dominant direction.
    District(
        name="centre", code="CEN", sensors=6, saturation=(0.95, 1.20),
        am_weight=0.9, am_hour=8.0, pm_weight=1.0, pm_hour=17.5, midday=0.85, weekend=0.75,
        inbound=None, truck_share=0.04, free_speed=(40.0, 50.0), noise=1.0,
    ),
    # Residential, north of the centre: a sharp morning rush southbound into town
    # (arriving on the n approach), a softer evening return.
    District(
        name="north", code="NOR", sensors=5, saturation=(0.85, 1.12),
        am_weight=1.0, am_hour=7.75, pm_weight=0.8, pm_hour=17.25, midday=0.55, weekend=0.50,
        inbound=0, truck_share=0.03, free_speed=(50.0, 60.0), noise=1.0,
    ),
    # Port and logistics west of the centre: early shift traffic, many trucks, and the
    # oldest loops in the city.
    District(
        name="harbour", code="HAR", sensors=4, saturation=(0.85, 1.10),
        am_weight=0.9, am_hour=6.75, pm_weight=0.7, pm_hour=16.5, midday=0.75, weekend=0.35,
        inbound=3, truck_share=0.18, free_speed=(45.0, 60.0), noise=1.8,
    ),
    # Offices and retail east of the centre: late peaks and busy weekends.
    District(
        name="east", code="EST", sensors=5, saturation=(0.88, 1.12),
        am_weight=0.8, am_hour=8.25, pm_weight=1.0, pm_hour=17.75, midday=0.70, weekend=0.90,
        inbound=1, truck_share=0.05, free_speed=(45.0, 60.0), noise=1.0,
    ),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Network:
    """Fixed properties of every intersection (index s) and approach (index a)."""

    district: NDArray[np.int64]  # (S,) index into DISTRICTS
    sensor_id: NDArray[np.str_]  # (S,)
    lanes: FArray  # (S, A)
    green: FArray  # (S, A) green share of the cycle
    setback_m: FArray  # (S, A) loop distance from the stop line
    free_speed: FArray  # (S, A) km/h
    vehicle_m: FArray  # (S, A) mean vehicle length
    peak_saturation: FArray  # (S, A)

    @property
    def capacity(self) -> FArray:
        """Nominal capacity, vehicles per 5-minute interval."""
        return SATURATION_FLOW / 12 * self.lanes * self.green

    @property
    def jam_density(self) -> FArray:
        """Vehicles per km per lane when queued bumper to bumper."""
        return 1000.0 / (self.vehicle_m + GAP_M)


def make_network(rng: np.random.Generator) -> Network:
    """Draw the intersections: lanes, signal timing, loop positions, speeds."""
    district = np.repeat(np.arange(len(DISTRICTS)), [d.sensors for d in DISTRICTS])
    counters = {d.code: 0 for d in DISTRICTS}
    ids = []
    for k in district:
        code = DISTRICTS[k].code
        counters[code] += 1
        ids.append(f"{code}-{counters[code]:02d}")
    shape = (district.size, len(APPROACHES))

    def per_sensor(values: list[float]) -> FArray:
        return np.array(values)[district][:, None]  # (S, 1), broadcasts over approaches

    speed_low = per_sensor([d.free_speed[0] for d in DISTRICTS])
    speed_high = per_sensor([d.free_speed[1] for d in DISTRICTS])
    saturation_low = per_sensor([d.saturation[0] for d in DISTRICTS])
    saturation_high = per_sensor([d.saturation[1] for d in DISTRICTS])
    trucks = per_sensor([d.truck_share for d in DISTRICTS])
    return Network(
        district=district,
        sensor_id=np.array(ids),
        lanes=rng.choice([1.0, 2.0, 3.0], p=[0.3, 0.5, 0.2], size=shape),
        # Two-phase signals: each approach gets a bit less than half the cycle.
        green=rng.uniform(0.30, 0.48, size=shape),
        setback_m=rng.uniform(35.0, 90.0, size=shape),
        free_speed=rng.uniform(speed_low, speed_high, size=shape),
        vehicle_m=np.broadcast_to(CAR_M + trucks * (TRUCK_M - CAR_M), shape).copy(),
        peak_saturation=rng.uniform(saturation_low, saturation_high, size=shape),
    )


def _bump(hour: FArray, centre: float, width: float) -> FArray:
    return np.exp(-0.5 * ((hour - centre) / width) ** 2)


def _sigmoid(x: FArray) -> FArray:
    return 1.0 / (1.0 + np.exp(-x))


def demand_profile(net: Network, hour: FArray, weekend: NDArray[np.bool_]) -> FArray:
    """Expected demand as a share of each approach's weekday peak, shape (S, A, T).

    Weekdays: a low night level, a morning and an evening peak (stronger inbound in
    the morning and outbound in the evening) and a daytime plateau. Weekends: no
    commuter peaks, one broad early-afternoon hump.
    """
    night = 0.05
    daytime = _sigmoid((hour - 7.0) / 0.75) * _sigmoid((20.5 - hour) / 1.25)
    out = np.empty((net.district.size, len(APPROACHES), hour.size))
    for k, d in enumerate(DISTRICTS):
        am_dir, pm_dir = np.ones(len(APPROACHES)), np.ones(len(APPROACHES))
        if d.inbound is not None:
            am_dir[d.inbound], am_dir[OPPOSITE[d.inbound]] = 1.3, 0.75
            pm_dir[d.inbound], pm_dir[OPPOSITE[d.inbound]] = 0.75, 1.3
        weekday = (
            night
            + d.am_weight * am_dir[:, None] * _bump(hour, d.am_hour, 1.2)
            + d.pm_weight * pm_dir[:, None] * _bump(hour, d.pm_hour, 1.6)
            + d.midday * daytime
        )
        # Normalise on the weekday maximum so that peak_saturation means what it says.
        weekday = weekday / weekday.max(axis=1, keepdims=True)
        weekend_day = night + d.weekend * _bump(hour, 13.5, 3.0)
        out[net.district == k] = np.where(weekend, weekend_day, weekday)
    return out


def ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float, sd: float) -> FArray:
    """A stationary AR(1) process along the last axis: x[t] = phi x[t-1] + e[t]."""
    e = rng.normal(0.0, sd * np.sqrt(1 - phi**2), size=shape)
    # Start in the stationary distribution so the first day is not calmer than the rest.
    e[..., 0] = rng.normal(0.0, sd, size=shape[:-1])
    return np.asarray(lfilter([1.0], [1.0, -phi], e, axis=-1))


def incident_factor(rng: np.random.Generator, busy: FArray) -> tuple[FArray, int]:
    """Capacity left by incidents, shape like ``busy`` (S, A, T), 1.0 when there is none.

    Incidents start at random, more often when traffic is heavy (``busy`` is the
    demand as a share of the weekday peak), last 10 minutes to 2 hours (30 minutes
    on average) and leave 30-70 % of the capacity. Overlapping incidents multiply.
    Also returns how many incidents started.
    """
    starts = rng.random(busy.shape) < 0.003 * (0.25 + busy)
    s, a, t = np.nonzero(starts)
    duration = np.clip(rng.geometric(1 / 6, size=t.size), 2, 24)
    keep = rng.uniform(0.3, 0.7, size=t.size)
    # Add log(keep) where each incident starts and take it away where it ends; the
    # running sum is then the log of the capacity left, with no loop over incidents.
    steps = np.zeros((*busy.shape[:2], busy.shape[2] + 1))
    np.add.at(steps, (s, a, t), np.log(keep))
    np.add.at(steps, (s, a, np.minimum(t + duration, busy.shape[2])), -np.log(keep))
    return np.exp(np.cumsum(steps, axis=-1)[..., :-1]), int(t.size)


def residual_queue(arrivals: FArray, capacity: FArray) -> FArray:
    """Vehicles left waiting at the end of each interval, shape (S, A, T + 1).

    The queue obeys Lindley's recursion q[t] = max(0, q[t-1] + arrivals - capacity),
    whose closed form is the running sum of (arrivals - capacity) minus its running
    minimum, so no loop over time is needed.
    """
    excess = np.concatenate([np.zeros((*arrivals.shape[:2], 1)), arrivals - capacity], axis=-1)
    total = np.cumsum(excess, axis=-1)
    return total - np.minimum.accumulate(np.minimum(total, 0.0), axis=-1)


@dataclass(frozen=True, slots=True)
class Readings:
    """Per-approach detector readings, each (S, A, T)."""

    flow: FArray
    occupancy: FArray
    speed: FArray


def true_state(
    net: Network, arrivals: FArray, capacity: FArray, queue: FArray, slowdown: FArray
) -> Readings:
    """What a perfect loop would report.

    The loop sees two regimes and mixes them by the *spillback share*, the share of
    the interval during which the queue covers it. Uncovered, traffic flows at the
    arrival rate on the uncongested branch of Greenshields' fundamental diagram.
    Covered, it crawls at queue density and moves only as fast as the stop line
    discharges it. The share grows smoothly as the average back of the queue (the
    residual queue plus half the queue that builds at each red) nears the setback.
    """
    lanes, jam = net.lanes[..., None], net.jam_density[..., None]
    green = net.green[..., None]
    v_free = net.free_speed[..., None] * slowdown
    per_lane_hour = 12.0 / lanes  # from veh per 5 min per approach to veh/h per lane
    # Cyclic queue: vehicles arriving during one red, per lane, inflated while the
    # queue discharges (it keeps growing at the back until it clears).
    cycles = INTERVAL_MIN * 60 / CYCLE_S
    arrival_ratio = np.minimum(arrivals / (lanes * SATURATION_FLOW / 12), 0.9)
    red_queue = arrivals * (1 - green) / (lanes * cycles) / (1 - arrival_ratio)
    mean_residual = 0.5 * (queue[..., :-1] + queue[..., 1:]) / lanes
    back_m = (mean_residual + 0.5 * red_queue) * (net.vehicle_m[..., None] + GAP_M)
    spill = 1.0 - np.exp(-((back_m / net.setback_m[..., None]) ** 2))

    # Uncovered: Greenshields' free branch, density for a given flow.
    q_max = v_free * jam / 4.0
    ratio = np.minimum(arrivals * per_lane_hour / q_max, 1.0)
    k_free = jam / 2.0 * (1.0 - np.sqrt(1.0 - ratio))
    v_uncovered = v_free * (1.0 - k_free / jam)
    # Covered: queue density, moving at the discharge rate (flow = density x speed).
    k_queue = QUEUE_DENSITY * jam
    v_covered = capacity * per_lane_hour / k_queue

    uncovered, covered = (1.0 - spill) * arrivals, spill * capacity
    flow = uncovered + covered
    occupancy = 100.0 * ((1.0 - spill) * k_free + spill * k_queue) / jam
    # Loops average the speeds of the vehicles that cross them, so weight by count.
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = (uncovered * v_uncovered + covered * v_covered) / flow
    speed = np.where(flow > 0, speed, v_free)
    return Readings(flow, occupancy, speed)


def measure(rng: np.random.Generator, net: Network, true: Readings) -> Readings:
    """Add loop-detector errors: miscounts, occupancy gain error and speed scatter.

    Speed is the mean of the vehicles counted, so it scatters more when few pass.
    With no vehicle counted the station reports the approach's free-flow speed, a
    placeholder common in signal controllers. Noise is scaled per district.
    """
    noise = np.array([DISTRICTS[k].noise for k in net.district])[:, None, None]
    shape = true.flow.shape
    flow = np.rint(true.flow * np.exp(rng.normal(0.0, 0.03 * noise, size=shape)))
    flow = np.clip(flow, 0, 250)
    occupancy = true.occupancy * np.exp(rng.normal(0.0, 0.06 * noise, size=shape))
    occupancy = np.clip(occupancy + rng.normal(0.0, 0.3 * noise, size=shape), 0.0, 100.0)
    scatter = noise * (1.5 + 6.0 / np.sqrt(flow + 1.0))
    speed = true.speed + rng.normal(0.0, 1.0, size=shape) * scatter
    speed = np.where(flow > 0, speed, net.free_speed[..., None])
    return Readings(flow, occupancy, np.clip(speed, 0.0, 70.0))


def congestion_level(rng: np.random.Generator, net: Network, true: Readings) -> NDArray[np.str_]:
    """The reference congestion level of every intersection and interval, (S, T).

    The speed ratio is the vehicle-weighted mean of each approach's speed over its
    free-flow speed. The city's reference measurement of it (travel times from probe
    vehicles) has its own error, which is what makes labels near a band edge noisy.
    """
    ratio = true.speed / net.free_speed[..., None]
    weights = true.flow + 1e-9  # an empty intersection counts as free
    mean_ratio = (weights * ratio).sum(axis=1) / weights.sum(axis=1)
    observed = mean_ratio + rng.normal(0.0, 0.05, size=mean_ratio.shape)
    return np.select([observed > LOS_FREE, observed > LOS_HEAVY], LABELS[:2], LABELS[2])


# ---------------------------------------------------------------------------
# Features and rows
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureDef:
    """One model input column, as declared in ``[[inputs.features]]``."""

    name: str
    type: str
    unit: str
    min: float
    max: float
    description: str


_SIDE = {"n": "northern", "e": "eastern", "s": "southern", "w": "western"}


def _approach_features(a: str) -> tuple[FeatureDef, ...]:
    side = _SIDE[a]
    return (
        FeatureDef(
            name=f"flow_{a}", type="int", unit="veh/5min", min=0, max=250,
            description=f"Vehicles counted by the loop on the {side} approach in the last "
            "5 minutes",
        ),
        FeatureDef(
            name=f"occupancy_{a}", type="float", unit="%", min=0, max=100,
            description=f"Share of the last 5 minutes the {side} approach's loop was occupied",
        ),
        FeatureDef(
            name=f"speed_{a}", type="float", unit="km/h", min=0, max=70,
            description=f"Mean speed of the vehicles that crossed the {side} approach's loop "
            "(its free-flow speed when none did)",
        ),
    )  # fmt: skip


_CLOCK = "t the local time at the start of the interval"
FEATURES: tuple[FeatureDef, ...] = (
    *(f for a in APPROACHES for f in _approach_features(a)),
    FeatureDef("hour_sin", "float", "", -1, 1, f"sin(2 pi t / 24 h), {_CLOCK}"),
    FeatureDef("hour_cos", "float", "", -1, 1, f"cos(2 pi t / 24 h), {_CLOCK}"),
    FeatureDef("weekend", "bool", "", 0, 1, "1 on Saturday and Sunday, else 0"),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
LABEL_COLUMN = "congestion"
EXTRA_COLUMNS = (LABEL_COLUMN, "district", "sensor_id", "timestamp")


def simulate(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Generate the world for ``seed`` and sample the train and holdout rows.

    A row holds one intersection's readings for interval t and the congestion level
    of interval t + 1. Rows are a uniform random sample of (intersection, interval)
    pairs; training rows come from the first three weeks, holdout rows from the
    fourth, and no row's label reaches across that boundary. Also returns facts
    about the whole simulated world, for the datasheet.
    """
    rng = np.random.default_rng(seed)
    net = make_network(rng)
    n_steps = DAYS * PER_DAY + 1  # one extra interval so the last row has a label
    stamps = START + np.arange(n_steps) * np.timedelta64(INTERVAL_MIN, "m")
    minute = np.arange(n_steps) % PER_DAY * INTERVAL_MIN
    hour = minute / 60.0
    day = np.arange(n_steps) // PER_DAY
    weekend = day % 7 >= 5  # the calendar starts on a Monday

    profile = demand_profile(net, hour, weekend)
    shape = profile.shape
    peak_demand = (net.capacity * net.peak_saturation)[..., None]
    # Slow demand swings within the day (phi 0.9 per 5 minutes: about an hour) and a
    # level per intersection and day (weather, events), both multiplicative.
    swing = ar1(rng, shape, phi=0.9, sd=0.12)
    day_level = rng.normal(0.0, 0.07, size=(shape[0], DAYS + 1))[:, None, day]
    arrivals = rng.poisson(peak_demand * profile * np.exp(swing + day_level)).astype(float)

    left, n_incidents = incident_factor(rng, profile)
    capacity = net.capacity[..., None] * left
    slowdown = 0.5 + 0.5 * left  # drivers slow down past a blocked lane
    queue = residual_queue(arrivals, capacity)
    true = true_state(net, arrivals, capacity, queue, slowdown)
    seen = measure(rng, net, true)
    level = congestion_level(rng, net, true)

    n_sensors = net.district.size
    train_end = TRAIN_DAYS * PER_DAY
    holdout_end = DAYS * PER_DAY
    frames = []
    for lo, hi, rows in ((0, train_end - 1, TRAIN_ROWS), (train_end, holdout_end, HOLDOUT_ROWS)):
        # The label is interval t + 1, so t stops one short of the period's end.
        pick = rng.choice(n_sensors * (hi - lo), size=rows, replace=False)
        s, t = np.divmod(np.sort(pick), hi - lo)
        t = t + lo
        cols: dict[str, Any] = {}
        for j, a in enumerate(APPROACHES):
            cols[f"flow_{a}"] = seen.flow[s, j, t].astype(np.int64)
            cols[f"occupancy_{a}"] = seen.occupancy[s, j, t].round(2)
            cols[f"speed_{a}"] = seen.speed[s, j, t].round(2)
        angle = 2 * np.pi * minute[t] / (24 * 60)
        # Four decimals: two would merge times up to 20 minutes apart near the extremes.
        # Adding 0.0 turns -0.0 into 0.0 so the CSV never shows "-0.0".
        cols["hour_sin"] = np.sin(angle).round(4) + 0.0
        cols["hour_cos"] = np.cos(angle).round(4) + 0.0
        cols["weekend"] = weekend[t].astype(np.int64)
        cols[LABEL_COLUMN] = level[s, t + 1]
        cols["district"] = np.array([d.name for d in DISTRICTS])[net.district[s]]
        cols["sensor_id"] = net.sensor_id[s]
        cols["timestamp"] = np.datetime_as_string(stamps[t], unit="s")
        frame = pd.DataFrame(cols)[[*FEATURE_NAMES, *EXTRA_COLUMNS]]
        frames.append(frame.sort_values(["timestamp", "sensor_id"], ignore_index=True))
    approach_days = shape[0] * shape[1] * DAYS
    facts = {
        "incidents_per_approach_day": n_incidents / approach_days,
        "incident_share": float(np.mean(left < 1.0)),
        "queue_share": float(np.mean(queue[..., 1:] > 0.5)),
        "flow_capped": float(np.sum(seen.flow >= 250)),
    }
    return frames[0], frames[1], facts


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write with fixed formatting so the same seed gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


def train(frame: pd.DataFrame, seed: int) -> Any:
    """Fit the gradient-boosted classifier (100 trees of depth 3 per class)."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.utils.class_weight import compute_sample_weight

    model = GradientBoostingClassifier(
        n_estimators=100, max_depth=3, learning_rate=0.1, random_state=seed
    )
    # float32, as the ONNX graph will see it, so split thresholds match exactly.
    x = frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float32)
    y = frame[LABEL_COLUMN].to_numpy()
    # Classes weighted inversely to their frequency: missing a jam costs an operator
    # more than a false alarm, and unweighted the rare classes get the worst recall.
    model.fit(x, y, sample_weight=compute_sample_weight("balanced", y))
    return model


def export_onnx(model: Any) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, len(FEATURE_NAMES)]))],
        # Probabilities as a plain (n, 3) tensor rather than a list of dicts.
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    # skl2onnx names the graph with a random UUID and lists opsets in set order;
    # fixing both makes the file (and its SHA-256) repeat for the same library versions.
    onx.graph.name = "metro_congestion"
    opsets = sorted(onx.opset_import, key=lambda o: o.domain)
    del onx.opset_import[:]
    onx.opset_import.extend(opsets)
    return bytes(onx.SerializeToString())


@dataclass(frozen=True, slots=True)
class Scores:
    accuracy: float
    macro_f1: float
    recall: dict[str, float]
    district_accuracy: dict[str, float]
    onnx_agreement: float


def evaluate(model: Any, onnx_bytes: bytes, holdout: pd.DataFrame) -> Scores:
    """Score the model on the holdout and check the ONNX export answers the same."""
    import onnxruntime
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    x = holdout[list(FEATURE_NAMES)].to_numpy(dtype=np.float32)
    truth = holdout[LABEL_COLUMN].to_numpy()
    expected = model.predict(x)
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = session.run(["label"], {"input": x})[0]
    agreement = float(np.mean(got == expected))
    if agreement < 0.995:
        raise SystemExit(f"onnxruntime agrees with scikit-learn on only {agreement:.2%} of rows")
    recall = recall_score(truth, got, labels=list(LABELS), average=None, zero_division=0)
    return Scores(
        accuracy=float(accuracy_score(truth, got)),
        macro_f1=float(f1_score(truth, got, labels=list(LABELS), average="macro")),
        recall={lab: float(r) for lab, r in zip(LABELS, recall, strict=True)},
        district_accuracy={
            d.name: float(np.mean((got == truth)[holdout["district"].to_numpy() == d.name]))
            for d in DISTRICTS
        },
        onnx_agreement=agreement,
    )


# ---------------------------------------------------------------------------
# Manifest and datasheet
# ---------------------------------------------------------------------------


def _toml(value: Any) -> str:
    """A TOML value: JSON's string and number syntax are valid TOML for these."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def manifest_text(sha256: str) -> str:
    head = {
        "system": {
            "id": "metro-congestion",
            "vendor": "Metro Analytics Ltd",
            "version": "1.0.0",
            "kind": "predictor",
            "intended_use": (
                "Predicts the congestion level (free, moderate or heavy) of a signalised "
                "intersection for the next 5 minutes from its loop-detector readings, so "
                "that city traffic operators can retime signals and warn drivers early; "
                "advisory only, a human operator decides every intervention."
            ),
            "contact": "ai-assurance@metro-analytics.example",
        },
        "artifact": {"path": "model.onnx", "format": "onnx", "sha256": sha256},
    }
    lines = [
        "# CityXchange submission manifest of the metro-congestion example.",
        "# Generated by make_submission.py: edit that script, not this file.",
        "schema_version = 1",
    ]
    for section, fields in head.items():
        lines += ["", f"[{section}]", *(f"{k} = {_toml(v)}" for k, v in fields.items())]
    lines += ["", "# The model's input columns, in the order of its input tensor."]
    for f in FEATURES:
        lines += ["", "[[inputs.features]]"]
        lines += [f"{k} = {_toml(getattr(f, k))}" for k in ("name", "type", "unit", "min", "max")]
        lines.append(f"description = {_toml(f.description)}")
    tail = {
        "outputs": {
            "task": "classification",
            "labels": list(LABELS),
            "label_column": LABEL_COLUMN,
        },
        "data": {
            "training": "data/train.csv",
            "holdout": "data/holdout.csv",
            "datasheet": "datasheet.md",
        },
    }
    for section, fields in tail.items():
        lines += ["", f"[{section}]", *(f"{k} = {_toml(v)}" for k, v in fields.items())]
    return "\n".join(lines) + "\n"


def _balance_table(train: pd.DataFrame, holdout: pd.DataFrame, by: str | None = None) -> str:
    """Markdown table of label counts and shares per split (and per ``by`` group)."""
    head = ["split", *([by] if by else []), "rows", *LABELS]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    order = [d.name for d in DISTRICTS]
    for name, frame in (("train", train), ("holdout", holdout)):
        groups = (
            sorted(frame.groupby(by), key=lambda g: order.index(str(g[0]))) if by else [("", frame)]
        )
        for key, part in groups:
            counts = part[LABEL_COLUMN].value_counts()
            shares = [
                f"{counts.get(lab, 0)} ({counts.get(lab, 0) / len(part):.1%})" for lab in LABELS
            ]
            cells = [name, *([str(key)] if by else []), str(len(part)), *shares]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _district_table() -> str:
    """Markdown table of the district parameters, straight from ``DISTRICTS``."""
    rows = [
        "| district | intersections | peak saturation | free-flow speed (km/h) | trucks "
        "| queue spacing (m/veh) | morning peak | evening peak | inbound approach "
        "| detector error |",
        "|" + " --- |" * 10,
    ]
    for d in DISTRICTS:
        spacing = CAR_M + d.truck_share * (TRUCK_M - CAR_M) + GAP_M
        inbound = "none" if d.inbound is None else APPROACHES[d.inbound]
        rows.append(
            f"| {d.name} | {d.sensors} | {d.saturation[0]:.2f}-{d.saturation[1]:.2f} "
            f"| {d.free_speed[0]:.0f}-{d.free_speed[1]:.0f} | {d.truck_share:.0%} "
            f"| {spacing:.1f} | {_clock(d.am_hour)} | {_clock(d.pm_hour)} | {inbound} "
            f"| x{d.noise:g} |"
        )
    return "\n".join(rows)


def _clock(hour: float) -> str:
    return f"{int(hour):02d}:{round(hour % 1 * 60):02d}"


def datasheet_text(
    out: Path,
    seed: int,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    facts: dict[str, float],
    scores: Scores,
) -> str:
    """The datasheet: the template filled with numbers measured on the written files."""
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn

    template = string.Template((HERE / "datasheet.template.md").read_text(encoding="utf-8"))
    sensors = ", ".join(f"{d.name} ({d.sensors})" for d in DISTRICTS)
    values = {
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "train_first": train["timestamp"].iloc[0],
        "train_last": train["timestamp"].iloc[-1],
        "holdout_first": holdout["timestamp"].iloc[0],
        "holdout_last": holdout["timestamp"].iloc[-1],
        "n_sensors": sum(d.sensors for d in DISTRICTS),
        "sensors_by_district": sensors,
        "balance": _balance_table(train, holdout),
        "balance_by_district": _balance_table(train, holdout, by="district"),
        "district_table": _district_table(),
        "incidents_per_day": f"{facts['incidents_per_approach_day']:.2f}",
        "incident_share": f"{facts['incident_share']:.1%}",
        "queue_share": f"{facts['queue_share']:.1%}",
        "flow_capped": f"{facts['flow_capped']:.0f}",
        "train_sha256": _sha(out / "data" / "train.csv"),
        "holdout_sha256": _sha(out / "data" / "holdout.csv"),
        "accuracy": f"{scores.accuracy:.3f}",
        "macro_f1": f"{scores.macro_f1:.3f}",
        "recall": ", ".join(f"{k} {v:.3f}" for k, v in scores.recall.items()),
        "district_accuracy": ", ".join(f"{k} {v:.3f}" for k, v in scores.district_accuracy.items()),
        "versions": (
            f"Python {platform.python_version()}, numpy {np.__version__}, "
            f"pandas {pd.__version__}, scikit-learn {sklearn.__version__}, "
            f"skl2onnx {skl2onnx.__version__}, onnx {onnx.__version__}, "
            f"onnxruntime {onnxruntime.__version__}"
        ),
    }
    return template.substitute(values)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build(out: Path, seed: int) -> dict[str, Any]:
    """Write every file of the submission into ``out``; return a summary."""
    started = time.perf_counter()
    train_rows, holdout_rows, facts = simulate(seed)
    write_csv(train_rows, out / "data" / "train.csv")
    write_csv(holdout_rows, out / "data" / "holdout.csv")
    model = train(train_rows, seed)
    onnx_bytes = export_onnx(model)
    (out / "model.onnx").write_bytes(onnx_bytes)
    scores = evaluate(model, onnx_bytes, holdout_rows)
    sha = hashlib.sha256(onnx_bytes).hexdigest()
    (out / "cityx.toml").write_text(manifest_text(sha), encoding="utf-8")
    datasheet = datasheet_text(out, seed, train_rows, holdout_rows, facts, scores)
    (out / "datasheet.md").write_text(datasheet, encoding="utf-8")
    files = ("data/train.csv", "data/holdout.csv", "model.onnx", "cityx.toml", "datasheet.md")
    return {
        "out": str(out),
        "seed": seed,
        "rows": {"train": len(train_rows), "holdout": len(holdout_rows)},
        "balance": {
            name: frame[LABEL_COLUMN].value_counts(normalize=True).round(3).to_dict()
            for name, frame in (("train", train_rows), ("holdout", holdout_rows))
        },
        "holdout": {
            "accuracy": round(scores.accuracy, 4),
            "macro_f1": round(scores.macro_f1, 4),
            "recall": {k: round(v, 4) for k, v in scores.recall.items()},
            "district_accuracy": {k: round(v, 4) for k, v in scores.district_accuracy.items()},
            "onnx_agreement": scores.onnx_agreement,
        },
        "bytes": {f: (out / f).stat().st_size for f in files},
        "artifact_sha256": sha,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate the metro-congestion example submission: synthetic\n"
        "loop-detector data, a gradient-boosted congestion classifier exported to ONNX,\n"
        "its cityx.toml and its datasheet. Prints a JSON summary.",
        epilog="example:\n  python examples/submissions/metro-congestion/make_submission.py "
        "--seed 7\n  python make_submission.py --out /tmp/metro --seed 11",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE,
        help="folder to write the submission into (default: this script's folder)",
    )
    args = parser.parse_args(argv)
    summary = build(args.out, args.seed)
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
