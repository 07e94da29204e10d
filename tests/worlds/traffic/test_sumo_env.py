from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cityx.core.errors import CityxError
from cityx.worlds import WorldError
from cityx.worlds.traffic import sumo_env

from .conftest import needs_sumo


@pytest.fixture
def fresh_cache():
    sumo_env.sumo_tools.cache_clear()
    yield
    sumo_env.sumo_tools.cache_clear()


@pytest.mark.usefixtures("fresh_cache")
def test_missing_sumo_is_a_clear_world_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes ``import sumo`` raise ImportError.
    monkeypatch.setitem(sys.modules, "sumo", None)
    with pytest.raises(WorldError) as info:
        sumo_env.load_libsumo()
    text = str(info.value)
    assert "Eclipse SUMO is not available" in text
    assert "pip install 'cityx[sumo]'" in text
    assert "\n" not in text
    assert isinstance(info.value, CityxError)


def test_importing_the_world_package_loads_no_simulator() -> None:
    code = (
        "import sys, cityx.worlds.traffic, cityx.cli.world; "
        "print(sorted(m for m in ('sumo', 'libsumo', 'sumolib', 'traci', 'sumo_rl') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.usefixtures("fresh_cache")
def test_tools_come_from_the_wheel_and_set_sumo_home(monkeypatch: pytest.MonkeyPatch) -> None:
    needs_sumo()
    monkeypatch.setenv("SUMO_HOME", "/nowhere")
    tools = sumo_env.sumo_tools()
    assert os.environ["SUMO_HOME"] == str(tools.home)
    for path in (tools.sumo, tools.netgenerate, tools.duarouter, tools.random_trips):
        assert path.is_file()
    assert tools.version.count(".") >= 1
