"""Shapley values of a model's output against a background sample, exact or by brute force.

The *interventional* Shapley value of feature i for row x against a
*background* sample Z is the average over z in Z of the Shapley value of
the game v(S) = f(x on S, z elsewhere): a *hybrid* row takes the features
in S from x and the others from z. It is additive: ``base + sum(phi) ==
f(x)`` with ``base`` the mean of f over Z.

For a tree, a leaf is reached by the hybrid exactly when every feature on
its path is taken from a row that satisfies that feature's tests. Per
(row, background row, leaf), let U be the path's features only x
satisfies and V those only z satisfies (a feature neither satisfies makes
the leaf unreachable). The leaf's game is then "reached iff U is in S and
V is not", whose Shapley values are closed-form: ``+w |U|-1,|V|`` for each
feature of U and ``-w |U|,|V|-1`` for each of V, times the leaf's weight,
with ``w a,b = a! b! / (a+b+1)!``. :func:`tree_shap` evaluates that for
every pair at once with array operations; it is exact on the margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import FloatArray

from .model import ExactModel, LinearModel, TreeModel

# Elements of the (rows x background x pairs) working arrays per chunk.
_CHUNK_ELEMENTS = 8_000_000
# Up to this many distinct features on one path, the pattern tables (4^depth x depth) are used;
# at 8 the per-leaf table is 256 x 256 x 8, one matrix product per background.
_PATTERN_DEPTH = 8
_BITS = 62  # a path's patterns are bit masks in one int64


def _weights(depth: int) -> FloatArray:
    w = np.zeros((depth + 2, depth + 2))
    for a in range(depth + 2):
        for b in range(depth + 2 - a):
            w[a, b] = math.factorial(a) * math.factorial(b) / math.factorial(a + b + 1)
    return w


def satisfied_pairs(model: TreeModel, x: FloatArray) -> NDArray[np.bool_]:
    """rows x pairs: the row passes every test of the pair's feature on the pair's leaf path."""
    p = model.paths
    if p.entry_node.size == 0:
        return np.ones((x.shape[0], 0), dtype=bool)
    mismatch = (model.tests(x, p.entry_node) != p.entry_yes).astype(np.int32)
    return np.asarray(np.add.reduceat(mismatch, p.pair_start, axis=1) == 0, dtype=bool)


def tree_shap(
    model: TreeModel, x: FloatArray, background: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Exact interventional Shapley values of the margin: (rows x features x targets, base)."""
    x = np.asarray(x, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    p = model.paths
    n, d, t = x.shape[0], model.inputs, len(model.targets)
    base = model.margin(background).mean(axis=0)
    phi = np.zeros((n, d, t))
    if p.pair_leaf.size == 0 or n == 0:
        return phi, base
    w = _weights(p.depth)
    a_all = satisfied_pairs(model, x)
    b = satisfied_pairs(model, background)
    # The full tables cost 4^depth per leaf once; looking up the background's distinct
    # patterns costs about their number per row and leaf: full tables for many rows.
    tables_pay = p.depth <= 5 or n * 64 * b.shape[0] >= 4**p.depth
    if p.depth <= _PATTERN_DEPTH and tables_pay:
        return _by_patterns(model, a_all, b, w), base
    if p.depth <= _BITS:
        return _by_background_patterns(model, a_all, b, w), base
    m, pairs = b.shape
    leaf_value = model.value[p.leaves]  # leaves-with-pairs x targets
    pair_value = leaf_value[p.pair_leaf]  # pairs x targets
    onehot = np.zeros((pairs, d))
    onehot[np.arange(pairs), p.pair_feature] = 1.0
    chunk = max(1, _CHUNK_ELEMENTS // max(m * pairs, 1))
    for lo in range(0, n, chunk):
        a = a_all[lo : lo + chunk][:, None, :]
        u = a & ~b[None]
        v = ~a & b[None]
        neither = ~a & ~b[None]
        n_u = np.add.reduceat(u.astype(np.int16), p.leaf_start, axis=2)
        n_v = np.add.reduceat(v.astype(np.int16), p.leaf_start, axis=2)
        dead = np.add.reduceat(neither.astype(np.int16), p.leaf_start, axis=2) > 0
        w_u = np.where(dead | (n_u == 0), 0.0, w[np.maximum(n_u - 1, 0), n_v])
        w_v = np.where(dead | (n_v == 0), 0.0, w[n_u, np.maximum(n_v - 1, 0)])
        # Per pair: its leaf's coefficient, by the sign of its side; averaged over Z.
        coef: FloatArray = (u * w_u[:, :, p.pair_leaf] - v * w_v[:, :, p.pair_leaf]).mean(axis=1)
        for k in range(t):
            phi[lo : lo + chunk, :, k] = (coef * pair_value[:, k]) @ onehot
    return phi, base


def _by_patterns(
    model: TreeModel, a: NDArray[np.bool_], b: NDArray[np.bool_], w: FloatArray
) -> FloatArray:
    """The same values, grouped by each leaf's *pattern* (which path features a row satisfies).

    A leaf's game depends on x and z only through their patterns, so the
    background is summarised once as pattern counts per leaf, and each row
    costs one table look-up per leaf: O(rows x leaves x depth).
    """
    p = model.paths
    depth = p.depth
    n_leaves = p.leaves.shape[0]
    # Slot s of leaf l holds its s-th pair (features in sorted order); padded slots count
    # as satisfied by both rows, which never changes a leaf's game.
    slot_pair = np.full((n_leaves, depth), -1, dtype=np.int64)
    rank = np.arange(p.pair_leaf.shape[0]) - p.leaf_start[p.pair_leaf]
    slot_pair[p.pair_leaf, rank] = np.arange(p.pair_leaf.shape[0])
    bits = 1 << np.arange(depth)

    def patterns(sat: NDArray[np.bool_]) -> NDArray[np.int64]:
        padded = np.concatenate([sat, np.ones((sat.shape[0], 1), dtype=bool)], axis=1)
        # rows x leaves
        return np.asarray((padded[:, slot_pair].astype(np.int64) * bits).sum(axis=2), np.int64)

    table = _pattern_table(depth, w)  # a x q x slot
    q = 1 << depth
    counts = np.zeros((n_leaves, q))
    zq = patterns(b)
    np.add.at(counts, (np.broadcast_to(np.arange(n_leaves), zq.shape), zq), 1.0)
    counts /= b.shape[0]
    g = (counts @ table.transpose(1, 0, 2).reshape(q, q * depth)).reshape(n_leaves, q, depth)
    xa = patterns(a)  # rows x leaves
    gx = g[np.arange(n_leaves)[None, :], xa]  # rows x leaves x slot
    slot_feature = np.where(slot_pair >= 0, p.pair_feature[np.maximum(slot_pair, 0)], 0)
    onehot = np.zeros((n_leaves * depth, model.inputs))
    onehot[np.arange(n_leaves * depth), slot_feature.reshape(-1)] = 1.0
    leaf_value = model.value[p.leaves]
    n, t = a.shape[0], leaf_value.shape[1]
    phi = np.zeros((n, model.inputs, t))
    for k in range(t):
        phi[:, :, k] = (gx * leaf_value[None, :, k, None]).reshape(n, -1) @ onehot
    return phi


def _slots(model: TreeModel) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Each leaf's pairs as slots (padded with -1), and the feature of each slot."""
    p = model.paths
    slot_pair = np.full((p.leaves.shape[0], p.depth), -1, dtype=np.int64)
    rank = np.arange(p.pair_leaf.shape[0]) - p.leaf_start[p.pair_leaf]
    slot_pair[p.pair_leaf, rank] = np.arange(p.pair_leaf.shape[0])
    slot_feature = np.where(slot_pair >= 0, p.pair_feature[np.maximum(slot_pair, 0)], 0)
    return slot_pair, slot_feature


def _pattern_codes(sat: NDArray[np.bool_], slot_pair: NDArray[np.int64]) -> NDArray[np.int64]:
    """rows x leaves: bit s set where the row passes slot s's tests (padded slots pass)."""
    padded = np.concatenate([sat, np.ones((sat.shape[0], 1), dtype=bool)], axis=1)
    bits = np.left_shift(np.int64(1), np.arange(slot_pair.shape[1], dtype=np.int64))
    codes = np.zeros((sat.shape[0], slot_pair.shape[0]), dtype=np.int64)
    for s in range(slot_pair.shape[1]):
        codes |= padded[:, slot_pair[:, s]].astype(np.int64) * bits[s]
    return codes


def _by_background_patterns(
    model: TreeModel, a: NDArray[np.bool_], b: NDArray[np.bool_], w: FloatArray
) -> FloatArray:
    """Deep paths: per leaf, the background's few distinct patterns and their counts.

    The same closed form as the tables, computed from the bit masks directly: for x's
    pattern and each distinct background pattern of the leaf, U = x & ~z and V = ~x & z
    (a slot in neither makes the leaf unreachable), weighted by how many background rows
    have that pattern. Cost: rows x leaves x distinct patterns x depth.
    """
    p = model.paths
    depth = p.depth
    slot_pair, slot_feature = _slots(model)
    n_leaves = slot_pair.shape[0]
    full = np.int64((1 << depth) - 1)
    zq = np.sort(_pattern_codes(b, slot_pair), axis=0)  # background x leaves
    m = zq.shape[0]
    new = np.vstack([np.ones((1, n_leaves), dtype=bool), zq[1:] != zq[:-1]])
    rank = np.cumsum(new, axis=0) - 1
    k = int(rank.max()) + 1
    cols = np.broadcast_to(np.arange(n_leaves), zq.shape)
    q = np.zeros((k, n_leaves), dtype=np.int64)
    count = np.zeros((k, n_leaves))
    q[rank, cols] = zq
    np.add.at(count, (rank, cols), 1.0 / m)
    xa = _pattern_codes(a, slot_pair)  # rows x leaves
    onehot = np.zeros((n_leaves * depth, model.inputs))
    onehot[np.arange(n_leaves * depth), slot_feature.reshape(-1)] = 1.0
    leaf_value = model.value[p.leaves]
    n, t = xa.shape[0], leaf_value.shape[1]
    phi = np.zeros((n, model.inputs, t))
    # Up to the table depth, each (x pattern, z pattern) coefficient is one table look-up.
    table = _pattern_table(depth, w) if depth <= _PATTERN_DEPTH else None
    chunk = max(1, _CHUNK_ELEMENTS // max(k * n_leaves * (depth if table is not None else 1), 1))
    for lo in range(0, n, chunk):
        if table is not None:
            looked = table[xa[lo : lo + chunk][:, None, :], q[None, :, :]]  # c x K x leaves x slot
            slot = (looked * count[None, :, :, None]).sum(axis=1)
            for j in range(t):
                phi[lo : lo + chunk, :, j] = (slot * leaf_value[None, :, j, None]).reshape(
                    slot.shape[0], -1
                ) @ onehot
            continue
        x = xa[lo : lo + chunk][:, None, :]  # chunk x 1 x leaves
        u = x & ~q[None] & full
        v = ~x & q[None] & full
        dead = (~x & ~q[None] & full) != 0
        n_u = np.bitwise_count(u).astype(np.int64)
        n_v = np.bitwise_count(v).astype(np.int64)
        c_u = np.where(dead | (n_u == 0), 0.0, w[np.maximum(n_u - 1, 0), n_v]) * count[None]
        c_v = np.where(dead | (n_v == 0), 0.0, w[n_u, np.maximum(n_v - 1, 0)]) * count[None]
        slot = np.empty((x.shape[0], n_leaves, depth))
        for s in range(depth):
            on_u = (u >> s) & 1
            on_v = (v >> s) & 1
            slot[:, :, s] = (on_u * c_u - on_v * c_v).sum(axis=1)
        for j in range(t):
            phi[lo : lo + chunk, :, j] = (slot * leaf_value[None, :, j, None]).reshape(
                x.shape[0], -1
            ) @ onehot
    return phi


def _pattern_table(depth: int, w: FloatArray) -> FloatArray:
    """Coefficient of each slot for x-pattern a and z-pattern q (see the module docstring)."""
    q = 1 << depth
    codes = np.arange(q)
    bit = ((codes[:, None] >> np.arange(depth)) & 1).astype(bool)  # pattern x slot
    a_bit, z_bit = bit[:, None, :], bit[None, :, :]
    u = a_bit & ~z_bit
    v = ~a_bit & z_bit
    dead = (~a_bit & ~z_bit).any(axis=2)
    n_u, n_v = u.sum(axis=2), v.sum(axis=2)
    w_u = np.where(dead | (n_u == 0), 0.0, w[np.maximum(n_u - 1, 0), n_v])
    w_v = np.where(dead | (n_v == 0), 0.0, w[n_u, np.maximum(n_v - 1, 0)])
    return np.asarray(u * w_u[:, :, None] - v * w_v[:, :, None], dtype=np.float64)


def linear_shap(
    model: LinearModel, x: FloatArray, background: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Closed form for a linear margin: ``coef * (x - mean(Z))`` per target."""
    mean = np.asarray(background, dtype=np.float64).mean(axis=0)
    phi = (np.asarray(x, dtype=np.float64) - mean)[:, :, None] * model.coef.T[None, :, :]
    return phi, model.margin(mean[None, :])[0]


def brute_force_shap(
    f: Callable[[FloatArray], FloatArray], x: FloatArray, background: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Shapley values by enumerating every coalition (2^d of them): the test oracle.

    ``f`` maps rows to rows x outputs. Only for small d (<= 12).
    """
    x = np.asarray(x, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    d = x.shape[1]
    if d > 12:
        raise ValueError(f"brute force over {d} features is 2^{d} coalitions; at most 12")
    masks = ((np.arange(2**d)[:, None] >> np.arange(d)) & 1).astype(bool)  # coalitions x d
    size = masks.sum(axis=1)
    fact = [math.factorial(k) for k in range(d + 1)]
    out = []
    base = np.asarray(f(background)).mean(axis=0)
    for row in x:
        hybrid = np.where(masks[:, None, :], row[None, None, :], background[None, :, :])
        values = np.asarray(f(hybrid.reshape(-1, d))).reshape(2**d, background.shape[0], -1)
        v = values.mean(axis=1)  # coalitions x outputs
        phi = np.zeros((d, v.shape[1]))
        for i in range(d):
            without = ~masks[:, i]
            s = size[without]
            weight = np.array([fact[k] * fact[d - k - 1] / fact[d] for k in s])
            with_i = np.flatnonzero(without) | (1 << i)
            phi[i] = (weight[:, None] * (v[with_i] - v[without])).sum(axis=0)
        out.append(phi)
    return np.asarray(out), base


def permutation_shap(
    f: Callable[[FloatArray], FloatArray],
    x: FloatArray,
    background: FloatArray,
    *,
    permutations: int,
    seed: int,
) -> tuple[FloatArray, FloatArray]:
    """Model-agnostic estimate: antithetic permutation sampling, one batched call per run.

    Each of ``permutations`` orders (and its reverse) walks from a background
    row to x one feature at a time; the step's change is the feature's
    marginal contribution. Each path telescopes, so the estimate is additive
    for every row: ``base + sum(phi) == mean f(x)`` against the sampled rows.
    """
    x = np.asarray(x, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n, d = x.shape
    orders = np.array([rng.permutation(d) for _ in range(permutations)])
    orders = np.vstack([orders, orders[:, ::-1]])
    picks = rng.integers(0, background.shape[0], size=orders.shape[0])
    k = orders.shape[0]
    # Step s of a path has the first s features of the order from x: rows x paths x (d+1) x d.
    rank = np.empty_like(orders)
    np.put_along_axis(rank, orders, np.arange(d)[None, :].repeat(k, axis=0), axis=1)
    from_x = rank[:, None, :] < np.arange(d + 1)[None, :, None]  # paths x steps x d
    points = np.where(from_x[None], x[:, None, None, :], background[picks][None, :, None, :])
    values = np.asarray(f(points.reshape(-1, d)))
    values = values.reshape(n, k, d + 1, -1)
    steps = np.diff(values, axis=2)  # n x paths x d (step) x outputs
    phi = np.zeros((n, d, values.shape[3]))
    for j in range(k):
        phi[:, orders[j], :] += steps[:, j]
    phi /= k
    base = values[:, :, 0].mean(axis=1)  # n x outputs
    return phi, base


def paired_shap(model: ExactModel, x: FloatArray, z: FloatArray, column: int) -> FloatArray:
    """Shapley values of margin(x) - margin(z) for each row pair, one reference each (rows x d)."""
    sign = 1.0
    if model.binary:
        sign, column = (1.0 if column == 1 else -1.0), 0
    if isinstance(model, LinearModel):
        return np.asarray(sign * (x - z) * model.coef[column][None, :], dtype=np.float64)
    p = model.paths
    if p.depth > 7:
        rows = [
            tree_shap(model, x[i : i + 1], z[i : i + 1])[0][0, :, column] for i in range(len(x))
        ]
        return sign * np.asarray(rows)
    # In chunks of rows: the working arrays are rows x path tests.
    step = 2048
    parts = [
        _paired_patterns(model, x[lo : lo + step], z[lo : lo + step], column)
        for lo in range(0, x.shape[0], step)
    ]
    return sign * (np.vstack(parts) if parts else np.zeros(x.shape))


def _paired_patterns(model: TreeModel, x: FloatArray, z: FloatArray, column: int) -> FloatArray:
    p = model.paths
    n, d = x.shape
    if p.pair_leaf.size == 0:
        return np.zeros((n, d))
    depth = p.depth
    n_leaves = p.leaves.shape[0]
    slot_pair = np.full((n_leaves, depth), -1, dtype=np.int64)
    rank = np.arange(p.pair_leaf.shape[0]) - p.leaf_start[p.pair_leaf]
    slot_pair[p.pair_leaf, rank] = np.arange(p.pair_leaf.shape[0])
    bits = 1 << np.arange(depth)

    def patterns(rows: FloatArray) -> Any:
        sat = satisfied_pairs(model, rows)
        padded = np.concatenate([sat, np.ones((sat.shape[0], 1), dtype=bool)], axis=1)
        return (padded[:, slot_pair].astype(np.int64) * bits).sum(axis=2)

    table = _pattern_table(depth, _weights(depth))
    coef = table[patterns(x), patterns(z)]  # rows x leaves x slot
    slot_feature = np.where(slot_pair >= 0, p.pair_feature[np.maximum(slot_pair, 0)], 0)
    onehot = np.zeros((n_leaves * depth, model.inputs))
    onehot[np.arange(n_leaves * depth), slot_feature.reshape(-1)] = 1.0
    weighted = coef * model.value[p.leaves][None, :, column, None]
    return np.asarray(weighted.reshape(n, -1) @ onehot)


__all__ = [
    "brute_force_shap",
    "linear_shap",
    "paired_shap",
    "permutation_shap",
    "satisfied_pairs",
    "tree_shap",
]
