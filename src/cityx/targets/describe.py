"""A loaded model described as plain arrays, for exact explanations (inside the worker).

A *description* (``model-description/v1``) is what the parent needs to
compute exact attributions without running or parsing the vendor's file
itself: numbers only, no code. It is built here, in the worker, from the
artifact the worker loaded; the parent checks its shapes and indices before
using it (the worker's answers are not trusted). Two kinds:

- ``trees``: a *tree ensemble*. Nodes of every tree in one table: ``feature``
  (-1 for a leaf), ``threshold``, ``mode`` (the comparison, see
  :data:`MODES`), ``yes`` and ``no`` (the global index of the child taken
  when the comparison holds or not), ``missing_yes`` (where a missing value
  goes) and ``value`` (nodes x targets, leaf weights; 0 elsewhere). ``roots``
  holds each tree's first node, ``base`` the constant added per target.
- ``linear``: ``coef`` (targets x inputs) and ``intercept`` (targets).

The *margin* is the raw additive score per target (sum of leaf weights plus
``base``, or the linear score); the header's ``post_transform`` names the
function that turns margins into the model's output (``NONE``, ``LOGISTIC``,
``SOFTMAX``, ``SOFTMAX_ZERO``, ``PROBIT``). ``targets`` names each margin
column's class (or ``value``); ``binary`` says the margin is one column for
the second of two classes (the first gets its negation). ``float32`` says
the model compares float32 inputs with float32 thresholds, as ONNX does.

*Preprocessing* that is linear per feature (a scaler ``(x - offset) *
scale``) and feature selection (``select``: for each model input, the index
of the submitted column it reads) travel as arrays too; the parent folds
them into the thresholds or coefficients. Anything else in front of the
model cannot be described, and the call fails with the reason, so the parent
falls back to a model-agnostic method and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import TargetError

DESCRIPTION_SCHEMA = "model-description/v1"
# Comparison codes: the child "yes" is taken when x <mode> threshold holds.
MODES = ("LEQ", "LT", "GTE", "GT", "EQ", "NEQ")
_ONNX_MODES = {f"BRANCH_{m}": k for k, m in enumerate(MODES)}
_POST = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")
_AGGREGATE = ("AVERAGE", "SUM", "MIN", "MAX")


class NotDescribable(TargetError):
    """The model (or what is in front of it) has no exact description; the reason says why."""


@dataclass(slots=True)
class Description:
    """A description under construction (worker-side, then sent as a header and arrays)."""

    kind: str
    targets: tuple[str, ...]
    post_transform: str = "NONE"
    binary: bool = False
    float32: bool = False
    arrays: dict[str, NDArray[Any]] = field(default_factory=dict)
    source: str = ""

    def to_wire(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        header = {
            "schema": DESCRIPTION_SCHEMA,
            "kind": self.kind,
            "targets": list(self.targets),
            "post_transform": self.post_transform,
            "binary": self.binary,
            "float32": self.float32,
            "source": self.source,
        }
        return header, dict(self.arrays)


def add_preprocessing(
    description: Description,
    *,
    inputs: int,
    offset: NDArray[Any] | None = None,
    scale: NDArray[Any] | None = None,
    select: NDArray[Any] | None = None,
) -> Description:
    """Attach a per-feature scaler and a feature selection (model input -> submitted column)."""
    if offset is not None:
        description.arrays["pre_offset"] = np.broadcast_to(
            np.asarray(offset, dtype=np.float64), (inputs,)
        ).copy()
    if scale is not None:
        description.arrays["pre_scale"] = np.broadcast_to(
            np.asarray(scale, dtype=np.float64), (inputs,)
        ).copy()
    if select is not None:
        description.arrays["pre_select"] = np.asarray(select, dtype=np.int64)
    return description


def trees_description(
    *,
    trees: Sequence[int] | NDArray[Any],
    nodes: Sequence[int] | NDArray[Any],
    feature: NDArray[Any],
    threshold: NDArray[Any],
    mode: NDArray[Any],
    yes: NDArray[Any],
    no: NDArray[Any],
    missing_yes: NDArray[Any],
    leaf_tree: NDArray[Any],
    leaf_node: NDArray[Any],
    leaf_target: NDArray[Any],
    leaf_weight: NDArray[Any],
    targets: int,
    base: NDArray[Any],
) -> dict[str, NDArray[Any]]:
    """Global node arrays from per-tree node ids (ONNX's layout): ``yes``/``no`` are local ids."""
    trees = np.asarray(trees, dtype=np.int64)
    nodes = np.asarray(nodes, dtype=np.int64)
    key = trees * (int(nodes.max(initial=0)) + 1)
    width = int(nodes.max(initial=0)) + 1
    index = {int(k): i for i, k in enumerate(key + nodes)}

    def glob(tree_ids: NDArray[Any], local: NDArray[Any]) -> NDArray[np.int64]:
        keys = np.asarray(tree_ids, dtype=np.int64) * width + np.asarray(local, dtype=np.int64)
        try:
            return np.fromiter((index[int(k)] for k in keys), np.int64, len(keys))
        except KeyError as exc:
            raise NotDescribable(f"a tree refers to node {exc} that it does not define") from None

    is_leaf = np.asarray(feature, dtype=np.int64) < 0
    yes_g = np.where(is_leaf, -1, glob(trees, np.where(is_leaf, nodes, yes)))
    no_g = np.where(is_leaf, -1, glob(trees, np.where(is_leaf, nodes, no)))
    value = np.zeros((len(nodes), targets), dtype=np.float64)
    np.add.at(
        value,
        (glob(leaf_tree, leaf_node), np.asarray(leaf_target, dtype=np.int64)),
        np.asarray(leaf_weight, dtype=np.float64),
    )
    first = np.unique(trees, return_index=True)[1]
    # A tree's root is its node 0 (ONNX's convention), else its first node.
    roots = np.array(
        [index.get(int(t) * width, int(f)) for t, f in zip(np.unique(trees), first, strict=True)],
        dtype=np.int64,
    )
    return {
        "feature": np.where(is_leaf, -1, np.asarray(feature, dtype=np.int64)),
        "threshold": np.asarray(threshold, dtype=np.float64),
        "mode": np.asarray(mode, dtype=np.int64),
        "yes": yes_g,
        "no": no_g,
        "missing_yes": np.asarray(missing_yes, dtype=bool),
        "value": value,
        "roots": roots,
        "base": np.asarray(base, dtype=np.float64).reshape(targets),
    }


# ---------------------------------------------------------------- ONNX


def describe_onnx(path: Any, classes: Sequence[str], inputs: int) -> Description:
    """The tree ensemble (with scaler and feature selection in front) of an ONNX graph."""
    # heavy: the format's library loads in the worker, only for an artifact of it
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    ops = [n for n in graph.node if n.op_type not in ("Identity", "Cast", "ZipMap")]
    trees = [n for n in ops if n.op_type in _TREE_OPS]
    if len(trees) != 1:
        kinds = sorted({n.op_type for n in ops})
        raise NotDescribable(
            f"the ONNX graph holds {', '.join(kinds) or 'no operators'}; one tree ensemble "
            "(TreeEnsembleClassifier, TreeEnsembleRegressor or TreeEnsemble) is described"
        )
    node = trees[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    description = _onnx_trees(node.op_type, attrs, classes, numpy_helper)
    description.source = f"onnx:{node.op_type}"
    # What feeds the ensemble: walk back from its input through the known linear steps.
    producers = {o: n for n in graph.node for o in n.output}
    offset: NDArray[Any] | None = None
    scale: NDArray[Any] | None = None
    select: NDArray[Any] | None = None
    name = node.input[0]
    steps = 0
    while name in producers and steps < 16:
        steps += 1
        step = producers[name]
        a = {x.name: helper.get_attribute_value(x) for x in step.attribute}
        if step.op_type in ("Identity", "Cast"):
            name = step.input[0]
        elif step.op_type == "Scaler" and offset is None and select is None:
            offset = np.asarray(a.get("offset", [0.0]), dtype=np.float64)
            scale = np.asarray(a.get("scale", [1.0]), dtype=np.float64)
            name = step.input[0]
        elif step.op_type in ("ArrayFeatureExtractor", "Gather") and select is None:
            init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
            idx = init.get(step.input[1])
            if idx is None:
                raise NotDescribable("a feature selection with computed indices")
            select = np.asarray(idx, dtype=np.int64).reshape(-1)
            name = step.input[0]
        else:
            raise NotDescribable(
                f"a {step.op_type} step in front of the tree ensemble is not linear per feature"
            )
    n_in = inputs if select is None else len(select)
    if offset is not None:
        # A scaler's parameters are per model input (or one shared value).
        width = n_in if select is None else len(select)
        if select is not None:
            # Scaler applied before the selection: pick the selected entries.
            off = np.broadcast_to(offset, (inputs,)) if offset.size == 1 else offset
            sc = (
                np.broadcast_to(scale, (inputs,))
                if scale is not None and scale.size == 1
                else scale
            )
            offset, scale = off[select], None if sc is None else sc[select]
        add_preprocessing(description, inputs=width, offset=offset, scale=scale)
    if select is not None:
        add_preprocessing(description, inputs=n_in, select=select)
    return description


_TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble")


def _onnx_trees(op: str, a: dict[str, Any], classes: Sequence[str], nh: Any) -> Description:
    def arr(name: str, default: Any = ()) -> NDArray[Any]:
        value = a.get(name)
        if value is None:
            tensor = a.get(f"{name}_as_tensor")
            return np.asarray(default) if tensor is None else nh.to_array(tensor)
        if hasattr(value, "dims"):  # a TensorProto
            return np.asarray(nh.to_array(value))
        return np.asarray(value)

    if op == "TreeEnsemble":
        return _onnx_trees_v5(a, classes, arr)
    prefix = "class" if op == "TreeEnsembleClassifier" else "target"
    modes_raw = [m.decode() if isinstance(m, bytes) else str(m) for m in a["nodes_modes"]]
    unknown = sorted(set(modes_raw) - set(_ONNX_MODES) - {"LEAF"})
    if unknown:
        raise NotDescribable(f"unknown node modes {', '.join(unknown)}")
    is_leaf = np.array([m == "LEAF" for m in modes_raw])
    mode = np.array([_ONNX_MODES.get(m, 0) for m in modes_raw], dtype=np.int64)
    post = a.get("post_transform", b"NONE")
    post = post.decode() if isinstance(post, bytes) else str(post)
    ids = arr(f"{prefix}_ids").astype(np.int64)
    missing = arr("nodes_missing_value_tracks_true", np.zeros(len(modes_raw)))
    if missing.size == 0:
        missing = np.zeros(len(modes_raw))
    binary = False
    if op == "TreeEnsembleClassifier":
        labels = a.get("classlabels_strings") or a.get("classlabels_int64s") or []
        names = [x.decode() if isinstance(x, bytes) else str(x) for x in labels] or list(classes)
        n_targets = max(len(names), 1)
        if len(names) == 2 and (ids.size == 0 or int(ids.max()) == 0):
            # ONNX's binary case: one column of weights, the score of the second class.
            binary, n_targets = True, 1
    else:
        n_targets = int(a.get("n_targets", 1))
        names = ["value"] * n_targets if n_targets > 1 else ["value"]
        aggregate = a.get("aggregate_function", b"SUM")
        aggregate = aggregate.decode() if isinstance(aggregate, bytes) else str(aggregate)
        if aggregate not in ("SUM", "AVERAGE"):
            raise NotDescribable(f"aggregate function {aggregate} is not additive")
    weights = arr(f"{prefix}_weights").astype(np.float64)
    tree_ids = arr("nodes_treeids").astype(np.int64)
    if op == "TreeEnsembleRegressor" and aggregate == "AVERAGE":
        weights = weights / max(len(np.unique(tree_ids)), 1)
    base = arr("base_values", np.zeros(n_targets)).astype(np.float64)
    if base.size == 0:
        base = np.zeros(n_targets)
    if binary and base.size == 2:
        base = base[1:]
    arrays = trees_description(
        trees=tree_ids,
        nodes=arr("nodes_nodeids"),
        feature=np.where(is_leaf, -1, arr("nodes_featureids").astype(np.int64)),
        threshold=arr("nodes_values").astype(np.float64),
        mode=mode,
        yes=arr("nodes_truenodeids"),
        no=arr("nodes_falsenodeids"),
        missing_yes=missing.astype(bool),
        leaf_tree=arr(f"{prefix}_treeids"),
        leaf_node=arr(f"{prefix}_nodeids"),
        leaf_target=ids,
        leaf_weight=weights,
        targets=n_targets,
        base=base,
    )
    return Description(
        kind="trees",
        targets=tuple(names if not binary else names[1:]) if prefix == "class" else tuple(names),
        post_transform=post,
        binary=binary,
        float32=True,
        arrays=arrays,
    )


def _onnx_trees_v5(a: dict[str, Any], classes: Sequence[str], arr: Any) -> Description:
    """The opset-5 ``TreeEnsemble``: interior nodes and leaves in separate tables."""
    feature = arr("nodes_featureids").astype(np.int64)
    splits = arr("nodes_splits").astype(np.float64)
    modes = arr("nodes_modes").astype(np.int64)  # 0 LEQ,1 LT,2 GTE,3 GT,4 EQ,5 NEQ,6 MEMBER
    if np.any(modes > 5):
        raise NotDescribable("set-membership splits (BRANCH_MEMBER) are not described")
    true_ids, false_ids = (
        arr("nodes_truenodeids").astype(np.int64),
        arr("nodes_falsenodeids").astype(np.int64),
    )
    true_leaf = arr("nodes_trueleafs", np.zeros(len(feature))).astype(bool)
    false_leaf = arr("nodes_falseleafs", np.zeros(len(feature))).astype(bool)
    missing = arr("nodes_missing_value_tracks_true", np.zeros(len(feature))).astype(bool)
    if missing.size == 0:
        missing = np.zeros(len(feature), dtype=bool)
    leaf_target = arr("leaf_targetids").astype(np.int64)
    leaf_weight = arr("leaf_weights").astype(np.float64)
    roots = arr("tree_roots").astype(np.int64)
    n_targets = int(a.get("n_targets", int(leaf_target.max(initial=0)) + 1))
    aggregate = _AGGREGATE[int(a.get("aggregate_function", 1))]
    if aggregate not in ("SUM", "AVERAGE"):
        raise NotDescribable(f"aggregate function {aggregate} is not additive")
    n_int, n_leaf = len(feature), len(leaf_weight)
    # One table: interior nodes first, then leaves (leaf k is node n_int + k).
    yes = np.where(true_leaf, n_int + true_ids, true_ids)
    no = np.where(false_leaf, n_int + false_ids, false_ids)
    value = np.zeros((n_int + n_leaf, n_targets))
    value[n_int + np.arange(n_leaf), leaf_target] = leaf_weight
    if aggregate == "AVERAGE":
        value /= max(len(roots), 1)
    return Description(
        kind="trees",
        targets=tuple(classes) if len(classes) == n_targets else ("value",) * n_targets,
        post_transform=_POST[int(a.get("post_transform", 0))],
        float32=True,
        arrays={
            "feature": np.concatenate([feature, -np.ones(n_leaf, dtype=np.int64)]),
            "threshold": np.concatenate([splits, np.zeros(n_leaf)]),
            "mode": np.concatenate([modes, np.zeros(n_leaf, dtype=np.int64)]),
            "yes": np.concatenate([yes, -np.ones(n_leaf, dtype=np.int64)]),
            "no": np.concatenate([no, -np.ones(n_leaf, dtype=np.int64)]),
            "missing_yes": np.concatenate([missing, np.zeros(n_leaf, dtype=bool)]),
            "value": value,
            "roots": roots,
            "base": np.zeros(n_targets),
        },
        source="onnx:TreeEnsemble",
    )


__all__ = [
    "DESCRIPTION_SCHEMA",
    "MODES",
    "Description",
    "NotDescribable",
    "add_preprocessing",
    "describe_onnx",
]
