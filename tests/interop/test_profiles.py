"""Interop profiles: base accepts what the Smart Data Models accept, city asks for more."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from cityx.core import InputError
from cityx.interop import (
    Catalog,
    MessageError,
    Profile,
    SchemaEngine,
    SmartDataModels,
    key_values,
    profile_named,
)
from cityx.interop.plausibility import instant

from .conftest import flow

DATA = Path(__file__).parent / "data" / "sdm"
SDM_TYPES = ("TrafficFlowObserved", "Road", "RoadSegment")
ENGINES = (SchemaEngine.JSONSCHEMA, SchemaEngine.JSONSCHEMA_RS)
FLOW = "TrafficFlowObserved"


@pytest.fixture(scope="module", params=ENGINES, ids=str)
def catalogs(request: pytest.FixtureRequest) -> dict[Profile, Catalog]:
    return {p: Catalog.builtin(engine=request.param, profile=p) for p in Profile}


def _upstream(model: str, form: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{model}.{form}.jsonld").read_text("utf-8"))
    return loaded


def _without(entity: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k not in names}


# -- the vendored schemas -------------------------------------------------------------------------

SDM = resources.files("cityx.interop") / "schemas" / "sdm"


def _provenance() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SDM / "PROVENANCE.json").read_text("utf-8"))
    return loaded


def test_vendored_files_are_the_upstream_bytes_named_in_provenance() -> None:
    files = _provenance()["files"]
    assert {f["file"] for f in files} == {f"{m}.schema.json" for m in SDM_TYPES} | {
        "common-schema.json"
    }
    for entry in files:
        data = (SDM / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert len(data) == entry["bytes"]
        # git's blob id: what `git rev-parse COMMIT:PATH` gives upstream.
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        assert blob == entry["git_blob_sha1"], entry["file"]
        assert json.loads(data)["$id"] == entry["id"]
        assert len(entry["commit"]) == 40


def test_the_package_metadata_agrees_with_the_vendored_schemas() -> None:
    metadata = _provenance()["package_checked"]
    assert (metadata["name"], metadata["version"]) == ("pysmartdatamodels", "0.8.2.0")
    models = SmartDataModels.builtin()
    for kind, stated in metadata["metadata_by_type"].items():
        schema = models.schemas[kind]
        assert schema["$id"] == stated["id"]
        assert schema["$schemaVersion"] == stated["version"]
        assert models.required(kind) == frozenset(stated["required"])


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_ref_resolves_to_a_vendored_file() -> None:
    models = SmartDataModels.builtin()
    vendored = {str(s["$id"]) for s in models.shared}
    for schema in [*models.schemas.values(), *models.shared]:
        for ref in _refs(schema):
            assert ref.startswith("#") or ref.split("#")[0] in vendored, ref


@pytest.mark.parametrize("engine", ENGINES, ids=str)
def test_a_ref_to_anything_not_vendored_fails_and_is_never_fetched(engine: SchemaEngine) -> None:
    models = SmartDataModels.builtin()
    elsewhere = {"$ref": "https://smart-data-models.github.io/data-models/other.json#/x"}
    schema = {**models.schemas[FLOW], "$id": "urn:test:elsewhere", "properties": {"x": elsewhere}}
    common = json.loads(
        (resources.files("cityx.interop") / "schemas" / "ngsi-ld.v1.json").read_text()
    )
    standard = SmartDataModels({FLOW: schema}, models.shared)

    def build_and_check() -> None:
        catalog = Catalog(
            {FLOW: {"$id": "urn:test:own"}},
            common,
            engine=engine,
            profile="base",
            standard=standard,
        )
        entity = {"id": "urn:x:1", "type": FLOW, "x": {"type": "Property", "value": 1}}
        catalog.first_error(FLOW, entity)

    # The Rust engine refuses when it compiles, the Python one when it meets the $ref.
    with pytest.raises(Exception, match=r"Unresolvable: https://smart-data|Retrieval is disabled"):
        build_and_check()


@pytest.mark.parametrize("model", SDM_TYPES)
def test_upstream_key_values_examples_fit_the_vendored_schemas(model: str) -> None:
    models = SmartDataModels.builtin()
    registry: Registry[Any] = Registry().with_resources(
        (str(s["$id"]), Resource.from_contents(dict(s))) for s in models.shared
    )
    validator = Draft202012Validator(dict(models.schemas[model]), registry=registry)
    assert list(validator.iter_errors(_upstream(model, "example"))) == []


@pytest.mark.parametrize("model", SDM_TYPES)
def test_base_accepts_the_upstream_normalised_examples(
    catalogs: dict[Profile, Catalog], model: str
) -> None:
    assert catalogs[Profile.BASE].first_error(model, _upstream(model, "example-normalized")) is None


# -- the case: placed by location or address, no refRoadSegment -------------------------


@pytest.mark.parametrize(
    "entity",
    [
        _without(flow(), "refRoadSegment"),
        {
            **_without(flow(), "refRoadSegment", "location"),
            "address": {"type": "Property", "value": {"addressLocality": "Koeln"}},
        },
        # All the pinned schema requires (it dropped "one of refRoadSegment, location, address").
        {k: v for k, v in flow().items() if k in ("id", "type", "dateObserved")},
    ],
    ids=["location", "address", "minimal"],
)
def test_base_accepts_what_the_standard_allows_and_city_names_what_it_adds(
    catalogs: dict[Profile, Catalog], entity: dict[str, Any]
) -> None:
    assert catalogs[Profile.BASE].first_error(FLOW, entity) is None
    problem = catalogs[Profile.CITY].first_error(FLOW, entity)
    assert problem is not None and problem.startswith("city profile requires ")
    assert "(the Smart Data Model does not)" in problem
    with pytest.raises(
        MessageError, match="not a valid TrafficFlowObserved: city profile requires"
    ):
        catalogs[Profile.CITY].check(FLOW, entity)


def test_city_names_the_field_it_requires(catalogs: dict[Profile, Catalog]) -> None:
    problem = catalogs[Profile.CITY].first_error(FLOW, _without(flow(), "refRoadSegment"))
    assert problem == "city profile requires refRoadSegment (the Smart Data Model does not)"
    # The SDM allows any number of vehicles (2.5 on average); the city counts whole ones.
    problem = catalogs[Profile.CITY].first_error(
        FLOW, {**flow(), "intensity": {"type": "Property", "value": 2.5}}
    )
    assert (
        catalogs[Profile.BASE].first_error(
            FLOW, {**flow(), "intensity": {"type": "Property", "value": 2.5}}
        )
        is None
    )
    assert problem is not None and problem.startswith("city profile: /intensity/value")


@pytest.mark.parametrize(
    ("change", "words", "city_first"),
    [
        (
            {"laneId": {"type": "Property", "value": 0}},
            "/laneId: 0 is less than the minimum of 1",
            False,
        ),
        (
            {"occupancy": {"type": "Property", "value": 1.5}},
            "/occupancy: 1.5 is greater than",
            False,
        ),
        # What the city's own schema also forbids, the city names in its own terms.
        ({"laneDirection": {"type": "Property", "value": "sideways"}}, "/laneDirection", True),
        ({"dateObserved": {"type": "Property", "value": 17}}, "/dateObserved", True),
    ],
)
def test_what_the_standard_forbids_both_profiles_refuse(
    catalogs: dict[Profile, Catalog], change: dict[str, Any], words: str, city_first: bool
) -> None:
    entity = {**flow(), **change}
    standard = f"Smart Data Models {FLOW} schema (key-values): {words}"
    base = catalogs[Profile.BASE].first_error(FLOW, entity)
    assert base is not None and base.startswith(f"base profile: {standard}"), base
    city = catalogs[Profile.CITY].first_error(FLOW, entity)
    expected = f"city profile: {words}/value" if city_first else f"city profile: {standard}"
    assert city is not None and city.startswith(expected), city


@pytest.mark.parametrize(
    ("entity", "words"),
    [
        ({**flow(), "intensity": 14}, "/intensity"),  # key-values where normalised is due
        ({**flow(), "refRoadSegment": {"type": "Relationship"}}, "/refRoadSegment"),
        ({**flow(), "note": {"type": "Text", "value": "x"}}, "/note"),
        ({**flow(), "id": "not a uri"}, "/id"),
        ({**flow(), "type": "Road"}, "/type"),
    ],
)
def test_base_wants_normalised_ngsi_ld(
    catalogs: dict[Profile, Catalog], entity: dict[str, Any], words: str
) -> None:
    problem = catalogs[Profile.BASE].first_error(FLOW, entity)
    assert problem is not None and problem.startswith("base profile: not NGSI-LD normalised")
    assert words in problem


def test_city_accepts_nothing_base_refuses(catalogs: dict[Profile, Catalog]) -> None:
    # A full flow less up to 4 attributes: whatever the city accepts, the base accepts.
    full = flow()
    optional = [name for name in full if name not in ("id", "type")]
    seen_city = 0
    for size in range(5):
        for dropped in itertools.combinations(optional, size):
            entity = _without(full, *dropped)
            if catalogs[Profile.CITY].first_error(FLOW, entity) is None:
                seen_city += 1
                assert catalogs[Profile.BASE].first_error(FLOW, entity) is None, dropped
    # The city needs 4 of the 10 attributes; dropping up to 4 of the other 6 leaves it valid.
    assert seen_city == sum(math.comb(6, k) for k in range(5))


def test_the_two_engines_agree_on_both_profiles() -> None:
    entities = [
        flow(),
        _without(flow(), "refRoadSegment"),
        {**flow(), "laneId": {"type": "Property", "value": 0}},
        {**flow(), "intensity": 3},
        *(_upstream(m, "example-normalized") for m in SDM_TYPES),
    ]
    for profile in Profile:
        python, rust = (Catalog.builtin(engine=e, profile=profile) for e in ENGINES)
        for entity in entities:
            kind = str(entity["type"])
            assert (python.first_error(kind, entity) is None) == (
                rust.first_error(kind, entity) is None
            ), (profile, entity["id"])


def test_types_without_a_smart_data_model_are_the_same_under_both(
    catalogs: dict[Profile, Catalog],
) -> None:
    command = {"id": "urn:ngsi-ld:SignalPhaseCommand:c1", "type": "SignalPhaseCommand"}
    base = catalogs[Profile.BASE].first_error("SignalPhaseCommand", command)
    city = catalogs[Profile.CITY].first_error("SignalPhaseCommand", command)
    assert base is not None and city is not None
    assert base.removeprefix("base profile") == city.removeprefix("city profile")
    assert catalogs[Profile.BASE].schema_id(FLOW) == catalogs[Profile.CITY].schema_id(FLOW)


# -- projection, names, dates ---------------------------------------------------------------------


def test_key_values_projection() -> None:
    entity = {
        "id": "urn:ngsi-ld:TrafficFlowObserved:x",
        "type": FLOW,
        "@context": ["https://example.org/ctx.jsonld"],
        "dateObserved": {
            "type": "Property",
            "value": {"@type": "DateTime", "@value": "2026-01-01T00:00:00Z"},
            "observedAt": "2026-01-01T00:00:00Z",
        },
        "intensity": {"type": "Property", "value": 3, "unitCode": "E50"},
        "refRoadSegment": {"type": "Relationship", "object": "urn:ngsi-ld:RoadSegment:s"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
    }
    assert key_values(entity) == {
        "id": "urn:ngsi-ld:TrafficFlowObserved:x",
        "type": FLOW,
        "@context": ["https://example.org/ctx.jsonld"],
        "dateObserved": "2026-01-01T00:00:00Z",
        "intensity": 3,
        "refRoadSegment": "urn:ngsi-ld:RoadSegment:s",
        "location": {"type": "Point", "coordinates": [1, 2]},
    }


def test_profile_names() -> None:
    assert profile_named("base") is Profile.BASE and profile_named(Profile.CITY) is Profile.CITY
    with pytest.raises(InputError) as caught:
        profile_named("strict")
    assert str(caught.value) == "unknown interop profile 'strict' (known profiles: base, city)"
    with pytest.raises(InputError, match="unknown interop profile"):
        Catalog.builtin(profile="strict")


def test_dates_as_the_smart_data_models_write_them() -> None:
    end = instant("2016-12-07T11:15:00Z")
    assert end is not None
    assert instant("2016-12-07T11:10:00/2016-12-07T11:15:00Z") == end  # an interval: its end
    assert instant("2016-12-07T11:15:00/PT5M") == end  # start/duration: its start
    assert instant("2016-12-07T11:15:00") == end  # no offset: UTC, whatever the host's zone
    assert instant("yesterday") is None


# -- properties -----------------------------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 70)
    | st.floats(-10, 500, allow_nan=False)
    | st.sampled_from(["", "forward", "2026-01-01T00:00:00Z", "urn:ngsi-ld:RoadSegment:s"])
)
_CHANGE = st.one_of(
    st.just("keep"),
    st.just("drop"),
    _SCALARS.map(lambda v: ("value", v)),  # the attribute's value replaced
    _SCALARS.map(lambda v: ("raw", v)),  # the attribute replaced by a bare value
)


@pytest.fixture(scope="module")
def every_catalog() -> dict[tuple[Profile, SchemaEngine], Catalog]:
    return {(p, e): Catalog.builtin(engine=e, profile=p) for p in Profile for e in ENGINES}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.lists(_CHANGE, min_size=12, max_size=12))
def test_city_implies_base_and_the_engines_agree(
    every_catalog: dict[tuple[Profile, SchemaEngine], Catalog], changes: list[Any]
) -> None:
    entity: dict[str, Any] = {}
    for (name, attribute), change in zip(flow().items(), changes, strict=False):
        if change == "drop" and name not in ("id", "type"):
            continue
        if isinstance(change, tuple) and name not in ("id", "type"):
            kind, value = change
            attribute = {**attribute, "value": value} if kind == "value" else value
        entity[name] = attribute
    valid = {key: c.first_error(FLOW, entity) is None for key, c in every_catalog.items()}
    for profile in Profile:
        assert valid[(profile, ENGINES[0])] == valid[(profile, ENGINES[1])], (profile, entity)
    if valid[(Profile.CITY, ENGINES[0])]:
        assert valid[(Profile.BASE, ENGINES[0])], entity
