from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from cityx.core import (
    CityxError,
    Direction,
    Feature,
    FeatureType,
    InputSchema,
    Metric,
    Principle,
    Severity,
    Tags,
    Threshold,
    derive_seed,
    manifest_json_schema,
    stream,
)


def test_streams_repeat_for_a_seed_and_differ_by_label() -> None:
    assert stream(7, "a").random(3).tolist() == stream(7, "a").random(3).tolist()
    assert stream(7, "a").random(3).tolist() != stream(7, "b").random(3).tolist()
    assert derive_seed(7, "a") != derive_seed(8, "a")


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, True])
def test_bad_seeds_are_refused(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        stream(seed, "x")  # type: ignore[arg-type]


def test_tags_validate_their_identifiers() -> None:
    assert Tags(Principle.SAFETY, atlas=("AML.T0043.003",), eu_ai_act=("Art. 15",))
    with pytest.raises(ValueError, match="ATLAS"):
        Tags(Principle.SAFETY, atlas=("T0043",))
    with pytest.raises(ValueError, match=r"Art\. 15"):
        Tags(Principle.SAFETY, eu_ai_act=("article 15",))


def test_principles_are_the_eleven_of_ai_verify() -> None:
    assert len(Principle) == 11
    assert Principle.HUMAN_AGENCY.display_name == "Human agency and oversight"


@pytest.mark.parametrize(
    ("direction", "value", "expected"),
    [
        (Direction.MIN, 0.9, None),
        (Direction.MIN, 0.7, Severity.MEDIUM),
        (Direction.MIN, 0.5, Severity.HIGH),
        (Direction.MAX, 0.5, None),
        (Direction.MAX, 0.7, Severity.MEDIUM),
        (Direction.MAX, 0.9, Severity.HIGH),
    ],
)
def test_threshold_judges_both_directions(
    direction: Direction, value: float, expected: Severity | None
) -> None:
    fail, cond = (0.6, 0.8) if direction is Direction.MIN else (0.8, 0.6)
    verdict = Threshold("m", direction, fail, cond).judge(value)
    assert (verdict[0] if verdict else None) == expected


def test_unmeasured_metric_is_a_finding_not_a_pass() -> None:
    verdict = Threshold("m", Direction.MIN, 0.5).judge(None)
    assert verdict is not None and verdict[0] is Severity.MEDIUM


def test_schema_violations_are_vectorised_per_cell() -> None:
    schema = InputSchema(
        (
            Feature("a", FeatureType.INT, min=0, max=10),
            Feature("b", min=0.0),
            Feature("c", FeatureType.BOOL),
        )
    )
    batch = np.array([[1, 0.5, 1], [1.5, 0.5, 0], [11, -1, 2], [np.nan, 1, 0]])
    v = schema.violations(batch)
    assert v.bad_rows.tolist() == [False, True, True, True]
    assert v.count_by_feature(schema.names) == {"a": 3, "b": 1, "c": 1}


def test_duplicate_features_and_inverted_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        InputSchema((Feature("a"), Feature("a")))
    with pytest.raises(ValueError, match="min"):
        Feature("a", min=2, max=1)


def test_metric_keeps_undefined_as_none() -> None:
    assert Metric(float("nan")).to_json()["value"] is None


def test_errors_print_on_one_line_with_where_and_hint() -> None:
    err = CityxError("bad\nthing", where="f.toml: [a].b", hint="fix it")
    assert str(err) == "f.toml: [a].b: bad thing (fix it)"


def test_shipped_manifest_schema_is_current() -> None:
    # Regenerate with: python -c "import json; from cityx.core import manifest_json_schema;
    # print(json.dumps(manifest_json_schema(), indent=2, sort_keys=True))"
    shipped = resources.files("cityx") / "schemas" / "submission-manifest.v2.json"
    assert json.loads(shipped.read_text()) == json.loads(json.dumps(manifest_json_schema()))
    # Version 1 stays shipped, frozen, for manifests written against it.
    v1 = resources.files("cityx") / "schemas" / "submission-manifest.v1.json"
    old = json.loads(v1.read_text())
    assert old["$id"].endswith("submission-manifest.v1.json")
