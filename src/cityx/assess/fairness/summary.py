"""Group fairness of a predictor: per-group metrics, their spread, and intervals.

Across groups, a metric's *difference* is its largest group value minus its
smallest, and its *ratio* the smallest over the largest (1 is parity); both
use only groups where the metric is defined, and are undefined with fewer
than two such groups. Named summaries:

- *demographic parity*: difference and ratio of selection rates; the ratio
  is also the *disparate impact* (the "four-fifths rule" wants >= 0.8);
- *equal opportunity*: difference and ratio of true positive rates;
- *equalised odds*: the worse of the TPR and FPR differences (and the
  smaller of their ratios), as fairlearn defines it.

Intervals are seeded percentile bootstraps over rows (see
:mod:`cityx.assess.bootstrap`); a resample in which a metric is undefined
is left out of its interval. A group with fewer than ``min_group`` rows is
*too small to judge*: its numbers are shown with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import DataError, InputError

from ..bootstrap import bootstrap, percentile_ci
from .groups import GroupCodes, as_text
from .rates import (
    RATES,
    REGRESSION_METRICS,
    auc_by_group,
    calibration_by_group,
    cell_codes,
    confusion_by_group,
    rates_from_counts,
    regression_from_sums,
    residual_sums,
    residual_sums_batched,
)

MIN_GROUP = 30
SCHEMA_VERSION = 1
Number = float | int | None


def spread(values: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Difference (max - min) and ratio (min / max) over the group axis (-2) of (..., g, m)."""
    defined = ~np.isnan(values)
    enough = defined.sum(axis=-2) >= 2
    high = np.where(defined, values, -np.inf).max(axis=-2)
    low = np.where(defined, values, np.inf).min(axis=-2)
    difference = np.where(enough, high - low, np.nan)
    ratio = np.full(difference.shape, np.nan)
    np.divide(low, high, out=ratio, where=enough & (high > 0))
    # 0 / 0: every group at zero is parity.
    ratio = np.where(enough & (high == 0) & (low == 0), 1.0, ratio)
    return difference, ratio


def _named(difference: Mapping[str, float], ratio: Mapping[str, float]) -> dict[str, float]:
    return {
        "demographic_parity_difference": difference["selection_rate"],
        "demographic_parity_ratio": ratio["selection_rate"],
        "disparate_impact": ratio["selection_rate"],
        "equal_opportunity_difference": difference["tpr"],
        "equal_opportunity_ratio": ratio["tpr"],
        "equalized_odds_difference": _worst(difference["tpr"], difference["fpr"], max),
        "equalized_odds_ratio": _worst(ratio["tpr"], ratio["fpr"], min),
    }


def _worst(a: float, b: float, pick: Any) -> float:
    if np.isnan(a) or np.isnan(b):
        return float("nan")
    return float(pick(a, b))


