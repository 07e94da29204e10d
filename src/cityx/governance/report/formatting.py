"""How values read in the report: numbers, metrics, times and dates.

*Undefined* is a value recorded as ``null`` (a metric that could not be
computed): it reads "undefined", never 0. A metric reads ``value [low,
high] unit``, its 95 % *interval* in brackets and with the value's decimals.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cityx.core import Metric

UNDEFINED = "undefined"
NOT_RUN = "not run"
_JSON_CUT = 300


def number(v: float, decimals: int) -> str:
    """``v`` with ``decimals`` decimals; never a tiny non-zero number as 0."""
    if math.isnan(v):
        return UNDEFINED
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v != 0 and abs(v) < 0.5 * 10.0**-decimals:
        return f"{v:.2g}"  # too small for the fixed decimals; never print it as 0
    return f"{v:.{decimals}f}"


def decimals(values: Sequence[Any], *, interval: bool) -> int:
    """Decimals for numbers shown together: 0 for whole numbers, 1 from 100 up, else 3."""
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    finite = [v for v in nums if math.isfinite(v)]
    if not finite:
        return 3
    if not interval and all(v.is_integer() for v in finite):
        return 0
    return 1 if max(abs(v) for v in finite) >= 100 else 3


def fmt_value(v: Any) -> str:
    """One value for display: ``None`` is "undefined", floats get up to 3 decimals."""
    if v is None:
        return UNDEFINED
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = number(v, decimals([v], interval=False))
        # A lone number has no column to align with: drop trailing zeros (81.4, not 81.400).
        return text.rstrip("0").rstrip(".") if re.fullmatch(r"-?\d+\.\d+", text) else text
    if isinstance(v, str):
        return v
    return _compact_json(v)


def _compact_json(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= _JSON_CUT else text[: _JSON_CUT - 1] + "…"


def metric_parts(m: Metric) -> tuple[str, str | None]:
    """A metric's value and interval (``None`` when none was estimated), same decimals."""
    has_ci = m.ci_low is not None or m.ci_high is not None
    d = decimals([m.value, m.ci_low, m.ci_high], interval=has_ci)

    def one(v: float | None) -> str:
        return UNDEFINED if v is None else number(v, d)

    return one(m.value), (f"[{one(m.ci_low)}, {one(m.ci_high)}]" if has_ci else None)


def fmt_metric(metric: Metric | Mapping[str, Any] | float | None) -> str:
    """A metric as ``value [low, high] unit``; no interval when none was estimated.

    A recorded metric object (a mapping) reads as a :class:`~cityx.core.Metric`;
    a bare number, where a metric was expected, reads as a value.
    """
    if isinstance(metric, Mapping):
        metric = Metric.from_json(metric)
    if not isinstance(metric, Metric):
        return fmt_value(metric)
    value, interval = metric_parts(metric)
    text = f"{value} {interval}" if interval else value
    return f"{text} {metric.unit}" if metric.unit and metric.value is not None else text


def seconds(v: float | None) -> str:
    if v is None:
        return UNDEFINED
    return f"{v:.2f} s" if v < 100 else f"{v:.0f} s"


def date(text: str | None) -> str:
    if not text:
        return UNDEFINED
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    if when.utcoffset() == timedelta(0):
        return f"{when:%Y-%m-%d %H:%M:%S} UTC"
    return when.isoformat(sep=" ")


def or_undefined(text: str | None) -> str:
    return text or UNDEFINED


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "check"


__all__ = [
    "NOT_RUN",
    "UNDEFINED",
    "date",
    "decimals",
    "fmt_metric",
    "fmt_value",
    "metric_parts",
    "number",
    "or_undefined",
    "seconds",
    "slug",
]
