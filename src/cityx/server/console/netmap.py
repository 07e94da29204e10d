"""The overseer's map: a SUMO network drawn as SVG, with each intersection's state on it.

Words:

- the *map* (:class:`NetworkMap`) is the geometry of one network file, read
  once with sumolib and cached per file: *roads* (every normal edge, as a
  polyline) and *intersections* (each traffic-light system, at the mean of
  the nodes it controls) with their *approaches* (the incoming edges of its
  controlled links, each drawn as the last :data:`APPROACH_M` metres before
  the junction);
- a *view* (:class:`StateView`) is what one moment shows: per intersection
  its mode, the green phase shown, its queue (halting vehicles) overall and
  per approach, the AI's choice; the active alerts. Live views come from the
  run's state feed (:func:`~cityx.server.console.mapviews.view_from_snapshot`),
  replays from the decision log (:mod:`cityx.oversight.timeline`);
- a *queue level* (:class:`QueueLevel`) buckets an approach's halting
  vehicles: ``low`` (< 5), ``medium`` (< 10), ``high`` (10 or more), or
  ``unknown`` when the view has no count.

Colour is never the only cue (WCAG 1.4.1): each queue level has its own line
pattern and width and its count and word written beside it, and each mode its
own marker shape (circle adaptive, square fixed-time, diamond manual, octagon
stopping/stopped) with the mode written in the label. The table of
intersections (:func:`intersection_rows`) is the map's text alternative.
Drawing is a pure function of (map, view): no SUMO, no I/O.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

from cityx.worlds.traffic import get_scenario
from cityx.worlds.traffic.network import GREEN, YELLOW
from cityx.worlds.traffic.scenarios import config_files
from cityx.worlds.traffic.sumo_env import load_sumolib

from .mapviews import StateView

APPROACH_M = 60.0  # how much of an incoming edge is drawn as its approach
WIDTH_PX = 760.0  # the SVG's widest drawing; the height follows the network's shape
HEIGHT_PX = 560.0  # ... up to this
MARGIN_PX = 40.0


class QueueLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    UNKNOWN = "unknown"


MEDIUM_AT = 5.0  # halting vehicles on one approach
HIGH_AT = 10.0


def queue_level(halting: float | None) -> QueueLevel:
    if halting is None or not math.isfinite(halting):
        return QueueLevel.UNKNOWN
    if halting >= HIGH_AT:
        return QueueLevel.HIGH
    if halting >= MEDIUM_AT:
        return QueueLevel.MEDIUM
    return QueueLevel.LOW


# Each level: stroke width (px) and dash pattern, so that it reads without colour too.
# Colours have at least 3:1 contrast on white (WCAG 1.4.11), and are never alone.
LEVEL_STYLE: Mapping[QueueLevel, tuple[float, str, str]] = {
    QueueLevel.LOW: (4.0, "", "#15803d"),
    QueueLevel.MEDIUM: (7.0, "10 4", "#b45309"),
    QueueLevel.HIGH: (10.0, "3 3", "#b91c1c"),
    QueueLevel.UNKNOWN: (3.0, "1 5", "#4b5563"),
}
MODE_FILL = {
    "adaptive": "#1d4ed8",
    "fixed-time": "#4b5563",
    "manual": "#b45309",
    "stopping": "#b91c1c",
    "stopped": "#7f1d1d",
}
ROAD = "#9ca3af"
INK = "#1f2937"
MODE_SHAPE = {
    "adaptive": "circle",
    "fixed-time": "square",
    "manual": "diamond",
    "stopping": "octagon",
    "stopped": "octagon",
}

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Approach:
    edge: str
    points: tuple[Point, ...]  # network metres, from upstream to the junction


@dataclass(frozen=True, slots=True)
class MapIntersection:
    id: str
    at: Point
    approaches: tuple[Approach, ...]
    greens: tuple[int, ...] = ()  # the green phases of its program (what may be asked for)


@dataclass(frozen=True, slots=True)
class NetworkMap:
    """One network's drawing geometry (network metres; y grows northwards)."""

    source: str
    bbox: tuple[Point, Point]
    roads: tuple[tuple[Point, ...], ...]
    intersections: tuple[MapIntersection, ...]


# -- reading ----------------------------------------------------------------------------


def _tail(shape: Sequence[Point], length: float) -> tuple[Point, ...]:
    """The last ``length`` metres of a polyline."""
    out = [shape[-1]]
    left = length
    for (ax, ay), (bx, by) in zip(shape[-2::-1], shape[:0:-1], strict=True):
        seg = math.hypot(bx - ax, by - ay)
        if seg >= left:
            f = left / seg if seg else 0.0
            out.append((bx + (ax - bx) * f, by + (ay - by) * f))
            break
        out.append((ax, ay))
        left -= seg
    return tuple(reversed(out))


