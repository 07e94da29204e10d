"""Checking a threat model against real data, and the previous readings it needs.

Constraints the true data itself breaks are wrong constraints: an attack
held to them would be judged on an impossible standard. ``previous_rows``
gives each row the previous interval of the same sensor group, which
temporal smoothness compares with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.core import FloatArray

from .model import ThreatModel, ThreatModelError
from .projection import consistency_gap, ratio_gap


def previous_rows(
    model: ThreatModel, table: pd.DataFrame, keep: NDArray[np.bool_] | None = None, *, where: str
) -> FloatArray | None:
    """Each (kept) row's previous interval of the same sensor group, NaN where none.

    None when the threat model declares no temporal smoothness.
    """
    if model.temporal is None:
        return None
    group, order = list(model.temporal.group_by), model.temporal.order_by
    for column in (*group, order, *model.features):
        if column not in table.columns:
            raise ThreatModelError(
                f"temporal: column {column!r} is not in the data", where=model.source, hint=where
            )
    kept = table if keep is None else table.loc[keep]
    kept = kept[[*group, order, *model.features]].reset_index(drop=True)
    ordered = kept.sort_values([*group, order], kind="stable")
    shifted = ordered.groupby(group, sort=False)[list(model.features)].shift(1)
    return np.asarray(shifted.sort_index().to_numpy(dtype=np.float64))


def check_against_data(model: ThreatModel, rows: FloatArray, *, where: str) -> None:
    """Refuse constraints that the true data itself breaks (bounds, integers, linked features)."""
    low, high, _ = model.arrays()
    outside = (rows < low) | (rows > high)
    for j in np.flatnonzero(outside.any(axis=0)):
        column = rows[:, j]
        raise ThreatModelError(
            f"bounds of {model.features[j]!r} are [{low[j]:g}, {high[j]:g}] but "
            f"{int(outside[:, j].sum())} of {rows.shape[0]} data rows lie outside "
            f"(data range {column.min():g} to {column.max():g})",
            where=model.source,
            hint=f"the constraints contradict {where}; widen the bounds",
        )
    quantum = model.quantum()
    safe = np.where(quantum > 0, quantum, 1.0)
    off_grid = (np.abs(rows / safe - np.round(rows / safe)) > 1e-6) & (quantum > 0)
    for j in np.flatnonzero(off_grid.any(axis=0)):
        raise ThreatModelError(
            f"{model.features[j]!r} must be a multiple of {quantum[j]:g} (integer or "
            f"resolution) but {where} holds other values",
            where=model.source,
        )
    for ratio in model.ratios:
        share = float((ratio_gap(model, ratio, rows) > 0).mean())
        if share > 0.01:
            raise ThreatModelError(
                f"ratio: {ratio.feature} = {ratio.numerator} / {ratio.denominator} fails on "
                f"{share:.0%} of the data rows",
                where=model.source,
                hint=f"the constraints contradict {where}; check the names or the tolerance",
            )
    if model.consistency is not None:
        for sensor in model.sensors:
            if not sensor.linked:
                continue
            gap = consistency_gap(model, sensor, rows)
            share = float((gap > 0).mean())
            # Real data is noisy; a relation that most true readings break is
            # not a description of these sensors.
            if share > 0.5:
                raise ThreatModelError(
                    f"consistency: {share:.0%} of the true readings of sensor {sensor.name!r} "
                    "break the linked-feature relation",
                    where=model.source,
                    hint=f"the constraints contradict {where}; widen min_length_m/max_length_m "
                    "or slack",
                )


__all__ = ["check_against_data", "previous_rows"]
