"""LightGBM boosters and fitted scikit-learn models described as plain arrays (in the worker).

See :mod:`.describe` for the description's format. LightGBM's own JSON dump
gives its trees (numerical splits); a scikit-learn tree ensemble
(decision tree, random forest, extra trees, gradient boosting) gives its
``tree_`` arrays, and a linear model its ``coef_`` and ``intercept_``. A
pipeline's scaler (standard, min-max, max-abs) and feature selection (any
step with ``get_support``) travel as preprocessing; any other step cannot
be described.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .describe import Description, NotDescribable, add_preprocessing


def describe_lightgbm(booster: Any, classes: Sequence[str], objective: str) -> Description:
    """A LightGBM booster's trees from its own JSON dump (numerical splits only)."""
    dump = booster.dump_model()
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    feature: list[int] = []
    threshold: list[float] = []
    mode: list[int] = []
    yes: list[int] = []
    no: list[int] = []
    missing: list[bool] = []
    leaf: list[tuple[int, int, float]] = []  # (node, target, weight)
    roots: list[int] = []
    for info in dump["tree_info"]:
        target = int(info["tree_index"]) % per_iteration
        roots.append(len(feature))
        stack: list[tuple[dict[str, Any], int]] = [(info["tree_structure"], -1)]
        # Depth-first; children are patched into the parent's yes/no once numbered.
        while stack:
            item, parent = stack.pop()
            here = len(feature)
            if parent >= 0:
                if yes[parent] == -2:
                    yes[parent] = here
                else:
                    no[parent] = here
            if "leaf_value" in item:
                feature.append(-1)
                threshold.append(0.0)
                mode.append(0)
                yes.append(-1)
                no.append(-1)
                missing.append(False)
                leaf.append((here, target, float(item["leaf_value"])))
                continue
            if item.get("decision_type", "<=") != "<=":
                raise NotDescribable("categorical splits in a LightGBM model are not described")
            feature.append(int(item["split_feature"]))
            threshold.append(float(item["threshold"]))
            mode.append(0)
            yes.append(-2)
            no.append(-2)
            missing.append(bool(item.get("default_left", True)))
            if item.get("missing_type", "None") == "NaN":
                pass
            stack.append((item["right_child"], here))
            stack.append((item["left_child"], here))
    # The stack pops the left child first, so it is the "yes" (<=) child.
    n_targets = per_iteration
    value = np.zeros((len(feature), n_targets))
    for node, target, weight in leaf:
        value[node, target] += weight
    if objective in ("binary", "cross_entropy", "xentropy"):
        post, targets, binary = "LOGISTIC", tuple(classes[1:2]) or ("1",), True
    elif per_iteration > 1:
        post, targets, binary = "SOFTMAX", tuple(classes), False
    else:
        post, targets, binary = "NONE", ("value",), False
    return Description(
        kind="trees",
        targets=targets,
        post_transform=post,
        binary=binary,
        arrays={
            "feature": np.asarray(feature, dtype=np.int64),
            "threshold": np.asarray(threshold, dtype=np.float64),
            "mode": np.asarray(mode, dtype=np.int64),
            "yes": np.asarray(yes, dtype=np.int64),
            "no": np.asarray(no, dtype=np.int64),
            "missing_yes": np.asarray(missing, dtype=bool),
            "value": value,
            "roots": np.asarray(roots, dtype=np.int64),
            "base": np.zeros(n_targets),
        },
        source="lightgbm",
    )


def describe_estimator(estimator: Any, inputs: int) -> Description:
    """A fitted scikit-learn tree ensemble or linear model, with scaler/selection steps folded."""
    offset: NDArray[Any] | None = None
    scale: NDArray[Any] | None = None
    select: NDArray[Any] | None = None
    steps = getattr(estimator, "steps", None)
    final = estimator
    if steps is not None:
        final = steps[-1][1]
        for _, step in steps[:-1]:
            kind = type(step).__name__
            if kind == "StandardScaler" and offset is None and select is None:
                mean = getattr(step, "mean_", None)
                sd = getattr(step, "scale_", None)
                offset = np.zeros(inputs) if mean is None else np.asarray(mean, dtype=np.float64)
                scale = np.ones(inputs) if sd is None else 1.0 / np.asarray(sd, dtype=np.float64)
            elif kind in ("MinMaxScaler", "MaxAbsScaler") and offset is None and select is None:
                sc = np.asarray(step.scale_, dtype=np.float64)
                mn = np.asarray(getattr(step, "min_", np.zeros_like(sc)), dtype=np.float64)
                offset, scale = -mn / sc, sc
            elif callable(getattr(step, "get_support", None)) and select is None:
                select = np.flatnonzero(step.get_support())
            elif kind in ("passthrough",) or step == "passthrough":
                continue
            else:
                raise NotDescribable(
                    f"a {kind} step in front of the model is not linear per feature"
                )
    kind = type(final).__name__
    classes = tuple(str(c) for c in getattr(final, "classes_", ()))
    width = inputs if select is None else len(select)
    if hasattr(final, "coef_") and hasattr(final, "intercept_"):
        coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64))
        if classes:
            binary = len(classes) == 2 and coef.shape[0] == 1
            post = "LOGISTIC" if binary else "SOFTMAX"
            targets = classes[1:] if binary else classes
        else:
            binary, post, targets = False, "NONE", ("value",) * coef.shape[0]
        description = Description(
            kind="linear",
            targets=tuple(targets),
            post_transform=post,
            binary=binary,
            arrays={"coef": coef, "intercept": intercept},
            source=f"sklearn:{kind}",
        )
    elif hasattr(final, "estimators_") or hasattr(final, "tree_"):
        description = _sklearn_trees(final, kind, classes)
    else:
        raise NotDescribable(f"a {kind} is neither a tree ensemble nor a linear model")
    if offset is not None:
        add_preprocessing(
            description, inputs=width if select is None else inputs, offset=offset, scale=scale
        )
        if select is not None:
            # The scaler runs before the selection: keep the selected entries only.
            description.arrays["pre_offset"] = description.arrays["pre_offset"][select]
            description.arrays["pre_scale"] = description.arrays["pre_scale"][select]
    if select is not None:
        add_preprocessing(description, inputs=width, select=select)
    return description


