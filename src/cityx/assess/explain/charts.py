"""Small inline SVG charts for explanations: dependence plots and decision timelines.

- a *dependence plot* (SHAP's): one point per explained row, the feature's
  value across, its attribution up; its shape shows how the feature pushes
  the decision over its range;
- a *decision timeline*: for one intersection, the chosen phase over time
  (filled dots), the runner-up (hollow rings) and, in a track below, the
  score margin between them (bars; grey where the safety envelope, not the
  model, decided).

The charts are plain ``<svg>`` strings with no script and no external
reference, so a report stays one self-contained file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from .controller import ChoiceExplanation, RunExplanation


def _ticks(low: float, high: float) -> tuple[float, float]:
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return low - 1.0, low + 1.0
    return low, high


def scatter_svg(
    title: str, xs: Sequence[float], ys: Sequence[float], *, x_label: str, y_label: str
) -> Markup:
    """A dependence plot: ``ys`` (attributions) against ``xs`` (feature values)."""
    width, height, left, bottom, top = 420, 220, 56, 30, 22
    x0, x1 = _ticks(min(xs, default=0.0), max(xs, default=1.0))
    y_low = min(min(ys, default=0.0), 0.0)
    y_high = max(max(ys, default=0.0), 0.0)
    y0, y1 = _ticks(y_low, y_high)
    pw, ph = width - left - 10, height - top - bottom

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return top + (1.0 - (v - y0) / (y1 - y0)) * ph

    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<text x="0" y="12" font-size="11" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{py(0.0):.1f}" x2="{left + pw}" y2="{py(0.0):.1f}" '
        'stroke="#999" stroke-dasharray="3,3"/>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>',
    ]
    for x, y in zip(xs, ys, strict=True):
        colour = "#1d4ed8" if y >= 0 else "#b91c1c"
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2" fill="{colour}" fill-opacity="0.6"/>'
        )
    parts += [
        f'<text x="{left}" y="{height - 16}" font-size="9">{x0:.3g}</text>',
        f'<text x="{left + pw}" y="{height - 16}" font-size="9" text-anchor="end">{x1:.3g}</text>',
        f'<text x="{left + pw / 2:.0f}" y="{height - 4}" font-size="10" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text x="{left - 4}" y="{top + 8}" font-size="9" text-anchor="end">{y1:.3g}</text>',
        f'<text x="{left - 4}" y="{top + ph}" font-size="9" text-anchor="end">{y0:.3g}</text>',
        f'<text x="10" y="{top + ph / 2:.0f}" font-size="10" text-anchor="middle" '
        f'transform="rotate(-90 10 {top + ph / 2:.0f})">{escape(y_label)}</text>',
        "</svg>",
    ]
    return Markup("".join(parts))


def timeline_svg(title: str, items: Sequence[ChoiceExplanation], *, unit: str = "") -> Markup:
    """One intersection's decisions over time: chosen, runner-up, margin (see the docstring)."""
    width, left, right = 760, 56, 10
    phases = sorted(
        {i.chosen for i in items} | {i.runner_up for i in items if i.runner_up is not None}
    )
    lane_h, top = 18, 22
    phase_h = max(1, len(phases)) * lane_h
    margin_h, gap = 70, 16
    height = top + phase_h + gap + margin_h + 28
    t0, t1 = _ticks(min((i.t for i in items), default=0.0), max((i.t for i in items), default=1.0))
    pw = width - left - right
    margins = [abs(i.margin) for i in items if i.margin is not None and math.isfinite(i.margin)]
    m_top = max(margins, default=0.0) or 1.0
    row = {p: k for k, p in enumerate(phases)}

    def px(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * pw

    def lane(p: int) -> float:
        return top + row[p] * lane_h + lane_h / 2

    base = top + phase_h + gap + margin_h
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<text x="0" y="12" font-size="11" font-weight="bold">{escape(title)}</text>',
    ]
    for p in phases:
        parts.append(
            f'<text x="{left - 6}" y="{lane(p) + 3:.1f}" font-size="9" text-anchor="end">'
            f"phase {p}</text>"
            f'<line x1="{left}" y1="{lane(p):.1f}" x2="{left + pw}" y2="{lane(p):.1f}" '
            'stroke="#eee"/>'
        )
    bar_w = max(1.0, pw / max(1, len(items)))
    for i in items:
        x = px(i.t)
        if i.runner_up is not None:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{lane(i.runner_up):.1f}" r="3" fill="none" '
                'stroke="#f59e0b"/>'
            )
        parts.append(f'<circle cx="{x:.1f}" cy="{lane(i.chosen):.1f}" r="3" fill="#1d4ed8"/>')
        if i.margin is not None and math.isfinite(i.margin):
            h = abs(i.margin) / m_top * margin_h
            colour = "#9ca3af" if i.decided_by == "envelope" else "#059669"
            parts.append(
                f'<rect x="{x - bar_w / 2:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}"/>'
            )
    parts += [
        f'<line x1="{left}" y1="{base}" x2="{left + pw}" y2="{base}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{base - margin_h + 8}" font-size="9" text-anchor="end">'
        f"{m_top:.3g}</text>",
        f'<text x="{left - 6}" y="{base}" font-size="9" text-anchor="end">margin</text>',
        f'<text x="{left}" y="{base + 14}" font-size="9">{t0:g} s</text>',
        f'<text x="{left + pw}" y="{base + 14}" font-size="9" text-anchor="end">{t1:g} s</text>',
        f'<text x="{left + pw / 2:.0f}" y="{base + 24}" font-size="9" text-anchor="middle">'
        "filled: chosen phase; ring: runner-up; bars: |margin|"
        f"{escape(' in ' + unit) if unit else ''}"
        " (grey: the envelope decided)</text>",
        "</svg>",
    ]
    return Markup("".join(parts))


