"""Explainer-style queries: the off-manifold points that perturbation explainers send.

- *hybrid*: KernelSHAP's and interventional TreeSHAP's query: the features of a
  random coalition (any size from 1 to d-1) from one row, the rest from
  another (background) row;
- *lime*: LIME's tabular sampling: every feature drawn independently from a
  normal with that feature's mean and standard deviation;
- *marginal*: every feature drawn independently from its own column (a
  permutation explainer's query with an empty coalition).

Real rows keep their features' dependence; these queries break it, which is
what lets a scaffolded model (:mod:`cityx.attacks.scaffold`) tell them apart.
"""

from __future__ import annotations

import numpy as np

from cityx.core import FloatArray, InputError

KINDS = ("hybrid", "lime", "marginal")


def perturbations(
    x: FloatArray, rng: np.random.Generator, n: int, *, kinds: tuple[str, ...] = ("hybrid", "lime")
) -> FloatArray:
    """``n`` explainer-style queries around the rows of ``x``, split evenly over ``kinds``."""
    d = x.shape[1]
    parts = []
    per = [n // len(kinds) + (1 if k < n % len(kinds) else 0) for k in range(len(kinds))]
    for kind, m in zip(kinds, per, strict=True):
        rows = x[rng.integers(0, x.shape[0], m)]
        if kind == "hybrid":
            # KernelSHAP weights favour small and large coalitions; any size 1..d-1 is queried.
            size = rng.integers(1, max(2, d), m)
            keep = np.argsort(rng.random((m, d)), axis=1) < size[:, None]
            other = x[rng.integers(0, x.shape[0], m)]
            parts.append(np.where(keep, rows, other))
        elif kind == "lime":
            sd = x.std(axis=0)
            parts.append(x.mean(axis=0) + rng.standard_normal((m, d)) * sd)
        elif kind == "marginal":
            idx = rng.integers(0, x.shape[0], (m, d))
            parts.append(x[idx, np.arange(d)[None, :]])
        else:
            raise InputError(f"unknown perturbation kind {kind!r}", where="perturbations")
    return np.vstack(parts)


__all__ = ["KINDS", "perturbations"]