def _sklearn_trees(final: Any, kind: str, classes: tuple[str, ...]) -> Description:
    if kind in (
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "ExtraTreeClassifier",
        "ExtraTreeRegressor",
    ):
        estimators: list[Any] = [final]
        scale, boosted = 1.0, False
    elif kind in (
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    ):
        estimators = list(final.estimators_)
        scale, boosted = 1.0 / len(estimators), False
    elif kind in ("GradientBoostingClassifier", "GradientBoostingRegressor"):
        estimators = [e for stage in final.estimators_ for e in stage]
        scale, boosted = float(final.learning_rate), True
    else:
        raise NotDescribable(f"a {kind} is not a supported tree ensemble")
    n_targets = len(classes) if classes and not boosted else 1
    if boosted and classes:
        n_targets = final.estimators_.shape[1]
    feature, threshold, yes, no, value, roots = [], [], [], [], [], []
    offset = 0
    for k, est in enumerate(estimators):
        tree = est.tree_
        roots.append(offset)
        left, right = tree.children_left, tree.children_right
        is_leaf = left < 0
        feature.append(np.where(is_leaf, -1, tree.feature))
        threshold.append(tree.threshold.astype(np.float64))
        yes.append(np.where(is_leaf, -1, left + offset))
        no.append(np.where(is_leaf, -1, right + offset))
        v = np.zeros((tree.node_count, n_targets))
        raw = tree.value[:, :, :]  # nodes x outputs x classes
        if boosted:
            target = k % n_targets
            v[:, target] = raw[:, 0, 0] * scale
        elif classes:
            # Forests average class *fractions* (sklearn >= 1.4 stores fractions).
            frac = raw[:, 0, :] / np.maximum(raw[:, 0, :].sum(axis=1, keepdims=True), 1e-300)
            v[:] = frac * scale
        else:
            v[:, 0] = raw[:, 0, 0] * scale
        v[~is_leaf] = 0.0
        value.append(v)
        offset += tree.node_count
    base = np.zeros(n_targets)
    post = "NONE"
    binary = False
    targets: tuple[str, ...] = classes if classes else ("value",)
    if boosted:
        init = final.init_
        if classes:
            # The initial raw score is the init estimator's log-odds / log-prior.
            prior = np.asarray(init.class_prior_ if hasattr(init, "class_prior_") else init.priors)
            if n_targets == 1:
                base[0] = np.log(prior[1] / prior[0])
                post, binary, targets = "LOGISTIC", True, classes[1:]
            else:
                base[:] = np.log(prior)
                post = "SOFTMAX"
        else:
            base[0] = float(np.asarray(init.constant_).reshape(-1)[0])
    zeros = sum(len(f) for f in feature)
    return Description(
        kind="trees",
        targets=targets,
        post_transform=post,
        binary=binary,
        float32=True,  # scikit-learn compares float32-cast inputs with its thresholds
        arrays={
            "feature": np.concatenate(feature).astype(np.int64),
            "threshold": np.concatenate(threshold),
            "mode": np.zeros(zeros, dtype=np.int64),
            "yes": np.concatenate(yes).astype(np.int64),
            "no": np.concatenate(no).astype(np.int64),
            "missing_yes": np.zeros(zeros, dtype=bool),
            "value": np.vstack(value),
            "roots": np.asarray(roots, dtype=np.int64),
            "base": base,
        },
        source=f"sklearn:{kind}",
    )


__all__ = ["describe_estimator", "describe_lightgbm"]
