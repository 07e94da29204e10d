"""Seeding: one integer seed per run, split into independent streams.

A *stream* is a ``numpy.random.Generator`` derived from the run's seed and a
label (say ``"bootstrap/performance.nominal"``), so adding a new random step
never shifts the numbers of an existing one. No global random state is used.
"""

from __future__ import annotations

import hashlib

import numpy as np

MAX_SEED = 2**63 - 1


def check_seed(seed: int) -> int:
    """Return ``seed`` if it is a valid non-negative 63-bit integer."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, 2**63 - 1], got {seed!r}")
    return seed


def derive_seed(seed: int, *labels: str) -> int:
    """A child seed that depends only on ``seed`` and ``labels``."""
    digest = hashlib.blake2b(
        "\x1f".join((str(check_seed(seed)), *labels)).encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") & MAX_SEED


def stream(seed: int, *labels: str) -> np.random.Generator:
    """An independent random generator for the step named by ``labels``."""
    return np.random.default_rng(derive_seed(seed, *labels))


__all__ = ["MAX_SEED", "check_seed", "derive_seed", "stream"]
