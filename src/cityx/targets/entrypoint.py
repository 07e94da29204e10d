"""Trusted vendor code called through an entry point.

An *entry point* is ``module:callable``: the artifact is a ``.py`` file (the
module) or a folder holding the module, and calling the callable with no
arguments returns the model, an object with ``predict(batch)`` and
optionally ``predict_proba(batch)`` and ``classes_``. This is *trusted
code*: it runs with the worker's rights, under the worker's limits.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from cityx.core import NistFunction, PluginKind, PluginMeta, Principle, Tags, TargetLoadError

from .estimator import EstimatorModel
from .model import LoadRequest, brief


class EntrypointModel(EstimatorModel):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="entrypoint",
        kind=PluginKind.TARGET,
        version="1",
        summary="Trusted vendor Python code: module:callable returning an object with predict",
        tags=Tags(Principle.SECURITY, NistFunction.MAP, ("AML.T0011",), ("Art. 15",)),
        supports=frozenset({"predictor", "controller"}),
    )
    runs_vendor_code = True

    @classmethod
    def load(cls, request: LoadRequest) -> EntrypointModel:
        module_name, _, attribute = (request.entrypoint or "").partition(":")
        if not module_name or not attribute:
            raise request.load_error(
                f"entrypoint {request.entrypoint!r} is not 'module:callable'",
                hint="set [artifact] entrypoint, e.g. 'model:load'",
            )
        module = _import(request, module_name)
        target: Any = module
        try:
            for part in attribute.split("."):
                target = getattr(target, part)
        except AttributeError:
            raise request.load_error(
                f"module {module_name!r} has no {attribute!r}",
                hint="check [artifact] entrypoint",
            ) from None
        if not callable(target):
            raise request.load_error(f"{request.entrypoint} is not callable")
        try:
            estimator = target()
        except TargetLoadError:
            raise
        except Exception as exc:
            raise request.load_error(f"{request.entrypoint}() raised {brief(exc)}") from exc
        return cls(estimator, request, what=f"object {request.entrypoint}() returned")


def _import(request: LoadRequest, module_name: str) -> ModuleType:
    artifact = request.artifact
    folder = artifact if artifact.is_dir() else artifact.parent
    # The vendor's module may import its siblings.
    sys.path.insert(0, str(folder))
    try:
        if artifact.is_file() and artifact.suffix == ".py" and artifact.stem == module_name:
            # Load this very file: importing by name could find a same-named
            # module that is already imported or installed.
            spec = importlib.util.spec_from_file_location(module_name, artifact)
            if spec is None or spec.loader is None:
                raise request.load_error(f"cannot import {artifact.name} as a module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            return module
        module = importlib.import_module(module_name)
    except TargetLoadError:
        raise
    except Exception as exc:
        raise request.load_error(f"importing {module_name!r} raised {brief(exc)}") from exc
    origin = getattr(module, "__file__", None)
    if origin is None or not Path(origin).resolve().is_relative_to(folder.resolve()):
        raise request.load_error(
            f"module {module_name!r} resolves to {origin or 'a built-in module'}, not to a file "
            "of the submission",
            hint="give the vendor module a name no installed module has",
        )
    return module


__all__ = ["EntrypointModel"]
