"""The ``explanation.scaffold`` attack: a model that hides its bias from perturbation explainers.

Slack et al. ("Fooling LIME and SHAP", AIES 2020) wrap a biased model in a
*scaffold*: an out-of-distribution detector routes the off-manifold points
that LIME and KernelSHAP query to an innocent model, and real inputs to the
biased one. The explanations then show the innocent model's reasons while
real decisions discriminate. This attack builds such a model from a
submission's training data (see :mod:`.model` for the parts and words) and
writes it as an entry-point artifact (``scaffold.py`` plus its parts), which
the isolated worker loads like any vendor's code. The detection check is
``explain.scaffolding``.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, final

import numpy as np
import pandas as pd
import tomlkit

from cityx.core import DataError, InputError, Param, Principle, stream
from cityx.data.perturbations import perturbations
from cityx.submissions import validate_submission

from ..base import Access, Attack, AttackKind, AttackSpec, AttackTarget, NistClass
from . import vendor
from .model import DETECTORS, fit_scaffold, group_cut

ENTRYPOINT = "scaffold:load"


@dataclass(frozen=True, slots=True)
class ScaffoldResult:
    """The written artifact and what the scaffold does, measured on the training rows."""

    artifact: Path
    entrypoint: str
    proxy: str
    adverse: str
    detector: str
    params: Mapping[str, float]
    seed: int
    measured: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": str(self.artifact),
            "entrypoint": self.entrypoint,
            "proxy": self.proxy,
            "adverse": self.adverse,
            "detector": self.detector,
            "params": dict(self.params),
            "seed": self.seed,
            "measured": dict(self.measured),
        }


def pick_proxy(
    table: pd.DataFrame, features: Sequence[str], sensitive: str, *, group_share: float = 0.3
) -> str:
    """The input most associated with ``sensitive`` (correlation ratio of the groups) among
    those that can single out about ``group_share`` of the rows (see :func:`group_cut`)."""
    if sensitive not in table.columns:
        raise DataError(f"no sensitive column {sensitive!r}", where="scaffold")
    codes = pd.factorize(table[sensitive])[0]
    best, best_eta = None, -1.0
    for name in features:
        v = table[name].to_numpy(dtype=np.float64)
        if abs(float((v >= group_cut(v, group_share)).mean()) - group_share) > 0.1:
            continue
        total = float(((v - v.mean()) ** 2).sum())
        means = pd.Series(v).groupby(codes).transform("mean").to_numpy()
        eta = float(((means - v.mean()) ** 2).sum()) / total if total > 0 else 0.0
        if eta > best_eta:
            best, best_eta = name, eta
    if best is None:
        raise InputError(
            f"no input can single out about {group_share:.0%} of the rows", where="scaffold"
        )
    return best


class ScaffoldAttack(Attack):
    spec: ClassVar[AttackSpec] = AttackSpec(
        id="explanation.scaffold",
        version="1",
        goal="Hide a model's reliance on a proxy of a sensitive column from perturbation "
        "explainers (LIME, KernelSHAP): an OOD detector routes their off-manifold queries to "
        "an innocent model, real inputs to the biased one",
        target=AttackTarget.PREDICTOR,
        atlas=("AML.T0018",),
        nist_class=NistClass.MISUSE,
        access=frozenset({Access.WHITE_BOX, Access.TRAINING_DATA}),
        params=(
            Param(
                "group_share",
                0.3,
                0.05,
                0.9,
                description="share of training rows (highest proxy values) the biased model "
                "gives the adverse class",
            ),
            Param(
                "detector",
                0,
                0,
                len(DETECTORS) - 1,
                integer=True,
                description="OOD detector: "
                + ", ".join(f"{k} {n}" for k, n in enumerate(DETECTORS))
                + " (0 is Slack et al.'s random forest on real vs perturbed rows)",
            ),
        ),
        principle=Principle.EXPLAINABILITY,
        reference="Slack, Hilgard, Jia, Singh, Lakkaraju: Fooling LIME and SHAP, AIES 2020",
    )
    meta = spec.plugin_meta
    subkind: ClassVar[AttackKind] = AttackKind.SCAFFOLD

    @final
    def build(
        self,
        table: pd.DataFrame,
        *,
        features: Sequence[str],
        label: str,
        out: Path,
        sensitive: str | None = None,
        proxy: str | None = None,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        holdout: pd.DataFrame | None = None,
    ) -> ScaffoldResult:
        """Fit the scaffold on ``table`` and write ``out/scaffold.py`` with its parts.

        ``measured`` says how well it hides: the share of training rows its detector
        calls perturbations (``real_flagged``), of fresh explainer queries it routes to
        the innocent model (``perturbed_caught``) and of training rows whose answer
        the bias changes (``real_changed``); with ``holdout``, the last two on it too.
        """
        values = self.configure(params)
        where = f"attack {self.spec.id}"
        missing = [c for c in (*features, label) if c not in table.columns]
        if missing:
            raise DataError(f"no column {missing[0]!r}", where=where)
        if len(table) < 50:
            raise InputError(f"{len(table)} rows are too few to fit a scaffold", where=where)
        if proxy is None:
            if sensitive is None:
                raise InputError("name a proxy column or a sensitive column", where=where)
            proxy = pick_proxy(table, features, sensitive, group_share=values["group_share"])
        if proxy not in features:
            raise InputError(f"proxy {proxy!r} is not a model input", where=where)
        x = table[list(features)].to_numpy(dtype=np.float64)
        y = table[label].astype(str).to_numpy()
        rng = stream(seed, "attack", self.spec.id)
        fit_seed = int(rng.integers(0, 2**31 - 1))
        detector = DETECTORS[int(values["detector"])]
        parts = fit_scaffold(
            x,
            y,
            proxy=list(features).index(proxy),
            group_share=values["group_share"],
            detector=detector,
            seed=fit_seed,
        )
        out.mkdir(parents=True, exist_ok=True)
        blob = pickle.dumps(parts.to_payload())
        (out / vendor.PARTS_FILE).write_bytes(blob)
        source = Path(vendor.__file__).read_text(encoding="utf-8")
        source = source.replace(
            'PARTS_SHA256 = ""', f'PARTS_SHA256 = "{hashlib.sha256(blob).hexdigest()}"', 1
        )
        artifact = out / "scaffold.py"
        artifact.write_text(source, encoding="utf-8")
        model = vendor.ScaffoldedModel(parts.to_payload())
        fake = perturbations(x, rng, 2000)
        inn = parts.innocent.predict(x[:, list(parts.keep)])
        measured = {
            "real_flagged": float(model.perturbed(x).mean()),
            "perturbed_caught": float(model.perturbed(fake).mean()),
            "real_changed": float((model.predict(x) != inn).mean()),
        }
        if holdout is not None:
            xh = holdout[list(features)].to_numpy(dtype=np.float64)
            inn_h = parts.innocent.predict(xh[:, list(parts.keep)])
            measured["holdout_flagged"] = float(model.perturbed(xh).mean())
            measured["holdout_changed"] = float((model.predict(xh) != inn_h).mean())
        return ScaffoldResult(
            artifact=artifact,
            entrypoint=ENTRYPOINT,
            proxy=proxy,
            adverse=parts.adverse,
            detector=detector,
            params=values,
            seed=seed,
            measured={k: round(v, 4) for k, v in measured.items()},
        )


def plant_scaffold(
    submission: Path,
    out: Path,
    *,
    sensitive: str | None = None,
    proxy: str | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> ScaffoldResult:
    """A copy of a predictor submission whose artifact is a scaffold fitted on its training data."""
    manifest = validate_submission(submission).raise_for_errors()
    if manifest.data.training is None:
        raise InputError("the submission names no training data", where=str(submission))
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} exists and is not empty", where="--out")
    shutil.copytree(submission, out, ignore=shutil.ignore_patterns(manifest.artifact.path))
    table = pd.read_csv(submission / manifest.data.training)
    sensitive = sensitive or next(iter(manifest.fairness.sensitive), None)
    result = ScaffoldAttack().build(
        table,
        features=manifest.input_schema().names,
        label=manifest.outputs.label_column,
        out=out / "model",
        sensitive=sensitive,
        proxy=proxy,
        params=params,
        seed=seed,
    )
    doc = tomlkit.parse((out / "cityx.toml").read_text(encoding="utf-8"))
    art = doc["artifact"]
    art["path"] = "model/scaffold.py"
    art["format"] = "entrypoint"
    art["entrypoint"] = ENTRYPOINT
    digest = hashlib.sha256(result.artifact.read_bytes()).hexdigest()
    art["sha256"] = digest
    (out / "cityx.toml").write_text(re.sub(r"\n{3,}", "\n\n", tomlkit.dumps(doc)), "utf-8")
    return result


__all__ = ["ENTRYPOINT", "ScaffoldAttack", "ScaffoldResult", "pick_proxy", "plant_scaffold"]
