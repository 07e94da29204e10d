"""Journeys in a real browser (Debian's Chromium, driven by Playwright), each page checked by axe.

One uvicorn server and one browser for the whole module; each journey gets a
fresh browser context (its own cookies). On failure the page's screenshot
and HTML are kept under build/test-artifacts/console/. Never run
``playwright install``: the browser is /usr/bin/chromium (``make`` installs it).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from cityx.server.app import create_app
from cityx.server.console.session import CONSOLE_COOKIE

from ..server.conftest import METRO, pack
from ..support.paths import ROOT
from .conftest import PASSWORD, Console, session_for

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ARTIFACTS = ROOT / "build" / "test-artifacts" / "console"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make installs it)"),
]


@pytest.fixture(scope="module")
def base_url(console: Console) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(console.config, console.store),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, base_url: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = chromium.new_context(base_url=base_url)
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stem = ARTIFACTS / request.node.name
        tab.screenshot(path=str(stem.with_suffix(".png")), full_page=True)
        stem.with_suffix(".html").write_text(tab.content(), encoding="utf-8")
    context.close()


def axe_clean(page: Any) -> None:
    """No serious or critical axe-core violation on the page as it stands."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Through the DevTools protocol, not a <script>: the page's CSP allows none inline.
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})); }"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not bad, f"{page.url}: {bad}"


def signed_in(page: Any, console: Console, user: str, base_url: str, asked: str) -> None:
    """Give the browser a session as the login form would (the form is tested once, in the
    vendor's journey: each login costs an Argon2 check), then open ``asked``."""
    page.context.add_cookies(
        [{"name": CONSOLE_COOKIE, "value": session_for(console, user), "url": base_url}]
    )
    page.goto(asked)


def log_in(page: Any, user: str, asked: str) -> None:
    """Ask for ``asked``, be sent to login, log in by keyboard, land on ``asked``."""
    page.goto(asked)
    assert "/login?next=" in page.url
    axe_clean(page)
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"**{asked}")


def test_vendor_uploads_and_reads_a_report(page: Any, tmp_path: Path) -> None:
    log_in(page, "vendor", "/console/submissions")
    axe_clean(page)
    archive = tmp_path / "metro.tar.gz"
    archive.write_bytes(pack(METRO))
    page.get_by_label("Submission folder as .tar.gz or .zip").set_input_files(str(archive))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/console/submissions/*")
    assert "metro-analytics/metro-congestion" in page.inner_text("h1")
    axe_clean(page)
    page.goto("/console/trials")
    axe_clean(page)
    page.get_by_role("link", name="trial-v1").click()
    page.wait_for_url("**/console/trials/trial-v1")
    assert "accuracy below target" in page.inner_text("main")
    axe_clean(page)
    page.get_by_role("link", name="Answer the process checklist").click()
    page.wait_for_url("**/checklist")
    axe_clean(page)
    # Answer one AI Verify process check and store it (the vendor becomes its author).
    page.locator("#answer-aiverify\\.10\\.4\\.1").select_option("yes")
    page.locator("#comment-aiverify\\.10\\.4\\.1").fill("re-tested every year")
    page.get_by_role("button", name="Store my answers").click()
    page.wait_for_url("**/checklist?saved=1")
    assert "1 answer stored" in page.get_by_role("status").inner_text()
    axe_clean(page)
    page.goto("/console/trials/trial-v1")
    page.get_by_role("link", name="Compare with the system's other versions").click()
    assert page.get_by_role("columnheader", name="version 1.0.0").is_visible()
    axe_clean(page)
    page.goto("/console/trials/trial-v1")
    page.get_by_role("link", name="Read the full trial report").click()
    page.wait_for_url("**/report")
    assert page.locator("h1").count() >= 1
    axe_clean(page)


def test_regulator_decides_with_errors_beside_the_fields(
    page: Any, console: Console, base_url: str
) -> None:
    signed_in(page, console, "regulator", base_url, "/console/queue")
    axe_clean(page)
    page.get_by_role("link", name="trial-browser").click()
    axe_clean(page)
    page.get_by_role("radio", name="Approve with conditions").check()
    page.get_by_role("button", name="Decide and sign").click()
    error = page.locator("#reasons-error")
    assert "at least one reason" in error.inner_text()
    assert page.get_by_label("Reasons (one per line)").get_attribute("aria-invalid") == "true"
    axe_clean(page)
    page.get_by_label("Reasons (one per line)").fill("accuracy close to target")
    page.get_by_label("Conditions (one per line", exact=False).fill("re-trial within 90 days")
    page.get_by_role("button", name="Decide and sign").click()
    page.wait_for_url("**/console/trials/trial-browser")
    assert "re-trial within 90 days" in page.inner_text("main")
    assert "! approve-with-conditions" in page.inner_text("main")  # a symbol, not colour alone
    axe_clean(page)
    for path in ("/console/policy", "/console/alerts", "/console/trials", "/console"):
        page.goto(path)
        axe_clean(page)


def test_auditor_verifies_the_audit_log(page: Any, console: Console, base_url: str) -> None:
    signed_in(page, console, "auditor", base_url, "/console/audit")
    axe_clean(page)
    before = page.url
    page.get_by_role("button", name="Verify the audit chain").click()
    result = page.get_by_role("status")
    result.get_by_text("✓ The chain verifies.").wait_for()
    # htmx (vendored, under the page's CSP) swapped the result in: no page load.
    assert page.url == before
    axe_clean(page)
    # The checklist read-only, and the evidence export offered on a complete trial.
    page.goto("/console/trials/trial-v2/checklist")
    assert page.locator("select").count() == 0
    axe_clean(page)
    page.goto("/console/trials/trial-v2")
    assert page.get_by_role("link", name="Export the signed evidence package").is_visible()
    axe_clean(page)


def test_admin_and_cross_tenant_pages(
    page: Any, chromium: Any, console: Console, base_url: str
) -> None:
    signed_in(page, console, "admin", base_url, "/console/users")
    assert page.get_by_role("cell", name="acme-signals").first.is_visible()
    axe_clean(page)
    rival = chromium.new_context(base_url=base_url).new_page()
    signed_in(rival, console, "rival", base_url, "/console/submissions")
    answer = rival.goto("/console/trials/trial-v1")
    assert answer is not None and answer.status == 404
    assert "Not found" in rival.inner_text("h1")
    axe_clean(rival)
    rival.context.close()


def test_keyboard_reaches_the_skip_link_with_a_visible_focus(
    page: Any, console: Console, base_url: str
) -> None:
    signed_in(page, console, "regulator", base_url, "/console")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.textContent")
    assert focused == "Skip to content"
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")


def test_reading_and_verifying_work_without_javascript(
    chromium: Any, console: Console, base_url: str
) -> None:
    context = chromium.new_context(base_url=base_url, java_script_enabled=False)
    page = context.new_page()
    try:
        signed_in(page, console, "auditor", base_url, "/console/trials/trial-v1")
        assert "accuracy below target" in page.inner_text("main")
        page.goto("/console/audit")
        page.get_by_role("button", name="Verify the audit chain").click()
        page.wait_for_url("**verify=1**")  # without htmx the form reloads the page
        assert "✓ The chain verifies." in page.get_by_role("status").inner_text()
    finally:
        context.close()