def _named_batched(
    difference: NDArray[np.float64], ratio: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The named summaries for (b, m) spreads over RATES: (b, 7), in _named's order."""
    i = {name: k for k, name in enumerate(RATES)}
    sr, tpr, fpr = i["selection_rate"], i["tpr"], i["fpr"]
    return np.stack(
        [
            difference[:, sr],
            ratio[:, sr],
            ratio[:, sr],
            difference[:, tpr],
            ratio[:, tpr],
            np.maximum(difference[:, tpr], difference[:, fpr]),
            np.minimum(ratio[:, tpr], ratio[:, fpr]),
        ],
        axis=-1,
    )


def _json_number(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


@dataclass(frozen=True, slots=True)
class GroupFairness:
    """One computation of group fairness, answering every view of it.

    ``by_group`` maps group -> metric -> value (NaN when undefined);
    ``intervals`` maps a metric key (``group/metric``, ``difference/metric``,
    ``ratio/metric`` or a named summary) to its 95 % interval.
    """

    task: str
    sensitive: tuple[str, ...]
    groups: tuple[str, ...]
    sizes: tuple[int, ...]
    metrics: tuple[str, ...]
    by_group: Mapping[str, Mapping[str, float]]
    differences: Mapping[str, float]
    ratios: Mapping[str, float]
    summary: Mapping[str, float]
    positive: str | None = None
    labels: tuple[str, ...] = ()
    extra_by_group: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    bootstrap: int = 0
    seed: int | None = None
    min_group: int = MIN_GROUP

    def to_json(self) -> dict[str, Any]:
        """The ``cityx fairness --json`` object; undefined values are ``null``."""
        groups: dict[str, dict[str, Number]] = {}
        for name, size in zip(self.groups, self.sizes, strict=True):
            row: dict[str, Number] = {"n": size}
            row |= {m: _json_number(v) for m, v in self.by_group[name].items()}
            row |= {m: _json_number(v) for m, v in self.extra_by_group.get(name, {}).items()}
            groups[name] = row
        return {
            "schema_version": SCHEMA_VERSION,
            "task": self.task,
            "sensitive": list(self.sensitive),
            "positive": self.positive,
            "labels": list(self.labels),
            "groups": groups,
            "ratios": {k: _json_number(v) for k, v in self.ratios.items()},
            "differences": {k: _json_number(v) for k, v in self.differences.items()},
            "summary": {k: _json_number(v) for k, v in self.summary.items()},
            "intervals": {
                k: [_json_number(lo), _json_number(hi)] for k, (lo, hi) in self.intervals.items()
            },
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "min_group": self.min_group,
            "warnings": list(self.warnings),
        }


def classification_fairness(
    truth: Sequence[Any] | NDArray[Any],
    predicted: Sequence[Any] | NDArray[Any],
    groups: GroupCodes,
    *,
    positive: str | None = None,
    scores: NDArray[np.float64] | None = None,
    bootstrap_n: int = 0,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    min_group: int = MIN_GROUP,
) -> GroupFairness:
    """Per-group rates for ``positive`` against the rest (one-vs-rest).

    Labels may be strings or numbers (compared as text). Without
    ``positive`` a two-label problem takes the larger label (``1``, ``yes``
    sorts after ``0``, ``no``); more labels need it. ``scores`` (the model's
    score for ``positive``) adds AUC and calibration by group.
    """
    y, p = as_text(truth), as_text(predicted)
    n = _check_lengths(y, p, groups)
    labels = tuple(sorted(set(np.unique(y).tolist()) | set(np.unique(p).tolist())))
    if positive is None:
        if len(labels) != 2:
            raise InputError(
                f"the labels are {list(labels)}: name the positive one",
                where="--positive",
                hint="multi-class results are one-vs-rest for the label you choose",
            )
        positive = labels[1]
    positive = str(positive)
    if positive not in labels:
        raise InputError(
            f"positive label {positive!r} is neither a true nor a predicted label; "
            f"seen: {list(labels)}",
            where="--positive",
        )
    y_pos, p_pos = y == positive, p == positive
    g = groups.count
    codes = cell_codes(groups.codes, y_pos, p_pos)
    counts = confusion_by_group(codes[None, :], g)[0]
    values = rates_from_counts(counts)
    difference, ratio = spread(values)
    by_group = {
        name: {m: float(values[j, k]) for k, m in enumerate(RATES)}
        for j, name in enumerate(groups.names)
    }
    diffs = {m: float(difference[k]) for k, m in enumerate(RATES)}
    ratios = {m: float(ratio[k]) for k, m in enumerate(RATES)}
    summary = _named(diffs, ratios)
    extra: dict[str, dict[str, float]] = {}
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64)
        if s.shape != (n,):
            raise DataError(f"{s.shape[0]} scores for {n} rows", where="scores")
        auc = auc_by_group(groups.codes, y_pos, s, g)
        ece, drift = calibration_by_group(groups.codes, y_pos, s, g)
        extra = {
            name: {"auc": float(auc[j]), "ece": float(ece[j]), "calibration_gap": float(drift[j])}
            for j, name in enumerate(groups.names)
        }
    intervals: dict[str, tuple[float, float]] = {}
    if bootstrap_n > 0:
        if rng is None:
            raise ValueError("a bootstrap needs a seeded rng")
        intervals = _classification_intervals(codes, groups, bootstrap_n, rng)
    warnings = _warnings(groups, min_group) + _undefined_warnings(by_group, positive)
    if not p_pos.any():
        warnings.append(f"the model never predicted {positive!r} on these rows")
    return GroupFairness(
        task="classification",
        sensitive=groups.features,
        groups=groups.names,
        sizes=tuple(int(x) for x in counts.sum(axis=-1)),
        metrics=RATES,
        by_group=by_group,
        differences=diffs,
        ratios=ratios,
        summary=summary,
        positive=positive,
        labels=labels,
        extra_by_group=extra,
        intervals=intervals,
        warnings=tuple(warnings),
        bootstrap=bootstrap_n,
        seed=seed,
        min_group=min_group,
    )


def _classification_intervals(
    codes: NDArray[np.int64], groups: GroupCodes, b: int, rng: np.random.Generator
) -> dict[str, tuple[float, float]]:
    g, m = groups.count, len(RATES)

    def stat(idx: NDArray[np.int64]) -> NDArray[np.float64]:
        values = rates_from_counts(confusion_by_group(codes[idx], g))  # (c, g, m)
        difference, ratio = spread(values)
        named = _named_batched(difference, ratio)
        return np.concatenate(
            [values.reshape(values.shape[0], g * m), difference, ratio, named], axis=1
        )

    samples = bootstrap(stat, codes.size, b, rng)
    low, high = percentile_ci(samples)
    keys = [f"{name}/{metric}" for name in groups.names for metric in RATES]
    keys += [f"difference/{metric}" for metric in RATES]
    keys += [f"ratio/{metric}" for metric in RATES]
    keys += list(_named(dict.fromkeys(RATES, 0.0), dict.fromkeys(RATES, 0.0)))
    return {k: (float(low[i]), float(high[i])) for i, k in enumerate(keys)}


def regression_fairness(
    truth: Sequence[Any] | NDArray[Any],
    predicted: Sequence[Any] | NDArray[Any],
    groups: GroupCodes,
    *,
    bootstrap_n: int = 0,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    min_group: int = MIN_GROUP,
) -> GroupFairness:
    """MAE, RMSE and mean residual (predicted minus true) by group."""
    try:
        y = np.asarray(truth, dtype=np.float64)
        p = np.asarray(predicted, dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"a regression needs numbers: {exc}", where="labels") from None
    _check_lengths(y, p, groups)
    residual = p - y
    g = groups.count
    values = regression_from_sums(residual_sums(groups.codes, residual, g))
    difference, ratio = spread(values)
    by_group = {
        name: {m: float(values[j, k]) for k, m in enumerate(REGRESSION_METRICS)}
        for j, name in enumerate(groups.names)
    }
    intervals: dict[str, tuple[float, float]] = {}
    if bootstrap_n > 0:
        if rng is None:
            raise ValueError("a bootstrap needs a seeded rng")

        def stat(idx: NDArray[np.int64]) -> NDArray[np.float64]:
            v = regression_from_sums(residual_sums_batched(groups.codes[idx], residual[idx], g))
            d, r = spread(v)
            return np.concatenate([v.reshape(v.shape[0], -1), d, r], axis=1)

        low, high = percentile_ci(bootstrap(stat, residual.size, bootstrap_n, rng))
        keys = [f"{name}/{m}" for name in groups.names for m in REGRESSION_METRICS]
        keys += [f"difference/{m}" for m in REGRESSION_METRICS]
        keys += [f"ratio/{m}" for m in REGRESSION_METRICS]
        intervals = {k: (float(low[i]), float(high[i])) for i, k in enumerate(keys)}
    return GroupFairness(
        task="regression",
        sensitive=groups.features,
        groups=groups.names,
        sizes=tuple(int(x) for x in groups.sizes()),
        metrics=REGRESSION_METRICS,
        by_group=by_group,
        differences={m: float(difference[k]) for k, m in enumerate(REGRESSION_METRICS)},
        ratios={m: float(ratio[k]) for k, m in enumerate(REGRESSION_METRICS)},
        summary={},
        intervals=intervals,
        warnings=tuple(_warnings(groups, min_group)),
        bootstrap=bootstrap_n,
        seed=seed,
        min_group=min_group,
    )


def _check_lengths(y: NDArray[Any], p: NDArray[Any], groups: GroupCodes) -> int:
    n = groups.codes.shape[0]
    if y.shape != (n,) or p.shape != (n,):
        raise DataError(
            f"lengths differ: {y.shape[0] if y.ndim else 0} true labels, "
            f"{p.shape[0] if p.ndim else 0} predictions, {n} sensitive rows",
            where="data",
        )
    return int(n)


def _warnings(groups: GroupCodes, min_group: int) -> list[str]:
    sizes = groups.sizes()
    return [
        f"group {name!r} has {int(size)} rows (< {min_group}): too small to judge; its "
        "numbers are shown but should not be trusted"
        for name, size in zip(groups.names, sizes, strict=True)
        if size < min_group
    ]


def _undefined_warnings(by_group: Mapping[str, Mapping[str, float]], positive: str) -> list[str]:
    found = []
    for name, row in by_group.items():
        if np.isnan(row["tpr"]):
            found.append(f"group {name!r} has no true {positive!r} rows: tpr and fnr are undefined")
        if np.isnan(row["tnr"]):
            found.append(
                f"group {name!r} has no true rows other than {positive!r}: tnr and fpr are "
                "undefined"
            )
        if np.isnan(row["ppv"]):
            found.append(
                f"group {name!r} has no predicted {positive!r} rows: ppv and fdr are undefined"
            )
        if np.isnan(row["npv"]):
            found.append(
                f"group {name!r} has only predicted {positive!r} rows: npv and for are undefined"
            )
    return found


__all__ = [
    "MIN_GROUP",
    "GroupFairness",
    "classification_fairness",
    "regression_fairness",
    "spread",
]
