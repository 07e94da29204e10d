"""Interop profiles: which entities a receiver accepts, the standard's or the city's.

A *profile* is a named acceptance rule for the entities inside envelopes.
There are two:

``base``
    Accepts every entity that the type's FIWARE *Smart Data Model* (SDM)
    accepts. The SDM schemas describe the *key-values* form (``"laneId": 1``),
    while our envelopes carry the NGSI-LD *normalised* form
    (``"laneId": {"type": "Property", "value": 1}``), so a base check is
    two steps: the entity must be well-formed normalised NGSI-LD (a URI
    ``id``, the right ``type``, each attribute a Property, Relationship or
    GeoProperty), and its *projection* to key-values (:func:`key_values`)
    must fit the SDM schema. For a type with no Smart Data Model
    (``SignalPhaseCommand``, ``SignalStateObserved``) cityx's own published
    schema is the standard, and the base profile uses it.
``city``
    The sandbox's default: everything ``base`` requires, and the city's own
    schema (``cityx/interop/schemas/TYPE.v1.json``), which asks for more,
    e.g. a ``TrafficFlowObserved`` must name its ``refRoadSegment``,
    ``laneId`` and ``intensity``, where the SDM needs only ``id``, ``type``
    and ``dateObserved``. The city's schema runs first (it implies the
    normalised-form check, which it replaces), then the SDM's. Every
    rejection names the profile and the field.

The SDM schemas are vendored byte for byte, with the common schema their
``$ref`` s point to, in ``cityx/interop/schemas/sdm`` (``PROVENANCE.json``
there gives the upstream repository, commit and digests of each file). They
are resolved offline: a ``$ref`` to anything not vendored fails, it is never
fetched.

The envelope's ``schema`` claim names the message *type's* contract
(``.../TYPE/v1``) and does not change with the profile: a profile is the
receiver's rule, not something the sender asserts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from types import MappingProxyType
from typing import Any

from .errors import InteropError


class Profile(StrEnum):
    """The named acceptance rules; see the module docstring."""

    BASE = "base"
    CITY = "city"


DEFAULT_PROFILE = Profile.CITY
"""The sandbox's profile, and the default of every ``--profile`` option."""


def profile_named(name: str | Profile) -> Profile:
    """The profile called ``name``; :class:`InteropError` (exit 2) for an unknown name."""
    try:
        return Profile(name)
    except ValueError:
        known = ", ".join(p.value for p in Profile)
        raise InteropError(
            f"unknown interop profile {str(name)[:64]!r}", hint=f"known profiles: {known}"
        ) from None


# -- the vendored Smart Data Models ---------------------------------------------------------------

_SDM_FILES: Mapping[str, str] = MappingProxyType(
    {
        "TrafficFlowObserved": "TrafficFlowObserved.schema.json",
        "Road": "Road.schema.json",
        "RoadSegment": "RoadSegment.schema.json",
    }
)
_SDM_COMMON = "common-schema.json"


@dataclass(frozen=True, slots=True)
class SmartDataModels:
    """The vendored SDM schemas by entity type, and the shared schemas they ``$ref``."""

    schemas: Mapping[str, Mapping[str, Any]]
    shared: tuple[Mapping[str, Any], ...]

    @classmethod
    def builtin(cls) -> SmartDataModels:
        """The schemas in ``cityx/interop/schemas/sdm`` (read from the package, never fetched)."""
        folder = resources.files("cityx.interop") / "schemas" / "sdm"

        def read(name: str) -> Mapping[str, Any]:
            loaded: dict[str, Any] = json.loads((folder / name).read_text(encoding="utf-8"))
            return MappingProxyType(loaded)

        schemas = {kind: read(name) for kind, name in _SDM_FILES.items()}
        return cls(MappingProxyType(schemas), (read(_SDM_COMMON),))

    def required(self, message_type: str) -> frozenset[str]:
        """The attributes the type's SDM schema requires at the top level."""
        schema = self.schemas.get(message_type, {})
        return frozenset(schema.get("required", ()))


# -- normalised form and its key-values projection -------------------------------------------------

_URI = "^[A-Za-z][A-Za-z0-9+.-]*:[^\\s]+$"
_KINDS = ("Property", "Relationship", "GeoProperty")


def normalised_shape(message_type: str, common_id: str) -> dict[str, Any]:
    """The JSON Schema of a well-formed normalised NGSI-LD entity of ``message_type``.

    Deliberately loose: it checks only what the key-values projection
    needs (each attribute a Property with a non-null ``value``, a
    Relationship with an ``object``, or a GeoProperty with a GeoJSON
    ``value``) and leaves every rule about values to the SDM schema.
    Attributes may carry further members (``observedAt``, ``unitCode``,
    sub-properties), as NGSI-LD allows.
    """
    ref = f"{common_id}#/$defs"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["id", "type"],
        "properties": {
            # NGSI-LD wants a URI; urn:ngsi-ld:TYPE:... is a convention, not a rule.
            "id": {"type": "string", "pattern": _URI, "maxLength": 256},
            "type": {"const": message_type},
            "@context": {"$ref": f"{ref}/Context"},
        },
        "additionalProperties": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": list(_KINDS)}},
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": "Property"}}},
                    "then": {
                        "required": ["value"],
                        "properties": {"value": {"not": {"type": "null"}}},
                    },
                },
                {
                    "if": {"properties": {"type": {"const": "Relationship"}}},
                    "then": {
                        "required": ["object"],
                        "properties": {
                            "object": {
                                "anyOf": [
                                    {"type": "string", "pattern": _URI},
                                    {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": {"type": "string", "pattern": _URI},
                                    },
                                ]
                            }
                        },
                    },
                },
                {
                    "if": {"properties": {"type": {"const": "GeoProperty"}}},
                    "then": {
                        "required": ["value"],
                        "properties": {
                            "value": {"type": "object", "required": ["type", "coordinates"]}
                        },
                    },
                },
            ],
        },
    }


def key_values(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The key-values form of a normalised entity (NGSI-LD's ``options=keyValues``).

    ``id``, ``type`` and ``@context`` stay as they are; a Property and a
    GeoProperty become their ``value``, a Relationship its ``object``.
    A date-time written as the typed literal ``{"@type": "DateTime",
    "@value": T}`` becomes the text ``T``, as the SDM schemas expect.
    Anything else (a member that is not an attribute) is kept unchanged,
    so the SDM schema sees it and judges it.
    """
    projected: dict[str, Any] = {}
    # On every received message: type() is, not isinstance (JSON gives dicts; the ABC is slow).
    for name, attribute in entity.items():
        if type(attribute) is dict and name not in _AS_IS:
            kind = attribute.get("type")
            if kind == "Relationship":
                projected[name] = attribute.get("object")
                continue
            if kind == "Property" or kind == "GeoProperty":
                value = attribute.get("value")
                if type(value) is dict and value.get("@type") == "DateTime" and "@value" in value:
                    value = value["@value"]
                projected[name] = value
                continue
        projected[name] = attribute
    return projected


_AS_IS = frozenset({"id", "type", "@context"})


__all__ = [
    "DEFAULT_PROFILE",
    "Profile",
    "SmartDataModels",
    "key_values",
    "normalised_shape",
    "profile_named",
]
