"""scikit-learn models saved with skops.

A *skops file* (``skops.io.dump``) stores a fitted scikit-learn model
without pickle: loading only builds types skops trusts. Any other type it
holds is *untrusted* and could run code while loading; such a file is
refused, naming those types, unless the user trusts them by name or passes
``trust_pickle``.
"""

from __future__ import annotations

from typing import ClassVar

from cityx.core import NistFunction, PluginKind, PluginMeta, Principle, Tags

from .estimator import EstimatorModel
from .model import LoadRequest, brief


class SkopsModel(EstimatorModel):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="skops",
        kind=PluginKind.TARGET,
        version="1",
        summary="A scikit-learn model from a skops file, refused when it holds untrusted types",
        tags=Tags(Principle.SECURITY, NistFunction.MAP, ("AML.T0010",), ("Art. 15",)),
        supports=frozenset({"predictor", "controller"}),
        reference="https://skops.readthedocs.io/en/stable/persistence.html",
    )

    @classmethod
    def load(cls, request: LoadRequest) -> SkopsModel:
        # heavy: the format's library loads in the worker, only for an artifact of it
        import skops.io

        try:
            found = list(skops.io.get_untrusted_types(file=request.artifact))
        except Exception as exc:  # a damaged file fails in zipfile, json or skops itself
            raise request.load_error(f"not a readable skops file: {brief(exc)}") from exc
        trusted = found if request.trust_pickle else [t for t in found if t in request.trusted]
        refused = sorted(set(found) - set(trusted))
        if refused:
            raise request.load_error(
                f"the skops file holds types skops does not trust: {', '.join(refused)}",
                hint="if you trust this file, pass these names as trusted types or pass "
                "--trust-pickle",
            )
        try:
            estimator = skops.io.load(request.artifact, trusted=trusted or None)
        except Exception as exc:
            raise request.load_error(f"skops could not load the model: {brief(exc)}") from exc
        return cls(estimator, request, what="skops model")


__all__ = ["SkopsModel"]
