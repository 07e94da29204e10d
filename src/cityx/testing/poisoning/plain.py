"""The ``plain`` family: feature tables with no time and no source column.

A seed draws one variant: a synthetic classification table
(scikit-learn's ``make_classification``: 4-200 features, 2-4 classes,
balanced or skewed), a synthetic regression table (``make_regression``),
or one of the data sets scikit-learn ships (breast cancer, handwritten
digits, diabetes; nothing is downloaded). The trusted set is a random
sample of the same rows held out of the table: 200 rows, or a third of a
small shipped data set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    make_classification,
    make_regression,
)

from cityx.core import Task, stream

from .tables import DrawnTable, TableMeta

LABEL = "target"
MIN_FEATURES, MAX_FEATURES = 4, 200
TRUSTED_ROWS = 200
VARIANTS = ("classification", "regression", "breast_cancer", "digits", "diabetes")
VARIANT_WEIGHTS = (0.4, 0.2, 0.15, 0.15, 0.1)
# The share of the majority class in synthetic classification tables.
BALANCES = (None, 0.7, 0.9)


def plain(seed: int) -> DrawnTable:
    """A plain feature table (see the module docstring)."""
    rng = stream(seed, "protocol", "family", "plain")
    variant = str(rng.choice(VARIANTS, p=VARIANT_WEIGHTS))
    state = int(rng.integers(2**31 - 1))
    task = Task.CLASSIFICATION
    if variant in ("classification", "regression"):
        n = int(rng.integers(800, 4001)) + TRUSTED_ROWS
        features = int(np.exp(rng.uniform(np.log(MIN_FEATURES), np.log(MAX_FEATURES + 1))))
        informative = int(rng.integers(2, min(features, 20) + 1))
        if variant == "classification":
            classes = int(rng.integers(2, 5))
            majority = BALANCES[int(rng.integers(len(BALANCES)))]
            weights = None
            if majority is not None:
                weights = [majority] + [(1 - majority) / (classes - 1)] * (classes - 1)
            x, y = make_classification(
                n_samples=n,
                n_features=features,
                n_informative=informative,
                n_redundant=int(rng.integers(0, features - informative + 1) // 2),
                n_classes=classes,
                n_clusters_per_class=1,
                weights=weights,
                flip_y=0.0,
                class_sep=float(rng.uniform(1.0, 2.0)),
                random_state=state,
            )
            variant = f"classification, {classes} classes, majority {majority or 'balanced'}"
        else:
            x, y = make_regression(
                n_samples=n,
                n_features=features,
                n_informative=informative,
                noise=float(rng.uniform(1.0, 20.0)),
                random_state=state,
            )
            task = Task.REGRESSION
        names = [f"x{j}" for j in range(x.shape[1])]
    else:
        loader = {
            "breast_cancer": load_breast_cancer,
            "digits": load_digits,
            "diabetes": load_diabetes,
        }[variant]
        shipped = loader()
        x, y = shipped.data, shipped.target
        names = [str(c).replace(" ", "_") for c in shipped.feature_names]
        if variant == "diabetes":
            task = Task.REGRESSION
    frame = pd.DataFrame(np.asarray(x, dtype=np.float64), columns=names)
    frame[LABEL] = y
    order = rng.permutation(len(frame))
    spare = min(TRUSTED_ROWS, len(frame) // 3)
    trusted = frame.iloc[np.sort(order[:spare])].reset_index(drop=True)
    table = frame.iloc[np.sort(order[spare:])].reset_index(drop=True)
    meta = TableMeta(
        family="plain",
        variant=f"{variant}, {len(names)} features",
        task=task,
        features=tuple(names),
        trusted=trusted,
    )
    return table, LABEL, (), meta


__all__ = ["LABEL", "VARIANTS", "plain"]
