"""What every training-data poisoning attack shares.

Words used here:

- *table*: the training data, one row per example, with a *label* column;
- *source*: where a row came from, the value of one or more *source
  columns* (for SUMO datasets the sensor: ``intersection`` + ``approach``);
- *rate*: the share of rows the attacker changes (or, for compromised
  sensors, the share of rows that come from the compromised sources);
- *truth*: a boolean per row, True for every row the attack changed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, final

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.attacks.base import Access, Attack, AttackKind, AttackSpec, AttackTarget, NistClass
from cityx.core import DataError, InputError, Param, stream
from cityx.data.training import RUN_COLUMNS, time_column


@dataclass(frozen=True, slots=True)
class PoisonResult:
    """The poisoned table and which rows the attack changed."""

    table: pd.DataFrame
    truth: NDArray[np.bool_]
    attack: str
    params: Mapping[str, float]
    seed: int
    details: Mapping[str, Any]

    def truth_json(self) -> dict[str, Any]:
        """The truth file: which rows are poisoned (0-based positions), and how."""
        return {
            "schema_version": 1,
            "attack": self.attack,
            "params": dict(self.params),
            "seed": self.seed,
            "rows": int(self.truth.size),
            "poisoned": np.flatnonzero(self.truth).tolist(),
            "details": dict(self.details),
        }


def source_codes(
    table: pd.DataFrame, source_cols: Sequence[str]
) -> tuple[NDArray[np.int64], list[str]]:
    """An integer code per row for its source, and the source names."""
    if not source_cols:
        return np.zeros(len(table), dtype=np.int64), ["all"]
    missing = [c for c in source_cols if c not in table.columns]
    if missing:
        raise DataError(f"no source column {', '.join(missing)}", where="--source-col")
    keys = table[list(source_cols)].astype(str).agg("/".join, axis=1)
    codes, names = pd.factorize(keys, sort=True)
    return codes.astype(np.int64), [str(n) for n in names]


def series_order(table: pd.DataFrame, source_cols: Sequence[str]) -> NDArray[np.int64] | None:
    """Row positions sorted into time series (run, source, time), or None without a time column."""
    time_col = time_column(table)
    if time_col is None:
        return None
    keys = [c for c in (*RUN_COLUMNS, *source_cols) if c in table.columns] + [time_col]
    return np.lexsort([table[c].to_numpy() for c in reversed(keys)]).astype(np.int64)


def robust_scale(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-column spread (IQR / 1.349, the normal-equivalent sd), never zero."""
    q75, q25 = np.nanpercentile(values, [75, 25], axis=0)
    iqr = (q75 - q25) / 1.349
    std = np.nanstd(values, axis=0)
    return np.where(iqr > 1e-9, iqr, np.where(std > 1e-9, std, 1.0))


class PoisoningAttack(Attack):
    """An attack on training data: ``poison`` returns the changed table and the truth."""

    subkind: ClassVar[AttackKind] = AttackKind.POISONING
    needs_source: ClassVar[bool] = False

    @final
    def poison(
        self,
        table: pd.DataFrame,
        *,
        label: str,
        source_cols: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> PoisonResult:
        values = self.configure(params)
        where = f"attack {self.spec.id}"
        if label not in table.columns:
            raise DataError(f"no label column {label!r}", where=where)
        if len(table) < 10:
            raise InputError(f"{len(table)} rows are too few to poison", where=where)
        if self.needs_source and not source_cols:
            raise InputError(
                "this attack needs --source-col (which sensor a row came from)", where=where
            )
        rng = stream(seed, "poisoning", self.spec.id)
        out = table.reset_index(drop=True).copy()
        truth, details = self._poison(out, label, list(source_cols), values, rng)
        return PoisonResult(out, truth, self.spec.id, values, seed, details)

    @abstractmethod
    def _poison(
        self,
        table: pd.DataFrame,
        label: str,
        source_cols: list[str],
        params: dict[str, float],
        rng: np.random.Generator,
    ) -> tuple[NDArray[np.bool_], dict[str, Any]]:
        """Change ``table`` in place; return the truth and what was done."""


def poisoning_spec(
    attack_id: str,
    goal: str,
    params: tuple[Param, ...],
    *,
    atlas: tuple[str, ...] = ("AML.T0020",),
    access: frozenset[Access] = frozenset({Access.TRAINING_DATA}),
    reference: str = "",
) -> AttackSpec:
    """The spec of a training-data poisoning attack (version 1)."""
    return AttackSpec(
        id=attack_id,
        version="1",
        goal=goal,
        target=AttackTarget.TRAINING_DATA,
        atlas=atlas,
        nist_class=NistClass.POISONING,
        access=access,
        params=params,
        reference=reference,
    )


def relabel(table: pd.DataFrame, label: str, y: NDArray[Any]) -> None:
    """Write new labels ``y`` into ``table``, keeping the column's dtype."""
    table[label] = pd.Series(y, index=table.index).astype(table[label].dtype)


def rows_mask(n: int, *rows: NDArray[np.int64]) -> NDArray[np.bool_]:
    """The truth: True at the given row positions."""
    truth = np.zeros(n, dtype=bool)
    for r in rows:
        truth[r] = True
    return truth


def label_values(table: pd.DataFrame, label: str) -> list[Any]:
    """The label's distinct values, sorted (class indices in parameters refer to these)."""
    values = sorted(pd.unique(table[label].dropna()), key=str)
    if len(values) < 2:
        raise DataError(f"label column {label!r} has fewer than two classes", where=label)
    return values


def pick_class(values: list[Any], index: float, counts: pd.Series, *, where: str) -> Any:
    """Class ``index`` (-1: the rarest one, which an attacker most wants to fake)."""
    i = int(index)
    if i < 0:
        return counts.reindex(values).fillna(0).idxmin()
    if i >= len(values):
        raise InputError(f"target_class {i} out of range; classes: {values}", where=where)
    return values[i]
