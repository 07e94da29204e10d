"""The HTML trial report: determinism, golden output, safety and missing data.

The golden file ``golden/report-example.html`` is the report for
``golden/results-example.json``. After an intended change to the report,
regenerate it with ``UPDATE_GOLDEN=1 pytest tests/governance/test_report.py``
and review the diff.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from cityx.core import Principle, RunError, Severity
from cityx.governance.report import fmt_metric, render_html, write_report

GOLDEN = Path(__file__).parent / "golden"
EXAMPLE = GOLDEN / "results-example.json"
REPORT = GOLDEN / "report-example.html"
URL = re.compile(r"https?://[^\s\"'<>]+")


@pytest.fixture
def results() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return data


def strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)


def check(results: dict[str, Any], check_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in results["checks"] if c["id"] == check_id)
    return found


def test_the_example_covers_what_the_golden_file_must_show(results: dict[str, Any]) -> None:
    tasks = {c["details"].get("task") for c in results["checks"]}
    assert {"classification", "regression"} <= tasks
    assert {f["severity"] for f in results["findings"]} == {s.value for s in Severity}
    assert results["gate"]["decision"] == "fail"
    # Not installed here: drawn through the generic table of details.
    assert {"demand.forecast", "explanations.fidelity"} <= {c["id"] for c in results["checks"]}
    # Installed, but with hand-made details that do not fit its type: listed as recorded.
    assert "group_column" in check(results, "fairness.groups")["details"]


def test_the_same_results_give_the_same_bytes(results: dict[str, Any]) -> None:
    first = render_html(results)
    second = render_html(copy.deepcopy(results))
    assert first == second


def without_svg(html: str) -> str:
    """The page with each plot's drawing elided: matplotlib releases may redraw plots."""
    return re.sub(r"<svg\b.*?</svg>", "<svg>(plot)</svg>", html, flags=re.DOTALL)


def test_the_report_matches_the_golden_file(results: dict[str, Any]) -> None:
    html = without_svg(render_html(results))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        REPORT.write_text(html, encoding="utf-8")
    expected = REPORT.read_text(encoding="utf-8")
    if html != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), html.splitlines(), "golden", "rendered", lineterm="", n=1
        )
        shown = "\n".join(list(diff)[:60])
        pytest.fail(f"report differs from {REPORT.name} (UPDATE_GOLDEN=1 regenerates):\n{shown}")


def test_rendering_leaves_matplotlib_settings_alone(results: dict[str, Any]) -> None:
    before = dict(matplotlib.rcParams)
    render_html(results)
    assert dict(matplotlib.rcParams) == before


def test_nothing_is_fetched_and_urls_come_only_from_the_results(results: dict[str, Any]) -> None:
    html = render_html(results)
    attrs = re.findall(
        r"\s(?:src|href|xlink:href|action|poster|srcset|formaction)\s*=\s*(?![\"']?#)([^\s>]*)",
        html,
    )
    assert attrs == []
    assert re.findall(r"url\((?!#)", html) == []
    for tag in ("<link", "<img", "<iframe", "<object", "<embed", "@import", "<script src"):
        assert tag not in html
    allowed = {u for s in strings(results) for u in URL.findall(s)}
    found = set(URL.findall(html))
    assert found, "the example should carry URLs in its text, to test this"
    assert found <= allowed


def test_values_from_the_results_are_escaped(results: dict[str, Any]) -> None:
    results["findings"][0]["title"] = "<script>alert(1)</script>"
    results["findings"][1]["severity"] = 'high" onmouseover="alert(2)'
    results["submission"]["vendor"] = "<img src=x onerror=alert(3)>"
    html = render_html(results)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'onmouseover="alert(2)' not in html and "sev-unknown" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(3)&gt;" in html
    assert html.count("<script") == 1  # only the report's own print helper


@pytest.mark.parametrize("label", ["<script>alert(4)</script>", "$\\foo$", "a$b", "重度"])
def test_any_class_label_can_be_drawn(results: dict[str, Any], label: str) -> None:
    perf = check(results, "performance.nominal")
    perf["details"]["labels"][2] = label
    perf["metrics"][f"recall[{label}]"] = perf["metrics"].pop("recall[heavy]")
    html = render_html(results)
    assert "<script>alert(4)" not in html
    assert html.count("<svg ") == 3  # recall, confusion, probe outcomes


