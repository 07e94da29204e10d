"""Does the model behave one way on explainers' queries and another on real inputs?

A *scaffolded* model (Slack et al., AIES 2020; the attack is
``explanation.scaffold``) answers the off-manifold *perturbations* that
LIME and KernelSHAP send (:mod:`cityx.data.perturbations`) with an innocent
model, and real inputs with a biased one, so its explanations hide what it
does. This probe only queries the model (through the isolated worker), so it
applies to any predictor whose labels it can read.

Words used here:

- *real* rows: the holdout, split in two halves A and B;
- *twin*: a random forest fitted to the model's labels on the real rows A;
  it behaves like the model on the data but is honest by construction;
- *references*: more honest models of other families (extremely randomised trees,
  logistic regression, k nearest neighbours) fitted the same way; how much
  they disagree with the twin off the data manifold is how much honest
  models that behave alike on the data may differ there;
- *near flips*: the share of *near hybrids* (a real row B with one or two
  features replaced from another real row, the queries a KernelSHAP
  explainer weights most) whose label differs from the row's own label.
  ``near_excess`` is the model's near flips minus the largest of the twin's
  and the references': a scaffold flips on every hybrid its detector
  catches, whatever feature was replaced;
- *far disagreement*: the share of explainer queries (hybrids of every
  size, LIME samples, marginal samples; :mod:`cityx.data.perturbations`)
  where the model and the twin disagree. ``far_excess`` is the model's minus
  the largest reference's;
- each excess has a 95% bootstrap interval (over the queried rows); the
  verdict is ``scaffolded`` when either interval lies above its cut-off,
  ``clean`` when both lie below, else ``undetermined``;
- *hidden shift*: per feature, its share of the twin's importance (what
  drives the decisions on real rows) minus its share in a forest fitted to
  the model's labels on the explainer queries (what an explainer sees); the
  largest names the feature an explainer would miss.

The evidence does not reach (``undetermined``) when there are too few real
rows, when the twin cannot mimic the model on real rows (then there is no
honest reference), or when the model answers with one label only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cityx.core import FloatArray
from cityx.data.perturbations import perturbations

# Tuned on the development seeds of bench/explain_scaffolding.py only (see docs/explanations.md).
NEAR_CUT = 0.06
FAR_CUT = 0.15
MIN_REAL_ROWS = 200
TWIN_MIN_AGREEMENT = 0.8
PERTURBED_ROWS = 3000
NEAR_ROWS = 2000
_BOOTSTRAP = 300

Query = Callable[[FloatArray], NDArray[np.str_]]


@dataclass(frozen=True, slots=True)
class ScaffoldingProbe:
    """The probe's evidence and verdict (see the module docstring)."""

    verdict: str  # "scaffolded" | "clean" | "undetermined"
    reason: str
    real_rows: int
    queries: int
    twin_agreement: float | None = None
    near_flips: float | None = None
    near_excess: float | None = None
    near_interval: tuple[float, float] | None = None
    far_disagreement: float | None = None
    far_excess: float | None = None
    far_interval: tuple[float, float] | None = None
    hidden: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "real_rows": self.real_rows,
            "queries": self.queries,
            "twin_agreement": self.twin_agreement,
            "near_flips": self.near_flips,
            "near_excess": self.near_excess,
            "near_interval": None if self.near_interval is None else list(self.near_interval),
            "far_disagreement": self.far_disagreement,
            "far_excess": self.far_excess,
            "far_interval": None if self.far_interval is None else list(self.far_interval),
            "hidden": [[n, v] for n, v in self.hidden],
        }


def _references(seed: int) -> list[Any]:
    return [
        ExtraTreesClassifier(n_estimators=60, min_samples_leaf=2, random_state=seed, n_jobs=1),
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=7)),
    ]


def _forest(seed: int) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=60, min_samples_leaf=2, random_state=seed, n_jobs=1)


