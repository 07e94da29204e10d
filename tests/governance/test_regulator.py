"""The governance report: HTML sections, JSON, the one-page summary, and the PDF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityx.core import InputError
from cityx.governance.regulator import build_governance, render
from cityx.governance.trial_folder import open_trial

GOLDEN = Path(__file__).parent / "golden" / "results-example.json"


@pytest.fixture
def trial(tmp_path: Path) -> Path:
    folder = tmp_path / "trial"
    folder.mkdir()
    doc = json.loads(GOLDEN.read_text("utf-8"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "cityx.toml").write_text(
        '[data]\ndatasheet = "sheet.md"\n[claims]\nmacro_f1 = 0.99\n', "utf-8"
    )
    (sub / "sheet.md").write_text("Collected <b>on the ring road</b>.\n", "utf-8")
    doc["submission"]["path"] = str(sub)
    (folder / "results.json").write_text(json.dumps(doc), "utf-8")
    return folder


def test_html_has_the_trial_report_claims_and_every_framework(trial: Path) -> None:
    page = render(build_governance(open_trial(trial)), "html").decode()
    assert 'id="gate"' in page and 'id="claims"' in page
    for fw in ("aiverify", "nist", "euai", "atlas"):
        assert f'id="fw-{fw}"' in page
    assert "NIST AI 100-1" in page and "Regulation (EU) 2024/1689" in page
    # the datasheet is shown as written, escaped, never parsed
    assert "Collected &lt;b&gt;on the ring road&lt;/b&gt;." in page
    assert "<b>on the ring road</b>" not in page


def test_json_and_summary(trial: Path) -> None:
    report = build_governance(open_trial(trial), framework="atlas")
    doc = json.loads(render(report, "json"))
    assert doc["kind"] == "cityx.governance-report"
    (fw,) = doc["frameworks"]
    assert fw["framework"] == "atlas" and sum(fw["status_counts"].values()) == len(
        fw["requirements"]
    )
    (claim,) = doc["claims"]
    assert claim["status"] == "finding"  # 0.99 lies above the measured macro-F1 interval
    summary = json.loads(render(report, "json", summary_only=True))
    assert summary["claims_failed"][0]["claim"] == "macro_f1"
    with pytest.raises(InputError, match="unknown format"):
        render(report, "docx")


@pytest.mark.slow
def test_pdf_is_paginated_with_contents(trial: Path) -> None:
    doc = json.loads((trial / "results.json").read_text("utf-8"))
    doc["checks"] = [c for c in doc["checks"] if c["id"] == "performance.nominal"]
    (trial / "results.json").write_text(json.dumps(doc), "utf-8")  # a short report: quick
    report = build_governance(open_trial(trial), framework="atlas")
    pdf = render(report, "pdf")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    summary = render(report, "pdf", summary_only=True)
    assert summary.startswith(b"%PDF") and len(summary) < len(pdf)
