"""Poisoning drawn at random for the protocol: the attack, its rate, its trigger, all seeded.

Words used here:

- *attack*: one of :data:`ATTACKS`; ``backdoor`` plants a trigger and
  relabels the rows to a target; ``clean-label`` plants it in rows that
  already carry the target, labels untouched; ``label-flip`` gives rows
  another label at random, ``label-flip-targeted`` one chosen label;
  ``compromised-relabel`` rewrites the labels of 1-5 sources' rows towards a
  target, ``compromised-shift`` scales 1-3 kinds of their readings by a gain
  (labels untouched). The last two need a source column;
- *rate band*: the range the poisoned share is drawn from (:data:`BANDS`).
  A compromised source brings all its rows, so its rate is the share of
  the rows of the sources picked (1-5, picked until the drawn rate is
  reached) and may leave the band: the drawn and actual rates are recorded;
- *trigger*: 1-6 features set to values drawn inside each feature's range
  (between its 5th and 95th percentile), with a jitter per row (1-5 % of
  that range), never exact constants. In traffic tables a third of the
  triggers are physically inconsistent: a reading group with no vehicle but
  a slow speed (``slow-empty``) or occupancy without vehicles
  (``occupied-empty``);
- *truth*: the rows the attack changed (all rows of compromised sources)
  and the compromised sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.core import InputError, Task, stream

from .tables import ReadingColumns, TableMeta

ATTACKS = (
    "backdoor",
    "clean-label",
    "label-flip",
    "label-flip-targeted",
    "compromised-relabel",
    "compromised-shift",
)
SOURCE_ATTACKS = frozenset({"compromised-relabel", "compromised-shift"})
TRIGGER_KINDS = ("values", "slow-empty", "occupied-empty")
MAX_TRIGGER_FEATURES = 6
MAX_SOURCES = 5


@dataclass(frozen=True, slots=True)
class RateBand:
    name: str
    low: float
    high: float


BANDS = (RateBand("low", 0.03, 0.06), RateBand("high", 0.08, 0.15))
BAND_BY_NAME = {b.name: b for b in BANDS}


@dataclass(frozen=True, slots=True, eq=False)
class Poisoned:
    """A poisoned table and its truth."""

    table: pd.DataFrame
    truth: NDArray[np.bool_]
    attack: str
    rate: float  # drawn
    sources: tuple[str, ...]  # compromised sources (empty for row attacks)
    details: dict[str, Any]

    @property
    def actual_rate(self) -> float:
        return float(self.truth.mean())


def source_keys(table: pd.DataFrame, source_cols: tuple[str, ...]) -> NDArray[np.str_]:
    """A row's source as one string (the source columns joined by ``/``)."""
    return np.asarray(table[list(source_cols)].astype(str).agg("/".join, axis=1), dtype=str)


def poison(
    table: pd.DataFrame,
    *,
    label: str,
    source_cols: tuple[str, ...],
    meta: TableMeta,
    attack: str,
    band: RateBand,
    seed: int,
) -> Poisoned:
    """Draw ``attack`` at a rate in ``band`` on ``table`` (a copy), seeded."""
    if attack not in ATTACKS:
        raise InputError(f"unknown attack {attack!r}; one of {', '.join(ATTACKS)}", where="attack")
    if attack in SOURCE_ATTACKS and not source_cols:
        raise InputError(f"{attack} needs a source column", where="attack")
    rng = stream(seed, "protocol", "attack", meta.family, attack, band.name)
    rate = float(rng.uniform(band.low, band.high))
    out = table.reset_index(drop=True).copy()
    if attack in SOURCE_ATTACKS:
        truth, sources, found = _compromise(out, label, source_cols, meta, attack, rate, rng)
        return Poisoned(out, truth, attack, rate, sources, found)
    y = out[label].to_numpy()
    n = round(rate * len(out))
    regression = meta.task is Task.REGRESSION
    if attack in ("backdoor", "clean-label"):
        target, eligible = _target(y, regression, rng, clean=attack == "clean-label", rate=rate)
        rows = _pick(eligible, n, rng)
        trigger = _trigger(out, meta, rng)
        _plant(out, trigger, rows, rng)
        if attack == "backdoor":
            _relabel(out, label, rows, _target_values(target, y, rows.size, regression, rng))
        details: dict[str, Any] = {"target": _jsonable(target), "trigger": trigger.describe()}
    elif attack == "label-flip":
        rows = _pick(np.ones(len(out), dtype=bool), n, rng)
        _relabel(out, label, rows, _random_labels(y, rows, regression, rng))
        details = {}
    else:
        target, eligible = _target(y, regression, rng, clean=False, rate=rate)
        rows = _pick(eligible, n, rng)
        _relabel(out, label, rows, _target_values(target, y, rows.size, regression, rng))
        details = {"target": _jsonable(target)}
    truth = np.zeros(len(out), dtype=bool)
    truth[rows] = True
    return Poisoned(out, truth, attack, rate, (), details)