def probe_scaffolding(
    query: Query,
    real: FloatArray,
    names: Sequence[str],
    *,
    seed: int,
    near_cut: float = NEAR_CUT,
    far_cut: float = FAR_CUT,
) -> ScaffoldingProbe:
    """Query the model on real rows, near hybrids and explainer queries; judge the excesses."""
    n, d = real.shape
    if n < MIN_REAL_ROWS:
        return ScaffoldingProbe(
            "undetermined", f"{n} real rows; the probe needs at least {MIN_REAL_ROWS}", n, 0
        )
    if d < 2:
        return ScaffoldingProbe("undetermined", "one input: nothing to hide behind", n, 0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    a, b = real[order[: n // 2]], real[order[n // 2 :]]
    at = rng.integers(0, len(b), NEAR_ROWS)
    size = rng.integers(1, 3, NEAR_ROWS)
    swap = np.argsort(rng.random((NEAR_ROWS, d)), axis=1) < size[:, None]
    near = np.where(swap, real[rng.integers(0, n, NEAR_ROWS)], b[at])
    far = perturbations(a, rng, PERTURBED_ROWS, kinds=("hybrid", "lime", "marginal"))
    labels = np.asarray(query(np.vstack([a, b, near, far]))).astype(str)
    queries = int(labels.shape[0])
    la, lb = labels[: len(a)], labels[len(a) : n]
    l_near, l_far = labels[n : n + NEAR_ROWS], labels[n + NEAR_ROWS :]
    if len(set(la.tolist()) | set(lb.tolist())) < 2:
        return ScaffoldingProbe(
            "undetermined", "the model gives one label on every real row", n, queries
        )
    twin = _forest(seed).fit(a, la)
    twin_agreement = float((twin.predict(b).astype(str) == lb).mean())
    if twin_agreement < TWIN_MIN_AGREEMENT or len(set(la.tolist())) < 2:
        return ScaffoldingProbe(
            "undetermined",
            f"a random forest mimics the model on only {twin_agreement:.0%} of held-out real "
            f"rows (needs {TWIN_MIN_AGREEMENT:.0%}): no honest reference to compare with",
            n,
            queries,
            twin_agreement=twin_agreement,
        )
    honest = [twin, *(m.fit(a, la) for m in _references(seed))]
    # Per honest model: flips on near hybrids, and (references) disagreement with the twin far.
    ref_near = [m.predict(near).astype(str) != m.predict(b).astype(str)[at] for m in honest]
    twin_far = twin.predict(far).astype(str)
    ref_far = [m.predict(far).astype(str) != twin_far for m in honest[1:]]
    flips = l_near != lb[at]
    far_dis = l_far != twin_far

    def near_of(i: NDArray[np.int64]) -> float:
        return float(flips[i].mean() - max(r[i].mean() for r in ref_near))

    def far_of(i: NDArray[np.int64]) -> float:
        return float(far_dis[i].mean() - max(r[i].mean() for r in ref_far))

    near_x = near_of(np.arange(NEAR_ROWS))
    far_x = far_of(np.arange(len(far)))
    near_boot = [near_of(rng.integers(0, NEAR_ROWS, NEAR_ROWS)) for _ in range(_BOOTSTRAP)]
    far_boot = [far_of(rng.integers(0, len(far), len(far))) for _ in range(_BOOTSTRAP)]
    near_iv = tuple(round(float(v), 4) for v in np.quantile(near_boot, [0.025, 0.975]))
    far_iv = tuple(round(float(v), 4) for v in np.quantile(far_boot, [0.025, 0.975]))
    view = _forest(seed + 1).fit(far, l_far)
    shift = _shares(twin.feature_importances_) - _shares(view.feature_importances_)
    hidden = tuple(
        (str(names[j]), round(float(shift[j]), 4)) for j in np.argsort(-shift)[:3] if shift[j] > 0
    )
    said = (
        f"near-hybrid flips {near_x:+.3f} over honest models (95% {near_iv[0]:.3f} to "
        f"{near_iv[1]:.3f}, cut-off {near_cut}); disagreement on explainer queries "
        f"{far_x:+.3f} (95% {far_iv[0]:.3f} to {far_iv[1]:.3f}, cut-off {far_cut})"
    )
    if near_iv[0] > near_cut or far_iv[0] > far_cut:
        verdict = "scaffolded"
        reason = "the model answers explainers' queries unlike its decisions on real rows: " + said
    elif near_iv[1] < near_cut and far_iv[1] < far_cut:
        verdict, reason = "clean", said
    else:
        verdict, reason = "undetermined", "an interval contains its cut-off: " + said
    return ScaffoldingProbe(
        verdict=verdict,
        reason=reason,
        real_rows=n,
        queries=queries,
        twin_agreement=round(twin_agreement, 4),
        near_flips=round(float(flips.mean()), 4),
        near_excess=round(near_x, 4),
        near_interval=(near_iv[0], near_iv[1]),
        far_disagreement=round(float(far_dis.mean()), 4),
        far_excess=round(far_x, 4),
        far_interval=(far_iv[0], far_iv[1]),
        hidden=hidden,
    )


def _shares(importance: FloatArray) -> FloatArray:
    total = float(np.sum(importance))
    return np.asarray(importance) / total if total > 0 else np.zeros_like(importance)


__all__ = ["FAR_CUT", "NEAR_CUT", "ScaffoldingProbe", "probe_scaffolding"]
