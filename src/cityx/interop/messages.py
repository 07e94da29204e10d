"""Message types: their JSON Schemas and their physical plausibility.

A *message* carries one *entity* in NGSI-LD *normalised* form: an object with
``id`` (``urn:ngsi-ld:TYPE:...``), ``type`` and *attributes*, each a
*Property* (``{"type": "Property", "value": ...}``), a *Relationship*
(``{"type": "Relationship", "object": "urn:ngsi-ld:..."}``) or a
*GeoProperty* (GeoJSON in ``value``). Where a FIWARE Smart Data Model exists
we follow it (``TrafficFlowObserved``, ``Road``, ``RoadSegment``); where none
does we define our own (``SignalPhaseCommand``, ``SignalStateObserved``).

Each type has a versioned *schema* (JSON Schema draft 2020-12, ``$id``
ending in ``/v1``) shipped as package data in ``cityx/interop/schemas``: the
city's. Which entities a :class:`Catalog` accepts depends on its *profile*
(:mod:`.profiles`): ``base`` checks the vendored Smart Data Model of the
type, ``city`` that and then the city's schema. A
*schema check* says whether an entity has the right shape; a *plausibility
check* says whether what it claims can physically be true (a speed of
400 km/h, an occupancy of 1.3, an observation dated in the future). The two
are separate on purpose: a well-formed lie is the interesting attack. The
plausibility rules live in :mod:`.plausibility`.

Two *engines* run the same schemas: ``jsonschema-rs`` (compiled, about two
orders of magnitude faster, used when installed) and ``jsonschema`` (pure
Python, the reference). Both are set up so their answers agree, including
on ``$`` in patterns, which Python's ``re`` lets match before a final newline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from typing import Any, Protocol

from .errors import MessageError
from .profiles import (
    DEFAULT_PROFILE,
    Profile,
    SmartDataModels,
    key_values,
    normalised_shape,
    profile_named,
)

SCHEMA_BASE = "https://cityx.dev/schemas/interop"
_COMMON_SCHEMA = "ngsi-ld"


class MessageType(StrEnum):
    """The entity types the interoperability layer knows."""

    TRAFFIC_FLOW_OBSERVED = "TrafficFlowObserved"
    ROAD = "Road"
    ROAD_SEGMENT = "RoadSegment"
    SIGNAL_PHASE_COMMAND = "SignalPhaseCommand"
    SIGNAL_STATE_OBSERVED = "SignalStateObserved"


class SchemaEngine(StrEnum):
    """Which JSON Schema implementation checks entities."""

    AUTO = "auto"
    JSONSCHEMA = "jsonschema"
    JSONSCHEMA_RS = "jsonschema-rs"


def schema_id(message_type: str, version: int = 1) -> str:
    """The ``$id`` of a type's schema: ``https://cityx.dev/schemas/interop/TYPE/v1``."""
    return f"{SCHEMA_BASE}/{message_type}/v{version}"


class _Engine(Protocol):
    def first_error(self, entity: Any) -> str | None: ...


def _schema_texts() -> dict[str, str]:
    folder = resources.files("cityx.interop") / "schemas"
    texts = {}
    for name in [_COMMON_SCHEMA, *MessageType]:
        texts[name] = (folder / f"{name}.v1.json").read_text(encoding="utf-8")
    return texts


_MAX_PROBLEM = 300


@dataclass(frozen=True, slots=True)
class _Stage:
    """One step of a type's check under a profile: named fields, then a schema."""

    engine: _Engine
    label: str
    # Check the key-values projection (an SDM schema), not the normalised entity.
    project: bool = False
    # Attributes the profile requires beyond the standard, named one by one in rejections.
    required: tuple[str, ...] = ()
    not_standard: frozenset[str] = frozenset()

    def first_error(self, entity: Any) -> str | None:
        if type(entity) is dict:
            for name in self.required:
                if name not in entity:
                    why = " (the Smart Data Model does not)" if name in self.not_standard else ""
                    return f"{self.label} requires {name}{why}"
        problem = self.engine.first_error(key_values(entity) if self.project else entity)
        if problem is None:
            return None
        if len(problem) > _MAX_PROBLEM:  # the engines quote the whole offending value
            problem = f"{problem[: _MAX_PROBLEM - 80]} ... {problem[-60:]}"
        return f"{self.label}: {problem}"


