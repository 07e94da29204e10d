"""Serving a submission's model: rows in, labels (or scores) out, through its isolated worker.

Words:

- a *model id* is the store id of one submission (one version of a system);
- a *unit* is what one predicted row costs against a budget; the price list is
  :data:`UNIT_COST` (an explained row will cost more: explanations leak more);
- a *safe format* runs no vendor code when it loads (ONNX, skops, LightGBM);
  an entry point runs the vendor's code, and is served only inside walls
  (:mod:`.walls`); a pickle is never served (it would need the vendor's
  opt-in trust, which the server does not give);
- every worker runs inside the walls when they can be built; where they
  cannot, safe formats run in the ordinary isolated worker with a logged
  warning (parsers have bugs) and entry points are refused, saying why.
  Entry points also need the walls to give each organisation its own uid
  (:attr:`.walls.Walls.holds_vendor_code`); a missing seccomp filter is
  logged, not refused (it is installed where the kernel allows one).

Workers are kept alive between calls (one per model), so a call costs a pipe
round trip, not a process start, a jail and a model load.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cityx.core import ArtifactFormat, InputError, InputSchema, Manifest, Prediction, SystemKind
from cityx.submissions import open_submission
from cityx.targets import IsolatedPredictor, Limits

from .walls import DEFAULT_NPROC, Walls, probe

UNIT_COST = {"predict": 1, "explain": 10}
SAFE_FORMATS = frozenset({ArtifactFormat.ONNX, ArtifactFormat.SKOPS, ArtifactFormat.LIGHTGBM})
_LOG = logging.getLogger("cityx.server")


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
    """One live isolated worker per served model, started (jailed) on first use.

    ``contain``: build walls around every worker when possible (see :mod:`.walls`);
    ``realm`` (the server's data folder) and ``nproc`` shape the organisations' uids.
    """

    def __init__(
        self,
        *,
        limits: Limits,
        contain: bool = True,
        realm: str = "",
        nproc: int = DEFAULT_NPROC,
    ) -> None:
        self._limits = limits
        self._contain = contain
        self._realm = realm
        self._nproc = nproc
        self._walls: Walls | None = None
        self._why = "containment is switched off (contain = false)"
        self._probed = not contain
        self._models: dict[int, IsolatedPredictor] = {}
        self._lock = threading.Lock()

    def walls(self) -> Walls | None:
        """The walls, probed once; None where they cannot be built (see :attr:`why`)."""
        with self._lock:
            if not self._probed:
                self._walls, self._why = probe(realm=self._realm, nproc=self._nproc)
                self._probed = True
                if self._walls is None:
                    _LOG.warning("vendor code cannot be contained: %s", self._why)
                elif self._walls.missing:
                    _LOG.warning("the walls stand, but not all: %s", self._why)
                else:
                    _LOG.info("walls: %s", self._walls.status())
            return self._walls

    def code_walls(self) -> Walls | None:
        """The walls if vendor code may run in them (each organisation its own uid)."""
        walls = self.walls()
        return walls if walls is not None and walls.holds_vendor_code else None

    @property
    def why(self) -> str:
        """Why vendor code cannot run here, or which wall is missing ("ok": none)."""
        return self._why

    def status(self) -> dict[str, object]:
        """What the server reports about its walls (each wall, or why it is missing)."""
        walls = self.walls()
        if walls is None:
            return {"contained": False, "why": self._why, "vendor_code": False}
        return {"contained": True, **walls.status(), "why": self._why}

    def check_servable(self, manifest: Manifest) -> None:
        """Refuse what this server does not serve, saying why."""
        if manifest.system.kind is not SystemKind.PREDICTOR:
            raise NotServed(
                f"a {manifest.system.kind.value} is run in the sandbox, not queried row by row",
                where="model",
            )
        fmt = manifest.artifact.format
        if fmt == ArtifactFormat.ENTRYPOINT and self.code_walls() is not None:
            return
        if fmt not in SAFE_FORMATS:
            reason = (
                "a pickle needs the vendor's opt-in trust, which the server never gives"
                if fmt == ArtifactFormat.PICKLE
                else f"walls around vendor code cannot be built here: {self.why}"
            )
            raise NotServed(
                f"a {fmt} artifact runs the vendor's code; {reason}",
                where="model",
                hint="submit ONNX, skops or LightGBM, or run the trial locally with cityx trial",
            )

    def predictor(self, model_id: int, folder: Path, *, owner: str) -> IsolatedPredictor:
        walls = self.walls()
        with self._lock:
            found = self._models.get(model_id)
            if found is None:
                # open_submission checks the artifact's digest before anything loads.
                submission = open_submission(folder)
                limits = self._limits
                if walls is not None:
                    jail = walls.around(submission.folder, vendor=owner)
                    limits = dataclasses.replace(limits, wrapper=jail)
                else:
                    _LOG.warning("model %s runs without walls: %s", model_id, self._why)
                # Vendor code is trusted to run only behind the walls (check_servable).
                trust = walls is not None and walls.holds_vendor_code
                found = submission.predictor(limits=limits, trust_code=trust)
                self._models[model_id] = found
            return found

    def predict(self, model_id: int, folder: Path, batch: np.ndarray, *, owner: str) -> Prediction:
        return self.predictor(model_id, folder, owner=owner).predict(batch)

    def close(self) -> None:
        with self._lock:
            models, self._models = list(self._models.values()), {}
        for model in models:
            model.close()


__all__ = ["SAFE_FORMATS", "UNIT_COST", "ModelPool", "NotServed", "normalised", "rows_to_batch"]