def read_map(net: Path) -> NetworkMap:
    """The map of a SUMO network file (cached while the file is unchanged)."""
    st = os.stat(net)
    return _read_map(str(Path(net).resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=16)
def _read_map(path: str, _mtime: int, _size: int) -> NetworkMap:
    sumolib = load_sumolib()
    net = sumolib.net.readNet(path, withPrograms=True)
    roads = tuple(
        tuple((float(x), float(y)) for x, y in edge.getShape())
        for edge in sorted(net.getEdges(), key=lambda e: e.getID())
        if edge.getFunction() != "internal"
    )
    (x0, y0), (x1, y1) = net.getBBoxXY()
    # Long enough to see on a large network, never longer than the edge itself.
    approach_m = max(APPROACH_M, 0.08 * max(x1 - x0, y1 - y0))
    found = []
    for tls in sorted(net.getTrafficLights(), key=lambda t: t.getID()):
        edges: dict[str, Any] = {}
        for in_lane, _, _ in tls.getConnections():
            edge = in_lane.getEdge()
            edges.setdefault(edge.getID(), edge)
        if not edges:
            continue
        ends = [e.getToNode().getCoord() for e in edges.values()]
        at = (sum(x for x, _ in ends) / len(ends), sum(y for _, y in ends) / len(ends))
        approaches = tuple(
            Approach(
                edge=eid,
                points=_tail([(float(x), float(y)) for x, y in edge.getShape()], approach_m),
            )
            for eid, edge in sorted(edges.items())
        )
        programs = tls.getPrograms()
        states = [p.state for p in next(iter(programs.values())).getPhases()] if programs else []
        greens = tuple(
            k
            for k, st in enumerate(states)
            if any(c in GREEN for c in st) and not any(c in YELLOW for c in st)
        )
        found.append(MapIntersection(id=tls.getID(), at=at, approaches=approaches, greens=greens))
    return NetworkMap(
        source=Path(path).name,
        bbox=((float(x0), float(y0)), (float(x1), float(y1))),
        roads=roads,
        intersections=tuple(found),
    )


def net_of_scenario(name: str) -> Path | None:
    """The network file a named (or ``.sumocfg``) scenario ships, or None (generated)."""
    scenario = get_scenario(name)
    return config_files(scenario.config).net if scenario.config is not None else None


def net_of_run(folder: Path) -> Path:
    """The network file a run folder holds (its own copy, ``scenario.sumocfg``)."""
    return config_files(folder / "scenario.sumocfg").net


# -- drawing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    x0: float
    y1: float
    scale: float
    width: float
    height: float

    def __call__(self, p: Point) -> str:
        x = MARGIN_PX + (p[0] - self.x0) * self.scale
        y = MARGIN_PX + (self.y1 - p[1]) * self.scale
        return f"{x:.1f},{y:.1f}"

    def xy(self, p: Point) -> tuple[float, float]:
        x, y = self(p).split(",")
        return float(x), float(y)


def _frame(m: NetworkMap) -> _Frame:
    (x0, y0), (x1, y1) = m.bbox
    scale = min(
        (WIDTH_PX - 2 * MARGIN_PX) / max(x1 - x0, 1.0),
        (HEIGHT_PX - 2 * MARGIN_PX) / max(y1 - y0, 1.0),
    )
    return _Frame(
        x0=x0,
        y1=y1,
        scale=scale,
        width=(x1 - x0) * scale + 2 * MARGIN_PX,
        height=(y1 - y0) * scale + 2 * MARGIN_PX,
    )


def _marker(shape: str, x: float, y: float, r: float = 9.0) -> str:
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:g}"/>'
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:g}" height="{2 * r:g}"/>'
    if shape == "diamond":
        d = r * 1.3
        pts = f"{x:.1f},{y - d:.1f} {x + d:.1f},{y:.1f} {x:.1f},{y + d:.1f} {x - d:.1f},{y:.1f}"
        return f'<polygon points="{pts}"/>'
    if shape == "octagon":
        pts = " ".join(
            f"{x + r * 1.15 * math.cos(math.pi / 8 + k * math.pi / 4):.1f},"
            f"{y + r * 1.15 * math.sin(math.pi / 8 + k * math.pi / 4):.1f}"
            for k in range(8)
        )
        return f'<polygon points="{pts}"/>'
    # an unknown mode: a triangle, never mistaken for a known one
    return (
        f'<polygon points="{x:.1f},{y - r:.1f} {x + r:.1f},{y + r:.1f} {x - r:.1f},{y + r:.1f}"/>'
    )


