"""ONNX models run by onnxruntime.

An *ONNX model* is a computation graph, no code. The common case, and the
one supported here, is one float tensor *input* of shape (n, d). A
classifier exported by skl2onnx has a *label output* (``label`` or
``output_label``) and a *probability output*: a float tensor (n, k) when
exported with ``zipmap=False``, or a sequence of {class: probability} maps
(one per row) when the *ZipMap* operator is on. A tensor carries no class
names; they are read from the graph's ``classlabels_*`` attributes (with
the ``onnx`` package, when installed), else taken to be the manifest's
labels in order, which the label output must then agree with.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cityx.core import (
    FloatArray,
    NistFunction,
    PluginKind,
    PluginMeta,
    Principle,
    Tags,
    TargetError,
    Task,
)

from .describe import Description, describe_onnx
from .model import LoadRequest, RawPrediction, TargetModel, brief, label_array, value_array

_INPUT_TYPES: dict[str, type[np.floating[Any]]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
}
_LABEL_NAMES = ("label", "output_label")
_SCORE_NAMES = ("probabilities", "output_probability")


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which graph outputs to read, and how."""

    input_name: str
    input_type: type[np.floating[Any]]
    label: str | None = None
    scores: str | None = None
    scores_are_maps: bool = False
    value: str | None = None
    classes: tuple[str, ...] = ()
    classes_from_graph: bool = False


