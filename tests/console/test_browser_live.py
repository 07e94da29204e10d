"""The overseer's journey in a real browser: start a paced live run, watch it, override an
intersection, see the override become effective and land in the log, stop the run safely.

Needs the city's MQTT broker (the live runs' bus) besides Debian's Chromium; the server,
browser and page fixtures are test_browser.py's (one server per module).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ..support.services import require
from .conftest import Console
from .test_browser import axe_clean, base_url, chromium, page, signed_in

__all__ = ["base_url", "chromium", "page"]  # fixtures, used by name
TLS = "GS_cluster_357187_359543"
pytestmark = [pytest.mark.slow, pytest.mark.mqtt]


def test_overseer_watches_overrides_and_stops_a_live_run(
    page: Any, chromium: Any, console: Console, base_url: str
) -> None:
    require("mqtt")
    signed_in(page, console, "overseer", base_url, "/console/runs")
    axe_clean(page)
    page.get_by_label("Scenario").select_option("cologne1")
    page.get_by_label("Simulated seconds").fill("90")
    page.get_by_label("Pace", exact=False).fill("5")
    page.get_by_role("button", name="Start the run").click()
    page.wait_for_url(re.compile(r".*/console/runs/lr-[0-9a-f]+$"))
    run_url = page.url
    # The feed swaps in verified states: the clock moves and the lag banner says "Live".
    page.locator("#live-state .clock[data-signed-at]").wait_for(timeout=30_000)
    page.locator("#lag .lag.ok").wait_for(timeout=10_000)
    row = page.locator("table.intersections tbody tr", has_text=TLS)
    assert "adaptive" in row.inner_text()
    assert page.locator("svg.netmap").count() == 1
    axe_clean(page)

    # A feed that never answers: after 2.5 s without a tick, a banner says so.
    cut = page.context.new_page()
    cut.route("**/feed", lambda route: route.abort())
    cut.goto(run_url)
    silent = cut.locator("#silent")
    silent.wait_for(state="visible", timeout=10_000)
    assert re.search(
        r"Live feed silent for \d+\.\d s: the view is \d+\.\d s old", silent.inner_text()
    )
    cut.close()

    # A hold without a reason is refused beside the field, acting on nothing.
    page.get_by_label("Intersection", exact=True).select_option(TLS)
    page.get_by_role("button", name="Hold").click()
    page.locator("#reason-error").wait_for()
    assert page.get_by_label("Reason", exact=False).get_attribute("aria-invalid") == "true"
    page.get_by_label("Reason", exact=False).fill("queue building on the east approach")
    page.get_by_role("button", name="Hold").click()
    held = page.locator("table.commands tbody tr", has_text="hold")
    held.get_by_text("✓ effective").wait_for(timeout=15_000)
    row.get_by_text("manual").wait_for(timeout=5_000)
    axe_clean(page)

    # Stop acts at once and asks for its reason afterwards.
    page.get_by_label("Intersection", exact=True).select_option("*")
    page.get_by_role("button", name="Stop (acts at once)").click()
    stop = page.locator("table.commands tbody tr", has_text="stop")
    stop.get_by_text("none yet").wait_for()
    page.get_by_label("Reason for this stop").fill("a crash on the junction")
    page.get_by_role("button", name="Give the reason").click()
    stop.get_by_text("a crash on the junction").wait_for(timeout=10_000)
    stop.get_by_text("✓ effective").wait_for(timeout=20_000)
    assert re.search(r"stopp|fixed-time", row.inner_text())

    # Without JavaScript the same page is a table that reloads itself.
    bare = chromium.new_context(base_url=base_url, java_script_enabled=False).new_page()
    signed_in(bare, console, "overseer", base_url, run_url)
    assert TLS in bare.locator("table.intersections").inner_text()
    assert bare.locator("noscript").count() >= 1
    bare.context.close()

    # The run ends by itself; its decision log holds the override and the stop's reason.
    page.locator("#ended .verify").wait_for(timeout=40_000)
    page.get_by_role("link", name="Replay it from its decision log").click()
    page.wait_for_url("**/replay")
    main = page.inner_text("main")
    assert "✓ The decision log verifies" in main
    assert "hold effective: queue building on the east approach" in main
    assert "a crash on the junction" in main
    axe_clean(page)
