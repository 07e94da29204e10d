"""Turning a vendor's artifact into a system under test, in an isolated process.

A *target* is the system under test as ``cityx`` calls it; a target
*adapter* loads one artifact format (ONNX, skops, LightGBM, a Python entry
point, a trusted pickle). The artifact is loaded and called only in a
*worker*, a child process with memory and CPU-time limits, so that a model
that crashes, hangs or eats memory becomes a
:class:`~cityx.core.TargetError` rather than a dead or hung trial.

>>> from cityx.targets import Limits, open_predictor
>>> with open_predictor(manifest, folder, limits=Limits(memory_mb=2048)) as model:  # doctest: +SKIP
...     prediction = model.predict(batch)
"""

from __future__ import annotations

from .isolated import IsolatedPredictor, open_predictor
from .limits import DEFAULT_LIMITS, Limits
from .model import LoadRequest, RawPrediction, TargetModel
from .scorer import IsolatedScorer, open_scorer

__all__ = [
    "DEFAULT_LIMITS",
    "IsolatedPredictor",
    "IsolatedScorer",
    "Limits",
    "LoadRequest",
    "RawPrediction",
    "TargetModel",
    "open_predictor",
    "open_scorer",
]
