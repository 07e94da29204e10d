"""AI Verify export: test results through the registry, principles and checklist."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from cityx.core import DataError, InputError, PluginKind, Registry
from cityx.core.builtins import BUILTINS
from cityx.governance import ExportsToAIVerify
from cityx.governance.aiverify import export_trial


def test_export_of_a_trial_without_fairness_still_writes_principles(tmp_path: Path) -> None:
    trial = tmp_path / "trial"
    trial.mkdir()
    (trial / "results.json").write_text(
        json.dumps(
            {
                "trial_id": "t-1",
                "checks": [{"id": "fairness.groups", "status": "skipped", "details": {}}],
                "principles": {"robustness": {"status": "ok", "findings": 0}},
                "versions": {"cityx": "0"},
            }
        )
    )
    written = {p.name for p in export_trial(trial, tmp_path / "out")}
    assert written == {"checklist.json", "principles.json"}
    principles = json.loads((tmp_path / "out" / "principles.json").read_text())["principles"]
    assert len(principles) == 11
    assert principles["robustness"]["tested"] == "ok"
    assert principles["fairness"]["checklist"] == "not_met"  # the check was skipped
    with pytest.raises(InputError, match=r"results\.json is missing"):
        export_trial(tmp_path / "nowhere", tmp_path / "out")


EXPORTER = """
from typing import ClassVar

from cityx.core import Check, CheckResult, CheckStatus, NistFunction, PluginKind, PluginMeta
from cityx.core import Principle, Tags
from cityx.governance import AIVerifyResult


class Exporter(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="x.exporter", kind=PluginKind.CHECK, version="1", summary="exports to AI Verify",
        tags=Tags(Principle.ROBUSTNESS, NistFunction.MEASURE), supports=frozenset({"predictor"}),
    )

    def _run(self, ctx):
        return CheckResult(self.meta.id, CheckStatus.PASSED)

    @staticmethod
    def aiverify_result(details, trial):
        return AIVerifyResult(
            gid="example.plugin", cid="example_algorithm", version="1.0",
            arguments={"trial": trial.trial_id}, output={"seen": details.to_json()},
            companions={"extra.json": {"ok": True}},
        )
"""


def write_trial(folder: Path, checks: list[dict[str, object]]) -> Path:
    folder.mkdir()
    document = {"trial_id": "t-2", "created_at": "2026-01-02T03:04:05Z", "checks": checks}
    (folder / "results.json").write_text(json.dumps(document), "utf-8")
    return folder


def test_a_check_exports_its_own_test_result_through_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cityx_test_exporter.py").write_text(textwrap.dedent(EXPORTER), "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cityx_test_exporter", raising=False)
    registry = Registry({**BUILTINS, ("check", "x.exporter"): "cityx_test_exporter:Exporter"})
    assert isinstance(registry.load(PluginKind.CHECK, "x.exporter"), ExportsToAIVerify)
    trial = write_trial(
        tmp_path / "trial",
        [
            {"id": "x.exporter", "status": "failed", "wall_s": 1.23456, "details": {"k": 1}},
            {"id": "x.exporter", "status": "error", "details": {"k": 2}},  # measured nothing
            {"id": "not.installed", "status": "passed", "details": {"k": 3}},
        ],
    )
    written = export_trial(trial, tmp_path / "out", registry=registry)
    assert [p.name for p in written] == [
        "example_algorithm.json",
        "extra.json",
        "checklist.json",
        "principles.json",
    ]
    result = json.loads((tmp_path / "out" / "example_algorithm.json").read_text())
    assert result == {
        "gid": "example.plugin",
        "cid": "example_algorithm",
        "version": "1.0",
        "startTime": "2026-01-02T03:04:05+00:00",
        "timeTaken": 1.2346,
        "testArguments": {"trial": "t-2"},
        "output": {"seen": {"k": 1}},
        "artifacts": [],
    }


def test_fairness_details_that_do_not_fit_are_named(tmp_path: Path) -> None:
    trial = write_trial(
        tmp_path / "trial",
        [{"id": "fairness.groups", "status": "passed", "details": {"task": "classification"}}],
    )
    with pytest.raises(DataError, match=r"fairness.groups details: '\w+' is missing"):
        export_trial(trial, tmp_path / "out")
