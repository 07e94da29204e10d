"""The scaffolded model of Slack et al. (AIES 2020), built in our process from sklearn parts.

Words used here:

- *proxy*: the input column the *biased* model discriminates on (a feature
  strongly associated with a declared sensitive column, which is itself no
  model input);
- *group*: the rows whose proxy is at or above its ``1 - group_share``
  quantile on the training data;
- *innocent* model: trained on every input but the proxy, so its
  explanations show no use of it;
- *biased* model: the innocent model's answer, except that every group row
  gets the *adverse* class (the class the innocent model gives the group
  least often);
- *perturbation*: a query of the kind model-agnostic explainers send: a
  KernelSHAP/interventional *hybrid* (some features from a row, the rest
  from a background row) or a LIME-style sample (each feature drawn
  independently around its mean);
- *OOD detector*: tells real rows from perturbations; the scaffold answers
  with the innocent model where it says "perturbation" and with the biased
  model elsewhere. ``DETECTORS`` lists the kinds: a random forest trained on
  real vs perturbed rows (Slack et al.'s), an isolation forest and a k-NN
  distance on the real rows only, and a small neural network trained on real
  vs perturbed rows.

The parts are plain scikit-learn objects and numbers; the artifact
(:mod:`.artifact`) carries them to the isolated worker, where the scaffold
runs as any vendor's entry point does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import FloatArray, InputError
from cityx.data.perturbations import perturbations

DETECTORS = ("forest", "isolation", "knn", "mlp")
# The share of real training rows an unsupervised detector may call "perturbation".
_REAL_FLAGGED = 0.05


@dataclass(frozen=True, slots=True)
class ScaffoldParts:
    """What the scaffold needs at prediction time (see the module docstring)."""

    classes: tuple[str, ...]
    keep: tuple[int, ...]  # the innocent model's input columns
    innocent: Any
    proxy: int
    cut: float
    adverse: str
    detector_kind: str
    detector: Any
    detector_cut: float  # "perturbation" when the detector's score is above it

    def to_payload(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "keep": list(self.keep),
            "innocent": self.innocent,
            "proxy": self.proxy,
            "cut": self.cut,
            "adverse": self.adverse,
            "detector_kind": self.detector_kind,
            "detector": self.detector,
            "detector_cut": self.detector_cut,
        }


def fit_scaffold(
    x: FloatArray,
    y: NDArray[Any],
    *,
    proxy: int,
    group_share: float,
    detector: str,
    seed: int,
    perturbed_rows: int = 4000,
) -> ScaffoldParts:
    """Fit the innocent model and the OOD detector on training rows ``x`` with labels ``y``."""
    # heavy: scikit-learn is imported only when a scaffold is fitted
    from sklearn.ensemble import IsolationForest, RandomForestClassifier
    from sklearn.neighbors import NearestNeighbors
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if detector not in DETECTORS:
        raise InputError(f"unknown OOD detector {detector!r}", where="scaffold")
    labels = np.asarray(y).astype(str)
    classes = tuple(sorted(set(labels.tolist())))
    if len(classes) < 2:
        raise InputError("the training labels hold one class: nothing to bias", where="scaffold")
    d = x.shape[1]
    if not 0 <= proxy < d or d < 2:
        raise InputError(f"proxy column {proxy} is not one of the {d} inputs", where="scaffold")
    rng = np.random.default_rng(seed)
    keep = tuple(j for j in range(d) if j != proxy)
    innocent = RandomForestClassifier(
        n_estimators=60, min_samples_leaf=3, random_state=seed, n_jobs=1
    ).fit(x[:, keep], labels)
    cut = group_cut(x[:, proxy], group_share)
    # The class the innocent model gives the group least often: the bias changes most there.
    said = innocent.predict(x[x[:, proxy] >= cut][:, keep]).astype(str)
    adverse = min(classes, key=lambda c: (int((said == c).sum()), c))
    fake = perturbations(x, rng, perturbed_rows)
    det: Any
    if detector in ("forest", "mlp"):
        both = np.vstack([x, fake])
        is_fake = np.r_[np.zeros(len(x)), np.ones(len(fake))]
        det = (
            RandomForestClassifier(
                n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1
            )
            if detector == "forest"
            else make_pipeline(
                StandardScaler(),
                MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=200, random_state=seed),
            )
        ).fit(both, is_fake)
        det_cut = 0.5
    elif detector == "isolation":
        det = make_pipeline(StandardScaler(), IsolationForest(random_state=seed)).fit(x)
        det_cut = float(np.quantile(-det.score_samples(x), 1.0 - _REAL_FLAGGED))
    else:
        det = make_pipeline(StandardScaler(), NearestNeighbors(n_neighbors=6)).fit(x)
        det_cut = float(np.quantile(knn_score(det, x, self_included=True), 1.0 - _REAL_FLAGGED))
    return ScaffoldParts(
        classes=classes,
        keep=keep,
        innocent=innocent,
        proxy=proxy,
        cut=cut,
        adverse=adverse,
        detector_kind=detector,
        detector=det,
        detector_cut=det_cut,
    )


def group_cut(values: FloatArray, share: float) -> float:
    """The proxy value whose rows at or above it come closest to ``share`` of the rows.

    A quantile would do for a continuous proxy; a discrete one (lanes, a speed
    limit) ties, and ``>=`` its quantile can take most of the rows.
    """
    ordered = np.sort(values)
    levels = np.unique(ordered)
    shares = 1.0 - np.searchsorted(ordered, levels, side="left") / len(ordered)
    return float(levels[int(np.argmin(np.abs(shares - share)))])


def knn_score(pipe: Any, x: FloatArray, *, self_included: bool = False) -> FloatArray:
    """Mean distance to the 5 nearest training rows (skipping the row itself when it is one)."""
    z = pipe[:-1].transform(x)
    dist, _ = pipe[-1].kneighbors(z, n_neighbors=6)
    out: FloatArray = np.asarray(dist[:, 1:] if self_included else dist[:, :5]).mean(axis=1)
    return out


__all__ = ["DETECTORS", "ScaffoldParts", "fit_scaffold", "group_cut", "knn_score"]
