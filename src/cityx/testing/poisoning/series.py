"""The ``series`` family: long per-interval SUMO detector series, one row per sensor and interval.

The bases are real SUMO runs (the sandbox's own detectors, aggregated by
:mod:`cityx.worlds.traffic.dataset`): by default the test data
``tests/support/data/metro_base.csv`` (grid3x3, 36 sensors, 12 runs of
seeds 0-2 at four demand levels, 14 intervals each), or the CSV/parquet
files named in ``CITYX_POISONING_SERIES_BASES`` (``:``-separated, each a
``cityx world dataset`` output; :func:`simulated_base` simulates one and
caches it on disk under a key of its parameters). SUMO is slow, so a seed
never simulates: it resamples a base, picking 10-36 sensors and most of the runs for the
table, and draws the trusted set from the runs left out (the same sensors,
other runs: rows that overlap nothing in the table).

A quarter of the seeds ask for a regression label, ``delay_next_s``: the
next interval's delay of the same sensor (its series' last row dropped).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from cityx.core import DataError, Task, stream
from cityx.worlds.traffic.dataset import DatasetSpec, build_dataset

from .tables import DrawnTable, ReadingColumns, TableMeta

ROOT = Path(__file__).resolve().parents[4]
DEFAULT_BASE = ROOT / "tests" / "support" / "data" / "metro_base.csv"
BASES_ENV = "CITYX_POISONING_SERIES_BASES"
LABEL, REGRESSION_LABEL = "congestion_next", "delay_next_s"
SOURCE_COLS = ("intersection", "approach")
RUN_KEYS = ("seed", "demand")
TIME_COL = "interval_start_s"
MIN_SENSORS, MAX_SENSORS = 10, 36
TRUSTED_ROWS = 200
REGRESSION_SHARE = 0.25
READINGS = (
    ReadingColumns(
        count="flow_veh_h",
        occupancy="occupancy_pct",
        speed="mean_speed_kmh",
        queue=("halting_veh", "max_jam_m"),
    ),
)
CACHE_ENV = "CITYX_POISONING_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "cityx" / "poisoning-bases"


def simulated_base(spec: DatasetSpec, cache: Path | None = None) -> Path:
    """A SUMO base table for ``spec``: simulated once, then read from the cache.

    The cache (``cache``, else ``CITYX_POISONING_CACHE``, else
    ``~/.cache/cityx/poisoning-bases``) keys each table by every parameter of
    the spec that changes its rows (the worker count does not).
    """
    params = {k: v for k, v in asdict(spec).items() if k != "workers"}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache or Path(os.environ.get(CACHE_ENV, DEFAULT_CACHE))
    path = folder / f"{spec.scenario}-{key}.parquet"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        build_dataset(spec, path)
    return path


def base_paths() -> tuple[Path, ...]:
    extra = os.environ.get(BASES_ENV, "")
    return tuple(Path(p) for p in extra.split(":") if p) or (DEFAULT_BASE,)


@lru_cache(maxsize=8)
def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(
            f"no SUMO base table at {path}; set {BASES_ENV} to `cityx world dataset` outputs",
            where="series",
        )
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    # Text columns describe a place or a run (district, scenario, the current state), not
    # traffic: the audit would only leave them out.
    text = [
        c
        for c in table.columns
        if c not in {LABEL, *SOURCE_COLS} and not pd.api.types.is_numeric_dtype(table[c])
    ]
    return table.drop(columns=text)


def series(seed: int) -> DrawnTable:
    """A table of 10-36 SUMO sensors over most runs of a base (see the module docstring)."""
    rng = stream(seed, "protocol", "family", "series")
    paths = base_paths()
    base = _read(paths[int(rng.integers(len(paths)))])
    sensor = base[list(SOURCE_COLS)].astype(str).agg("/".join, axis=1).to_numpy()
    run = base[list(RUN_KEYS)].astype(str).agg("/".join, axis=1).to_numpy()
    sensors, runs = np.unique(sensor), np.unique(run)
    k = int(rng.integers(MIN_SENSORS, min(MAX_SENSORS, sensors.size) + 1))
    picked = rng.choice(sensors, size=k, replace=False)
    # At least two runs stay out for the trusted set.
    held = rng.choice(runs, size=max(2, runs.size // 6), replace=False)
    mine = np.isin(sensor, picked)
    table = base[mine & ~np.isin(run, held)]
    spare = base[mine & np.isin(run, held)]
    regression = bool(rng.random() < REGRESSION_SHARE)
    label = REGRESSION_LABEL if regression else LABEL
    if regression:
        table, spare = _next_delay(table), _next_delay(spare)
    table = table.reset_index(drop=True)
    take = rng.choice(len(spare), size=min(TRUSTED_ROWS, len(spare)), replace=False)
    trusted = spare.iloc[np.sort(take)].reset_index(drop=True)
    features = tuple(
        c for c in table.columns if c not in {label, *SOURCE_COLS, *RUN_KEYS, TIME_COL}
    )
    meta = TableMeta(
        family="series",
        variant=f"{'regression' if regression else 'classification'}, {k} sensors",
        task=Task.REGRESSION if regression else Task.CLASSIFICATION,
        features=features,
        trusted=trusted,
        time_col=TIME_COL,
        readings=READINGS,
    )
    return table, label, SOURCE_COLS, meta


def _next_delay(table: pd.DataFrame) -> pd.DataFrame:
    """The regression label: the same sensor's delay one interval later (last rows dropped)."""
    keys = [*RUN_KEYS, *SOURCE_COLS]
    ordered = table.sort_values([*keys, TIME_COL], kind="stable")
    following = ordered.groupby(keys, sort=False)["delay_s"].shift(-1)
    out = ordered.assign(**{REGRESSION_LABEL: following}).drop(columns=[LABEL])
    return out[following.notna()]


__all__ = ["DEFAULT_BASE", "LABEL", "REGRESSION_LABEL", "SOURCE_COLS", "series"]
