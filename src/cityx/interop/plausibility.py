"""Physical plausibility of a schema-valid message: could what it claims be true?

A *plausibility check* runs after the schema check (:mod:`.messages`): a
speed of 400 km/h, an occupancy of 1.3 or an observation dated in the
future is well-formed and impossible. The two are separate on purpose: a
well-formed lie is the interesting attack. :class:`PhysicalLimits` holds the
bounds; each message type has its own rule, and every entity's geometry is
checked to lie on the globe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .messages import MessageType


@dataclass(frozen=True, slots=True, kw_only=True)
class PhysicalLimits:
    """Physical bounds for the plausibility checks.

    The defaults are deliberately loose (a lane carries at most about 0.6
    vehicles per second, we allow 1.0): the check catches the impossible,
    not the unusual.
    """

    clock_skew_s: float = 5.0
    max_speed_kmh: float = 250.0
    max_flow_veh_per_s: float = 1.0
    max_lane_id: int = 63
    max_lanes: int = 16
    max_phase_index: int = 63
    min_phase_s: float = 5.0
    max_phase_s: float = 300.0
    max_phase_elapsed_s: float = 3600.0


Plausibility = Callable[[Mapping[str, Any], str, float, PhysicalLimits], None]


def check_plausible(
    entity: Mapping[str, Any], *, issuer: str, now: float, limits: PhysicalLimits
) -> str | None:
    """None when a schema-valid entity could be true, else why it cannot.

    ``issuer`` is the envelope's ``iss`` (a command must name its sender);
    ``now`` is seconds since the epoch. Call only after the schema check.
    """
    check = _PLAUSIBILITY.get(str(entity.get("type")))
    try:
        _geometry(entity)
        if check is not None:
            check(entity, issuer, now, limits)
    except _Implausible as exc:
        return str(exc)
    return None


def _value(entity: Mapping[str, Any], name: str) -> Any:
    # type() is, not isinstance(Mapping): JSON gives dicts, and the ABC check is slow.
    attribute = entity.get(name)
    return attribute.get("value") if type(attribute) is dict else None


def instant(value: Any) -> float | None:
    """Seconds since the epoch of a date-time value (text or typed literal), or None.

    An interval ``A/B`` gives ``B`` (or ``A`` when ``B`` is a duration); a
    date-time without an offset is read as UTC.
    """
    if type(value) is dict:
        value = value.get("@value")
    if not isinstance(value, str):
        return None
    # An ISO 8601 interval (the Smart Data Models allow one in dateObserved) ends at its
    # second part; with a duration there (start/PT5M), its start is the instant we can read.
    for text in reversed(value.split("/", 1)):
        try:
            at = datetime.fromisoformat(text)
            # No offset: read as UTC, so the answer never depends on the host's time zone.
            return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError, OSError):  # not a date, or outside the platform's range
            continue
    return None


class _Implausible(Exception):
    pass


def _date(entity: Mapping[str, Any], name: str, now: float, limits: PhysicalLimits) -> float | None:
    """The instant of date attribute ``name`` (None if absent); raises when it cannot be true."""
    if name not in entity:
        return None
    at = instant(_value(entity, name))
    if at is None:
        raise _Implausible(f"{name} is not a real date-time")
    if at > now + limits.clock_skew_s:
        raise _Implausible(f"{name} is {at - now:.1f} s in the future")
    return at


def _number(value: Any) -> float | None:
    kind = type(value)
    return float(value) if kind is int or kind is float else None


def _traffic_flow(
    entity: Mapping[str, Any], issuer: str, now: float, limits: PhysicalLimits
) -> None:
    _date(entity, "dateObserved", now, limits)
    start = _date(entity, "dateObservedFrom", now, limits)
    end = _date(entity, "dateObservedTo", now, limits)
    speed = _number(_value(entity, "averageVehicleSpeed"))
    if speed is not None and not 0.0 <= speed <= limits.max_speed_kmh:
        raise _Implausible(f"averageVehicleSpeed {speed} km/h is outside 0..{limits.max_speed_kmh}")
    occupancy = _number(_value(entity, "occupancy"))
    if occupancy is not None and not 0.0 <= occupancy <= 1.0:
        raise _Implausible(f"occupancy {occupancy} is outside 0..1")
    lane = _number(_value(entity, "laneId"))
    # The Smart Data Model counts lanes from 1 (its schema refuses 0 before this runs).
    if lane is not None and not 1 <= lane <= limits.max_lane_id:
        raise _Implausible(f"laneId {lane:g} is outside 1..{limits.max_lane_id}")
    if start is not None and end is not None:
        if end < start:
            raise _Implausible("dateObservedTo is before dateObservedFrom")
        intensity = _number(_value(entity, "intensity")) or 0.0
        most = (end - start) * limits.max_flow_veh_per_s
        if intensity > most:
            raise _Implausible(
                f"intensity {intensity:g} vehicles in {end - start:g} s exceeds {most:g}"
            )


def _road_segment(
    entity: Mapping[str, Any], issuer: str, now: float, limits: PhysicalLimits
) -> None:
    lanes = _number(_value(entity, "totalLaneNumber"))
    if lanes is not None and not 1 <= lanes <= limits.max_lanes:
        raise _Implausible(f"totalLaneNumber {lanes:g} is outside 1..{limits.max_lanes}")
    limit = _number(_value(entity, "maximumAllowedSpeed"))
    if limit is not None and not 0.0 < limit <= limits.max_speed_kmh:
        raise _Implausible(
            f"maximumAllowedSpeed {limit} km/h is outside (0, {limits.max_speed_kmh}]"
        )
    _road(entity, issuer, now, limits)


def _road(entity: Mapping[str, Any], issuer: str, now: float, limits: PhysicalLimits) -> None:
    length = _number(_value(entity, "length"))
    if length is not None and length <= 0.0:
        raise _Implausible(f"length {length} km is not positive")


def _phase_command(
    entity: Mapping[str, Any], issuer: str, now: float, limits: PhysicalLimits
) -> None:
    _date(entity, "dateIssued", now, limits)
    # A command that names another sender is a relayed or forged order.
    if _value(entity, "issuedBy") != issuer:
        raise _Implausible(f"issuedBy {_value(entity, 'issuedBy')!r} is not the sender {issuer!r}")
    phase = _number(_value(entity, "phaseIndex"))
    if phase is not None and phase > limits.max_phase_index:
        raise _Implausible(f"phaseIndex {phase:g} is above {limits.max_phase_index}")
    duration = _number(_value(entity, "duration"))
    if duration is not None and not limits.min_phase_s <= duration <= limits.max_phase_s:
        raise _Implausible(
            f"duration {duration} s is outside {limits.min_phase_s}..{limits.max_phase_s}"
        )


def _signal_state(
    entity: Mapping[str, Any], issuer: str, now: float, limits: PhysicalLimits
) -> None:
    _date(entity, "dateObserved", now, limits)
    phase = _number(_value(entity, "phaseIndex"))
    if phase is not None and phase > limits.max_phase_index:
        raise _Implausible(f"phaseIndex {phase:g} is above {limits.max_phase_index}")
    elapsed = _number(_value(entity, "phaseElapsed"))
    if elapsed is not None and not 0.0 <= elapsed <= limits.max_phase_elapsed_s:
        raise _Implausible(f"phaseElapsed {elapsed} s is outside 0..{limits.max_phase_elapsed_s}")


def _geometry(entity: Mapping[str, Any]) -> None:
    for name, attribute in entity.items():
        if type(attribute) is not dict or attribute.get("type") != "GeoProperty":
            continue
        geometry = attribute.get("value")
        if type(geometry) is not dict:
            continue
        coordinates = geometry.get("coordinates")
        points = [coordinates] if geometry.get("type") == "Point" else coordinates
        for point in points if type(points) is list else ():
            ok = type(point) is list and len(point) >= 2
            lon, lat = (_number(point[0]), _number(point[1])) if ok else (None, None)
            if lon is None or lat is None:
                raise _Implausible(f"{name} has a position that is not two numbers")
            # Written so that NaN fails too (it never comes from strict JSON, but a caller's dict).
            if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                raise _Implausible(f"{name} has longitude {lon}, latitude {lat}: off the globe")


_PLAUSIBILITY: Mapping[str, Plausibility] = {
    MessageType.TRAFFIC_FLOW_OBSERVED: _traffic_flow,
    MessageType.ROAD: _road,
    MessageType.ROAD_SEGMENT: _road_segment,
    MessageType.SIGNAL_PHASE_COMMAND: _phase_command,
    MessageType.SIGNAL_STATE_OBSERVED: _signal_state,
}


# -- builders -------------------------------------------------------------------------------------


__all__ = ["PhysicalLimits", "Plausibility", "check_plausible", "instant"]
