"""Serving a submission's model: rows in, labels (or scores) out, through its isolated worker.

Words:

- a *model id* is the store id of one submission (one version of a system);
- a *unit* is what one predicted row costs against a budget; the price list is
  :data:`UNIT_COST` (an explained row will cost more: explanations leak more);
- a *walled format* runs no vendor code when it loads (ONNX, skops, LightGBM);
  the others (an entry point, a pickle) run the vendor's code, and this
  server refuses to serve them until their workers can be walled off from
  each other and from the server (see docs/server.md, "Vendor code").

Workers are kept alive between calls (one per model), so a call costs a pipe
round trip, not a process start and a model load.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cityx.core import ArtifactFormat, InputError, InputSchema, Manifest, Prediction
from cityx.submissions import open_submission
from cityx.targets import IsolatedPredictor, Limits

UNIT_COST = {"predict": 1, "explain": 10}
WALLED_FORMATS = frozenset({ArtifactFormat.ONNX, ArtifactFormat.SKOPS, ArtifactFormat.LIGHTGBM})


class NotServed(InputError):
    """A model this server will not run (its format, or its kind)."""


def rows_to_batch(rows: Sequence[Mapping[str, Any]], schema: InputSchema) -> np.ndarray:
    """A (n, d) float batch in the schema's column order; every problem names its row."""
    names = schema.names
    wanted = set(names)
    batch = np.empty((len(rows), len(names)), dtype=np.float64)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InputError("a row must be an object of feature: value", where=f"rows[{i}]")
        missing = [n for n in names if n not in row]
        extra = sorted(set(row) - wanted)
        if missing or extra:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unknown {', '.join(extra)}"] if extra else []
            )
            raise InputError("; ".join(parts), where=f"rows[{i}]")
        for j, name in enumerate(names):
            value = row[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{name} must be a number, got {value!r}", where=f"rows[{i}]")
            batch[i, j] = float(value)
    if not np.isfinite(batch).all():
        raise InputError("every value must be finite", where="rows")
    return batch


def normalised(batch: np.ndarray, schema: InputSchema) -> np.ndarray:
    """``batch`` scaled to [0, 1] per feature by the declared bounds (unbounded: as is)."""
    lower, upper = schema.lower, schema.upper
    span = np.where(np.isfinite(upper - lower) & (upper > lower), upper - lower, 1.0)
    base = np.where(np.isfinite(lower), lower, 0.0)
    out: np.ndarray = (batch - base) / span
    return out


class ModelPool:
    """One live isolated worker per served model, started on first use."""

    def __init__(self, *, limits: Limits) -> None:
        self._limits = limits
        self._models: dict[int, IsolatedPredictor] = {}
        self._lock = threading.Lock()

    def check_servable(self, manifest: Manifest) -> None:
        """Refuse what this server does not serve, saying why."""
        if manifest.system.kind.value != "predictor":
            raise NotServed(
                f"a {manifest.system.kind.value} is run in the sandbox, not queried row by row",
                where="model",
            )
        if manifest.artifact.format not in WALLED_FORMATS:
            raise NotServed(
                f"a {manifest.artifact.format} artifact runs the vendor's code, and this "
                "server cannot yet wall vendor code off from other vendors and from itself",
                where="model",
                hint="submit ONNX, skops or LightGBM, or run the trial locally with cityx trial",
            )

    def predictor(self, model_id: int, folder: Path) -> IsolatedPredictor:
        with self._lock:
            found = self._models.get(model_id)
            if found is None:
                # open_submission checks the artifact's digest before anything loads.
                submission = open_submission(folder)
                self.check_servable(submission.manifest)
                found = submission.predictor(limits=self._limits)
                self._models[model_id] = found
            return found

    def predict(self, model_id: int, folder: Path, batch: np.ndarray) -> Prediction:
        return self.predictor(model_id, folder).predict(batch)

    def close(self) -> None:
        with self._lock:
            models, self._models = list(self._models.values()), {}
        for model in models:
            model.close()


__all__ = ["UNIT_COST", "WALLED_FORMATS", "ModelPool", "NotServed", "normalised", "rows_to_batch"]
