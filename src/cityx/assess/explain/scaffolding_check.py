"""The ``explain.scaffolding`` check: is the model hiding behaviour from perturbation explainers?

It runs :func:`.scaffolding.probe_scaffolding` on the predictor through
the isolated worker (the vendor's model never runs in our process) with the
holdout as the real rows, and turns the probe's verdict into findings:

- ``scaffolded``: a high finding (the model's explanations cannot be
  trusted: it answers explainers' queries unlike its real decisions);
- ``undetermined``: a low finding that leaves high open (the gate does not
  pass it), with the reason the evidence does not reach;
- ``clean``: no finding.

A regression model is not probed (the probe compares labels): its result
is ``undetermined`` and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    Details,
    Evidence,
    Fields,
    Finding,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    Principle,
    RunError,
    Severity,
    Tags,
    Task,
    status_from,
)
from cityx.governance import Section, Table, fmt_value

from .scaffolding import FAR_CUT, NEAR_CUT, probe_scaffolding

_TAGS = Tags(Principle.EXPLAINABILITY, NistFunction.MEASURE, ("AML.T0018",), ("Art. 13",))


@dataclass(frozen=True, slots=True)
class ScaffoldingDetails(Details):
    """The probe's evidence (:class:`.scaffolding.ScaffoldingProbe` as JSON) and its data."""

    probe: Mapping[str, Any]
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"probe": dict(self.probe), "source": self.source}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, "explain.scaffolding details")
        return cls(probe=dict(f.obj("probe")), source=f.text("source"))


def scaffolding_section(
    details: ScaffoldingDetails, metrics: Mapping[str, Metric], key: str
) -> Section:
    p = details.probe
    rows = (
        ("Verdict", str(p.get("verdict"))),
        ("Reason", str(p.get("reason"))),
        ("Real rows / model queries", f"{p.get('real_rows')} / {p.get('queries')}"),
        ("Twin agreement on held-out real rows", fmt_value(p.get("twin_agreement"))),
        ("Near-hybrid flips (excess over honest models)", fmt_value(p.get("near_excess"))),
        ("Disagreement on explainer queries (excess)", fmt_value(p.get("far_excess"))),
    )
    tables = [Table("Scaffolding probe", ("Measure", "Value"), rows)]
    hidden = p.get("hidden") or []
    if hidden:
        tables.append(
            Table(
                "Features that drive real decisions more than what an explainer sees "
                "(share of importance, real minus explainer view)",
                ("Feature", "Shift"),
                tuple((str(h[0]), fmt_value(h[1])) for h in hidden),
                frozenset({1}),
            )
        )
    return Section(tables=tuple(tables), shown=frozenset({"probe", "source"}))


class ExplainScaffolding(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="explain.scaffolding",
        kind=PluginKind.CHECK,
        version="1",
        summary="Detects a scaffolded model (Slack et al. 2020) that answers perturbation "
        "explainers' off-manifold queries unlike its decisions on real rows",
        tags=_TAGS,
        supports=frozenset({"predictor"}),
    )
    threshold_metrics = ()
    option_defaults: ClassVar[Mapping[str, Any]] = {"near_cut": NEAR_CUT, "far_cut": FAR_CUT}
    details_type = ScaffoldingDetails
    report_section = staticmethod(scaffolding_section)

    def _run(self, ctx: CheckContext) -> CheckResult:
        if ctx.predictor is None or ctx.holdout is None or ctx.manifest is None:
            raise RunError("the scaffolding probe needs a loaded predictor and holdout data")
        predictor = ctx.predictor
        names = ctx.manifest.input_schema().names
        source = ctx.holdout.source
        if predictor.outputs.task is Task.REGRESSION:
            probe: dict[str, Any] = {
                "verdict": "undetermined",
                "reason": "the probe compares labels; a regression model is not probed",
            }
        else:

            def query(x: Any) -> Any:
                return np.asarray(predictor.predict(x).values).astype(str)

            probe = probe_scaffolding(
                query,
                np.asarray(ctx.holdout.features, dtype=np.float64),
                names,
                seed=ctx.seed,
                near_cut=float(ctx.options["near_cut"]),
                far_cut=float(ctx.options["far_cut"]),
            ).to_json()
        metrics = {
            "near_excess": Metric(probe.get("near_excess")),
            "far_excess": Metric(probe.get("far_excess")),
        }
        verdict = str(probe["verdict"])
        findings: tuple[Finding, ...] = ()
        if verdict != "clean":
            hidden = ", ".join(f"{h[0]} ({h[1]:+.2f})" for h in probe.get("hidden") or [])
            scaffolded = verdict == "scaffolded"
            findings = (
                Finding(
                    id=f"{self.meta.id}/{verdict}",
                    check=self.meta.id,
                    title="The model answers explainers' queries unlike its real decisions: "
                    "its explanations hide what it does"
                    if scaffolded
                    else "Whether the model hides behaviour from explainers is undetermined",
                    severity=Severity.HIGH if scaffolded else Severity.LOW,
                    severity_upper=None if scaffolded else Severity.HIGH,
                    severity_reason=str(probe["reason"]),
                    tags=_TAGS,
                    description=(
                        f"Features that drive real decisions more than an explainer sees: {hidden}."
                        if hidden
                        else ""
                    ),
                    evidence=Evidence(
                        metrics={k: m.value for k, m in metrics.items()},
                        files=(source,),
                        seed=ctx.seed,
                    ),
                ),
            )
        details = ScaffoldingDetails(probe=probe, source=source)
        return CheckResult(self.meta.id, status_from(findings), metrics, findings, details)


__all__ = ["ExplainScaffolding", "ScaffoldingDetails", "scaffolding_section"]