class Catalog:
    """The compiled schemas of the message types under one profile, looked up by type name.

    Build it once with :meth:`builtin` (it reads the package's schema
    files) and share it: compiling is the slow part, checking is fast.
    ``profile`` (see :mod:`.profiles`) decides what is accepted: ``base``
    checks a type against its Smart Data Model (``standard``), ``city``
    against the city's own schema (``schemas``) and the Smart Data Model.
    A type without a Smart Data Model is checked against ``schemas`` under
    both.
    """

    def __init__(
        self,
        schemas: Mapping[str, Mapping[str, Any]],
        common: Mapping[str, Any],
        *,
        engine: SchemaEngine = SchemaEngine.AUTO,
        profile: Profile | str = DEFAULT_PROFILE,
        standard: SmartDataModels | None = None,
    ) -> None:
        self.profile = profile_named(profile)
        self._ids = {name: str(schema["$id"]) for name, schema in schemas.items()}
        self.engine = _pick_engine(SchemaEngine(engine))
        build = _RustEngine if self.engine is SchemaEngine.JSONSCHEMA_RS else _PythonEngine
        self._stages: dict[str, tuple[_Stage, ...]] = {}
        label = f"{self.profile} profile"
        for name, schema in schemas.items():
            sdm = None if standard is None else standard.schemas.get(name)
            if standard is None or sdm is None:
                self._stages[name] = (_Stage(build(schema, (common,)), label),)
                continue
            standard_stage = _Stage(
                build(sdm, standard.shared),
                f"{label}: Smart Data Models {name} schema (key-values)",
                project=True,
            )
            if self.profile is Profile.BASE:
                shape = build(normalised_shape(name, str(common["$id"])), (common,))
                self._stages[name] = (
                    _Stage(shape, f"{label}: not NGSI-LD normalised"),
                    standard_stage,
                )
                continue
            # The city's schema implies the normalised shape base checks first (it is the same
            # shape, stricter), so city runs it in that stage's place: one schema fewer a message.
            required = tuple(str(field) for field in schema.get("required", ()))
            city = _Stage(
                build(schema, (common,)),
                label,
                required=required,
                not_standard=frozenset(required) - standard.required(name),
            )
            self._stages[name] = (city, standard_stage)

    @classmethod
    def builtin(
        cls,
        *,
        engine: SchemaEngine = SchemaEngine.AUTO,
        profile: Profile | str = DEFAULT_PROFILE,
    ) -> Catalog:
        """The schemas shipped with ``cityx``, under ``profile`` (default: ``city``).

        The city's schemas are ``cityx/interop/schemas/*.v1.json``; the Smart
        Data Models, vendored, are in ``cityx/interop/schemas/sdm``.
        """
        texts = _schema_texts()
        common = json.loads(texts.pop(_COMMON_SCHEMA))
        return cls(
            {name: json.loads(text) for name, text in texts.items()},
            common,
            engine=engine,
            profile=profile,
            standard=SmartDataModels.builtin(),
        )

    def types(self) -> tuple[str, ...]:
        return tuple(sorted(self._ids))

    def schema_id(self, message_type: str) -> str | None:
        """The schema id for a type, or None when the type is unknown.

        The same under every profile: it names the type's contract, and the
        profile is the receiver's rule for accepting it.
        """
        return self._ids.get(message_type)

    def first_error(self, message_type: str, entity: Any) -> str | None:
        """None when ``entity`` is a valid ``message_type`` under the profile, else why not.

        The reason starts with the profile's name (``city profile requires
        refRoadSegment ...``). Raises KeyError for an unknown type (ask
        :meth:`schema_id` first).
        """
        for stage in self._stages[message_type]:
            problem = stage.first_error(entity)
            if problem is not None:
                return problem
        return None

    def check(self, message_type: str, entity: Any) -> None:
        """Raise :class:`MessageError` unless ``entity`` is a valid ``message_type``."""
        if message_type not in self._ids:
            raise MessageError(
                f"unknown message type {message_type!r}", hint=f"known: {', '.join(self.types())}"
            )
        problem = self.first_error(message_type, entity)
        if problem is not None:
            raise MessageError(f"not a valid {message_type}: {problem}", where=message_type)


def _pick_engine(engine: SchemaEngine) -> SchemaEngine:
    if engine is not SchemaEngine.AUTO:
        return engine
    try:
        import jsonschema_rs  # noqa: F401
    except ImportError:
        return SchemaEngine.JSONSCHEMA
    return SchemaEngine.JSONSCHEMA_RS


def _location(path: list[str | int]) -> str:
    return "/" + "/".join(str(p) for p in path)


class _RustEngine:
    def __init__(self, schema: Mapping[str, Any], shared: Sequence[Mapping[str, Any]]) -> None:
        # optional: the schema engine's library loads only when that engine is used
        import jsonschema_rs

        registry = jsonschema_rs.Registry([(str(s["$id"]), _plain_dicts(s)) for s in shared])
        # offline: a $ref we do not ship must fail, never be fetched. "format" is an annotation
        # (as the Python engine treats it): plausibility judges dates, not a regex.
        self._validator = jsonschema_rs.validator_for(
            _plain_dicts(schema), registry=registry, offline=True, validate_formats=False
        )

    def first_error(self, entity: Any) -> str | None:
        try:
            if self._validator.is_valid(entity):
                return None
            for error in self._validator.iter_errors(entity):
                return f"{_location(error.instance_path)}: {error.message}"
        except ValueError as exc:  # a value the engine cannot convert (a non-string key)
            return f"not JSON data: {exc}"
        return "does not match the schema"


