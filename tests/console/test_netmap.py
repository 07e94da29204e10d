"""The overseer's map and its text alternative: pure functions of (map, view)."""

from __future__ import annotations

import re

from cityx.server.console.mapviews import view_from_snapshot
from cityx.server.console.netmap import (
    LEVEL_STYLE,
    MODE_SHAPE,
    Approach,
    MapIntersection,
    NetworkMap,
    QueueLevel,
    intersection_rows,
    net_of_scenario,
    queue_level,
    read_map,
    render_svg,
)

from ..worlds.traffic.conftest import needs_resco, needs_sumo

MAP = NetworkMap(
    source="test.net.xml",
    bbox=((0.0, 0.0), (200.0, 100.0)),
    roads=(((0.0, 50.0), (200.0, 50.0)), ((100.0, 0.0), (100.0, 100.0))),
    intersections=(
        MapIntersection(
            id="J<1>",
            at=(100.0, 50.0),
            approaches=(
                Approach("west", ((40.0, 50.0), (100.0, 50.0))),
                Approach("east", ((160.0, 50.0), (100.0, 50.0))),
                Approach("north", ((100.0, 100.0), (100.0, 50.0))),
                Approach("south", ((100.0, 0.0), (100.0, 50.0))),
            ),
        ),
        MapIntersection(id="K", at=(180.0, 50.0), approaches=()),
    ),
)
SNAPSHOT = {
    "time_s": 12.0,
    "intersections": {
        "J<1>": {
            "mode": "manual",
            "signals": "GGrr",
            "green": 2,
            "queue": 16.0,
            "approaches": {"west": 1.0, "east": 5.0, "north": 10.0},
            "choice": {
                "chosen": 2,
                "runner_up": 0,
                "margin": 0.25,
                "reasons": ["max-pressure: pressure 3 for phase 2 vs 2.75 for phase 0"],
            },
        }
    },
    "alerts": [
        {
            "id": 3,
            "kind": "sensor.dead",
            "intersection": "J<1>",
            "priority": "high",
            "message": "1 detector(s) dead",
            "suggestion": "fall back",
            "evidence": {"lanes": ["west_0"]},
        }
    ],
}


def test_queue_levels_have_bounds() -> None:
    assert [queue_level(n) for n in (0, 4.9, 5, 9.9, 10, 50)] == [
        QueueLevel.LOW,
        QueueLevel.LOW,
        QueueLevel.MEDIUM,
        QueueLevel.MEDIUM,
        QueueLevel.HIGH,
        QueueLevel.HIGH,
    ]
    assert queue_level(None) is QueueLevel.UNKNOWN
    assert queue_level(float("nan")) is QueueLevel.UNKNOWN


def test_colour_is_never_the_only_cue() -> None:
    # Each queue level differs in width and dash as well as colour ...
    shapes = {(w, dash) for w, dash, _ in LEVEL_STYLE.values()}
    assert len(shapes) == len(QueueLevel)
    # ... and each mode has its marker shape (stopping and stopped share the stop octagon,
    # and the label says which).
    assert len({MODE_SHAPE[m] for m in ("adaptive", "fixed-time", "manual", "stopped")}) == 4


def test_the_svg_shows_levels_counts_modes_and_phases() -> None:
    svg = str(render_svg(MAP, view_from_snapshot(SNAPSHOT), title="cologne <1>"))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert '<title id="netmap-title">cologne &lt;1&gt;</title>' in svg
    levels = re.findall(r'class="q-(\w+)"', svg)
    assert levels == ["low", "medium", "high", "unknown"]  # south has no detector
    assert 'stroke-dasharray="3 3"' in svg and 'stroke-dasharray="10 4"' in svg
    for said in (">1 low<", ">5 medium<", ">10 high<"):
        assert said in svg
    assert "approach south: no count" in svg
    assert "J&lt;1&gt; · manual · phase 2" in svg  # escaped id, mode and phase as text
    assert "<polygon" in svg  # manual: a diamond
    assert ">K<" in svg  # not reported: its id only, an unknown-mode triangle


def test_the_bare_network_draws_without_a_view() -> None:
    svg = str(render_svg(MAP, None))
    assert svg.count("<polyline") == 2 + 4 and "q-unknown" in svg


def test_the_table_says_what_the_map_shows() -> None:
    rows = intersection_rows(MAP, view_from_snapshot(SNAPSHOT))
    assert [r.id for r in rows] == ["J<1>", "K"]
    j, k = rows
    assert (j.mode, j.shape, j.phase, j.queue) == ("manual", "diamond", "2 (GGrr)", "16 halting")
    assert j.approaches == (
        "west: 1 (low)",
        "east: 5 (medium)",
        "north: 10 (high)",
        "south: no detector",
    )
    assert j.choice == "phase 2, runner-up phase 0"
    assert j.reasons[0].startswith("max-pressure") and j.confidence.startswith("thin")
    assert "not calibrated" in j.confidence
    assert k.mode == "not reported"
    alerts = view_from_snapshot(SNAPSHOT).alerts
    assert alerts[0].evidence == {"lanes": ["west_0"]} and alerts[0].suggestion == "fall back"


def test_a_calibrated_confidence_and_an_ood_flag_are_said() -> None:
    raw = {"chosen": 2, "runner_up": 0, "margin": 3.0, "confidence": 0.8, "ood": True}
    said = view_from_snapshot({"intersections": {"J": {"choice": raw}}}).intersections["J"]
    assert said.choice is not None
    assert said.choice.confidence == (
        "⚠ out of distribution: 80% (calibrated) that phase 0 would not have done better; margin 3"
    )


def test_a_malformed_snapshot_still_renders() -> None:
    view = view_from_snapshot({"intersections": {"J<1>": {"queue": "lots", "choice": {}}}})
    assert view.intersections["J<1>"].queue is None
    assert view.intersections["J<1>"].choice is None
    assert intersection_rows(None, view)[0].queue == "not recorded"


def test_cologne1_from_its_net_file_cached() -> None:
    needs_sumo()
    needs_resco()
    net = net_of_scenario("cologne1")
    assert net is not None
    drawn = read_map(net)
    assert read_map(net) is drawn  # read once per file
    (only,) = drawn.intersections
    assert only.id == "GS_cluster_357187_359543" and len(only.approaches) == 4
    assert all(len(a.points) >= 2 for a in only.approaches)
    assert len(drawn.roads) >= 4
    svg = str(render_svg(drawn, None))
    assert svg.count('class="q-unknown"') == 4
