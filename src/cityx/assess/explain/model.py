"""Exact models rebuilt from a worker's plain-array description, in our process.

The worker describes the artifact it loaded (``model-description/v1``, see
:mod:`cityx.targets.describe`); :func:`exact_model` checks every array's
shape and every child index before anything is computed, because the worker
runs vendor code and its answers are not trusted. Words used here:

- *margin*: the additive raw score per target, before the *post-transform*
  (``LOGISTIC`` or ``SOFTMAX``) that makes probabilities; the argmax of the
  margins is the argmax of the probabilities, so the margin explains the
  decision exactly;
- *targets*: the margin's columns; a *binary* model has one column (the
  second class's score; the first class's margin is its negation);
- *preprocessing*: a per-feature scaler ``(x - offset) * scale`` and a
  feature selection in front of the model. For trees it is applied to the
  inputs before the comparisons (with ONNX's float32 arithmetic), which is
  folding it into the thresholds without rounding them; for a linear model
  it folds into the coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import FloatArray, TargetOutputError

_POST = frozenset({"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"})
_MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Preprocessing:
    """Model input j reads submitted column ``select[j]`` as ``(x - offset[j]) * scale[j]``."""

    select: NDArray[np.int64]
    offset: FloatArray
    scale: FloatArray
    float32: bool

    @property
    def is_identity(self) -> bool:
        return (
            np.array_equal(self.select, np.arange(self.select.size))
            and not self.offset.any()
            and bool(np.all(self.scale == 1.0))
        )

    def apply(self, x: FloatArray) -> FloatArray:
        y = x[:, self.select]
        if self.float32:
            # ONNX's Scaler computes in float32; emulate it so comparisons match.
            y32 = y.astype(np.float32)
            out = (y32 - self.offset.astype(np.float32)) * self.scale.astype(np.float32)
            return np.asarray(out, dtype=np.float64)
        return (y - self.offset) * self.scale


@dataclass(frozen=True, slots=True)
class Paths:
    """Every leaf's path as (leaf, submitted feature) *pairs* and the node tests per pair."""

    entry_node: NDArray[np.int64]  # path node of each entry, entries sorted by pair
    entry_yes: NDArray[np.bool_]  # the branch the path takes at that node
    pair_start: NDArray[np.int64]  # first entry of each pair
    pair_leaf: NDArray[np.int64]  # index into ``leaves`` of each pair; sorted
    pair_feature: NDArray[np.int64]  # submitted column of each pair
    leaves: NDArray[np.int64]  # node index of each leaf that has pairs
    leaf_start: NDArray[np.int64]  # first pair of each such leaf
    depth: int  # the most distinct features on one path