class _PythonEngine:
    def __init__(self, schema: Mapping[str, Any], shared: Sequence[Mapping[str, Any]]) -> None:
        # optional: the schema engine's library loads only when that engine is used
        import jsonschema

        # optional: the schema engine's library loads only when that engine is used
        from jsonschema import Draft202012Validator

        # optional: the schema engine's library loads only when that engine is used
        from referencing import Registry, Resource

        def pattern(
            validator: Any, patrn: str, instance: Any, schema: Mapping[str, Any]
        ) -> Iterator[jsonschema.ValidationError]:
            # ECMA-262 "$" is the end of the text; Python's also matches before a final "\n".
            if validator.is_type(instance, "string") and not re.search(_ecma_end(patrn), instance):
                yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

        cls = jsonschema.validators.extend(Draft202012Validator, {"pattern": pattern})  # type: ignore[no-untyped-call]
        # No retrieve function: a $ref to anything not vendored fails, it is never fetched.
        registry: Registry[Any] = Registry().with_resources(
            (str(s["$id"]), Resource.from_contents(_plain_dicts(s))) for s in shared
        )
        self._validator = cls(_plain_dicts(schema), registry=registry)

    def first_error(self, entity: Any) -> str | None:
        # optional: the schema engine's library loads only when that engine is used
        import jsonschema

        error = jsonschema.exceptions.best_match(self._validator.iter_errors(entity))
        if error is None:
            return None
        return f"{_location(list(error.absolute_path))}: {error.message}"


def _plain_dicts(value: Any) -> Any:
    """``value`` with every mapping a dict (the engines want JSON types, not read-only views)."""
    if isinstance(value, Mapping):
        return {str(k): _plain_dicts(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_dicts(v) for v in value]
    return value


def _ecma_end(pattern: str) -> str:
    return (
        pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
    )


# -- plausibility ---------------------------------------------------------------------------------


def _prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def traffic_flow_observed(
    entity_id: str,
    *,
    road_segment: str,
    lane_id: int,
    observed_at: float,
    period_s: float,
    intensity: int,
    occupancy: float | None = None,
    average_speed_kmh: float | None = None,
    congested: bool | None = None,
    location: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """A normalised ``TrafficFlowObserved`` entity; ``entity_id`` is the part after the type."""
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:TrafficFlowObserved:{entity_id}",
        "type": MessageType.TRAFFIC_FLOW_OBSERVED.value,
        "laneId": _prop(lane_id),
        "dateObserved": _prop(_iso(observed_at)),
        "dateObservedFrom": _prop(_iso(observed_at - period_s)),
        "dateObservedTo": _prop(_iso(observed_at)),
        "intensity": _prop(intensity),
        "refRoadSegment": {
            "type": "Relationship",
            "object": f"urn:ngsi-ld:RoadSegment:{road_segment}",
        },
    }
    if occupancy is not None:
        entity["occupancy"] = _prop(occupancy)
    if average_speed_kmh is not None:
        entity["averageVehicleSpeed"] = _prop(average_speed_kmh, unitCode="KMH")
    if congested is not None:
        entity["congested"] = _prop(congested)
    if location is not None:
        entity["location"] = {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": list(location)},
        }
    return entity


def signal_phase_command(
    entity_id: str,
    *,
    intersection: str,
    phase_index: int,
    duration_s: float,
    reason: str,
    issued_by: str,
    issued_at: float,
) -> dict[str, Any]:
    """A ``SignalPhaseCommand`` entity; ``issued_by`` must be the sender's issuer URN."""
    return {
        "id": f"urn:ngsi-ld:SignalPhaseCommand:{entity_id}",
        "type": MessageType.SIGNAL_PHASE_COMMAND.value,
        "refIntersection": {
            "type": "Relationship",
            "object": f"urn:ngsi-ld:Intersection:{intersection}",
        },
        "phaseIndex": _prop(phase_index),
        "duration": _prop(duration_s, unitCode="SEC"),
        "reason": _prop(reason),
        "issuedBy": _prop(issued_by),
        "dateIssued": _prop(_iso(issued_at)),
    }


__all__ = [
    "SCHEMA_BASE",
    "Catalog",
    "MessageType",
    "SchemaEngine",
    "schema_id",
    "signal_phase_command",
    "traffic_flow_observed",
]
