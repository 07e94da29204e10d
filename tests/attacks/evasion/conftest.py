"""A two-sensor schema, a threat model over it, and an in-process rule predictor."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cityx.attacks.evasion import ThreatModel, parse_threat_model
from cityx.core import Feature, InputSchema, OutputSpec, Prediction, Task

SENSORS = ("a", "b")


def loop_schema() -> InputSchema:
    features = []
    for s in SENSORS:
        features += [
            Feature(f"flow_{s}", "int", "veh/5min", 0, 250),
            Feature(f"occupancy_{s}", "float", "%", 0, 100),
            Feature(f"speed_{s}", "float", "km/h", 0, 70),
        ]
    return InputSchema((*features, Feature("weekend", "bool")))


def threat_toml(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "controlled": ["a"],
        "sensors": {
            s: {
                "features": [f"flow_{s}", f"occupancy_{s}", f"speed_{s}"],
                "flow": f"flow_{s}",
                "occupancy": f"occupancy_{s}",
                "speed": f"speed_{s}",
            }
            for s in SENSORS
        },
        "max_change": {
            f"{k}_{s}": v
            for s in SENSORS
            for k, v in (("flow", 20), ("occupancy", 15), ("speed", 15))
        },
        "consistency": {},
    }
    raw.update(overrides)
    return raw


def loop_rows(n: int, seed: int) -> np.ndarray[Any, Any]:
    """Consistent loop readings: occupancy = 1.2 * L * flow / speed, L about 6 m."""
    rng = np.random.default_rng(seed)
    cols = []
    for _ in SENSORS:
        flow = rng.integers(0, 120, n).astype(float)
        speed = rng.uniform(15, 65, n).round(2)
        occ = np.clip(1.2 * rng.uniform(4, 9, n) * flow / speed, 0, 100).round(2)
        cols += [flow, occ, speed]
    cols.append(rng.integers(0, 2, n).astype(float))
    return np.stack(cols, axis=1)


class RulePredictor:
    """Heavy when the mean occupancy of both loops passes a threshold; counts queries."""

    def __init__(self, threshold: float = 20.0) -> None:
        self.schema = loop_schema()
        self.outputs = OutputSpec(Task.CLASSIFICATION, ("free", "heavy"))
        self.threshold = threshold
        self.queries = 0

    def predict(self, batch: np.ndarray[Any, Any]) -> Prediction:
        self.queries += batch.shape[0]
        score = (batch[:, 1] + batch[:, 4]) / 2 - self.threshold
        p = 1 / (1 + np.exp(-score / 3))
        values = np.where(p > 0.5, "heavy", "free")
        return Prediction(values, np.stack([1 - p, p], axis=1), ("free", "heavy"))


@pytest.fixture
def schema() -> InputSchema:
    return loop_schema()


@pytest.fixture
def threat(schema: InputSchema) -> ThreatModel:
    return parse_threat_model(threat_toml(), schema)
