"""The ``windows`` family: one row per detector window, readings per lane and time step.

A row holds ``steps`` consecutive one-minute steps of one sensor's
``lanes`` loop detectors: ``lane{l}_t{t}_count`` (vehicles),
``lane{l}_t{t}_occupancy`` (%) and ``lane{l}_t{t}_speed`` (km/h), the names
the audit reads reading groups from; ``sensor`` is the source column and
there is no time column (windows arrive shuffled by the time they are
pooled, the way a vendor ships them).

The readings follow a fundamental diagram, so count, occupancy and speed
agree the way they do on a road: each sensor has a free-flow speed, a jam
density and a demand level; each lane's density is an AR(1) process around
that level; speed falls linearly with density (Greenshields), flow is
density times speed, the count a Poisson draw of the flow, occupancy
proportional to density. A step in which no vehicle passed reads a count,
occupancy and speed of 0 (the sensor's convention for an empty road).

The label ``state_next`` is the congestion state of the step after the
window (the lanes' mean speed over the free-flow speed: ``heavy`` below
0.35, ``moderate`` below 0.6, else ``free``); a quarter of the seeds ask
for the regression label ``speed_next_kmh`` (that mean speed) instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cityx.core import Task, stream

from .tables import DrawnTable, ReadingColumns, TableMeta

LABEL, REGRESSION_LABEL, SOURCE_COL = "state_next", "speed_next_kmh", "sensor"
MIN_SENSORS, MAX_SENSORS = 10, 50
MIN_LANES, MAX_LANES = 1, 4
MIN_STEPS, MAX_STEPS = 2, 8
MIN_WINDOWS, MAX_WINDOWS = 40, 120  # per sensor
TRUSTED_ROWS = 200
REGRESSION_SHARE = 0.25
STEP_S = 60.0
VEHICLE_M = 6.5  # vehicle plus loop length: occupancy % = density (veh/km) * 0.65
HEAVY, MODERATE = 0.35, 0.6


def reading_names(lanes: int, steps: int) -> tuple[ReadingColumns, ...]:
    return tuple(
        ReadingColumns(
            count=f"lane{lane}_t{t}_count",
            occupancy=f"lane{lane}_t{t}_occupancy",
            speed=f"lane{lane}_t{t}_speed",
        )
        for lane in range(1, lanes + 1)
        for t in range(1, steps + 1)
    )


def windows(seed: int) -> DrawnTable:
    """A table of detector windows of 10-50 sensors (see the module docstring)."""
    rng = stream(seed, "protocol", "family", "windows")
    sensors = int(rng.integers(MIN_SENSORS, MAX_SENSORS + 1))
    lanes = int(rng.integers(MIN_LANES, MAX_LANES + 1))
    steps = int(rng.integers(MIN_STEPS, MAX_STEPS + 1))
    per_sensor = int(rng.integers(MIN_WINDOWS, MAX_WINDOWS + 1))
    regression = bool(rng.random() < REGRESSION_SHARE)
    return windows_table(rng, sensors, lanes, steps, per_sensor, regression=regression)


def windows_table(
    rng: np.random.Generator,
    sensors: int,
    lanes: int,
    steps: int,
    per_sensor: int,
    *,
    regression: bool = False,
) -> DrawnTable:
    """A windows table of the given shape: ``sensors * per_sensor`` rows, ``lanes * steps * 3``
    features (the time goal's table is one)."""
    spare = -(-TRUSTED_ROWS // sensors) + 1
    # How busy the roads are: the upper end of the sensors' demand levels sets the balance.
    busy = float(rng.uniform(0.3, 0.75))
    total = per_sensor + spare
    count, occupancy, speed, mean = _simulate(rng, sensors, lanes, total * (steps + 1), busy)
    # Windows of steps + 1 steps: the features are the first ``steps``, the label the last.
    shape = (sensors, total, steps + 1, lanes)
    count, occupancy, speed = (a.reshape(shape) for a in (count, occupancy, speed))
    next_speed = mean[0].reshape(sensors, total, steps + 1)[:, :, -1]
    ratio = mean[1].reshape(sensors, total, steps + 1)[:, :, -1]
    # Feature order: lane-major, then step, then role (the names' order).
    blocks = np.stack([count, occupancy, speed], axis=-1)[:, :, :steps]  # s, w, t, l, role
    x = blocks.transpose(0, 1, 3, 2, 4).reshape(sensors * total, lanes * steps * 3)
    names = [
        f"lane{lane}_t{t}_{role}"
        for lane in range(1, lanes + 1)
        for t in range(1, steps + 1)
        for role in ("count", "occupancy", "speed")
    ]
    frame = pd.DataFrame(np.round(x, 2), columns=names)
    count_cols = names[0::3]
    frame[count_cols] = frame[count_cols].astype(np.int64)
    frame.insert(0, SOURCE_COL, np.repeat([f"S{i:02d}" for i in range(sensors)], total))
    if regression:
        frame[REGRESSION_LABEL] = np.round(next_speed.ravel(), 2)
    else:
        states = np.where(ratio < HEAVY, "heavy", np.where(ratio < MODERATE, "moderate", "free"))
        frame[LABEL] = states.ravel()
    label = REGRESSION_LABEL if regression else LABEL
    extra = np.tile(np.arange(total) >= per_sensor, sensors)
    spare_rows = frame[extra]
    take = rng.choice(len(spare_rows), size=min(TRUSTED_ROWS, len(spare_rows)), replace=False)
    trusted = spare_rows.iloc[np.sort(take)].reset_index(drop=True)
    table = frame[~extra].reset_index(drop=True)
    meta = TableMeta(
        family="windows",
        variant=(
            f"{'regression' if regression else 'classification'}, {sensors} sensors, "
            f"{lanes} lane(s) x {steps} steps"
        ),
        task=Task.REGRESSION if regression else Task.CLASSIFICATION,
        features=tuple(names),
        trusted=trusted,
        readings=reading_names(lanes, steps),
    )
    return table, label, (SOURCE_COL,), meta


def _simulate(
    rng: np.random.Generator, sensors: int, lanes: int, steps: int, busy: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Per sensor, step and lane: count, occupancy, speed; per sensor and step: the mean
    speed of the lanes that saw vehicles (free flow when none did) and its ratio to free flow.
    """
    free = rng.uniform(40.0, 70.0, size=(sensors, 1, 1))  # km/h
    jam = rng.uniform(120.0, 160.0, size=(sensors, 1, 1))  # veh/km per lane
    level = rng.uniform(0.03, busy, size=(sensors, 1, 1)) * jam
    lane_gain = rng.uniform(0.8, 1.2, size=(sensors, 1, lanes))
    phi, sd = 0.9, 0.06
    # An AR(1) density per sensor (shared by its lanes, which differ by a gain and noise):
    # a loop over time steps, each vectorised over every sensor.
    shocks = rng.normal(0.0, sd, size=(sensors, steps)) * jam[:, :, 0]
    dev = np.empty((sensors, steps))
    dev[:, 0] = shocks[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, steps):
        dev[:, t] = phi * dev[:, t - 1] + shocks[:, t]
    density = (level + dev[:, :, None]) * lane_gain
    density = density + rng.normal(0.0, 0.02, size=density.shape) * jam
    density = np.clip(density, 0.0, 0.95 * jam)
    speed = np.maximum(free * (1.0 - density / jam) + rng.normal(0.0, 2.0, density.shape), 2.0)
    flow = density * speed  # veh/h
    count = rng.poisson(flow * STEP_S / 3600.0).astype(np.float64)
    occupancy = np.clip(density * VEHICLE_M / 10.0 + rng.normal(0.0, 0.5, density.shape), 0, 100)
    empty = count == 0
    occupancy[empty], speed[empty] = 0.0, 0.0
    moving = np.where(empty, np.nan, speed)
    mean = np.nanmean(np.where(np.isnan(moving).all(axis=2, keepdims=True), free, moving), axis=2)
    return count, occupancy, speed, (mean, mean / free[:, :, 0])


__all__ = ["LABEL", "REGRESSION_LABEL", "SOURCE_COL", "reading_names", "windows"]
