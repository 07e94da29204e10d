"""Label flips: the attacker relabels a share of the training rows.

*Random* flips give a row any other class; *towards* flips give it one
chosen class (by default the rarest: faking "heavy" congestion is what
moves signal plans); flips may be *confined* to some sources' rows, as
when one data provider or one sensor's labelling pipeline is compromised.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.attacks.base import AttackSpec
from cityx.core import Param, PluginMeta

from ._common import (
    PoisoningAttack,
    label_values,
    pick_class,
    poisoning_spec,
    relabel,
    rows_mask,
    source_codes,
)


class LabelFlip(PoisoningAttack):
    spec: ClassVar[AttackSpec] = poisoning_spec(
        "poisoning.label-flip",
        "Relabel a share of training rows (at random, towards one class, or only some "
        "sources' rows) so the model learns wrong decisions",
        (
            Param("rate", 0.05, 0.0, 0.5, description="share of all rows relabelled"),
            Param(
                "target_class",
                -2,
                -2,
                63,
                integer=True,
                description="-2: any other class at random; -1: the rarest class; k: the k-th "
                "class in sorted order",
            ),
            Param(
                "source_share",
                1.0,
                0.0,
                1.0,
                description="share of sources whose rows may be flipped (1: all)",
            ),
        ),
        reference="NIST AI 100-2e2025, section 2.3 (poisoning attacks)",
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta

    def _poison(
        self,
        table: pd.DataFrame,
        label: str,
        source_cols: list[str],
        params: dict[str, float],
        rng: np.random.Generator,
    ) -> tuple[NDArray[np.bool_], dict[str, Any]]:
        classes = label_values(table, label)
        y = table[label].to_numpy(dtype=object, copy=True)
        eligible = np.ones(len(table), dtype=bool)
        chosen_sources: list[str] = []
        if params["source_share"] < 1.0:
            codes, names = source_codes(table, source_cols)
            k = max(1, round(params["source_share"] * len(names)))
            picked = rng.choice(len(names), size=k, replace=False)
            eligible &= np.isin(codes, picked)
            chosen_sources = sorted(names[i] for i in picked)
        target = None
        if params["target_class"] >= -1:
            target = pick_class(
                classes, params["target_class"], table[label].value_counts(), where=self.spec.id
            )
            eligible &= y != target
        pool = np.flatnonzero(eligible)
        n = min(pool.size, round(params["rate"] * len(table)))
        rows = rng.choice(pool, size=n, replace=False)
        if target is not None:
            y[rows] = target
        else:
            # Shift each row's class index by 1..k-1: always a different class.
            index = {c: i for i, c in enumerate(classes)}
            current = np.array([index[v] for v in y[rows]], dtype=np.int64)
            shift = rng.integers(1, len(classes), size=n)
            y[rows] = np.asarray(classes, dtype=object)[(current + shift) % len(classes)]
        relabel(table, label, y)
        return rows_mask(len(table), rows), {
            "target_class": None if target is None else str(target),
            "sources": chosen_sources,
        }