def render_svg(m: NetworkMap, view: StateView | None, *, title: str = "Network map") -> Markup:
    """The map as inline SVG, with ``view``'s state on it (None: the bare network)."""
    f = _frame(m)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="netmap" role="img"'
        f' viewBox="0 0 {f.width:.0f} {f.height:.0f}" aria-labelledby="netmap-title netmap-desc">',
        f'<title id="netmap-title">{escape(title)}</title>',
        '<desc id="netmap-desc">Roads as grey lines; each intersection as a marker whose shape'
        " gives its mode; each approach as a line whose width and dash give its queue level,"
        " with the count written beside it. The table of intersections below says the"
        " same in text.</desc>",
        f'<g class="roads" fill="none" stroke="{ROAD}" stroke-width="3">',
    ]
    for road in m.roads:
        parts.append(f'<polyline points="{" ".join(f(p) for p in road)}"/>')
    parts.append("</g>")
    for node in m.intersections:
        seen = view.intersections.get(node.id) if view is not None else None
        parts.append(f'<g class="tls" data-id={quoteattr(node.id)}>')
        for a in node.approaches:
            count = None
            if seen is not None and seen.approaches is not None:
                count = seen.approaches.get(a.edge)
            level = queue_level(count) if view is not None else QueueLevel.UNKNOWN
            width, dash, colour = LEVEL_STYLE[level]
            said = "no count" if count is None else f"{count:g} halting, {level.value}"
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<polyline class="q-{level.value}" fill="none" stroke="{colour}"'
                f' stroke-width="{width:g}"{dash_attr}'
                f' points="{" ".join(f(p) for p in a.points)}">'
                f"<title>approach {escape(a.edge)}: {escape(said)}</title></polyline>"
            )
            if count is not None:
                # Beside the approach's far end, a little beyond it, off the line.
                (ux, uy), (jx, jy) = f.xy(a.points[0]), f.xy(a.points[-1])
                d = math.hypot(ux - jx, uy - jy) or 1.0
                lx, ly = ux + (ux - jx) / d * 10, uy + (uy - jy) / d * 10
                anchor = "end" if ux < jx else "start"
                parts.append(
                    f'<text class="qlabel" fill="{INK}" text-anchor="{anchor}"'
                    f' x="{lx:.1f}" y="{ly + 4:.1f}">'
                    f"{count:g} {level.value}</text>"
                )
        x, y = f.xy(node.at)
        mode = seen.mode if seen is not None else "unknown"
        shape = MODE_SHAPE.get(mode, "triangle")
        fill = MODE_FILL.get(mode, "#ffffff")
        parts.append(
            f'<g class="mode" fill="{fill}" stroke="{INK}" stroke-width="2">'
            f"{_marker(shape, x, y)}</g>"
        )
        label = node.id
        if seen is not None:
            phase = "phase ?" if seen.green is None else f"phase {seen.green}"
            label = f"{node.id} · {mode} · {phase}"
        parts.append(
            f'<text class="tlabel" fill="{INK}" x="{x + 14:.1f}" y="{y + 24:.1f}">'
            f"{escape(label)}</text>"
        )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))  # every value above is escaped or a number


@dataclass(frozen=True, slots=True)
class IntersectionRow:
    """One row of the text alternative: what the map shows at one intersection, in words."""

    id: str
    mode: str
    shape: str
    phase: str
    queue: str
    approaches: tuple[str, ...]
    choice: str
    reasons: tuple[str, ...]
    confidence: str


def intersection_rows(m: NetworkMap | None, view: StateView) -> list[IntersectionRow]:
    """The table of intersections, the map in text: each of the map's (or the view's)."""
    ids = [i.id for i in m.intersections] if m is not None else sorted(view.intersections)
    edges = {i.id: [a.edge for a in i.approaches] for i in (m.intersections if m else ())}
    rows = []
    for tls in ids:
        seen = view.intersections.get(tls)
        if seen is None:
            rows.append(IntersectionRow(tls, "not reported", "", "", "", (), "", (), ""))
            continue
        phase = "?" if seen.green is None else str(seen.green)
        if seen.signals:
            phase += f" ({seen.signals})"
        counts = seen.approaches
        approaches = (
            ()
            if counts is None
            else tuple(
                f"{e}: no detector"
                if counts.get(e) is None
                else f"{e}: {counts[e]:g} ({queue_level(counts[e]).value})"
                for e in (edges.get(tls) or sorted(counts))
            )
        )
        c = seen.choice
        rows.append(
            IntersectionRow(
                id=tls,
                mode=seen.mode,
                shape=MODE_SHAPE.get(seen.mode, "triangle"),
                phase=phase,
                queue="not recorded" if seen.queue is None else f"{seen.queue:g} halting",
                approaches=approaches,
                choice=(
                    "none (not adaptive, or no scores)"
                    if c is None
                    else f"phase {c.chosen}"
                    + ("" if c.runner_up is None else f", runner-up phase {c.runner_up}")
                ),
                reasons=c.reasons if c is not None else (),
                confidence=c.confidence if c is not None else "",
            )
        )
    return rows


__all__ = [
    "APPROACH_M",
    "Approach",
    "IntersectionRow",
    "MapIntersection",
    "NetworkMap",
    "QueueLevel",
    "intersection_rows",
    "net_of_run",
    "net_of_scenario",
    "queue_level",
    "read_map",
    "render_svg",
]