class OnnxModel(TargetModel):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="onnx",
        kind=PluginKind.TARGET,
        version="1",
        summary="An ONNX model run by onnxruntime on the CPU; one (n, d) float input",
        tags=Tags(Principle.SECURITY, NistFunction.MAP, ("AML.T0010",), ("Art. 15",)),
        supports=frozenset({"predictor", "controller"}),
        reference="https://onnxruntime.ai/docs/api/python/api_summary.html",
    )

    def __init__(self, session: Any, request: LoadRequest, plan: _Plan) -> None:
        self._session = session
        self._request = request
        self._plan = plan
        self._outputs = [n for n in (plan.label, plan.scores, plan.value) if n is not None]

    @classmethod
    def load(cls, request: LoadRequest) -> OnnxModel:
        # heavy: the format's library loads in the worker, only for an artifact of it
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = request.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its warnings would flood the stderr tail
        try:
            session = onnxruntime.InferenceSession(
                str(request.artifact), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for damaged graphs
            raise request.load_error(f"onnxruntime cannot load the model: {brief(exc)}") from exc
        return cls(session, request, _plan(session, request))

    def classes(self) -> tuple[str, ...]:
        return self._plan.classes if self._plan.scores is not None else ()

    def describe(self) -> Description:
        return describe_onnx(
            self._request.artifact, self._plan.classes, len(self._request.features)
        )

    def predict(self, batch: FloatArray) -> RawPrediction:
        plan = self._plan
        feed = {plan.input_name: batch.astype(plan.input_type, copy=False)}
        found = dict(zip(self._outputs, self._session.run(self._outputs, feed), strict=True))
        if plan.value is not None:
            return RawPrediction(value_array(found[plan.value]))
        labels = label_array(found[plan.label]) if plan.label is not None else None
        if plan.scores is None:
            assert labels is not None  # _plan() guarantees one of the two
            return RawPrediction(labels)
        if plan.scores_are_maps:
            scores, classes = _from_maps(found[plan.scores], plan.classes)
        else:
            scores, classes = np.asarray(found[plan.scores], dtype=np.float64), plan.classes
        if labels is None:
            labels = np.asarray(classes)[np.argmax(scores, axis=1)]
        elif not plan.classes_from_graph and not plan.scores_are_maps:
            self._check_column_order(labels, scores, classes)
        return RawPrediction(labels, scores, classes)

    def _check_column_order(
        self, labels: np.ndarray[Any, Any], scores: FloatArray, classes: tuple[str, ...]
    ) -> None:
        # The columns were assumed to follow the manifest's labels; where one
        # class clearly wins, the model's own label must be that class.
        if scores.ndim != 2 or scores.shape[1] != len(classes) or scores.shape[0] < 1:
            return
        top2 = np.sort(scores, axis=1)[:, -2:]
        clear = (top2[:, 1] - top2[:, 0]) > 1e-6
        expected = np.asarray(classes)[np.argmax(scores, axis=1)]
        if np.any(clear & (expected != labels)):
            raise TargetError(
                "the probability columns do not follow the manifest's label order and the "
                "model does not name them",
                where=self._request.where,
                hint="install the onnx package so class names are read from the graph, list "
                "outputs.labels in the model's class order, or export with zipmap on",
            )


def _plan(session: Any, request: LoadRequest) -> _Plan:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise request.load_error(
            f"the ONNX model has {len(inputs)} inputs; one float input of shape (n, "
            f"{len(request.features)}) is supported",
            hint="export the model with a single input holding all features",
        )
    given = inputs[0]
    input_type = _INPUT_TYPES.get(given.type)
    if input_type is None:
        raise request.load_error(
            f"the ONNX input {given.name!r} is {given.type}; float or double is supported"
        )
    shape = list(given.shape or [])
    if len(shape) != 2:
        raise request.load_error(
            f"the ONNX input {given.name!r} has shape {shape}; (n, d) is supported"
        )
    if isinstance(shape[1], int):
        request.check_feature_count(shape[1], what="ONNX model")
    outputs = {o.name: o for o in session.get_outputs()}
    if request.task is Task.REGRESSION:
        value = _first(outputs, (), lambda o: o.type in _INPUT_TYPES)
        if value is None:
            raise request.load_error("the ONNX model has no float output for a regression")
        return _Plan(given.name, input_type, value=value)

    label = _first(outputs, _LABEL_NAMES, lambda o: o.type.startswith("tensor(") and _rank(o) == 1)
    scores = _first(
        outputs,
        _SCORE_NAMES,
        lambda o: o.type.startswith("seq(map(") or (o.type in _INPUT_TYPES and _rank(o) == 2),
    )
    if label is None and scores is None:
        raise request.load_error(
            f"the ONNX model has no label or probability output (it has {', '.join(outputs)})",
            hint="name them 'label' and 'probabilities', as skl2onnx does",
        )
    maps = scores is not None and outputs[scores].type.startswith("seq(map(")
    width = None
    if scores is not None and not maps:
        score_shape = list(outputs[scores].shape or [])
        width = (
            score_shape[1] if len(score_shape) == 2 and isinstance(score_shape[1], int) else None
        )
    named = _graph_classes(request.artifact, width)
    classes = named or request.labels
    if scores is not None and not maps and not named and width not in (None, len(classes)):
        raise request.load_error(
            f"the ONNX probability output has {width} columns but the manifest declares "
            f"{len(classes)} labels"
        )
    return _Plan(
        given.name,
        input_type,
        label=label,
        scores=scores,
        scores_are_maps=maps,
        classes=classes,
        classes_from_graph=bool(named),
    )


def _first(outputs: dict[str, Any], names: tuple[str, ...], fits: Any) -> str | None:
    for name in names:
        if name in outputs:
            return name
    return next((name for name, o in outputs.items() if fits(o)), None)


def _rank(output: Any) -> int:
    return len(output.shape or [])


def _from_maps(rows: Any, known: tuple[str, ...]) -> tuple[FloatArray, tuple[str, ...]]:
    """ZipMap output (a list of {class: probability}) as a matrix and its classes."""
    rows = list(rows)
    if not rows:
        return np.empty((0, len(known))), known
    keys = list(rows[0])
    # itemgetter runs in C, so this is one pass without a Python-level loop body.
    scores = np.array(list(map(operator.itemgetter(*keys), rows)), dtype=np.float64)
    return scores.reshape(len(rows), len(keys)), tuple(str(k) for k in keys)


def _graph_classes(path: Path, width: int | None) -> tuple[str, ...]:
    """Class names from the graph's classifier nodes, when unambiguous."""
    try:
        # heavy: the format's library loads in the worker, only for an artifact of it
        import onnx
    except ImportError:
        return ()
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # onnxruntime accepted the file; a stricter reader is no reason to fail
        return ()
    found: set[tuple[str, ...]] = set()
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings":
                found.add(tuple(s.decode() for s in attribute.strings))
            elif attribute.name == "classlabels_int64s":
                found.add(tuple(str(i) for i in attribute.ints))
    candidates = [c for c in found if width is None or len(c) == width]
    return candidates[0] if len(candidates) == 1 else ()


__all__ = ["OnnxModel"]
