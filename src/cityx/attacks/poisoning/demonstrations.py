"""Poisoning a controller's demonstration data.

A demonstration table (:mod:`cityx.worlds.traffic.demonstrations`) has one
row per phase candidate of an intersection at a decision time, with
``chosen`` = 1 for the teacher's phase. The attacker rewrites a share of
*decisions*: the 1 moves to another phase of the same decision (a random
one, or always the ``target_phase``-th candidate, to starve or favour an
approach). Both rows of a rewritten decision count as poisoned.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.attacks.base import AttackSpec
from cityx.core import DataError, Param, PluginMeta

from ._common import PoisoningAttack, poisoning_spec, relabel, rows_mask

DECISION_KEYS = ("scenario", "seed", "demand", "time_s", "intersection")


class DemonstrationPoison(PoisoningAttack):
    spec: ClassVar[AttackSpec] = poisoning_spec(
        "poisoning.demonstrations",
        "Rewrite a share of a teacher controller's decisions in its demonstration data so "
        "an imitating controller learns to pick the wrong phase",
        (
            Param("rate", 0.05, 0.0, 0.5, description="share of decisions rewritten"),
            Param(
                "target_phase",
                -1,
                -1,
                63,
                integer=True,
                description="-1: any other phase; k: the k-th candidate phase when it exists",
            ),
        ),
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta
    # check_plugin poisons a demonstration table, not the default detector table.
    conformance_table: ClassVar[str] = "cityx.testing.fixtures:demonstration_table"

    def _poison(
        self,
        table: pd.DataFrame,
        label: str,
        source_cols: list[str],
        params: dict[str, float],
        rng: np.random.Generator,
    ) -> tuple[NDArray[np.bool_], dict[str, Any]]:
        keys = [k for k in DECISION_KEYS if k in table.columns]
        if "intersection" not in keys or not set(table[label].unique()) <= {0, 1}:
            raise DataError(
                f"not a demonstration table: needs {', '.join(DECISION_KEYS)} and a 0/1 "
                f"label, got label {label!r}",
                where=self.spec.id,
            )
        decision = pd.factorize(table[keys].astype(str).agg("/".join, axis=1))[0]
        y = table[label].to_numpy(dtype=np.int64, copy=True)
        ranked = pd.Series(np.arange(len(table))).groupby(decision).rank(method="first")
        rank = ranked.to_numpy().astype(np.int64) - 1
        size = np.bincount(decision)
        chosen_row = np.full(size.size, -1, dtype=np.int64)
        chosen_row[decision[y == 1]] = np.flatnonzero(y == 1)
        usable = np.flatnonzero((size >= 2) & (chosen_row >= 0))
        n = min(usable.size, round(params["rate"] * usable.size))
        picked = rng.choice(usable, size=n, replace=False)
        start = np.zeros(size.size + 1, dtype=np.int64)
        # Row of the j-th candidate of decision d: rows sorted by (decision, rank).
        order = np.lexsort((rank, decision))
        start[1:] = np.cumsum(size)
        old = chosen_row[picked]
        if params["target_phase"] >= 0:
            j = np.minimum(int(params["target_phase"]), size[picked] - 1)
        else:
            j = rng.integers(0, size[picked] - 1)
            j = np.where(j >= rank[old], j + 1, j)  # skip the teacher's own phase
        new = order[start[picked] + j]
        keep = new != old
        old, new = old[keep], new[keep]
        y[old], y[new] = 0, 1
        relabel(table, label, y)
        return rows_mask(len(table), old, new), {"decisions": int(keep.sum())}
