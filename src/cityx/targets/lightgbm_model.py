"""LightGBM boosters saved in LightGBM's own text format.

A *booster* file (``Booster.save_model``) holds trees and the training
objective, no code. Its *objective* tells what ``predict`` returns: a
probability of the second class for ``binary`` and ``cross_entropy``, one
probability per class for ``multiclass`` and ``multiclassova``, a number
otherwise. Class index i is the manifest's ``outputs.labels[i]``: LightGBM
was trained on integer class codes, and the manifest is where their
meaning is declared.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cityx.core import FloatArray, NistFunction, PluginKind, PluginMeta, Principle, Tags, Task

from .describe import Description
from .describe_estimators import describe_lightgbm
from .model import LoadRequest, RawPrediction, TargetModel, brief

# Objectives whose predict() returns class probabilities, with their aliases.
_BINARY = frozenset({"binary", "cross_entropy", "xentropy"})
_MULTICLASS = frozenset({"multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr"})


class LightgbmModel(TargetModel):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="lightgbm",
        kind=PluginKind.TARGET,
        version="1",
        summary="A LightGBM booster from its native model file; class i is the manifest's label i",
        tags=Tags(Principle.SECURITY, NistFunction.MAP, ("AML.T0010",), ("Art. 15",)),
        supports=frozenset({"predictor", "controller"}),
        reference="https://lightgbm.readthedocs.io/en/stable/pythonapi/lightgbm.Booster.html",
    )

    def __init__(self, booster: Any, request: LoadRequest, *, objective: str) -> None:
        self._booster = booster
        self._request = request
        self._objective = objective

    @classmethod
    def load(cls, request: LoadRequest) -> LightgbmModel:
        # heavy: the format's library loads in the worker, only for an artifact of it
        import lightgbm

        try:
            booster = lightgbm.Booster(model_file=str(request.artifact))
        except Exception as exc:  # LightGBMError for a damaged file, OSError for I/O
            raise request.load_error(f"not a LightGBM model file: {brief(exc)}") from exc
        request.check_feature_count(int(booster.num_feature()), what="LightGBM model")
        _check_feature_order(request, [str(n) for n in booster.feature_name()])
        objective = _objective(booster, request)
        per_iteration = int(booster.num_model_per_iteration())
        if request.task is Task.CLASSIFICATION:
            if objective in _BINARY:
                classes = 2
            elif objective in _MULTICLASS:
                classes = per_iteration
            else:
                raise request.load_error(
                    f"the LightGBM objective {objective or 'unknown'!r} does not give class "
                    "probabilities but the manifest declares a classifier",
                    hint="train with objective binary or multiclass, or declare "
                    "task = 'regression'",
                )
            if classes != len(request.labels):
                raise request.load_error(
                    f"the LightGBM model has {classes} classes but the manifest declares "
                    f"{len(request.labels)} labels",
                    hint="list one label per class, in the order of the class codes",
                )
        elif per_iteration != 1:
            raise request.load_error(
                f"the LightGBM model gives {per_iteration} outputs per row but the manifest "
                "declares a regression",
            )
        return cls(booster, request, objective=objective)

    def classes(self) -> tuple[str, ...]:
        return self._request.labels

    def describe(self) -> Description:
        return describe_lightgbm(self._booster, self._request.labels, self._objective)

    def predict(self, batch: FloatArray) -> RawPrediction:
        out = np.asarray(
            self._booster.predict(batch, num_threads=self._request.threads), dtype=np.float64
        )
        if self._request.task is Task.REGRESSION:
            return RawPrediction(out)
        labels = self._request.labels
        # Binary objectives give P(class 1) only.
        scores = np.column_stack([1.0 - out, out]) if out.ndim == 1 else out
        values = np.asarray(labels)[np.argmax(scores, axis=1)]
        return RawPrediction(values, scores, labels)


def _objective(booster: Any, request: LoadRequest) -> str:
    """The training objective's name, e.g. ``multiclass`` from ``multiclass num_class:3``."""
    found = str(getattr(booster, "params", {}).get("objective") or "")
    if not found:
        # Older LightGBM releases do not expose the file's parameters; the
        # objective is then read from the model file's header lines.
        with request.artifact.open(encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("objective="):
                    found = line.partition("=")[2]
                    break
                if line.startswith("Tree="):
                    break
    return found.strip().split(" ")[0]


def _check_feature_order(request: LoadRequest, names: list[str]) -> None:
    # A booster fitted on a table keeps its column names; LightGBM reads
    # columns by position, so the same names in another order mean every
    # prediction would use the wrong features.
    default = [f"Column_{i}" for i in range(len(names))]
    if names != default and set(names) == set(request.features) and names != list(request.features):
        raise request.load_error(
            f"the LightGBM model reads its features in the order {', '.join(names)}, "
            f"but the manifest declares {', '.join(request.features)}",
            hint="list [[inputs.features]] in the model's order",
        )


__all__ = ["LightgbmModel"]
