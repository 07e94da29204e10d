"""Each check draws its own report section; the report knows none of their details."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cityx.core import PluginKind, Registry
from cityx.core.builtins import BUILTINS
from cityx.governance import RendersSection
from cityx.governance.report import render_html

GOLDEN = Path(__file__).parent / "golden"
GOVERNANCE = Path(__file__).parents[2] / "src" / "cityx" / "governance"
# Details keys of the built-in checks; governance must reach them only through the checks.
CHECK_KEYS = (
    "comparisons",
    "by_label",
    "sanitising",
    "trigger",
    "groups",
    "confusion",
    "residual_quantiles",
    "probes",
    "outcomes",
    "rejected_by_feature",
    "counts",
    "flagged_rows",
    "cells",
    "label_column",
    "sensitive",
)


@pytest.fixture
def results() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / "results-example.json").read_text("utf-8"))
    return data


def section(html: str, check_id: str) -> str:
    anchor = "check-" + re.sub(r"[^a-z0-9]+", "-", check_id)
    found = re.search(rf'<section class="check" id="{anchor}".*?</section>', html, re.DOTALL)
    assert found, check_id
    return found.group(0)


def details_rows(html: str, check_id: str) -> list[str]:
    table = re.search(
        rf"<caption>Details of {re.escape(check_id)}</caption>.*?</table>", html, re.DOTALL
    )
    return re.findall(r'<th scope="row">([^<]+)</th>', table.group(0)) if table else []


def test_governance_knows_no_checks_details_keys() -> None:
    sources = list(GOVERNANCE.rglob("*.py"))
    assert sources
    for path in sources:
        text = path.read_text("utf-8")
        for key in CHECK_KEYS:
            assert f'"{key}"' not in text and f"'{key}'" not in text, f"{path.name}: {key}"


def test_a_check_not_installed_here_gets_a_generic_table(results: dict[str, Any]) -> None:
    perf = next(c for c in results["checks"] if c["id"] == "performance.nominal")
    perf["id"] = "acme.performance"  # a third party's check, absent here
    html = render_html(results)
    mine = section(html, "acme.performance")
    assert "<svg" not in mine  # its recall and confusion charts belong to the check
    assert details_rows(html, "acme.performance") == list(perf["details"])
    assert '<tr><th scope="row">task</th><td>classification</td></tr>' in mine
    assert "[[787, 34, 4], [97, 579, 18], [11, 189, 280]]" in mine  # confusion, as recorded


def test_a_check_draws_its_own_section(results: dict[str, Any]) -> None:
    forecast = next(c for c in results["checks"] if c["id"] == "demand.forecast")
    assert details_rows(render_html(results), "demand.forecast") == list(forecast["details"])
    # The same details as a regressor's nominal performance: drawn by that check.
    results["checks"] = [c for c in results["checks"] if c["id"] != "performance.nominal"]
    forecast["id"] = "performance.nominal"
    forecast["details"]["source"] = "holdout.csv"
    html = render_html(results)
    mine = section(html, "performance.nominal")
    assert mine.count("<svg ") == 1 and "Residual quantiles for" in mine
    assert '<tr><th scope="row">p95</th><td class="num">52.6</td></tr>' in mine
    # The keys its chart shows leave the name/value table.
    assert details_rows(html, "performance.nominal") == ["task", "bias", "n", "bootstrap", "source"]


def test_details_that_do_not_fit_their_type_are_listed_as_recorded(
    results: dict[str, Any],
) -> None:
    contract = next(c for c in results["checks"] if c["id"] == "input.contract")
    contract["details"]["probes"]["valid"] = "many"  # hand-edited: not a count
    html = render_html(results)
    assert "Probe outcomes for" not in section(html, "input.contract")
    assert details_rows(html, "input.contract") == ["probes", "outcomes", "rejected_by_feature"]


BROKEN = """
from typing import ClassVar

from cityx.core import Check, CheckResult, CheckStatus, NistFunction, PluginKind, PluginMeta
from cityx.core import Principle, Tags


class Broken(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="x.broken", kind=PluginKind.CHECK, version="1", summary="draws badly",
        tags=Tags(Principle.ROBUSTNESS, NistFunction.MEASURE), supports=frozenset({"predictor"}),
    )

    def _run(self, ctx):
        return CheckResult(self.meta.id, CheckStatus.PASSED)

    @staticmethod
    def report_section(details, metrics, key):
        raise ZeroDivisionError("a bug in the drawing")
"""


def test_a_section_that_cannot_be_drawn_leaves_a_note_and_the_details(
    results: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cityx_test_broken.py").write_text(textwrap.dedent(BROKEN), "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cityx_test_broken", raising=False)
    registry = Registry({**BUILTINS, ("check", "x.broken"): "cityx_test_broken:Broken"})
    assert isinstance(registry.load(PluginKind.CHECK, "x.broken"), RendersSection)
    results["checks"].append(
        {"id": "x.broken", "status": "passed", "metrics": {}, "details": {"note": "kept"}}
    )
    html = render_html(results, registry=registry)
    assert (
        "The section of check x.broken could not be drawn (ZeroDivisionError: a bug in the "
        "drawing); its details are listed as recorded."
    ) in html
    assert details_rows(html, "x.broken") == ["note"]


def test_every_built_in_check_with_charts_or_tables_draws_its_section() -> None:
    registry = Registry()
    drawing = {
        pid
        for pid in registry.ids(PluginKind.CHECK)
        if isinstance(registry.load(PluginKind.CHECK, pid), RendersSection)
    }
    assert drawing == {
        "performance.nominal",
        "input.contract",
        "sandbox.nominal",
        "redteam.campaign",
        "fairness.groups",
        "poisoning.audit",
        "redteam.evasion",
        "explain.fidelity",
        "explain.scaffolding",
    }  # admission has only a name/value table


def test_plugins_read_in_both_schema_versions(results: dict[str, Any]) -> None:
    assert "This document has schema version" not in render_html(results)  # 1: strings
    results["schema_version"] = 2
    results["plugins"] = [
        Registry().record(PluginKind.CHECK, "admission"),
        {
            "kind": "check",
            "id": "demand.forecast",
            "distribution": "acme-checks",
            "distribution_version": "2.1",
            "version": "3",
        },
    ]
    html = render_html(results)
    assert "This document has schema version" not in html
    assert "<li><code>check:admission@1</code></li>" in html
    assert "<li><code>check:demand.forecast@3 (acme-checks 2.1)</code></li>" in html
    results["schema_version"] = 99
    assert "This document has schema version 99" in render_html(results)
