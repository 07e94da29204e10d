"""The workbench: one folder of fixtures, each built once and shared by every plugin's checks."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd

from cityx.submissions import validate_submission
from cityx.targets import IsolatedPredictor, open_predictor

from .fixtures import (
    WorldTrace,
    controller_submission,
    predictor_submission,
    traffic_table,
    world_trace,
)


class Workbench:
    """Fixtures under ``root``, built on first use (thread-safe)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._trace: WorldTrace | None = None
        self._table: pd.DataFrame | None = None
        self._model: IsolatedPredictor | None = None

    def folder(self, *parts: str) -> Path:
        """A fresh-enough folder under the workbench for one run's outputs."""
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def trace(self) -> WorldTrace:
        with self._lock:
            if self._trace is None:
                self._trace = world_trace(self.root / "trace")
            return self._trace

    @property
    def table(self) -> pd.DataFrame:
        with self._lock:
            if self._table is None:
                self._table = traffic_table(seed=0)
            return self._table.copy()

    @property
    def predictor(self) -> Path:
        with self._lock:
            folder = self.root / "predictor"
            if not (folder / "cityx.toml").is_file():
                predictor_submission(folder)
            return folder

    @property
    def predictor_model(self) -> IsolatedPredictor:
        """The predictor submission's model in its isolated worker, started once."""
        folder = self.predictor
        with self._lock:
            if self._model is None:
                manifest = validate_submission(folder).raise_for_errors()
                self._model = open_predictor(manifest, folder).start()
            return self._model

    @property
    def controller(self) -> Path:
        with self._lock:
            folder = self.root / "controller"
            if not (folder / "cityx.toml").is_file():
                controller_submission(folder)
            return folder


__all__ = ["Workbench"]
