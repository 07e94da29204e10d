"""The AI Verify export against AI Verify's own schema files (vendored from PyPI wheels)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema

from cityx.assess.fairness.details import FairnessDetails
from cityx.governance.aiverify import export_trial

GOLDEN = Path(__file__).parent / "golden" / "results-example.json"


def schema(name: str) -> dict[str, object]:
    text = (resources.files("cityx.governance") / "schemas" / name).read_text("utf-8")
    loaded: dict[str, object] = json.loads(text)
    return loaded


def test_the_vendored_files_are_aiverifys() -> None:
    result = schema("aiverify.testresult.schema.json")
    assert result["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(result["required"]) >= {"gid", "cid", "output"}  # type: ignore[arg-type]
    for name in (
        "fairness_metrics_toolbox_for_classification.output.schema.json",
        "fairness_metrics_toolbox_for_regression.output.schema.json",
    ):
        jsonschema.Draft202012Validator.check_schema(schema(name))


def test_the_fairness_export_validates_against_both_schemas(tmp_path: Path) -> None:
    details = FairnessDetails(
        sensitive=("district",),
        label_column="congested",
        bootstrap=0,
        source="holdout.csv",
        task="classification",
        groups=("north", "south", "east"),
        labels=("no", "yes"),
        counts={
            "yes": ((50, 10, 5, 35), (40, 5, 3, 9), (20, 2, 8, 10)),
            "no": ((35, 5, 10, 50), (9, 3, 5, 40), (10, 8, 2, 20)),
        },
    )
    doc = json.loads(GOLDEN.read_text("utf-8"))
    for check in doc["checks"]:
        if check["id"] == "fairness.groups":
            check["details"] = details.to_json()
    trial = tmp_path / "trial"
    trial.mkdir()
    (trial / "results.json").write_text(json.dumps(doc), "utf-8")
    written = export_trial(trial, tmp_path / "out")
    results = [json.loads(p.read_text()) for p in written]
    tests = [r for r in results if isinstance(r, dict) and "gid" in r and "cid" in r]
    assert tests, "the golden trial has a fairness check to export"
    testresult = jsonschema.Draft202012Validator(schema("aiverify.testresult.schema.json"))
    for doc in tests:
        testresult.validate(doc)
    (fairness,) = [t for t in tests if t["cid"] == "fairness_metrics_toolbox_for_classification"]
    jsonschema.validate(
        fairness["output"],
        schema("fairness_metrics_toolbox_for_classification.output.schema.json"),
    )
