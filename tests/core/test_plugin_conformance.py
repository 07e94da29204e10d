"""Every registered plugin honours its kind's contract."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from cityx.core import Check, DataError, Details, PluginKind, PluginMeta, RawDetails, Registry

REGISTRY = Registry()
PLUGINS = REGISTRY.plugins()


@pytest.mark.parametrize(("kind", "plugin_id"), PLUGINS, ids=[f"{k}:{i}" for k, i in PLUGINS])
def test_plugin_declares_valid_metadata(kind: PluginKind, plugin_id: str) -> None:
    plugin = REGISTRY.load(kind, plugin_id)
    meta = plugin.meta
    assert isinstance(meta, PluginMeta)
    assert (meta.kind, meta.id) == (kind, plugin_id)
    assert meta.summary.strip() and meta.version
    assert meta.supports, "a plugin says what it supports"


CHECKS = [p for p in PLUGINS if p[0] is PluginKind.CHECK]


@pytest.mark.parametrize(("kind", "plugin_id"), CHECKS, ids=[i for _, i in CHECKS])
def test_checks_follow_the_check_contract(kind: PluginKind, plugin_id: str) -> None:
    cls = REGISTRY.load(kind, plugin_id)
    assert inspect.isclass(cls) and issubclass(cls, Check)
    assert not inspect.isabstract(cls)
    assert meta_supports_known_kinds(cls.meta)
    assert all(isinstance(m, str) and m for m in cls.threshold_metrics)
    cls()  # constructors take no required arguments and do no work


# Recorded details of each built-in check, one or more shapes each (trimmed from real trials).
DETAILS_EXAMPLES: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).parent / "data" / "check-details.json").read_text(encoding="utf-8")
)
BUILTIN_CHECKS = [
    (i, n, example)
    for _, i in CHECKS
    if REGISTRY.info(PluginKind.CHECK, i).distribution == "cityx"
    for n, example in enumerate(DETAILS_EXAMPLES.get(i, [None]))
]


@pytest.mark.parametrize(
    ("plugin_id", "n", "example"), BUILTIN_CHECKS, ids=[f"{i}-{n}" for i, n, _ in BUILTIN_CHECKS]
)
def test_details_round_trip_through_their_json(
    plugin_id: str, n: int, example: dict[str, Any] | None
) -> None:
    cls = REGISTRY.load(PluginKind.CHECK, plugin_id)
    assert issubclass(cls.details_type, Details) and cls.details_type is not RawDetails
    assert example is not None, f"add an example of {plugin_id}'s details to check-details.json"
    details = cls.details_type.from_json(example)
    assert isinstance(details, cls.details_type)
    # The same JSON back, keys in the same order: results.json keeps its shape.
    assert json.dumps(details.to_json()) == json.dumps(example)
    assert cls.details_type.from_json(details.to_json()) == details
    with pytest.raises(DataError, match="is missing"):
        cls.details_type.from_json({})  # the reader names what does not fit


def meta_supports_known_kinds(meta: PluginMeta) -> bool:
    return meta.supports <= {"predictor", "controller"}


TARGETS = [p for p in PLUGINS if p[0] is PluginKind.TARGET]


def test_every_artifact_format_has_a_target() -> None:
    from cityx.core import ArtifactFormat

    assert {i for _, i in TARGETS} == {f.value for f in ArtifactFormat}
