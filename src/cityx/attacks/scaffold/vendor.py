"""A scaffolded model's entry point, as a dishonest vendor would ship it.

This file is copied into the artifact (``scaffold.py``) next to the fitted
parts (``scaffold_parts.pkl``); the isolated worker imports it and calls
``load()``, as it does any vendor's entry point. It imports nothing from
cityx: it is vendor code, run only in the worker. ``PARTS_SHA256`` pins the
parts file, so the digest of this file in the manifest covers them too.
See :mod:`cityx.attacks.scaffold.model` for the words used.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np

PARTS_SHA256 = ""
PARTS_FILE = "scaffold_parts.pkl"


class ScaffoldedModel:
    """Innocent on what looks like an explainer's query, biased on real inputs."""

    def __init__(self, parts: dict[str, Any]) -> None:
        self.p = parts
        self.classes_ = np.asarray(parts["classes"], dtype=object)
        self.n_features_in_ = len(parts["keep"]) + 1

    def perturbed(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        kind, det, cut = self.p["detector_kind"], self.p["detector"], self.p["detector_cut"]
        if kind in ("forest", "mlp"):
            score = det.predict_proba(x)[:, 1]
        elif kind == "isolation":
            score = -det.score_samples(x)
        else:
            dist, _ = det[-1].kneighbors(det[:-1].transform(x), n_neighbors=5)
            score = dist.mean(axis=1)
        return np.asarray(score > cut)

    def predict_proba(self, x: Any) -> np.ndarray[Any, Any]:
        x = np.asarray(x, dtype=np.float64)
        inn = self.p["innocent"]
        proba = np.zeros((x.shape[0], len(self.classes_)))
        cols = [list(self.classes_).index(c) for c in inn.classes_]
        proba[:, cols] = inn.predict_proba(x[:, self.p["keep"]])
        biased = proba.copy()
        group = x[:, self.p["proxy"]] >= self.p["cut"]
        biased[group] = 0.0
        biased[group, list(self.classes_).index(self.p["adverse"])] = 1.0
        return np.where(self.perturbed(x)[:, None], proba, biased)

    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        return np.asarray(self.classes_[np.argmax(self.predict_proba(x), axis=1)])


def load() -> ScaffoldedModel:
    path = Path(__file__).with_name(PARTS_FILE)
    data = path.read_bytes()
    if PARTS_SHA256 and hashlib.sha256(data).hexdigest() != PARTS_SHA256:
        raise ValueError(f"{PARTS_FILE} does not match the digest this entry point pins")
    # The vendor's own file, unpickled only in the isolated worker that runs this code.
    parts: dict[str, Any] = pickle.loads(data)
    return ScaffoldedModel(parts)
