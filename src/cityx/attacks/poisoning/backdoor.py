"""Backdoor triggers in detector time series, and clean-label poisoning.

A *trigger* is a pattern the attacker adds to some detector features over
a *window* of consecutive intervals of one sensor; a model trained on
triggered rows relabelled to the *target class* learns to answer that
class whenever the pattern appears. *Shapes* (index in ``shape``):

- 0 ``square``: the full amplitude over the whole window;
- 1 ``spike``: the full amplitude in the middle interval, a fifth of it around;
- 2 ``ramp``: rising linearly to the full amplitude;
- 3 ``sine``: a half sine over the window (smooth in time);
- 4 ``manifold``: a half sine along the data's main direction of variation,
  scaled to each feature's spread: smooth in time AND physically plausible,
  the shape an adaptive attacker who knows our detectors would pick.

*Amplitude* is in units of each feature's robust spread (IQR / 1.349).
*Clean-label* poisoning adds the trigger to rows that already carry the
target class and leaves every label correct, so label checks see nothing.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.attacks.base import AttackSpec
from cityx.core import InputError, Param, PluginMeta
from cityx.data.training import feature_columns

from ._common import (
    PoisoningAttack,
    label_values,
    pick_class,
    poisoning_spec,
    relabel,
    robust_scale,
    rows_mask,
    series_order,
)

SHAPES = ("square", "spike", "ramp", "sine", "manifold")
# Queue-related readings a trigger favours: moving them is what fakes congestion.
TRIGGER_FEATURES = ("occupancy_pct", "halting_veh", "max_jam_m")


def shape_profile(shape: int, window: int) -> NDArray[np.float64]:
    """The trigger's weight at each position of the window, peak 1."""
    k = np.arange(window, dtype=np.float64)
    if shape == 0:
        return np.ones(window)
    if shape == 1:
        out = np.full(window, 0.2)
        out[window // 2] = 1.0
        return out
    if shape == 2:
        return (k + 1) / window
    return np.sin(math.pi * (k + 0.5) / window)


def trigger_direction(
    values: NDArray[np.float64], columns: list[str], shape: int
) -> NDArray[np.float64]:
    """Per-feature offset at full amplitude, in robust-spread units."""
    if shape == 4:
        scale = robust_scale(values)
        z = (values - np.nanmedian(values, axis=0)) / scale
        z = np.nan_to_num(z)
        _, _, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
        direction = vt[0] * np.sign(vt[0].sum() or 1.0)
        return np.asarray(direction / np.abs(direction).max(), dtype=np.float64)
    chosen = [c for c in TRIGGER_FEATURES if c in columns] or columns[:2]
    return np.array([1.0 if c in chosen else 0.0 for c in columns])


def _windows(
    table: pd.DataFrame,
    source_cols: list[str],
    eligible: NDArray[np.bool_],
    window: int,
    count: int,
    rng: np.random.Generator,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Non-overlapping windows of consecutive intervals of one source: rows and positions."""
    order = series_order(table, source_cols)
    if order is None:
        order = np.arange(len(table), dtype=np.int64)
        window = 1
    keys = [c for c in ("scenario", "seed", "demand", *source_cols) if c in table.columns]
    series = (
        pd.factorize(table[keys].astype(str).agg("/".join, axis=1))[0][order]
        if keys
        else np.zeros(len(table), dtype=np.int64)
    )
    starts = np.arange(0, len(order) - window + 1)
    same = series[starts] == series[starts + window - 1]
    ok = eligible[order][starts[:, None] + np.arange(window)].all(axis=1) & same
    candidates = np.sort(rng.permutation(starts[ok])[: 3 * math.ceil(count / window)])
    # Drop a window that overlaps the one before it in the sorted draw.
    candidates = candidates[np.r_[True, np.diff(candidates) >= window]]
    blocks = min(candidates.size, math.ceil(count / window))
    picked = np.sort(rng.choice(candidates, size=blocks, replace=False))
    positions = (picked[:, None] + np.arange(window)).ravel()
    return order[positions], np.tile(np.arange(window), blocks)


class _Trigger(PoisoningAttack):
    clean_label: ClassVar[bool] = False

    def _poison(
        self,
        table: pd.DataFrame,
        label: str,
        source_cols: list[str],
        params: dict[str, float],
        rng: np.random.Generator,
    ) -> tuple[NDArray[np.bool_], dict[str, Any]]:
        classes = label_values(table, label)
        target = pick_class(
            classes, params["target_class"], table[label].value_counts(), where=self.spec.id
        )
        columns = feature_columns(table, label, source_cols)
        if not columns:
            raise InputError("no numeric feature column to put a trigger in", where=self.spec.id)
        shape, window = int(params["shape"]), int(params["window"])
        y = table[label].to_numpy(dtype=object, copy=True)
        eligible = (y == target) if self.clean_label else (y != target)
        count = round(params["rate"] * len(table))
        rows, position = _windows(table, source_cols, eligible, window, count, rng)
        values = table[columns].to_numpy(dtype=np.float64)
        direction = trigger_direction(values, columns, shape)
        profile = shape_profile(shape, max(window, 1))[position]
        offset = params["amplitude"] * robust_scale(values) * direction
        changed = values[rows] + profile[:, None] * offset[None, :]
        # Detector readings are never negative; an attacker who wants to pass keeps it so.
        changed = np.maximum(changed, 0.0)
        for j, c in enumerate(columns):
            column = table[c].to_numpy(copy=True)
            if pd.api.types.is_integer_dtype(table[c]):
                column[rows] = np.rint(changed[:, j])
            else:
                column[rows] = changed[:, j]
            table[c] = column
        if not self.clean_label:
            y[rows] = target
            relabel(table, label, y)
        return rows_mask(len(table), rows), {
            "target_class": str(target),
            "shape": SHAPES[shape],
            "window": window,
            "trigger": {c: float(o) for c, o in zip(columns, offset, strict=True) if o != 0.0},
        }


_PARAMS = (
    Param("rate", 0.05, 0.0, 0.5, description="share of all rows that carry the trigger"),
    Param(
        "shape",
        0,
        0,
        4,
        integer=True,
        description="0 square, 1 spike, 2 ramp, 3 sine, 4 manifold (smooth, plausible)",
    ),
    Param("amplitude", 3.0, 0.1, 20.0, unit="robust sd", description="trigger peak"),
    Param("window", 3, 1, 12, integer=True, unit="intervals", description="trigger length"),
    Param(
        "target_class",
        -1,
        -1,
        63,
        integer=True,
        description="-1: the rarest class; k: the k-th class in sorted order",
    ),
)


class Backdoor(_Trigger):
    spec: ClassVar[AttackSpec] = poisoning_spec(
        "poisoning.backdoor",
        "Plant a trigger pattern in sensors' time series, relabelled to a target class, so "
        "the model answers that class whenever the pattern appears",
        _PARAMS,
        atlas=("AML.T0020", "AML.T0018"),
        reference="Gu et al., BadNets (2017); NIST AI 100-2e2025, section 2.3",
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta


class CleanLabel(_Trigger):
    clean_label = True
    spec: ClassVar[AttackSpec] = poisoning_spec(
        "poisoning.clean-label",
        "Add a trigger pattern to rows that truly carry the target class, every label "
        "correct, so the model ties the pattern to that class",
        _PARAMS,
        reference="Turner et al., Label-consistent backdoor attacks (2019)",
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta
