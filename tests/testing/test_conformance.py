"""Every registered plugin passes cityx.testing's behavioural conformance checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cityx.core import PluginKind, Registry
from cityx.testing import PluginCheck, plugin_checks
from cityx.testing.workbench import Workbench

REGISTRY = Registry()


@pytest.fixture(scope="session")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Workbench:
    return Workbench(tmp_path_factory.mktemp("conformance"))


# Each plugin's "runs" outcome, which its "deterministic" check compares a second run with.
OUTCOMES: dict[str, Any] = {}


def _checks() -> list[tuple[str, str, str]]:
    found = []
    with_names = Workbench(Path("/nonexistent"))  # names only: nothing is built here
    for kind, plugin_id in REGISTRY.plugins():
        plugin = REGISTRY.load(kind, plugin_id)
        for check in plugin_checks(plugin, workbench=with_names):
            found.append((kind.value, plugin_id, check.name))
    return found


CHECKS = _checks()


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "plugin_id", "name"), CHECKS, ids=[":".join(c) for c in CHECKS])
def test_plugin_honours_its_contract(
    workbench: Workbench, kind: str, plugin_id: str, name: str
) -> None:
    plugin = REGISTRY.load(PluginKind(kind), plugin_id)
    checks: dict[str, PluginCheck] = {
        c.name: c
        for c in plugin_checks(plugin, workbench=workbench, registry=REGISTRY, outcomes=OUTCOMES)
    }
    checks[name]()
