"""Trigger candidates: what the flagged rows' readings jumped by, read off the audit.

A backdoor's trigger is an offset added to some readings of the rows it
relabels. Where a flagged row follows an unflagged row of the same series,
the *jump* between them is the trigger plus ordinary change; the median jump
over such rows, measured against the spread of jumps between unflagged
neighbours, shows the trigger's features and size. Flipped labels leave the
readings alone, so no candidate comes out of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cityx.core import Fields

from ._data import prepare

MIN_ROWS = 10
# A feature is part of the trigger when the flagged rows' median jump is this many robust
# spreads of the ordinary jump.
MIN_EFFECT = 2.0


@dataclass(frozen=True, slots=True)
class DataTrigger:
    target: str  # the label most flagged rows carry
    offsets: dict[str, float]  # feature -> median jump at the flagged rows
    effects: dict[str, float]  # feature -> that jump in robust spreads of ordinary jumps
    rows: int  # flagged rows with an unflagged row before them

    def apply(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` with the trigger added (readings stay non-negative, as real ones are)."""
        out = table.copy()
        for feature, offset in self.offsets.items():
            out[feature] = np.maximum(out[feature].to_numpy(dtype=np.float64) + offset, 0.0)
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "offsets": {k: round(v, 4) for k, v in self.offsets.items()},
            "effects": {k: round(v, 2) for k, v in self.effects.items()},
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "trigger") -> DataTrigger:
        """The trigger as recorded: offsets rounded to 4 decimals, effects to 2."""
        f = Fields.of(data, where)
        return cls(
            f.text("target"), f.number_map("offsets"), f.number_map("effects"), f.integer("rows")
        )


def find_data_trigger(
    table: pd.DataFrame,
    flagged: np.ndarray,
    *,
    label: str,
    source_cols: Sequence[str] = (),
) -> DataTrigger | None:
    """The trigger the flagged rows suggest, or None (no time order, too few rows, no jump)."""
    data = prepare(table.reset_index(drop=True), label=label, source_cols=source_cols)
    if data.order is None or data.series is None:
        return None
    flagged = np.asarray(flagged, dtype=bool)
    order = data.order
    same = data.series[order][1:] == data.series[order][:-1]
    after, before = order[1:][same], order[:-1][same]
    jump = data.x[after] - data.x[before]
    onset = flagged[after] & ~flagged[before]
    ordinary = ~flagged[after] & ~flagged[before]
    if onset.sum() < MIN_ROWS or ordinary.sum() < MIN_ROWS:
        return None
    centre = np.median(jump[ordinary], axis=0)
    spread = 1.4826 * np.median(np.abs(jump[ordinary] - centre), axis=0)
    spread = np.where(spread > 1e-9, spread, np.maximum(np.std(jump[ordinary], axis=0), 1e-9))
    shift = np.median(jump[onset], axis=0) - centre
    effect = shift / spread
    chosen = np.flatnonzero(np.abs(effect) >= MIN_EFFECT)
    if chosen.size == 0:
        return None
    labels = data.y[flagged]
    target = data.classes[int(np.bincount(labels, minlength=len(data.classes)).argmax())]
    return DataTrigger(
        target=target,
        offsets={data.features[j]: float(shift[j]) for j in chosen},
        effects={data.features[j]: float(effect[j]) for j in chosen},
        rows=int(onset.sum()),
    )
