"""Each check's section of the report, drawn by the check itself.

A check class that *renders its section* has a static ``report_section``
method (:class:`RendersSection`): given its own typed details, its metrics
and a *key* (a prefix for the ids inside its charts, unique in the
report), it returns a :class:`~.view.Section` built from the public view
vocabulary (:class:`~.view.Table`, :class:`~.view.Plot`,
:func:`~.formatting.fmt_value`, :func:`~.formatting.fmt_metric` and the
charts of :mod:`cityx.governance.plots`). The report finds the class
through the plugin registry and knows none of its details' keys.

A check's *generic* section is a name/value table of its details: the
whole of it for a check that draws nothing (or is not installed here, or
whose details do not fit its declared type), the keys its section does not
already show for the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from cityx.core import CheckRecord, Details, Metric, PluginKind, Registry

from .formatting import fmt_value
from .view import Section, Table


@runtime_checkable
class RendersSection(Protocol):
    """A check class that draws its own section of the report."""

    details_type: ClassVar[type[Details]]

    @staticmethod
    def report_section(details: Any, metrics: Mapping[str, Metric], key: str) -> Section:
        """The section for ``details`` (of the class's ``details_type``) and ``metrics``."""
        ...


def check_section(record: CheckRecord, key: str, registry: Registry) -> tuple[Section, str | None]:
    """The section ``record``'s check draws, or an empty one; and a note if drawing failed."""
    if record.id is None or record.details is None:
        return Section(), None
    try:
        cls = registry.load(PluginKind.CHECK, record.id)
    except Exception:  # not installed here (a third party's check), or broken: generic
        return Section(), None
    if not isinstance(cls, RendersSection) or not isinstance(record.details, cls.details_type):
        return Section(), None  # draws nothing, or details that do not fit its type
    try:
        return cls.report_section(record.details, record.metrics, key), None
    except Exception as exc:  # a bug in one check's drawing must not lose the whole report
        return Section(), (
            f"The section of check {record.id} could not be drawn ({type(exc).__name__}: {exc}); "
            "its details are listed as recorded."
        )


def details_table(check_id: str, details: Mapping[str, Any], shown: frozenset[str]) -> Table | None:
    """The name/value table of the details a check's section does not show, if any."""
    rest = [(str(k), fmt_value(v)) for k, v in details.items() if k not in shown]
    if not rest:
        return None
    return Table(f"Details of {check_id}", ("Name", "Value"), tuple(rest))


__all__ = ["RendersSection", "check_section", "details_table"]
