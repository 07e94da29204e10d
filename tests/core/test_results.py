"""The typed results document: round trips, lenient reading, details by the registry."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest

from cityx.core import (
    RESULTS_SCHEMA_VERSION,
    Check,
    CheckContext,
    CheckRecord,
    CheckResult,
    CheckStatus,
    DataError,
    Details,
    Fields,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    PluginRecord,
    Principle,
    RawDetails,
    Registry,
    Tags,
    TrialResults,
)

EXAMPLE = Path(__file__).parents[1] / "governance" / "golden" / "results-example.json"


@pytest.fixture
def document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return data


def test_a_document_reads_and_writes_back_the_same_sections(document: dict[str, Any]) -> None:
    typed = TrialResults.from_json(document, registry=Registry())
    again = typed.to_json()
    for key in (
        "trial_id",
        "created_at",
        "wall_s",
        "submission",
        "seed",
        "versions",
        "policy",
        "data",
        "checks",
        "findings",
        "gate",
        "principles",
        "command",
    ):
        assert json.dumps(again[key], sort_keys=True) == json.dumps(document[key], sort_keys=True)
    assert "x_runner_note" not in again  # unknown keys are ignored
    assert TrialResults.from_json(again, registry=Registry()) == typed


def test_details_are_read_as_the_type_their_check_declares(document: dict[str, Any]) -> None:
    typed = TrialResults.from_json(document, registry=Registry())
    perf = typed.check("performance.nominal")
    assert perf is not None and type(perf.details).__name__ == "PerformanceDetails"
    # Not installed here: raw. Installed, but hand-made details that do not fit: raw too.
    for check_id in ("demand.forecast", "fairness.groups"):
        record = typed.check(check_id)
        assert record is not None and isinstance(record.details, RawDetails)
    error = typed.check("explanations.fidelity")
    assert error is not None and error.details is None  # {} is no details
    untyped = TrialResults.from_json(document)  # without a registry, every check's are raw
    assert all(isinstance(c.details, RawDetails | None) for c in untyped.checks or ())


def test_schema_1_plugin_strings_read_as_records(document: dict[str, Any]) -> None:
    plugins = TrialResults.from_json(document).plugins
    assert plugins is not None
    assert plugins[0] == PluginRecord("check", "admission", version="1")
    assert plugins[0].label == "check:admission@1"
    assert PluginRecord.from_json("odd").label == "odd"
    record = Registry().record(PluginKind.CHECK, "admission")
    assert PluginRecord.from_json(record).to_json() == record


def test_absent_sections_and_wrong_kinds_read_leniently() -> None:
    empty = TrialResults.from_json({})
    assert empty.schema_version is None and empty.checks is None and empty.gate is None
    assert empty.to_json() == {}
    assert TrialResults.from_json("not a document") == empty
    odd = TrialResults.from_json(
        {
            "schema_version": 2,
            "seed": "zero",
            "checks": "none",
            "findings": [{"id": "f", "severity": "dire", "atlas": ["AML.T0043", 7]}],
            "checks_extra": 1,
        }
    )
    assert odd.seed is None and odd.checks is None  # wrong kinds: undefined, absent
    assert odd.findings is not None
    finding = odd.findings[0]
    assert finding.severity == "dire"  # an unknown word is kept for the reader to judge
    assert finding.atlas == ("AML.T0043", "7")
    metric = CheckRecord.from_json({"metrics": {"a": 0.5, "b": {"value": "x", "unit": "s"}}})
    assert metric.metrics == {"a": Metric(0.5), "b": Metric(None, unit="s")}


def test_a_check_record_writes_what_the_check_result_writes() -> None:
    result = CheckResult(
        "x",
        CheckStatus.PASSED,
        {"m": Metric(1.0, 0.5, 1.5, "s")},
        details=RawDetails({"k": [1, 2]}),
        wall_s=0.123456,
    )
    assert CheckRecord.of(result).to_json() == result.to_json()
    assert CheckResult("x", CheckStatus.SKIPPED).to_json()["details"] == {}


def test_a_plain_mapping_of_details_is_kept_raw() -> None:
    # A plugin written before details were typed still works.
    result = CheckResult("x", CheckStatus.PASSED, details={"k": 1})
    assert result.details == RawDetails({"k": 1})
    assert CheckResult("x", CheckStatus.PASSED, details={}).details is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "'n' is missing"),
        ({"n": "3"}, "'n' must be an integer, got a string"),
        ({"n": True}, "'n' must be an integer, got a boolean"),
    ],
)
def test_fields_name_what_does_not_fit(data: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message) as caught:
        Fields.of(data, "x details").integer("n")
    assert caught.value.where == "x details"


@dataclass(frozen=True, slots=True)
class _Counted(Details):
    """Details of the test check below."""

    n: int

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        return cls(Fields.of(data, "x details").integer("n"))


class _WrongDetails(Check):
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="x.wrong",
        kind=PluginKind.CHECK,
        version="1",
        summary="returns details of another type than it declares",
        tags=Tags(Principle.ROBUSTNESS, NistFunction.MEASURE),
        supports=frozenset({"predictor"}),
    )
    details_type = _Counted

    def _run(self, ctx: CheckContext) -> CheckResult:
        return CheckResult(self.meta.id, CheckStatus.PASSED, details=RawDetails({"n": 1}))


def test_a_check_must_return_the_details_it_declares(tmp_path: Path) -> None:
    result = _WrongDetails().run(CheckContext(submission_dir=tmp_path, manifest=None, seed=0))
    assert result.status is CheckStatus.ERROR
    assert "details are a RawDetails, not the declared _Counted" in result.message


def test_the_schema_version_is_defined_once() -> None:
    src = Path(__file__).parents[2] / "src" / "cityx"
    defined = [
        p.relative_to(src).as_posix()
        for p in src.rglob("*.py")
        if re.search(r"^RESULTS_SCHEMA_VERSION\s*=", p.read_text(encoding="utf-8"), re.M)
    ]
    assert defined == ["core/results.py"]
    assert TrialResults().to_json() == {"schema_version": RESULTS_SCHEMA_VERSION}
