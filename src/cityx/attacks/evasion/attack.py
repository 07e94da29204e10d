"""Constrained evasion of a predictor, and the fragility of each sensor.

*Success* is a row whose predicted label moves off its true label (only
rows the model got right are attacked) with a feasible input: one that
satisfies the threat model. The *change* of a feature is the absolute
difference, in its own unit, between the attacked and the true reading.
*Fragility* repeats the attack with the attacker holding one sensor at a
time: its success rate, and the smallest change that flipped a prediction
(the most fragile sensor flips most rows, with the least change).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from cityx.core import (
    FloatArray,
    InputError,
    Param,
    PluginMeta,
    Predictor,
    Task,
    check_seed,
    stream,
)
from cityx.data.constraints import ThreatModel, violations

from ..base import Access, Attack, AttackKind, AttackSpec, AttackTarget, NistClass
from .search import search

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class SensorFragility:
    """One sensor attacked alone."""

    sensor: str
    features: tuple[str, ...]
    success_rate: float
    smallest_change: dict[str, float]  # of the flipped row with the least relative change
    median_change: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "sensor": self.sensor,
            "features": list(self.features),
            "success_rate": self.success_rate,
            "smallest_change": self.smallest_change,
            "median_change": self.median_change,
        }


@dataclass(frozen=True, slots=True, eq=False)
class EvasionReport:
    """What a constrained evasion run found; ``attacked`` holds the final inputs."""

    samples: int
    budget: int
    seed: int
    success_rate: float
    queries_per_sample: float
    median_change: dict[str, float]
    constraint_violations: int
    fragility: tuple[SensorFragility, ...]
    wall_s: float
    threat: dict[str, Any]
    rows: NDArray[np.int64]  # indices of the attacked rows in the input
    attacked: FloatArray
    success: NDArray[np.bool_]
    queries: NDArray[np.int64]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "attack": ConstrainedEvasion.spec.id,
            "samples": self.samples,
            "budget": self.budget,
            "seed": self.seed,
            "success_rate": self.success_rate,
            "queries_per_sample": self.queries_per_sample,
            "median_change": self.median_change,
            "constraint_violations": self.constraint_violations,
            "fragility": [f.to_json() for f in self.fragility],
            "threat_model": self.threat,
            "wall_s": self.wall_s,
        }


def _changes(
    model: ThreatModel, rows: FloatArray, attacked: FloatArray, ok: NDArray[np.bool_]
) -> tuple[dict[str, float], dict[str, float]]:
    """Median and smallest (by relative size) change per controlled feature, of flipped rows."""
    names = model.controlled_features
    idx = [model.index(f) for f in names]
    if not ok.any() or not idx:
        return {}, {}
    delta = np.abs(attacked[ok][:, idx] - rows[ok][:, idx])
    _, _, change = model.arrays()
    low, high, _ = model.arrays()
    scale = np.where(np.isfinite(change[idx]), change[idx], high[idx] - low[idx])
    smallest = delta[int(np.argmin((delta / np.maximum(scale, 1e-12)).sum(axis=1)))]
    median = np.median(delta, axis=0)
    return (
        {f: round(float(v), 4) for f, v in zip(names, median, strict=True)},
        {f: round(float(v), 4) for f, v in zip(names, smallest, strict=True)},
    )


class ConstrainedEvasion(Attack):
    """Black-box evasion of a predictor through the sensors an attacker controls."""

    spec: ClassVar[AttackSpec] = AttackSpec(
        id="evasion.constrained",
        version="1",
        goal="Change a predictor's output with sensor readings an attacker could really "
        "produce: only controlled sensors, within bounds, maximum change, integer counts, "
        "linked flow/occupancy/speed and temporal smoothness",
        target=AttackTarget.PREDICTOR,
        atlas=("AML.T0015", "AML.T0043"),
        nist_class=NistClass.EVASION,
        access=frozenset({Access.QUERY_SCORE, Access.SENSOR}),
        params=(
            Param("budget", 200, 8, 100_000, "queries/row", "model queries per attacked row", True),
            Param("samples", 100, 1, 1_000_000, "rows", "correctly predicted rows to attack", True),
            Param("width", 8, 1, 256, "candidates", "candidates per row per round", True),
        ),
    )
    meta: ClassVar[PluginMeta] = spec.plugin_meta
    subkind: ClassVar[AttackKind] = AttackKind.EVASION

    def run(
        self,
        predictor: Predictor,
        rows: FloatArray,
        truth: NDArray[Any],
        threat: ThreatModel,
        *,
        seed: int,
        previous: FloatArray | None = None,
        fragility: bool = True,
        **params: Any,
    ) -> EvasionReport:
        """Attack up to ``samples`` correctly predicted rows of ``rows`` (model feature order)."""
        config = self.configure(params)
        budget, samples, width = (int(config[k]) for k in ("budget", "samples", "width"))
        check_seed(seed)
        started = time.perf_counter()
        if predictor.outputs.task is not Task.CLASSIFICATION:
            raise InputError(
                "constrained evasion attacks classifiers; this predictor is a regressor",
                where="evasion.constrained",
            )
        if tuple(predictor.schema.names) != threat.features:
            raise InputError("the threat model was built for another feature list")
        truth = np.asarray(truth).astype(str)
        predicted = predictor.predict(rows).values.astype(str)
        correct = np.flatnonzero(predicted == truth)
        if correct.size == 0:
            raise InputError("the model gets no row right, so there is nothing to evade")
        rng = stream(seed, self.spec.id, "samples")
        chosen = np.sort(rng.choice(correct, size=min(samples, correct.size), replace=False))
        x, y = rows[chosen], truth[chosen]
        prev = None if previous is None else previous[chosen]
        # The budget is every query of a row, the one that read its own label included.
        outcome = search(
            predictor,
            x,
            y,
            threat,
            budget=budget - 1,
            width=width,
            rng=stream(seed, self.spec.id, "search"),
            previous=prev,
        )
        # Re-checked from scratch, independently of the projection.
        broken = int((violations(threat, outcome.attacked, x, prev) > 0).sum())
        median, _ = _changes(threat, x, outcome.attacked, outcome.success)
        queries = outcome.queries + 1  # the query that read each row's own label
        sensors = []
        if fragility:
            for sensor in threat.sensors:
                alone = threat.restricted_to([sensor.name])
                got = search(
                    predictor,
                    x,
                    y,
                    alone,
                    budget=max(width, budget // 2),
                    width=width,
                    rng=stream(seed, self.spec.id, "fragility", sensor.name),
                    previous=prev,
                )
                med, small = _changes(alone, x, got.attacked, got.success)
                sensors.append(
                    SensorFragility(
                        sensor.name, sensor.features, float(got.success.mean()), small, med
                    )
                )
            sensors.sort(key=lambda s: (-s.success_rate, s.sensor))
        return EvasionReport(
            samples=int(chosen.size),
            budget=budget,
            seed=seed,
            success_rate=float(outcome.success.mean()),
            queries_per_sample=float(queries.mean()),
            median_change=median,
            constraint_violations=broken,
            fragility=tuple(sensors),
            wall_s=round(time.perf_counter() - started, 3),
            threat=threat.describe(),
            rows=chosen.astype(np.int64),
            attacked=outcome.attacked,
            success=outcome.success,
            queries=queries,
        )


__all__ = ["ConstrainedEvasion", "EvasionReport", "SensorFragility"]
