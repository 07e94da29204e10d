"""The trial report: one self-contained HTML file a regulator reads before the gate.

The *report* is a pure function of a trial's ``results.json`` document
(findings, check results, the gate decision and the policy that made it),
read as :class:`~cityx.core.TrialResults`: the same document always gives
byte-identical HTML. The file opens offline: its CSS is inline, its plots
are inline SVG, and it fetches nothing.

Words used here:

- *undefined*: a value recorded as ``null`` (a metric that could not be
  computed). The report prints "undefined", never 0.
- *not run*: a section whose data is absent from the document, because the
  trial stopped early or an older runner did not record it.
- *interval*: a metric's 95 % confidence interval, written ``[low, high]``
  after the value, as in ``0.871 [0.853, 0.889]``.
- *section*: a check's part of the report, drawn by the check itself from
  the public view vocabulary (:class:`Table`, :class:`Plot`,
  :class:`Section`, :func:`fmt_value`, :func:`fmt_metric`, and the charts
  of :mod:`cityx.governance.plots`); see :mod:`.sections`.

Modules: :mod:`.view` (the view model), :mod:`.formatting` (how values
read), :mod:`.sections` (each check's section), :mod:`.build` (the view
from the results) and :mod:`.write` (HTML, to a file).
"""

from cityx.core import RESULTS_SCHEMA_VERSION

from .build import build_view
from .formatting import fmt_metric, fmt_value
from .sections import RendersSection
from .view import Plot, Section, Table
from .write import render_html, write_report

__all__ = [
    "RESULTS_SCHEMA_VERSION",
    "Plot",
    "RendersSection",
    "Section",
    "Table",
    "build_view",
    "fmt_metric",
    "fmt_value",
    "render_html",
    "write_report",
]
