"""Models saved with pickle or joblib, loaded only when the user trusts them.

A *pickle* can run any code while it loads, so a pickle artifact is
refused unless the user passes ``trust_pickle`` (``--trust-pickle``); even
then it loads only in the isolated worker, under its limits.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cityx.core import NistFunction, PluginKind, PluginMeta, Principle, Tags

from .estimator import EstimatorModel
from .model import LoadRequest, brief


class PickledModel(EstimatorModel):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="pickle",
        kind=PluginKind.TARGET,
        version="1",
        summary="A model from a pickle or joblib file; refused unless the user trusts pickles",
        tags=Tags(Principle.SECURITY, NistFunction.MAP, ("AML.T0010", "AML.T0011"), ("Art. 15",)),
        supports=frozenset({"predictor", "controller"}),
        reference="https://docs.python.org/3/library/pickle.html",
    )
    runs_vendor_code = True

    @classmethod
    def load(cls, request: LoadRequest) -> PickledModel:
        if not request.trust_pickle:
            raise request.load_error(
                "a pickle/joblib artifact can run any code while it loads, so it is refused",
                hint="pass --trust-pickle (trust_pickle=True) only if you trust its author, or "
                "ship the model as ONNX or skops",
            )
        try:
            estimator = _unpickle(request)
        except Exception as exc:
            raise request.load_error(f"could not unpickle the model: {brief(exc)}") from exc
        return cls(estimator, request, what="pickled model")


def _unpickle(request: LoadRequest) -> Any:
    try:
        import joblib  # type: ignore[import-untyped]
    except ImportError:  # joblib comes with scikit-learn, but a plain pickle needs no joblib
        # heavy: the format's library loads in the worker, only for an artifact of it
        import pickle

        with request.artifact.open("rb") as file:
            return pickle.load(file)
    # joblib also reads plain pickles.
    return joblib.load(request.artifact)


__all__ = ["PickledModel"]
