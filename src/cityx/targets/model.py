"""The target contract: what every artifact adapter does inside the worker.

A *target* adapter (a plugin of kind ``target``) turns one artifact format
into a model the worker can call: ``load`` reads the *artifact* (the file or
folder the manifest names) and ``predict`` answers a *batch* (a float64
array of n rows by d features, in manifest order) with a *raw prediction*:
labels or values, and class scores when the model gives them. Raw
predictions are checked by the parent, not here: the worker runs vendor
code and its answers are not trusted.

Adapters run only in the worker. They import their library when they load,
so listing the plugins imports nothing heavy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, final

import numpy as np
from numpy.typing import NDArray

from cityx.core import (
    FloatArray,
    Manifest,
    PluginMeta,
    TargetError,
    TargetLoadError,
    Task,
)

from .describe import Description, NotDescribable


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadRequest:
    """What the worker needs to load an artifact; travels as the ``load`` header.

    ``trusted`` lists type names the user trusts in a skops file;
    ``trust_pickle`` trusts any code in a pickle (or skops) file.
    """

    artifact: Path
    format: str
    features: tuple[str, ...]
    task: Task
    labels: tuple[str, ...] = ()
    entrypoint: str | None = None
    trust_pickle: bool = False
    trusted: tuple[str, ...] = ()
    threads: int = 1
    sha256: str | None = None
    plugins_allow: tuple[str, ...] | None = None

    @classmethod
    def for_submission(
        cls,
        manifest: Manifest,
        submission_dir: Path,
        *,
        trust_pickle: bool = False,
        trusted: Sequence[str] = (),
        threads: int = 1,
        plugins_allow: Sequence[str] | None = None,
    ) -> LoadRequest:
        """The request for a submission's artifact; TargetLoadError if it is missing or outside."""
        folder = Path(submission_dir).resolve()
        artifact = (folder / manifest.artifact.path).resolve()
        where = str(folder / manifest.artifact.path)
        if not artifact.is_relative_to(folder):
            raise TargetLoadError(
                "the artifact path leads outside the submission folder",
                where=where,
                hint="put the artifact inside the submission and name it relative to cityx.toml",
            )
        if not artifact.exists():
            raise TargetLoadError(
                "the artifact file does not exist",
                where=where,
                hint="check [artifact] path in cityx.toml",
            )
        return cls(
            artifact=artifact,
            format=manifest.artifact.format,
            features=tuple(f.name for f in manifest.inputs.features),
            task=manifest.outputs.task,
            labels=tuple(manifest.outputs.labels),
            entrypoint=manifest.artifact.entrypoint,
            trust_pickle=trust_pickle,
            trusted=tuple(trusted),
            threads=threads,
            sha256=manifest.artifact.sha256,
            plugins_allow=None if plugins_allow is None else tuple(plugins_allow),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": str(self.artifact),
            "format": self.format,
            "features": list(self.features),
            "task": self.task.value,
            "labels": list(self.labels),
            "entrypoint": self.entrypoint,
            "trust_pickle": self.trust_pickle,
            "trusted": list(self.trusted),
            "threads": self.threads,
            "sha256": self.sha256,
            "plugins_allow": None if self.plugins_allow is None else list(self.plugins_allow),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadRequest:
        return cls(
            artifact=Path(data["artifact"]),
            format=str(data["format"]),
            features=tuple(data["features"]),
            task=Task(data["task"]),
            labels=tuple(data["labels"]),
            entrypoint=data["entrypoint"],
            trust_pickle=bool(data["trust_pickle"]),
            trusted=tuple(data["trusted"]),
            threads=int(data["threads"]),
            sha256=data.get("sha256"),
            plugins_allow=None
            if data.get("plugins_allow") is None
            else tuple(data["plugins_allow"]),
        )

    @property
    def where(self) -> str:
        return str(self.artifact)

    def load_error(self, reason: str, *, hint: str | None = None) -> TargetLoadError:
        return TargetLoadError(reason, where=self.where, hint=hint)

    def check_feature_count(self, found: int | None, *, what: str) -> None:
        """Refuse a model that reads a different number of features than declared."""
        if found is not None and found != len(self.features):
            raise self.load_error(
                f"the {what} reads {found} features but the manifest declares "
                f"{len(self.features)} in [[inputs.features]]",
                hint="declare every feature the model reads, in the model's order",
            )


@dataclass(frozen=True, slots=True)
class RawPrediction:
    """A model's answer before the parent checks it.

    ``values`` are labels (strings) or numbers; ``scores`` columns follow
    ``classes``.
    """

    values: NDArray[Any]
    scores: NDArray[Any] | None = None
    classes: tuple[str, ...] = ()


class TargetModel(ABC):
    """Base class of target adapters; the worker calls ``load``, then ``answer``."""

    meta: ClassVar[PluginMeta]
    # Methods a parent may call by name. A controller submission's model is called
    # through "predict" too: it scores the sandbox's phase candidates.
    # "describe" answers a plain-array description for exact explanations (.describe).
    methods: ClassVar[frozenset[str]] = frozenset({"predict", "describe"})
    # Whether loading runs the vendor's own code (a pickle, a Python entry point): such
    # artifacts load only when the user trusts them, and admission says so.
    runs_vendor_code: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def load(cls, request: LoadRequest) -> TargetModel:
        """Load the artifact; TargetLoadError (file and reason) if it cannot."""

    @abstractmethod
    def predict(self, batch: FloatArray) -> RawPrediction:
        """Answer a whole batch in one call."""

    def classes(self) -> tuple[str, ...]:
        """Class labels in score-column order when known before any call."""
        return ()

    def describe(self) -> Description:
        """The model as plain arrays (:mod:`.describe`); NotDescribable when it has none."""
        raise NotDescribable(f"a {self.meta.id} model has no exact description")

    @final
    def answer(
        self, method: str, payload: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]
    ) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """Run one named call: a method name, a small JSON payload and arrays in and out."""
        if method not in self.methods:
            raise TargetError(f"{type(self).__name__} has no method {method!r}")
        if method == "describe":
            return self.describe().to_wire()
        batch = arrays.get("batch")
        if batch is None or batch.ndim != 2:
            raise TargetError("a predict call needs a 2-D array named 'batch'")
        raw = self.predict(np.ascontiguousarray(batch, dtype=np.float64))
        out: dict[str, NDArray[Any]] = {"values": _wire_safe(raw.values)}
        if raw.scores is not None:
            out["scores"] = np.asarray(raw.scores, dtype=np.float64)
        return {"classes": list(raw.classes)}, out


def _wire_safe(values: NDArray[Any]) -> NDArray[Any]:
    # Object arrays (labels from sklearn, strings from onnxruntime) cannot
    # travel without pickle; text is what the parent wants for labels anyway.
    values = np.asarray(values)
    if values.dtype.kind in "OSU":
        return values.astype(str)
    return values


def brief(exc: BaseException, limit: int = 300) -> str:
    """``Type: message``, on one line and cut to ``limit`` characters."""
    text = " ".join(str(exc).split()) or "no message"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}"


def label_array(values: Any) -> NDArray[np.str_]:
    """Labels as a 1-D text array, whatever the model returned them as."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    return array.astype(str)


def value_array(values: Any) -> NDArray[Any]:
    """Regression values as a 1-D array; an (n, 1) column is flattened."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    return array


__all__ = [
    "LoadRequest",
    "RawPrediction",
    "TargetModel",
    "brief",
    "label_array",
    "value_array",
]