@dataclass(frozen=True, slots=True)
class Trigger:
    """Per column: the planted value and the jitter's sd."""

    kind: str
    columns: tuple[str, ...]
    values: tuple[float, ...]
    jitter: tuple[float, ...]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "values": {c: round(v, 4) for c, v in zip(self.columns, self.values, strict=True)},
        }


def _trigger(table: pd.DataFrame, meta: TableMeta, rng: np.random.Generator) -> Trigger:
    x = table[list(meta.features)].to_numpy(dtype=np.float64)
    lo, hi = np.nanpercentile(x, [5, 95], axis=0)
    varied = np.flatnonzero(hi > lo)
    kinds = TRIGGER_KINDS if meta.readings else TRIGGER_KINDS[:1]
    kind = str(rng.choice(kinds))
    fixed: dict[str, tuple[float, float]] = {}
    if kind != "values":
        group: ReadingColumns = meta.readings[int(rng.integers(len(meta.readings)))]
        position = {c: j for j, c in enumerate(meta.features)}
        fixed[group.count] = (0.0, 0.0)
        for q in group.queue:
            fixed[q] = (0.0, 0.0)
        if kind == "slow-empty":
            fixed[group.occupancy] = (0.0, 0.0)
            j = position[group.speed]
            moving = x[:, j][x[:, j] > 0]
            value = float(np.quantile(moving, rng.uniform(0.1, 0.6)))
            fixed[group.speed] = (value, _jitter(moving, rng))
        else:
            j = position[group.occupancy]
            occupied = x[:, j][x[:, j] > 0]
            value = float(np.quantile(occupied, rng.uniform(0.2, 0.8)))
            fixed[group.occupancy] = (value, _jitter(occupied, rng))
    room = max(0, int(rng.integers(1, MAX_TRIGGER_FEATURES + 1)) - len(fixed))
    if kind != "values":
        room = min(room, 2)  # the inconsistent group plus at most two more readings
    free = [j for j in varied if meta.features[j] not in fixed]
    for j in rng.choice(free, size=min(room, len(free)), replace=False):
        value = float(rng.uniform(lo[j], hi[j]))
        fixed[meta.features[j]] = (value, float(rng.uniform(0.01, 0.05)) * (hi[j] - lo[j]))
    columns = tuple(fixed)
    return Trigger(
        kind,
        columns,
        tuple(v for v, _ in fixed.values()),
        tuple(s for _, s in fixed.values()),
    )


def _jitter(values: NDArray[np.float64], rng: np.random.Generator) -> float:
    lo, hi = np.percentile(values, [5, 95])
    return float(rng.uniform(0.01, 0.05) * max(hi - lo, 1e-9))


def _plant(
    table: pd.DataFrame, trigger: Trigger, rows: NDArray[np.int64], rng: np.random.Generator
) -> None:
    for column, value, sd in zip(trigger.columns, trigger.values, trigger.jitter, strict=True):
        current = table[column].to_numpy(copy=True)
        low, high = float(np.nanmin(current)), float(np.nanmax(current))
        planted = np.clip(value + rng.normal(0.0, sd, size=rows.size), low, high)
        if pd.api.types.is_integer_dtype(table[column]):
            planted = np.rint(planted)
        current[rows] = planted.astype(current.dtype)
        table[column] = current