@dataclass(frozen=True, slots=True)
class TreeModel:
    """A tree ensemble: node table, roots, base and preprocessing; see the module docstring."""

    feature: NDArray[np.int64]
    threshold: FloatArray
    mode: NDArray[np.int64]
    yes: NDArray[np.int64]
    no: NDArray[np.int64]
    missing_yes: NDArray[np.bool_]
    value: FloatArray
    roots: NDArray[np.int64]
    base: FloatArray
    pre: Preprocessing
    targets: tuple[str, ...]
    post_transform: str
    binary: bool
    float32: bool
    inputs: int
    source: str
    paths: Paths

    kind = "trees"

    @property
    def _leq_only(self) -> bool:
        return bool(np.all(self.mode == 0))

    def tests(self, x: FloatArray, nodes: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each row takes the "yes" branch at each of ``nodes`` (rows x nodes)."""
        y = self.pre.apply(np.asarray(x, dtype=np.float64))
        if self.float32:
            y = y.astype(np.float32).astype(np.float64)
        feat = self.feature[nodes]
        v = y[:, np.maximum(feat, 0)]
        t = self.threshold[nodes]
        mode = self.mode[nodes]
        if not mode.any():  # the common case: "<=" everywhere
            out = v <= t
        else:
            out = np.select(
                [mode == 0, mode == 1, mode == 2, mode == 3, mode == 4],
                [v <= t, v < t, v >= t, v > t, v == t],
                v != t,
            )
        nan = np.isnan(v)
        if nan.any():
            out = np.where(nan, self.missing_yes[nodes], out)
        return np.asarray(out, dtype=bool)

    def margin(self, x: FloatArray) -> FloatArray:
        """The raw additive score per target, rows x targets."""
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0]
        at = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        y = self.pre.apply(x)
        if self.float32:
            y = y.astype(np.float32).astype(np.float64)
        rows = np.arange(n)[:, None]
        for _ in range(_MAX_DEPTH + 1):
            inner = self.feature[at] >= 0
            if not inner.any():
                break
            feat = np.maximum(self.feature[at], 0)
            v = y[rows, feat]
            t = self.threshold[at]
            if self._leq_only:
                go = v <= t
            else:
                mode = self.mode[at]
                go = np.select(
                    [mode == 0, mode == 1, mode == 2, mode == 3, mode == 4],
                    [v <= t, v < t, v >= t, v > t, v == t],
                    v != t,
                )
            nan = np.isnan(v)
            if nan.any():
                go = np.where(nan, self.missing_yes[at], go)
            at = np.where(inner, np.where(go, self.yes[at], self.no[at]), at)
        return np.asarray(self.value[at].sum(axis=1) + self.base, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class LinearModel:
    """``margin = x @ coef.T + intercept`` on the submitted columns (preprocessing folded)."""

    coef: FloatArray  # targets x submitted columns
    intercept: FloatArray
    targets: tuple[str, ...]
    post_transform: str
    binary: bool
    inputs: int
    source: str

    kind = "linear"

    def margin(self, x: FloatArray) -> FloatArray:
        return np.asarray(np.asarray(x, dtype=np.float64) @ self.coef.T + self.intercept)


ExactModel = TreeModel | LinearModel


def transform(model: ExactModel, margin: FloatArray) -> FloatArray:
    """The model's output per class (probabilities) from margins; a regression's value as is.

    A binary model's one margin column becomes two probability columns.
    """
    post = model.post_transform
    if model.binary:
        m = margin[:, :1]
        if post == "LOGISTIC":
            p = 1.0 / (1.0 + np.exp(-m))
            return np.hstack([1.0 - p, p])
        return np.hstack([-m, m])
    if post == "LOGISTIC":
        return np.asarray(1.0 / (1.0 + np.exp(-margin)))
    if post in ("SOFTMAX", "SOFTMAX_ZERO"):
        e = np.exp(margin - margin.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))
    if post == "PROBIT":
        erf = np.vectorize(math.erf, otypes=[np.float64])
        return np.asarray(0.5 * (1.0 + erf(margin / math.sqrt(2.0))), dtype=np.float64)
    return margin


def class_names(model: ExactModel, labels: Sequence[str]) -> tuple[str, ...]:
    """The output columns' class names: both classes for a binary model."""
    if model.binary:
        second = model.targets[0]
        first = [c for c in labels if c != second]
        return (first[0] if first else "0", second)
    return model.targets


def class_margin(model: ExactModel, margin: FloatArray, column: int) -> FloatArray:
    """The margin that decides class ``column`` of :func:`class_names` (binary: +/- one column)."""
    if model.binary:
        return margin[:, 0] if column == 1 else -margin[:, 0]
    return margin[:, column]


def exact_model(
    header: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]], *, inputs: int, where: str
) -> ExactModel:
    """Check a worker's description and rebuild the model; TargetOutputError if it is broken."""

    def bad(why: str) -> TargetOutputError:
        return TargetOutputError(f"the worker's model description is broken: {why}", where=where)

    kind = header.get("kind")
    post = str(header.get("post_transform", "NONE"))
    if post not in _POST:
        raise bad(f"unknown post-transform {post!r}")
    targets = tuple(str(t) for t in header.get("targets") or ())
    binary = bool(header.get("binary"))
    float32 = bool(header.get("float32"))
    source = str(header.get("source", ""))
    select = np.asarray(arrays.get("pre_select", np.arange(inputs)), dtype=np.int64).reshape(-1)
    if select.size and (select.min() < 0 or select.max() >= inputs):
        raise bad("a feature selection index is outside the declared inputs")
    width = len(select)
    offset = np.asarray(arrays.get("pre_offset", np.zeros(width)), dtype=np.float64).reshape(-1)
    scale = np.asarray(arrays.get("pre_scale", np.ones(width)), dtype=np.float64).reshape(-1)
    if offset.shape != (width,) or scale.shape != (width,):
        raise bad("scaler parameters do not match the model's inputs")
    if kind == "linear":
        coef = np.atleast_2d(np.asarray(arrays.get("coef"), dtype=np.float64))
        intercept = np.asarray(arrays.get("intercept"), dtype=np.float64).reshape(-1)
        if coef.ndim != 2 or coef.shape[1] != width or intercept.shape != (coef.shape[0],):
            raise bad("coefficients do not match the inputs")
        if len(targets) != coef.shape[0]:
            raise bad("one target name per coefficient row is needed")
        folded = np.zeros((coef.shape[0], inputs))
        np.add.at(folded.T, select, (coef * scale).T)
        return LinearModel(
            coef=folded,
            intercept=intercept - (coef * scale) @ offset,
            targets=targets,
            post_transform=post,
            binary=binary,
            inputs=inputs,
            source=source,
        )
    if kind != "trees":
        raise bad(f"unknown kind {kind!r}")
    need = ("feature", "threshold", "mode", "yes", "no", "missing_yes", "value", "roots", "base")
    missing = [k for k in need if k not in arrays]
    if missing:
        raise bad(f"missing arrays {', '.join(missing)}")
    feature = np.asarray(arrays["feature"], dtype=np.int64).reshape(-1)
    n = feature.shape[0]
    value = np.asarray(arrays["value"], dtype=np.float64)
    if value.ndim != 2 or value.shape[0] != n or value.shape[1] != len(targets):
        raise bad("leaf values must be nodes x targets")
    parts = {k: np.asarray(arrays[k]).reshape(-1) for k in need if k not in ("value", "feature")}
    for k in ("threshold", "mode", "yes", "no", "missing_yes"):
        if parts[k].shape[0] != n:
            raise bad(f"{k} has {parts[k].shape[0]} entries for {n} nodes")
    yes = parts["yes"].astype(np.int64)
    no = parts["no"].astype(np.int64)
    roots = parts["roots"].astype(np.int64)
    inner = feature >= 0
    if feature.max(initial=-1) >= width:
        raise bad("a node reads a feature the model does not have")
    if np.any(inner & ((yes < 0) | (yes >= n) | (no < 0) | (no >= n))):
        raise bad("a child index is outside the node table")
    if roots.size == 0 or roots.min() < 0 or roots.max() >= n:
        raise bad("a tree root is outside the node table")
    mode = parts["mode"].astype(np.int64)
    if np.any((mode < 0) | (mode > 5)):
        raise bad("unknown comparison mode")
    base = parts["base"].astype(np.float64)
    if base.shape[0] != len(targets):
        raise bad("one base value per target is needed")
    # ONNX runs its Scaler in float32; scikit-learn scales in float64, then casts.
    pre = Preprocessing(
        select=select, offset=offset, scale=scale, float32=float32 and source.startswith("onnx")
    )
    paths = _paths(feature, yes, no, roots, select, where=where)
    return TreeModel(
        feature=feature,
        threshold=parts["threshold"].astype(np.float64),
        mode=mode,
        yes=yes,
        no=no,
        missing_yes=parts["missing_yes"].astype(bool),
        value=value,
        roots=roots,
        base=base,
        pre=pre,
        targets=targets,
        post_transform=post,
        binary=binary,
        float32=float32,
        inputs=inputs,
        source=source,
        paths=paths,
    )


