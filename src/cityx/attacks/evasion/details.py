"""The ``redteam.evasion`` check's details, and its section of the report.

The details name the *threat model* the attack was held to first (a file
path with its SHA-256, or ``default: schema bounds, every sensor`` when the
submission declares none), then the sensors it let the attacker control,
the holdout rows attacked, the query budget per row and the seed, the rows
*evaded* (prediction moved off the true label by an input that breaks no
constraint), and the features the evading inputs changed most often: how
many evading rows changed each, and the median change in its own unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from cityx.core import Details, Fields, Metric
from cityx.governance import Section, Table, fmt_value

_NAME = "redteam.evasion details"


@dataclass(frozen=True, slots=True)
class EvasionDetails(Details):
    """What the evasion check attacked, under which threat model, and what it changed."""

    threat_model: str
    controlled: tuple[str, ...]
    rows: int
    budget: int
    seed: int
    evaded: int
    source: str
    # Feature -> evading rows that changed it, most often changed first.
    changed: Mapping[str, int] = field(default_factory=dict)
    # Feature -> median absolute change over the evading rows, in the feature's unit.
    median_change: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "threat_model": self.threat_model,
            "controlled": list(self.controlled),
            "rows": self.rows,
            "budget": self.budget,
            "seed": self.seed,
            "evaded": self.evaded,
            "source": self.source,
            "changed": dict(self.changed),
            "median_change": dict(self.median_change),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, _NAME)
        return cls(
            threat_model=f.text("threat_model"),
            controlled=f.texts("controlled"),
            rows=f.integer("rows"),
            budget=f.integer("budget"),
            seed=f.integer("seed"),
            evaded=f.integer("evaded"),
            source=f.text("source"),
            changed=f.integer_map("changed"),
            median_change=f.number_map("median_change"),
        )


def evasion_section(details: EvasionDetails, metrics: Mapping[str, Metric], key: str) -> Section:
    """The threat model first (a reader judges every number by it), then what was changed."""
    setup = Table(
        "Constrained evasion: the threat model the attack was held to, and what it attacked",
        ("Setting", "Value"),
        (
            ("Threat model", details.threat_model),
            ("Attacker controls", ", ".join(details.controlled) or "nothing"),
            (
                "Rows attacked",
                f"{fmt_value(details.rows)} correctly predicted rows of {details.source}",
            ),
            ("Budget", f"{fmt_value(details.budget)} queries per row"),
            ("Seed", str(details.seed)),
            (
                "Evaded",
                f"{fmt_value(details.evaded)} of {fmt_value(details.rows)} rows, "
                "with no constraint broken",
            ),
        ),
    )
    tables = [setup]
    if details.changed:
        tables.append(
            Table(
                f"Features the {fmt_value(details.evaded)} evading inputs changed, most often "
                "first; median absolute change in the feature's unit",
                ("Feature", "Rows changed", "Median change"),
                tuple(
                    (name, fmt_value(count), fmt_value(details.median_change.get(name)))
                    for name, count in details.changed.items()
                ),
                frozenset({1, 2}),
            )
        )
    return Section(
        tables=tuple(tables),
        shown=frozenset(
            {"threat_model", "controlled", "rows", "budget", "seed", "evaded", "source"}
            | {"changed", "median_change"}
        ),
    )


__all__ = ["EvasionDetails", "evasion_section"]
