"""Schemas (both engines agree) and physical plausibility, apart from envelopes."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from cityx.interop import (
    Catalog,
    MessageError,
    MessageType,
    PhysicalLimits,
    SchemaEngine,
    check_plausible,
    schema_id,
)

from .conftest import ISSUER, NOW, flow

ENGINES = [SchemaEngine.JSONSCHEMA, SchemaEngine.JSONSCHEMA_RS]


@pytest.fixture(scope="module", params=ENGINES, ids=str)
def engine_catalog(request: pytest.FixtureRequest) -> Catalog:
    return Catalog.builtin(engine=request.param)


def _prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


VALID: dict[str, dict[str, Any]] = {
    "Road": {
        "id": "urn:ngsi-ld:Road:a4",
        "type": "Road",
        "name": _prop("A4"),
        "roadClass": _prop("motorway"),
        "length": _prop(12.5),
    },
    "RoadSegment": {
        "id": "urn:ngsi-ld:RoadSegment:a4-km12",
        "type": "RoadSegment",
        "name": _prop("A4 km 12"),
        "refRoad": {"type": "Relationship", "object": "urn:ngsi-ld:Road:a4"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "LineString", "coordinates": [[6.95, 50.93], [6.96, 50.94]]},
        },
        "startPoint": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [6.95, 50.93]},
        },
        "endPoint": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [6.96, 50.94]},
        },
        "allowedVehicleType": _prop(["car", "bus", "lorry"]),
        "totalLaneNumber": _prop(3),
        "maximumAllowedSpeed": _prop(100),
        "laneUsage": _prop(["forward", "forward", "backward"]),
    },
    "SignalStateObserved": {
        "id": "urn:ngsi-ld:SignalStateObserved:cluster-42",
        "type": "SignalStateObserved",
        "refIntersection": {
            "type": "Relationship",
            "object": "urn:ngsi-ld:Intersection:cluster-42",
        },
        "phaseIndex": _prop(1),
        "phaseElapsed": _prop(12.0),
        "mode": _prop("adaptive"),
        "signalState": _prop("GGrrGGrr"),
        "dateObserved": _prop({"@type": "DateTime", "@value": "2027-01-15T08:00:00Z"}),
    },
}


def test_every_schema_is_valid_draft_2020_12_and_versioned() -> None:
    folder = resources.files("cityx.interop") / "schemas"
    for name in ["ngsi-ld", *MessageType]:
        schema = json.loads((folder / f"{name}.v1.json").read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["$id"].endswith("/v1")
        if name != "ngsi-ld":
            assert schema["$id"] == schema_id(name)


def test_catalog_knows_every_type(catalog: Catalog) -> None:
    assert set(catalog.types()) == set(MessageType)
    assert catalog.schema_id("Nope") is None


def test_auto_picks_the_compiled_engine(catalog: Catalog) -> None:
    assert catalog.engine is SchemaEngine.JSONSCHEMA_RS


def test_valid_entities(engine_catalog: Catalog) -> None:
    assert engine_catalog.first_error("TrafficFlowObserved", flow()) is None
    for kind, entity in VALID.items():
        assert engine_catalog.first_error(kind, entity) is None, kind


def test_smart_data_models_typed_date_and_context_are_accepted(engine_catalog: Catalog) -> None:
    entity = flow()
    entity["dateObserved"] = _prop({"@type": "DateTime", "@value": "2027-01-15T08:00:00.5+01:00"})
    entity["@context"] = ["https://smartdatamodels.org/context.jsonld"]
    entity["reversedLane"] = _prop(False)  # an SDM attribute we do not list: open model
    assert engine_catalog.first_error("TrafficFlowObserved", entity) is None


INVALID = [
    ("TrafficFlowObserved", lambda e: e.pop("intensity")),
    ("TrafficFlowObserved", lambda e: e.update(intensity=_prop(-1))),
    ("TrafficFlowObserved", lambda e: e.update(intensity=_prop(1.5))),
    ("TrafficFlowObserved", lambda e: e.update(congested=_prop("no"))),
    ("TrafficFlowObserved", lambda e: e.update(dateObserved=_prop("yesterday"))),
    ("TrafficFlowObserved", lambda e: e.update(dateObserved=_prop("2027-01-15 08:00:00"))),
    ("TrafficFlowObserved", lambda e: e.update(id=e["id"] + "\n")),  # Python's $ would allow it
    ("TrafficFlowObserved", lambda e: e.update(id="urn:ngsi-ld:Road:x")),
    (
        "TrafficFlowObserved",
        lambda e: e.update(refRoadSegment={"type": "Relationship", "object": "urn:ngsi-ld:Road:x"}),
    ),
    ("TrafficFlowObserved", lambda e: e.update(extra={"type": "Bogus", "value": 1})),
    ("TrafficFlowObserved", lambda e: e.update(laneId={"type": "Property", "value": None})),
    ("TrafficFlowObserved", lambda e: e.update(dateObserved=_prop("2027-01-15T08:00:00Z"), x=1)),
    (
        "TrafficFlowObserved",
        lambda e: e.update(dateObserved=_prop("٢٠٢٧-01-15T08:00:00Z")),
    ),  # non-ASCII digits
]


@pytest.mark.parametrize(("kind", "edit"), INVALID)
def test_invalid_entities_both_engines(engine_catalog: Catalog, kind: str, edit: Any) -> None:
    entity = flow()
    edit(entity)
    assert engine_catalog.first_error(kind, entity) is not None


def test_closed_own_types_reject_extra_attributes(engine_catalog: Catalog) -> None:
    entity = {**VALID["SignalStateObserved"], "note": _prop("x")}
    assert engine_catalog.first_error("SignalStateObserved", entity) is not None


def test_check_raises_a_message_error(catalog: Catalog) -> None:
    with pytest.raises(MessageError, match="unknown message type"):
        catalog.check("Nope", {})
    with pytest.raises(MessageError, match="intensity"):
        catalog.check("TrafficFlowObserved", {**flow(), "intensity": _prop(-1)})


LIMITS = PhysicalLimits()


def plausible(entity: dict[str, Any], issuer: str = ISSUER) -> str | None:
    return check_plausible(entity, issuer=issuer, now=NOW, limits=LIMITS)


def test_plausible_entities() -> None:
    assert plausible(flow()) is None
    for entity in VALID.values():
        assert plausible(entity) is None


@pytest.mark.parametrize(
    ("entity", "words"),
    [
        (flow(averageVehicleSpeed=251.0), "averageVehicleSpeed"),
        (flow(occupancy=-0.1), "occupancy"),
        (flow(dateObserved="2027-02-30T00:00:00Z"), "not a real date-time"),
        (flow(NOW + 6), "future"),
        (
            {
                **flow(),
                "location": {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [200.0, 10.0]},
                },
            },
            "globe",
        ),
        ({**VALID["RoadSegment"], "totalLaneNumber": _prop(0)}, "totalLaneNumber"),
        ({**VALID["RoadSegment"], "maximumAllowedSpeed": _prop(0)}, "maximumAllowedSpeed"),
        ({**VALID["Road"], "length": _prop(-1)}, "length"),
        ({**VALID["SignalStateObserved"], "phaseElapsed": _prop(-1)}, "phaseElapsed"),
        ({**VALID["SignalStateObserved"], "phaseIndex": _prop(64)}, "phaseIndex"),
    ],
)
def test_implausible_entities(entity: dict[str, Any], words: str) -> None:
    problem = plausible(entity)
    assert problem is not None and words in problem


def test_the_period_bounds_the_count() -> None:
    assert plausible(flow(intensity=60)) is None  # one vehicle a second: the most we allow
    assert plausible(flow(intensity=61)) is not None
    entity = flow()
    entity["dateObservedFrom"], entity["dateObservedTo"] = (
        entity["dateObservedTo"],
        entity["dateObservedFrom"],
    )
    assert "before" in (plausible(entity) or "")


def test_without_jsonschema_rs_auto_falls_back_to_jsonschema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "jsonschema_rs", None)  # makes the import fail
    fallback = Catalog.builtin()
    assert fallback.engine is SchemaEngine.JSONSCHEMA
    assert fallback.first_error("TrafficFlowObserved", flow()) is None


def test_the_whole_pipeline_runs_on_the_reference_engine() -> None:
    from cityx.interop import Reason, Signer, StaticTrustStore, Verifier, generate_key

    from .conftest import AUD, Clock, trusted

    reference = Catalog.builtin(engine=SchemaEngine.JSONSCHEMA)
    key, clock = generate_key(ISSUER), Clock()
    verifier = Verifier(
        StaticTrustStore([trusted(key)]), audience=AUD, catalog=reference, now=clock
    )
    signer = Signer(key, catalog=reference, now=clock)
    assert verifier.verify(signer.sign(flow(), audience=AUD)).accepted
    assert (
        verifier.verify(signer.sign(flow(averageVehicleSpeed=300.0), audience=AUD)).reason
        is Reason.IMPLAUSIBLE
    )