def test_null_values_show_as_undefined_never_as_zero(results: dict[str, Any]) -> None:
    perf = check(results, "performance.nominal")
    perf["metrics"]["accuracy"] = {"value": None, "ci_low": None, "ci_high": None, "unit": ""}
    perf["metrics"]["recall[heavy]"]["value"] = None
    results["principles"]["fairness"]["findings"] = None
    html = render_html(results)
    assert '<th scope="row">accuracy</th><td class="num">undefined</td>' in html
    assert '<li><span class="name">accuracy</span> undefined</li>' in html
    # Null in the example itself:
    assert '<li><span class="name">recall_ratio[district]</span> undefined</li>' in html
    assert re.search(r"<text[^>]*>undefined</text>", html)  # the recall bar is not drawn as 0
    fairness = re.search(r"<th scope=\"row\">Fairness</th>.*?</tr>", html)
    assert fairness and ">undefined</td>" in fairness.group(0)


def test_an_incomplete_trial_says_so(results: dict[str, Any]) -> None:
    assert "Incomplete trial" not in render_html(results)
    results["status"] = "incomplete"
    html = render_html(results)
    assert 'class="banner banner-incomplete" role="alert"' in html
    assert "Incomplete trial (status: incomplete)" in html


def test_no_findings(results: dict[str, Any]) -> None:
    results["findings"] = []
    for c in results["checks"]:
        c["findings"] = []
    results["gate"] = {"decision": "pass", "reasons": ["no finding"], "policy": "p"}
    html = render_html(results)
    assert "No findings" in html and 'class="findings"' not in html
    assert "Gate decision: PASS" in html and "gate-pass" in html


def test_missing_sections_show_as_not_run(results: dict[str, Any]) -> None:
    for key in ("checks", "findings", "gate", "principles", "versions", "plugins", "data"):
        del results[key]
    html = render_html(results)
    assert html.count("<strong>Not run.</strong>") == 8  # checks appear in two sections
    assert render_html({}).count("<strong>Not run.</strong>") == 9  # and the policy
    assert "schema version undefined" in render_html({})


def test_findings_come_most_severe_first_with_their_tags(results: dict[str, Any]) -> None:
    html = render_html(results)
    order = re.findall(r'<tbody class="sev-row-(\w+)">', html)
    assert order == sorted(order, key=lambda s: -Severity(s).rank)
    assert order[0] == "critical" and order[-1] == "info"
    assert "<code>AML.T0043</code> Craft Adversarial Data" in html
    assert "<code>AML.T0099</code></li>" in html  # unknown technique: its id alone
    assert "Art. 10: Data and data governance" in html
    assert "Human agency and oversight" in html
    table = html[html.index('id="principles"') :]
    assert all(p.display_name in table for p in Principle)
    assert f"<pre><code>{results['command']}</code></pre>" in html


def test_metrics_show_their_interval(results: dict[str, Any]) -> None:
    html = render_html(results)
    assert '<li><span class="name">accuracy</span> 0.823 [0.806, 0.840]</li>' in html
    assert '<li><span class="name">mae</span> 27.410 [26.020, 28.870] veh/h</li>' in html
    assert fmt_metric({"value": 0.0004, "ci_low": 0.0, "ci_high": 0.001}) == "0.0004 [0.000, 0.001]"
    assert fmt_metric({"value": 3.0, "ci_low": None, "ci_high": None, "unit": "rows"}) == "3 rows"


def test_each_check_gets_a_section_with_its_plots(results: dict[str, Any]) -> None:
    html = render_html(results)
    for c in results["checks"]:
        assert f'<section class="check" id="check-{c["id"].replace(".", "-")}"' in html
    # performance.nominal draws recall and confusion, input.contract its probe outcomes;
    # demand.forecast is not installed here, so its residuals are a row of its details table.
    assert html.count("<svg ") == 3
    assert "Heatmap of the confusion matrix" in html
    assert "<caption>Details of demand.forecast</caption>" in html
    assert '<th scope="row">residual_quantiles</th>' in html
    assert "<caption>Details of fairness.groups</caption>" in html  # details that do not fit
    assert "x_runner_note" not in html
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "inline SVGs must not share element ids"


def test_the_command_is_rebuilt_when_not_recorded(results: dict[str, Any]) -> None:
    del results["command"]
    results["submission"]["path"] = "/srv/my submissions/metro"
    html = render_html(results)
    assert (
        "<pre><code>cityx trial &#39;/srv/my submissions/metro&#39; --seed 0 "
        "--policy /srv/cityx/policies/metro-2026.toml</code></pre>"
    ) in html


def test_write_report_replaces_the_file_atomically(results: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")
    assert write_report(results, target) == target
    assert target.read_text(encoding="utf-8") == render_html(results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    with pytest.raises(RunError, match="cannot write the report"):
        write_report(results, tmp_path / "missing" / "report.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
