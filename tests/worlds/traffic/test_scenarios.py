from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cityx.core.errors import InputError
from cityx.worlds import ScenarioError
from cityx.worlds.traffic.scenarios import (
    ScenarioSource,
    get_scenario,
    list_scenarios,
    prepare_run,
)

from .conftest import needs_resco, needs_sumo, tree_digest

RESCO_SIGNALS = {
    "cologne1": 1,
    "cologne3": 3,
    "cologne8": 8,
    "ingolstadt1": 1,
    "ingolstadt7": 7,
    "ingolstadt21": 21,
    "grid4x4": 16,
    "arterial4x4": 16,
}


def test_catalogue_lists_builtin_and_resco_with_signal_counts() -> None:
    needs_resco()
    found = {s.name: s for s in list_scenarios()}
    assert found["grid3x3"].source is ScenarioSource.BUILTIN
    assert found["grid3x3"].signals == 9
    for name, signals in RESCO_SIGNALS.items():
        assert found[name].source is ScenarioSource.RESCO
        assert found[name].signals == signals, name
        assert found[name].config is not None and found[name].config.is_file()
    assert set(found["cologne8"].to_json()) == {"name", "source", "signals", "description"}


def test_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        get_scenario("atlantis")
    text = str(info.value)
    assert "unknown scenario 'atlantis'" in text
    assert "grid3x3" in text
    assert isinstance(info.value, InputError)


def test_broken_sumocfg_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sumocfg"
    broken.write_text("<configuration><input><net-file value='x.net.xml'/>\n")
    with pytest.raises(ScenarioError) as info:
        get_scenario(broken)
    assert str(broken) in str(info.value)
    assert "\n" not in str(info.value)

    missing = tmp_path / "missing.sumocfg"
    missing.write_text(
        "<configuration><input><net-file value='nope.net.xml'/></input></configuration>"
    )
    with pytest.raises(ScenarioError, match=r"missing\.sumocfg: net-file nope\.net\.xml"):
        get_scenario(missing)

    with pytest.raises(ScenarioError, match="no such scenario file"):
        get_scenario(tmp_path / "absent.sumocfg")


def test_prepared_copy_never_touches_the_package_and_has_detectors(tmp_path: Path) -> None:
    needs_sumo()
    folder = needs_resco()
    before = tree_digest(folder / "cologne3")
    run = prepare_run(get_scenario("cologne3"), tmp_path / "run", seed=3, seconds=300, demand=1.2)
    assert tree_digest(folder / "cologne3") == before
    assert run.begin == 25200.0
    assert run.config.parent == tmp_path / "run"
    assert all(p.is_relative_to(tmp_path) for p in run.config.parent.rglob("*"))
    assert len(run.network.intersections) == 3

    root = ET.parse(run.detectors).getroot()
    e1 = {d.attrib["lane"] for d in root.iter("inductionLoop")}
    e2 = {d.attrib["lane"] for d in root.iter("laneAreaDetector")}
    lanes = {lane for i in run.network.intersections for lane in i.lanes}
    assert e1 == e2 == lanes
    assert lanes

    actuated = ET.parse(run.actuated).getroot()
    assert {t.attrib["type"] for t in actuated.iter("tlLogic")} == {"actuated"}

    saved = json.loads((run.folder / "network.json").read_text())
    assert set(saved["district_of_edge"].values()) <= {"NE", "NW", "SE", "SW"}
    assert run.network.approach_edges
    assert run.network.vclass_of_vtype["pkw"] == "passenger"


def test_user_scenario_runs_from_its_path_in_a_copy(tmp_path: Path) -> None:
    needs_sumo()
    folder = needs_resco()
    cfg = folder / "ingolstadt1" / "ingolstadt1.sumocfg"
    scenario = get_scenario(str(cfg))
    assert scenario.source is ScenarioSource.USER
    assert scenario.signals == 1
    run = prepare_run(scenario, tmp_path / "run", seed=0, seconds=60)
    assert run.network.vclass_of_vtype.get("bus") == "bus"
    assert (tmp_path / "run" / "scenario" / "ingolstadt1.net.xml").is_file()


def test_builtin_grid_is_generated_with_seeded_demand(tmp_path: Path) -> None:
    needs_sumo()
    a = prepare_run(get_scenario("grid3x3"), tmp_path / "a", seed=5, seconds=120)
    b = prepare_run(get_scenario("grid3x3"), tmp_path / "b", seed=5, seconds=120)
    assert len(a.network.intersections) == 9
    trips = "grid3x3.car.trips.xml"

    def body(run_folder: Path) -> str:
        text = (run_folder / "scenario" / trips).read_text()
        return text[text.index("<routes") :]

    assert body(a.folder) == body(b.folder)
    assert set(a.network.vclass_of_vtype.values()) >= {"passenger", "bus", "emergency"}


def test_demand_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="positive"):
        prepare_run(get_scenario("grid3x3"), tmp_path, seed=0, seconds=60, demand=0)
