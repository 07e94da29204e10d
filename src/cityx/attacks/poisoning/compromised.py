"""Compromised sensors: every row from a few sources drifts.

An attacker who controls some roadside sensors (or a data provider) makes
their readings drift: each feature of those sources' rows is multiplied by
``1 + drift * u``, where ``u`` ramps from 0.25 to 1 along the source's time
series (a slow drift is harder to see than a jump). Labels stay as they
were, so the model learns a wrong relation between readings and
congestion. ``rate`` is the share of rows that come from compromised
sources; whole sources are picked until it is reached.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.attacks.base import Access, AttackSpec
from cityx.core import InputError, Param, PluginMeta
from cityx.data.training import feature_columns

from ._common import PoisoningAttack, poisoning_spec, series_order, source_codes


class CompromisedSensors(PoisoningAttack):
    needs_source = True
    spec: ClassVar[AttackSpec] = poisoning_spec(
        "poisoning.compromised",
        "Make every reading of a few compromised sensors drift, labels unchanged, so the "
        "model learns a wrong relation from their rows",
        (
            Param("rate", 0.07, 0.0, 0.5, description="share of rows from compromised sources"),
            Param("drift", 0.6, 0.05, 5.0, description="relative drift at the series' end"),
        ),
        atlas=("AML.T0020", "AML.T0010"),
        access=frozenset({Access.TRAINING_DATA, Access.SENSOR}),
        reference="NIST AI 100-2e2025, section 2.3; ATLAS AML.T0010 (supply chain)",
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
        codes, names = source_codes(table, source_cols)
        if len(names) < 2:
            raise InputError("needs at least two sources to compromise some", where=self.spec.id)
        sizes = np.bincount(codes, minlength=len(names))
        perm = rng.permutation(len(names))
        # Whole sources, in random order, until their rows reach the rate (at least one).
        cum = np.cumsum(sizes[perm])
        k = max(1, int(np.searchsorted(cum, params["rate"] * len(table), side="left")) + 1)
        k = min(k, len(names) - 1)
        picked = perm[:k]
        truth = np.isin(codes, picked)
        columns = [
            c
            for c in feature_columns(table, label, source_cols)
            if pd.api.types.is_float_dtype(table[c])
        ]
        order = series_order(table, source_cols)
        progress = np.zeros(len(table))
        if order is not None:
            # Position of each row in its source's series, 0..1.
            ranks = np.empty(len(table))
            ranks[order] = np.arange(len(table))
            frame = pd.DataFrame({"code": codes, "rank": ranks})
            progress = frame.groupby("code")["rank"].rank(pct=True).to_numpy()
        factor = 1.0 + params["drift"] * (0.25 + 0.75 * progress)
        rows = np.flatnonzero(truth)
        values = table.loc[rows, columns].to_numpy(dtype=np.float64) * factor[rows, None]
        table.loc[rows, columns] = values
        return truth, {"sources": sorted(names[i] for i in picked), "features": columns}
