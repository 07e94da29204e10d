"""Plots for the trial report, as inline SVG.

Each function draws one chart with matplotlib's object API (a
:class:`~matplotlib.figure.Figure`, never pyplot's global state) and returns
an ``<svg>`` element ready to place inside an HTML page: no XML prolog, no
DOCTYPE (which names a remote DTD), no namespace URLs, and every ``id`` made
unique to the chart by a *key* prefix, since all charts share one document.
Output is deterministic: a fixed ``svg.hashsalt``, no date metadata, and text
kept as ``<text>`` elements (``svg.fonttype = none``) so it stays selectable,
searchable and readable by screen readers.

A value of ``None`` is *undefined*: it is drawn as the word "undefined",
never as a zero-height bar.

matplotlib is imported when the first chart is drawn, not with this module:
checks name these functions to draw their report sections, and importing a
check must stay cheap.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from markupsafe import escape

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Colours shared with the report's stylesheet.
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BLUE = "#1d4ed8"
RED = "#b91c1c"
GREY = "#9ca3af"
DARK = "#111827"

# Every key matplotlib writes by default, set to None so nothing varies between
# runs or matplotlib versions (the creator string carries the version).
_NO_METADATA: dict[str, Any] = {"Date": None, "Creator": None, "Format": None, "Type": None}
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(xlink:href="#|url\(#)')


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib  # on the first chart (see the module docstring)

    # A literal, so type checkers match its keys against matplotlib's rc keys.
    with (
        warnings.catch_warnings(),
        matplotlib.rc_context(
            {
                # Labels come from the vendor: "$" must not start mathtext (it can raise).
                "text.parse_math": False,
                "svg.hashsalt": "cityx-report",
                "svg.fonttype": "none",
                "font.family": "sans-serif",
                "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"],
                "font.size": 9.0,
                "axes.edgecolor": MUTED,
                "axes.labelcolor": INK,
                "axes.titlesize": 10.0,
                "axes.titleweight": "bold",
                "axes.titlecolor": INK,
                "axes.spines.top": False,
                "axes.spines.right": False,
                "xtick.color": INK,
                "ytick.color": INK,
                "figure.dpi": 72.0,
                "savefig.bbox": "tight",
                "savefig.pad_inches": 0.08,
            }
        ),
    ):
        # The browser draws the text (svg.fonttype none) with its own fonts, so a
        # glyph missing from matplotlib's layout font only makes the layout approximate.
        warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
        yield


def _figure(**options: Any) -> Figure:
    from matplotlib.figure import Figure  # on the first chart (see the module docstring)

    return Figure(**options)


def _svg(fig: Figure, key: str, label: str) -> str:
    """Serialise ``fig`` as an inline ``<svg>`` element with ids under ``key``."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=_NO_METADATA)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = text.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    text = text.replace(' xmlns="http://www.w3.org/2000/svg"', "")
    # The default style sheet is global once inline; the report's CSS carries it.
    text = re.sub(r"<style[^>]*>.*?</style>", "", text, flags=re.DOTALL)
    text = _ID.sub(lambda m: f'id="{key}-{m.group(1)}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}{key}-", text)
    aria = f'<svg role="img" aria-label="{escape(label)}" '
    return text.replace("<svg ", aria, 1).strip()


def _defined(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def recall_chart(
    key: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
) -> str:
    """Per-class recall as bars, with the 95 % interval as error bars."""
    with _style():
        fig = _figure(figsize=(6.4, 2.9))
        ax = fig.add_subplot()
        xs = list(range(len(labels)))
        for x, v, lo, hi in zip(xs, values, lows, highs, strict=True):
            if v is None or not _defined(v):
                ax.text(x, 0.04, "undefined", ha="center", va="bottom", color=MUTED, rotation=90)
                continue
            ax.bar([x], [v], width=0.6, color=BLUE, zorder=2)
            if lo is not None and hi is not None and _defined(lo) and _defined(hi):
                ax.errorbar(
                    [x],
                    [v],
                    yerr=[[max(v - lo, 0.0)], [max(hi - v, 0.0)]],
                    fmt="none",
                    ecolor=DARK,
                    elinewidth=1.2,
                    capsize=5,
                    zorder=3,
                )
                top = hi
            else:
                top = v
            ax.text(x, min(top + 0.03, 1.07), f"{v:.3f}", ha="center", va="bottom", color=INK)
        ax.set_xticks(xs, [str(label) for label in labels])
        ax.set_ylim(0.0, 1.12)
        ax.set_yticks([0.0, 0.25, 0.5, 0.75, 1.0])
        ax.set_ylabel("recall")
        ax.set_xlabel("true class")
        ax.grid(axis="y", color=GRID, zorder=0)
        ax.set_axisbelow(True)
        ax.set_title("Recall per class (bars: 95 % bootstrap interval)", loc="left")
        return _svg(fig, key, "Bar chart of recall per class with 95 % confidence intervals")


def impact_chart(
    key: str, series: Mapping[str, Sequence[tuple[float, float | None, float | None, float | None]]]
) -> str:
    """Impact against intensity: per attack, (intensity, change %, low, high) points."""
    colours = (BLUE, DARK, MUTED, "#b35806", "#542788", "#1b7837", "#c51b7d")
    with _style():
        fig = _figure(figsize=(6.4, 3.2))
        ax = fig.add_subplot()
        for k, (attack, points) in enumerate(sorted(series.items())):
            pts = [p for p in points if p[1] is not None and _defined(p[1])]
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ys = [float(p[1]) for p in pts if p[1] is not None]
            colour = colours[k % len(colours)]
            ax.plot(xs, ys, marker="o", color=colour, label=attack, zorder=3)
            for x, y, lo, hi in pts:
                if lo is not None and hi is not None and _defined(lo) and _defined(hi):
                    assert y is not None
                    ax.errorbar(
                        [x], [y], yerr=[[max(y - lo, 0.0)], [max(hi - y, 0.0)]],
                        fmt="none", ecolor=colour, elinewidth=1.0, capsize=4, zorder=2,
                    )  # fmt: skip
        ax.axhline(0.0, color=GRID, zorder=1)
        ax.set_xlabel("attack intensity")
        ax.set_ylabel("time loss change, %")
        ax.grid(axis="y", color=GRID, zorder=0)
        ax.set_axisbelow(True)
        ax.legend(loc="upper left", fontsize="small", frameon=False)
        ax.set_title("Impact against intensity (bars: 95 % interval over seeds)", loc="left")
        return _svg(fig, key, "Line chart of each attack's impact on time loss by intensity")


def confusion_heatmap(key: str, labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """Confusion counts as a heatmap, rows = true class, columns = predicted."""
    k = len(labels)
    counts = [[int(matrix[i][j]) for j in range(k)] for i in range(k)]
    peak = max((c for row in counts for c in row), default=0) or 1
    with _style():
        side = max(2.6, 0.9 * k + 1.2)
        fig = _figure(figsize=(side + 0.4, side))
        ax = fig.add_subplot()
        # pcolormesh, not imshow: imshow would embed a PNG; these cells stay vector shapes.
        ax.pcolormesh(counts, cmap="Blues", vmin=0, vmax=peak, edgecolors="#ffffff", linewidth=1.5)
        for i, row in enumerate(counts):
            total = sum(row)
            for j, c in enumerate(row):
                share = f"\n{100.0 * c / total:.1f} %" if total else ""
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    f"{c}{share}",
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    color="#ffffff" if c > 0.55 * peak else INK,
                )
        names = [str(label) for label in labels]
        ax.set_xticks([j + 0.5 for j in range(k)], names)
        ax.set_yticks([i + 0.5 for i in range(k)], names)
        ax.set_xlim(0, k)
        ax.set_ylim(k, 0)  # the first true class on top, as in the table
        ax.set_aspect("equal")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(length=0)
        ax.set_title("Confusion matrix (count, % of true class)", loc="left")
        return _svg(
            fig,
            key,
            "Heatmap of the confusion matrix, true class by row and predicted class by column",
        )


def residual_chart(key: str, quantiles: Mapping[str, float | None], unit: str = "") -> str:
    """Residual quantiles (p5, p25, p50, p75, p95) as one box-and-whisker row."""
    q = {name: quantiles.get(name) for name in ("p5", "p25", "p50", "p75", "p95")}
    known = [v for v in q.values() if v is not None and _defined(v)]
    with _style():
        fig = _figure(figsize=(6.4, 1.9))
        ax = fig.add_subplot()
        ax.axvline(0.0, color=MUTED, linestyle="--", linewidth=1.0, zorder=1)
        p5, p25, p50, p75, p95 = (q[n] for n in ("p5", "p25", "p50", "p75", "p95"))
        if p5 is not None and p95 is not None and _defined(p5) and _defined(p95):
            ax.plot([p5, p95], [0, 0], color=DARK, linewidth=1.2, zorder=2)
            ax.plot([p5, p5], [-0.12, 0.12], color=DARK, linewidth=1.2, zorder=2)
            ax.plot([p95, p95], [-0.12, 0.12], color=DARK, linewidth=1.2, zorder=2)
        if p25 is not None and p75 is not None and _defined(p25) and _defined(p75):
            ax.barh(
                [0], [p75 - p25], left=[p25], height=0.36, color="#bfdbfe", edgecolor=BLUE, zorder=3
            )
        if p50 is not None and _defined(p50):
            ax.plot([p50, p50], [-0.18, 0.18], color=BLUE, linewidth=2.4, zorder=4)
        for i, (name, v) in enumerate(q.items()):
            text = "undefined" if v is None or not _defined(v) else f"{v:.3g}"
            where = v if v is not None and _defined(v) else (known[0] if known else 0.0)
            ax.annotate(
                f"{name}\n{text}",
                (where, 0.22 if i % 2 == 0 else -0.22),
                ha="center",
                va="bottom" if i % 2 == 0 else "top",
                fontsize=8,
                color=INK,
                bbox={"facecolor": "#ffffff", "edgecolor": "none", "pad": 0.6},
                zorder=5,
            )
        span = (max(known) - min(known)) if known else 1.0
        lo = min([*known, 0.0]) - 0.08 * (span or 1.0)
        hi = max([*known, 0.0]) + 0.08 * (span or 1.0)
        ax.set_xlim(lo, hi)
        ax.set_ylim(-0.75, 0.75)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlabel(f"residual (predicted − true){f' [{unit}]' if unit else ''}")
        ax.set_title(
            "Residual quantiles (box: p25–p75, line: median, whiskers: p5–p95)", loc="left"
        )
        return _svg(fig, key, "Box plot of the residual quantiles p5, p25, p50, p75 and p95")


PROBE_OUTCOMES: tuple[tuple[str, str, str], ...] = (
    ("answered", "answered validly", BLUE),
    ("invalid", "invalid answer", RED),
    ("refused", "refused", GREY),
    ("failed", "crashed or timed out", DARK),
)


def probe_outcomes(outcomes: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per probe kind, the counts for each :data:`PROBE_OUTCOMES` category and ``sent``."""
    table: dict[str, dict[str, int]] = {}
    for kind, row in outcomes.items():
        sent, scored = int(row.get("sent") or 0), int(row.get("scored") or 0)
        invalid = int(row.get("invalid") or 0)
        table[kind] = {
            "sent": sent,
            "answered": max(scored - invalid, 0),
            "invalid": invalid,
            "refused": int(row.get("refused") or 0),
            "failed": int(row.get("failed") or 0),
        }
    return table


def probe_chart(key: str, table: Mapping[str, Mapping[str, int]]) -> str:
    """What happened to each kind of probe, as stacked shares of the probes sent."""
    kinds = list(table)
    with _style():
        fig = _figure(figsize=(6.4, 0.5 * len(kinds) + 1.5), layout="constrained")
        ax = fig.add_subplot()
        ys = list(range(len(kinds)))
        for name, label, colour in PROBE_OUTCOMES:
            lefts, widths = [], []
            for kind in kinds:
                row = table[kind]
                sent = row.get("sent", 0) or 1
                before = 0
                for other, _, _ in PROBE_OUTCOMES:
                    if other == name:
                        break
                    before += row.get(other, 0)
                lefts.append(before / sent)
                widths.append(row.get(name, 0) / sent)
            ax.barh(ys, widths, left=lefts, height=0.6, color=colour, label=label, zorder=2)
        for y, kind in zip(ys, kinds, strict=True):
            ax.text(1.01, y, f"n = {table[kind].get('sent', 0)}", va="center", color=INK)
        ax.set_yticks(ys, [k.replace("_", " ") for k in kinds])
        ax.invert_yaxis()
        ax.set_xlim(0.0, 1.0)
        ax.set_xticks([0.0, 0.25, 0.5, 0.75, 1.0], ["0 %", "25 %", "50 %", "75 %", "100 %"])
        ax.set_xlabel("share of probes sent")
        ax.grid(axis="x", color=GRID, zorder=0)
        ax.set_axisbelow(True)
        fig.legend(loc="outside lower center", ncol=len(PROBE_OUTCOMES), frameon=False, fontsize=8)
        ax.set_title("Probe outcomes by kind", loc="left")
        return _svg(fig, key, "Stacked bar chart of probe outcomes for each kind of probe")


def probe_count_chart(key: str, sent: Mapping[str, int]) -> str:
    """The number of probes of each kind, when no outcomes were recorded."""
    kinds = list(sent)
    with _style():
        fig = _figure(figsize=(6.4, 0.5 * len(kinds) + 1.0))
        ax = fig.add_subplot()
        ys = list(range(len(kinds)))
        ax.barh(ys, [int(sent[k]) for k in kinds], height=0.6, color=BLUE, zorder=2)
        for y, kind in zip(ys, kinds, strict=True):
            ax.text(int(sent[kind]), y, f" {int(sent[kind])}", va="center", color=INK)
        ax.set_yticks(ys, [k.replace("_", " ") for k in kinds])
        ax.invert_yaxis()
        ax.set_xlabel("probes sent")
        ax.grid(axis="x", color=GRID, zorder=0)
        ax.set_axisbelow(True)
        ax.set_title("Probes sent by kind", loc="left")
        return _svg(fig, key, "Bar chart of the number of probes sent of each kind")


__all__ = [
    "PROBE_OUTCOMES",
    "confusion_heatmap",
    "impact_chart",
    "probe_chart",
    "probe_count_chart",
    "probe_outcomes",
    "recall_chart",
    "residual_chart",
]
