"""The ``fairness.groups`` check's details, and its section of the report.

The details name the *sensitive* columns and the *groups* they form (one
per combination of values, joined by ``|``). A classifier's hold, per
declared label (one against the rest), the group fairness result
(:meth:`~.summary.GroupFairness.to_json`) and each group's confusion
*counts* in ``counts_order`` (tn, fp, fn, tp); a regressor's, one result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from cityx.core import Details, Fields, Metric, Task, lenient
from cityx.governance import Section, Table, fmt_value

# Per-group rates shown in a fairness table, in this order.
GROUP_RATES = ("n", "tpr", "fpr", "ppv", "selection_rate", "accuracy", "base_rate")
COUNTS_ORDER = ("tn", "fp", "fn", "tp")


@dataclass(frozen=True, slots=True)
class FairnessDetails(Details):
    """What the group fairness check measured; ``task`` says which fields apply."""

    sensitive: tuple[str, ...]
    label_column: str | None
    bootstrap: int
    source: str
    task: str
    groups: tuple[str, ...]
    labels: tuple[str, ...] = ()
    by_label: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    counts: Mapping[str, tuple[tuple[int, ...], ...]] = field(default_factory=dict)
    counts_order: tuple[str, ...] = COUNTS_ORDER
    result: Mapping[str, Any] | None = None  # a regressor's

    @property
    def classifier(self) -> bool:
        return self.task == Task.CLASSIFICATION.value

    def to_json(self) -> dict[str, Any]:
        head = {
            "sensitive": list(self.sensitive),
            "label_column": self.label_column,
            "bootstrap": self.bootstrap,
            "source": self.source,
            "task": self.task,
        }
        if self.classifier:
            return head | {
                "labels": list(self.labels),
                "groups": list(self.groups),
                "by_label": {k: dict(v) for k, v in self.by_label.items()},
                "counts": {k: [list(row) for row in v] for k, v in self.counts.items()},
                "counts_order": list(self.counts_order),
            }
        return head | {
            "groups": list(self.groups),
            "result": None if self.result is None else dict(self.result),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, "fairness.groups details")
        task = f.text("task")
        classifier = task == Task.CLASSIFICATION.value
        by_label = f.field("by_label") if classifier else None
        counts = f.field("counts") if classifier else None
        return cls(
            sensitive=f.texts("sensitive"),
            label_column=f.text_or_null("label_column"),
            bootstrap=f.integer("bootstrap"),
            source=f.text("source"),
            task=task,
            groups=f.texts("groups"),
            labels=f.texts("labels") if classifier else (),
            by_label={k: by_label.obj(k) for k in by_label.data} if by_label else {},
            counts={k: counts.integer_rows(k) for k in counts.data} if counts else {},
            counts_order=f.texts("counts_order") if classifier else COUNTS_ORDER,
            result=None if classifier else f.obj_or_null("result"),
        )


def fairness_section(details: FairnessDetails, metrics: Mapping[str, Metric], key: str) -> Section:
    """Per label: each group's rates with the min/max ratios, and the result's warnings."""
    tables: list[Table] = []
    for label, one in details.by_label.items():
        groups = lenient.obj(one.get("groups"))
        ratios = lenient.obj(one.get("ratios"))
        rows = [
            (str(g), *(fmt_value(lenient.obj(v).get(r)) for r in GROUP_RATES))
            for g, v in groups.items()
        ]
        rows.append(("ratio min/max", "", *(fmt_value(ratios.get(r)) for r in GROUP_RATES[1:])))
        tables.append(
            Table(
                f"Fairness for {label!r} (one against the rest) by "
                f"{' x '.join(lenient.texts(one.get('sensitive')))}: rates per group; "
                "undefined where a group has no case to rate",
                ("Group", *GROUP_RATES),
                tuple(rows),
                frozenset(range(1, len(GROUP_RATES) + 1)),
            )
        )
        warnings = tuple((w,) for w in lenient.texts(one.get("warnings")))
        if warnings:
            tables.append(Table(f"Fairness warnings for {label!r}", ("Warning",), warnings))
    return Section(
        tables=tuple(tables), shown=frozenset({"labels", "by_label", "counts", "counts_order"})
    )


__all__ = ["COUNTS_ORDER", "GROUP_RATES", "FairnessDetails", "fairness_section"]