MAX_POINTS = 600


def _thin(items: Sequence[ChoiceExplanation], limit: int) -> Sequence[ChoiceExplanation]:
    """Every decision that changed something, then evenly spaced others, up to ``limit``."""
    if len(items) <= limit:
        return items
    changed = [k for k, i in enumerate(items) if i.envelope not in ("kept", None)]
    step = max(1, len(items) // limit)
    keep = sorted(set(changed[:limit]) | set(range(0, len(items), step)))
    return [items[k] for k in keep[: 2 * limit]]


def run_report_html(result: RunExplanation, lines: dict[str, list[str]]) -> str:
    """A self-contained HTML page: a decision timeline per intersection, with its top reasons."""
    body = [
        f"<h1>Why the controller chose: {escape(result.controller)}</h1>",
        f"<p>{result.decisions} decisions, method {escape(result.method)}"
        f"{' (exact)' if result.exact else ''}; additivity error "
        f"{'n/a' if result.additivity_max_error is None else f'{result.additivity_max_error:.2g}'}"
        f"; stability {'n/a' if result.stability is None else f'{result.stability:.2f}'}.</p>",
    ]
    if result.note:
        body.append(f"<p>Note: {escape(result.note)}</p>")
    for tls, items in result.intersections.items():
        body.append(f"<h2>Intersection {escape(tls)}</h2>")
        shown = _thin(items, MAX_POINTS)
        title = f"{tls}: decisions over time" + (
            f" ({len(shown)} of {len(items)} shown)" if len(shown) < len(items) else ""
        )
        body.append(str(timeline_svg(title, shown, unit=result.unit)))
        if lines.get(tls):
            body.append("<ul>" + "".join(f"<li>{escape(x)}</li>" for x in lines[tls]) + "</ul>")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Controller decisions: {escape(result.controller)}</title>"
        "<style>body{font-family:sans-serif;max-width:820px;margin:1em auto}</style></head>"
        "<body>" + "".join(body) + "</body></html>"
    )


__all__ = ["run_report_html", "scatter_svg", "timeline_svg"]
