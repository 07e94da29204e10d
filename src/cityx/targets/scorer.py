"""A controller's model as a scoring function, in an isolated worker.

A controller submission's model scores rows (the sandbox's phase
candidates): a classifier by its score for the manifest's
``[controller].score_label``, a regressor by its value. The model runs
in the same isolated worker as a predictor's, under the same limits; the
call timeout is the per-step timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from cityx.core import FloatArray, Manifest, SystemKind, TargetOutputError, Task

from .isolated import IsolatedPredictor, _open
from .limits import DEFAULT_LIMITS, Limits


class IsolatedScorer:
    """``score(rows) -> one float per row``; a context manager like the predictor."""

    def __init__(self, predictor: IsolatedPredictor, score_label: str | None) -> None:
        self.predictor = predictor
        self._label = score_label if predictor.outputs.task is Task.CLASSIFICATION else None

    @property
    def columns(self) -> tuple[str, ...]:
        return self.predictor.schema.names

    def score(self, rows: FloatArray) -> FloatArray:
        prediction = self.predictor.predict(rows)
        if self._label is None:
            return np.asarray(prediction.values, dtype=np.float64)
        if prediction.scores is None or self._label not in prediction.classes:
            raise TargetOutputError(
                "the controller's classifier gave labels without scores, so candidates "
                "cannot be ranked",
                where=str(self.predictor.artifact),
                hint="export the model with class probabilities (e.g. zipmap=False in skl2onnx)",
            )
        column = prediction.classes.index(self._label)
        return np.asarray(prediction.scores[:, column], dtype=np.float64)

    def start(self) -> IsolatedScorer:
        self.predictor.start()
        return self

    def close(self) -> None:
        self.predictor.close()

    def __enter__(self) -> IsolatedScorer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_scorer(
    manifest: Manifest,
    submission_dir: Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
    trust_pickle: bool = False,
    trusted: Sequence[str] = (),
    plugins_allow: Sequence[str] | None = None,
) -> IsolatedScorer:
    """The scoring function of a controller submission, not yet started."""
    predictor = _open(
        manifest,
        submission_dir,
        SystemKind.CONTROLLER,
        limits=limits,
        trust_pickle=trust_pickle,
        trusted=trusted,
        plugins_allow=plugins_allow,
    )
    section = manifest.controller
    return IsolatedScorer(predictor, section.score_label if section is not None else None)


__all__ = ["IsolatedScorer", "open_scorer"]