def _paths(
    feature: NDArray[np.int64],
    yes: NDArray[np.int64],
    no: NDArray[np.int64],
    roots: NDArray[np.int64],
    select: NDArray[np.int64],
    *,
    where: str,
) -> Paths:
    """Walk every tree once; a cycle or a path deeper than the limit is a broken description."""
    pairs: dict[tuple[int, int], list[tuple[int, bool]]] = {}
    leaves: list[int] = []
    depth = 0
    visited = 0
    limit = 4 * len(feature) + 16
    for root in roots.tolist():
        stack: list[tuple[int, tuple[tuple[int, bool], ...]]] = [(root, ())]
        while stack:
            node, path = stack.pop()
            visited += 1
            if visited > limit or len(path) > _MAX_DEPTH:
                raise TargetOutputError(
                    "the worker's model description is broken: its trees are not trees "
                    "(a cycle or a path deeper than 64)",
                    where=where,
                )
            if feature[node] < 0:
                by: dict[int, list[tuple[int, bool]]] = {}
                for p_node, p_yes in path:
                    by.setdefault(int(select[feature[p_node]]), []).append((p_node, p_yes))
                if by:
                    leaves.append(node)
                    depth = max(depth, len(by))
                    for f in sorted(by):
                        pairs[(len(leaves) - 1, f)] = by[f]
                continue
            stack.append((int(no[node]), (*path, (node, False))))
            stack.append((int(yes[node]), (*path, (node, True))))
    keys = list(pairs)  # leaf-major insertion order: sorted by leaf
    entry_node: list[int] = []
    entry_yes: list[bool] = []
    pair_start: list[int] = []
    for key in keys:
        pair_start.append(len(entry_node))
        for node, branch in pairs[key]:
            entry_node.append(node)
            entry_yes.append(branch)
    pair_leaf = np.asarray([k[0] for k in keys], dtype=np.int64)
    leaf_start = (
        np.flatnonzero(np.r_[True, pair_leaf[1:] != pair_leaf[:-1]])
        if keys
        else (np.zeros(0, dtype=np.int64))
    )
    return Paths(
        entry_node=np.asarray(entry_node, dtype=np.int64),
        entry_yes=np.asarray(entry_yes, dtype=bool),
        pair_start=np.asarray(pair_start, dtype=np.int64),
        pair_leaf=pair_leaf,
        pair_feature=np.asarray([k[1] for k in keys], dtype=np.int64),
        leaves=np.asarray(leaves, dtype=np.int64),
        leaf_start=np.asarray(leaf_start, dtype=np.int64),
        depth=depth,
    )


__all__ = [
    "ExactModel",
    "LinearModel",
    "TreeModel",
    "class_margin",
    "class_names",
    "exact_model",
    "transform",
]
