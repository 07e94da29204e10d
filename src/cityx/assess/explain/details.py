"""The ``explain.fidelity`` check's details, and its section of the report.

The details hold the explanation's *method* and whether it is *exact*, the
*global view* (mean |attribution| per class and feature over the holdout
sample), the *fidelity* report card (see :mod:`.predictor`), a few example
rows with their counterfactuals, and the *proxies*: features strongly
associated with a declared sensitive column (correlation ratio at least
the check's ``proxy_association``) with the share of all attribution they
carry; the *dependence* plots of the most attributed features (value
against attribution to one class, see :mod:`.predictor`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from markupsafe import Markup, escape

from cityx.core import Details, Fields, Metric
from cityx.governance import Plot, Section, Table, fmt_value

from .charts import scatter_svg


@dataclass(frozen=True, slots=True)
class ExplainDetails(Details):
    method: str
    exact: bool
    output: str
    background_rows: int
    source: str
    features: tuple[str, ...]
    mean_abs: Mapping[str, Mapping[str, float]]
    fidelity: Mapping[str, float | None]
    examples: tuple[Mapping[str, Any], ...] = ()
    proxies: tuple[Mapping[str, Any], ...] = ()
    note: str = ""
    sensitive: tuple[str, ...] = field(default_factory=tuple)
    # Dependence plots: per top feature, [value, attribution to dependence_class] pairs.
    dependence: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    dependence_class: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "exact": self.exact,
            "output": self.output,
            "background_rows": self.background_rows,
            "source": self.source,
            "features": list(self.features),
            "mean_abs": {c: dict(v) for c, v in self.mean_abs.items()},
            "fidelity": dict(self.fidelity),
            "examples": [dict(e) for e in self.examples],
            "proxies": [dict(p) for p in self.proxies],
            "note": self.note,
            "sensitive": list(self.sensitive),
            "dependence": {f: [list(p) for p in v] for f, v in self.dependence.items()},
            "dependence_class": self.dependence_class,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, "explain.fidelity details")
        mean_abs = f.field("mean_abs")
        return cls(
            method=f.text("method"),
            exact=bool(data.get("exact")),
            output=f.text("output"),
            background_rows=f.integer("background_rows"),
            source=f.text("source"),
            features=f.texts("features"),
            mean_abs={k: mean_abs.number_map(k) for k in mean_abs.data},
            fidelity=f.nullable_number_map("fidelity"),
            examples=f.objects("examples"),
            proxies=f.objects("proxies"),
            note=f.text("note"),
            sensitive=f.texts("sensitive"),
            dependence={
                str(k): tuple((float(p[0]), float(p[1])) for p in v)
                for k, v in dict(data.get("dependence") or {}).items()
            },
            dependence_class=str(data.get("dependence_class") or ""),
        )


def bar_svg(title: str, values: Mapping[str, float], *, width: int = 520) -> Markup:
    """A horizontal bar chart as a small inline ``<svg>`` (no script, no external reference)."""
    items = sorted(values.items(), key=lambda kv: -abs(kv[1]))
    top = max((abs(v) for _, v in items), default=0.0) or 1.0
    row, label_w, bar_w = 18, 170, width - 240
    height = row * len(items) + 24
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<text x="0" y="12" font-size="11" font-weight="bold">{escape(title)}</text>',
    ]
    for k, (name, v) in enumerate(items):
        y = 20 + k * row
        w = abs(v) / top * bar_w
        colour = "#1d4ed8" if v >= 0 else "#b91c1c"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" font-size="10" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{colour}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" font-size="10">{v:.3g}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def explain_section(details: ExplainDetails, metrics: Mapping[str, Metric], key: str) -> Section:
    """Per-class charts of mean |attribution|, the fidelity card, examples and proxies."""
    plots = tuple(
        Plot(
            f"Mean |attribution| for {klass!r} ({details.method}, {details.output})",
            bar_svg(f"{klass}: mean |attribution| per feature", values),
            Table(
                f"Mean |attribution| for {klass!r}",
                ("Feature", "Mean |attribution|"),
                tuple((f, fmt_value(v)) for f, v in values.items()),
                frozenset({1}),
            ),
        )
        for klass, values in details.mean_abs.items()
    )
    plots += tuple(
        Plot(
            f"Dependence of the attribution to {details.dependence_class!r} on {feature}",
            scatter_svg(
                f"{feature}: value vs attribution to {details.dependence_class}",
                [p[0] for p in points],
                [p[1] for p in points],
                x_label=feature,
                y_label="attribution",
            ),
            Table(
                f"Dependence on {feature}",
                (feature, f"Attribution to {details.dependence_class}"),
                tuple((fmt_value(v), fmt_value(a)) for v, a in points[:20]),
                frozenset({0, 1}),
            ),
        )
        for feature, points in details.dependence.items()
    )
    card = Table(
        "Fidelity report card: additivity against the artifact's own output; share of "
        "decisions flipped removing the top-k features vs k random ones; rank stability "
        "between near rows; agreement between two methods",
        ("Measure", "Value"),
        tuple((k.replace("_", " "), fmt_value(v)) for k, v in details.fidelity.items()),
        frozenset({1}),
    )
    tables = [card]
    if details.examples:
        tables.append(
            Table(
                "Example rows: prediction, top contributions, counterfactual",
                ("Row", "Prediction", "Top contributions", "Counterfactual"),
                tuple(
                    (
                        str(e.get("row")),
                        str(e.get("prediction")),
                        ", ".join(
                            f"{n} {v:+.3g}"
                            for n, v in sorted(
                                dict(e.get("contributions") or {}).items(),
                                key=lambda kv: -abs(float(kv[1])),
                            )[:3]
                        ),
                        str((e.get("counterfactual") or {}).get("sentence", "none found")),
                    )
                    for e in details.examples
                ),
            )
        )
    if details.proxies:
        tables.append(
            Table(
                "Proxies of sensitive columns: association (correlation ratio) and share of "
                "attribution",
                ("Feature", "Sensitive column", "Association", "Attribution share"),
                tuple(
                    (
                        str(p["feature"]),
                        str(p["sensitive"]),
                        fmt_value(p["association"]),
                        fmt_value(p["share"]),
                    )
                    for p in details.proxies
                ),
                frozenset({2, 3}),
            )
        )
    return Section(
        plots=plots,
        tables=tuple(tables),
        shown=frozenset(
            {
                "mean_abs",
                "fidelity",
                "examples",
                "proxies",
                "features",
                "dependence",
                "dependence_class",
            }
        ),
    )


__all__ = ["ExplainDetails", "bar_svg", "explain_section"]
