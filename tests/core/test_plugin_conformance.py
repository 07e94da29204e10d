"""Every registered plugin honours its kind's contract."""

from __future__ import annotations

import inspect

import pytest

from cityx.core import Check, PluginKind, PluginMeta, Registry

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


def meta_supports_known_kinds(meta: PluginMeta) -> bool:
    return meta.supports <= {"predictor", "controller"}


TARGETS = [p for p in PLUGINS if p[0] is PluginKind.TARGET]


def test_every_artifact_format_has_a_target() -> None:
    from cityx.core import ArtifactFormat

    assert {i for _, i in TARGETS} == {f.value for f in ArtifactFormat}
