"""The ``redteam.campaign`` check's details, and its section of the report.

The details point to the campaign's ``campaign.json`` and carry its attack
*groups* (one per scenario, attack and intensity: the paired change of the
KPI in percent with its 95 % interval over seeds, the success rate, the
share of cells the guard or the interop verification noticed, and the
attacker's cost) and its *failed* cells, as :mod:`cityx.runs.campaign`
records them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from markupsafe import Markup

from cityx.core import Details, Fields, Metric, lenient
from cityx.governance import Plot, Section, Table, fmt_value, impact_chart

_NAME = "redteam.campaign details"
Point = tuple[float, float | None, float | None, float | None]


@dataclass(frozen=True, slots=True)
class CampaignDetails(Details):
    """The campaign file, its attack groups and its failed cells (as the campaign records)."""

    campaign: str
    groups: tuple[Mapping[str, Any], ...]
    failed: tuple[Mapping[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "groups": [dict(g) for g in self.groups],
            "failed": [dict(f) for f in self.failed],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, _NAME)
        return cls(f.text("campaign"), f.objects("groups"), f.objects("failed"))

    @property
    def attack_groups(self) -> tuple[Mapping[str, Any], ...]:
        """The groups, when every one has its measured change (a finished campaign's)."""
        ok = self.groups and all("change_pct" in g for g in self.groups)
        return self.groups if ok else ()


def campaign_section(details: CampaignDetails, metrics: Mapping[str, Metric], key: str) -> Section:
    """Impact against intensity per attack, and a row per attack group."""
    groups = details.attack_groups
    if not groups:
        return Section()
    series: dict[str, list[Point]] = {}
    rows = []
    for g in groups:
        change = lenient.obj(g.get("change_pct"))
        detected = lenient.obj(g.get("detection_rate"))
        cost = lenient.obj(g.get("cost"))
        series.setdefault(_text(g.get("attack")), []).append(
            (
                lenient.number(g.get("intensity")) or 0.0,
                lenient.number(change.get("value")),
                lenient.number(change.get("ci_low")),
                lenient.number(change.get("ci_high")),
            )
        )
        rows.append(
            (
                f"{_text(g.get('attack'))} on {_text(g.get('scenario'))}",
                fmt_value(g.get("intensity")),
                f"{fmt_value(change.get('value'))} [{fmt_value(change.get('ci_low'))}, "
                f"{fmt_value(change.get('ci_high'))}]",
                fmt_value(g.get("success_rate")),
                fmt_value(detected.get("guard")),
                fmt_value(detected.get("interop")),
                f"{fmt_value(cost.get('sensors'))} sensors, "
                f"{fmt_value(cost.get('magnitude'))} {_text(cost.get('unit'))}",
            )
        )
    return Section(
        plots=(Plot("Impact against intensity", Markup(impact_chart(f"{key}-impact", series))),),
        tables=(
            Table(
                "Red-team campaign: each attack against the same seeds unattacked; change of "
                "mean time loss in % [95 % interval over seeds]",
                ("Attack", "Intensity", "Change %", "Success", "Guard", "Interop", "Cost"),
                tuple(rows),
                frozenset({1, 2, 3, 4, 5}),
            ),
        ),
        shown=frozenset({"groups"}),
    )


def _text(v: Any) -> str:
    return "" if v is None else v if isinstance(v, str) else fmt_value(v)


__all__ = ["CampaignDetails", "campaign_section"]