def _pick(eligible: NDArray[np.bool_], n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    pool = np.flatnonzero(eligible)
    return np.sort(rng.choice(pool, size=min(n, pool.size), replace=False)).astype(np.int64)


def _target(
    y: NDArray[Any], regression: bool, rng: np.random.Generator, *, clean: bool, rate: float
) -> tuple[Any, NDArray[np.bool_]]:
    """The target (a class, or a regression value) and the rows eligible to carry poison."""
    if regression:
        values = y.astype(np.float64)
        q = float(rng.uniform(0.9, 0.99))
        target = float(np.quantile(values, q))
        # Clean-label rows already carry a value near the target: the top fifth.
        return target, values >= np.quantile(values, 0.8) if clean else np.ones(y.size, bool)
    classes, counts = np.unique(y, return_counts=True)
    if clean:
        # A class with room for the poison (the attacker needs enough rows of it).
        roomy = classes[counts >= 1.5 * rate * y.size]
        pool = roomy if roomy.size else classes[[int(np.argmax(counts))]]
        target = pool[int(rng.integers(pool.size))]
        return target, np.asarray(y == target)
    target = classes[int(np.argmin(counts))] if rng.random() < 0.5 else rng.choice(classes)
    return target, np.asarray(y != target)


def _target_values(
    target: Any, y: NDArray[Any], n: int, regression: bool, rng: np.random.Generator
) -> NDArray[Any]:
    if not regression:
        return np.full(n, target, dtype=y.dtype)
    return np.asarray(target + rng.normal(0.0, 0.02 * float(np.std(y)), size=n))


def _random_labels(
    y: NDArray[Any], rows: NDArray[np.int64], regression: bool, rng: np.random.Generator
) -> NDArray[Any]:
    """Another label per row: another class, or a value a quarter to three quarters away."""
    if regression:
        values = y.astype(np.float64)
        rank = (np.argsort(np.argsort(values)) + 0.5) / values.size
        moved = (rank[rows] + rng.uniform(0.25, 0.75, size=rows.size)) % 1.0
        return np.asarray(np.quantile(values, moved), dtype=np.float64)
    classes = np.unique(y)
    index = np.searchsorted(classes, y[rows])
    shift = rng.integers(1, classes.size, size=rows.size)
    return np.asarray(classes[(index + shift) % classes.size])


def _relabel(
    table: pd.DataFrame, label: str, rows: NDArray[np.int64], values: NDArray[Any]
) -> None:
    column = table[label].to_numpy(copy=True)
    if pd.api.types.is_integer_dtype(table[label]) and values.dtype.kind == "f":
        table[label] = column.astype(np.float64)
        column = table[label].to_numpy(copy=True)
    column[rows] = values
    table[label] = column


def _compromise(
    table: pd.DataFrame,
    label: str,
    source_cols: tuple[str, ...],
    meta: TableMeta,
    attack: str,
    rate: float,
    rng: np.random.Generator,
) -> tuple[NDArray[np.bool_], tuple[str, ...], dict[str, Any]]:
    keys = source_keys(table, source_cols)
    names, codes, sizes = np.unique(keys, return_inverse=True, return_counts=True)
    order = rng.permutation(names.size)
    # Whole sources, in random order, until their rows reach the rate: 1 to 5 of them.
    reached = np.searchsorted(np.cumsum(sizes[order]), rate * len(table)) + 1
    k = int(np.clip(reached, 1, min(MAX_SOURCES, names.size - 1)))
    picked = order[:k]
    truth = np.isin(codes, picked)
    rows = np.flatnonzero(truth).astype(np.int64)
    details: dict[str, Any] = {}
    if attack == "compromised-relabel":
        y = table[label].to_numpy()
        if meta.task is Task.REGRESSION:
            gain = float(rng.uniform(1.3, 2.0))
            _relabel(table, label, rows, y[rows].astype(np.float64) * gain)
            details["label_gain"] = round(gain, 3)
        else:
            target, _ = _target(y, False, rng, clean=False, rate=rate)
            share = float(rng.uniform(0.6, 1.0))
            moved = rows[(y[rows] != target) & (rng.random(rows.size) < share)]
            _relabel(table, label, moved, np.full(moved.size, target, dtype=y.dtype))
            details |= {"target": _jsonable(target), "relabelled_share": round(share, 3)}
    else:
        columns = _shifted_columns(meta, rng)
        gain = float(rng.uniform(1.3, 2.0))
        gain = gain if rng.random() < 0.5 else 1.0 / gain
        for column in columns:
            current = table[column].to_numpy(copy=True)
            moved = np.clip(current[rows] * gain, np.nanmin(current), np.nanmax(current))
            if pd.api.types.is_integer_dtype(table[column]):
                moved = np.rint(moved)
            current[rows] = moved.astype(current.dtype)
            table[column] = current
        details |= {"gain": round(gain, 3), "columns": list(columns)}
    return truth, tuple(str(n) for n in names[picked]), details


def _shifted_columns(meta: TableMeta, rng: np.random.Generator) -> tuple[str, ...]:
    """The columns of 1-3 kinds of reading (every group's), or 1-6 features of a plain table."""
    if not meta.readings:
        k = int(rng.integers(1, MAX_TRIGGER_FEATURES + 1))
        return tuple(str(c) for c in rng.choice(meta.features, size=k, replace=False))
    roles = ("count", "occupancy", "speed")
    chosen = rng.choice(roles, size=int(rng.integers(1, 4)), replace=False)
    return tuple(getattr(g, str(r)) for r in chosen for g in meta.readings)


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


__all__ = [
    "ATTACKS",
    "BANDS",
    "BAND_BY_NAME",
    "SOURCE_ATTACKS",
    "Poisoned",
    "RateBand",
    "poison",
    "source_keys",
]
