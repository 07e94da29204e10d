"""Projecting candidate inputs onto a threat model, and counting violations.

A *candidate* is an input the search would like to query; its *origin* is
the true row it was derived from; *previous* is the previous interval's
true row of the same sensor (NaN where there is none). *Projecting* a
candidate gives the nearest-by-clipping input the attacker could actually
produce: uncontrolled features reset to the origin, each feature clipped
to its bounds, maximum change and temporal step, integers rounded inside
that box, then each linked sensor's occupancy clipped into the band its
flow and speed allow (see :mod:`.threat_model`). Every step is vectorised
over all candidates of all rows.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cityx.core import FloatArray

from .model import Ratio, Sensor, ThreatModel

_MIN_SPEED_KMH = 1.0  # a stopped queue still reads as crawling; avoids dividing by zero
_TOLERANCE = 1e-6


def _band(model: ThreatModel, sensor: Sensor, rows: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Occupancy range (percent) the flow and speed of ``rows`` allow, with slack."""
    c = model.consistency
    assert c is not None and sensor.flow and sensor.speed
    flow = rows[..., model.index(sensor.flow)]
    if sensor.lanes:
        flow = flow / np.maximum(rows[..., model.index(sensor.lanes)], 1.0)
    speed = np.maximum(rows[..., model.index(sensor.speed)], _MIN_SPEED_KMH)
    per_metre = 360.0 * flow / (c.interval_s * speed)
    low = np.clip(per_metre * c.min_length_m - c.slack, 0.0, 100.0)
    high = np.clip(per_metre * c.max_length_m + c.slack, 0.0, 100.0)
    return low, high


def consistency_gap(model: ThreatModel, sensor: Sensor, rows: FloatArray) -> FloatArray:
    """How far (percentage points) each row's occupancy lies outside its band; 0 inside."""
    assert sensor.occupancy
    low, high = _band(model, sensor, rows)
    occ = rows[..., model.index(sensor.occupancy)]
    return np.maximum(np.maximum(low - occ, occ - high), 0.0)


def ratio_gap(model: ThreatModel, ratio: Ratio, rows: FloatArray) -> FloatArray:
    """How far each row's derived feature lies from numerator / denominator, beyond tolerance."""
    num = rows[..., model.index(ratio.numerator)]
    den = rows[..., model.index(ratio.denominator)]
    value = rows[..., model.index(ratio.feature)]
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(den != 0, num / den, 0.0)
    limit = ratio.tolerance * np.maximum(1.0, np.abs(expected))
    return np.asarray(np.maximum(np.abs(value - expected) - limit, 0.0), dtype=np.float64)


def _linked(model: ThreatModel, sensor: Sensor) -> tuple[int, ...]:
    roles = (sensor.flow, sensor.occupancy, sensor.speed, sensor.lanes)
    return tuple(model.index(name) for name in roles if name)


def _grid(x: FloatArray, quantum: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """``x`` rounded to each feature's quantum inside [lo, hi] (lo and hi on the grid)."""
    q = np.where(quantum > 0, quantum, 1.0)
    rounded = np.where(quantum > 0, np.round(x / q) * q, x)
    return np.asarray(np.clip(rounded, lo, hi), dtype=np.float64)


def feasible_box(
    model: ThreatModel,
    origin: FloatArray,
    previous: FloatArray | None,
    controlled: NDArray[np.bool_],
) -> tuple[FloatArray, FloatArray]:
    """Per-feature [low, high] each origin row may move within (before linked features)."""
    low, high, change = model.arrays()
    lo = np.maximum(low, origin - change)
    hi = np.minimum(high, origin + change)
    if previous is not None and model.temporal is not None:
        step = model.max_step()
        has = np.isfinite(previous) & np.isfinite(step)
        # No further from the previous interval than max_step, or than the truth was.
        t_lo = np.where(has, np.minimum(origin, previous - step), -np.inf)
        t_hi = np.where(has, np.maximum(origin, previous + step), np.inf)
        lo, hi = np.maximum(lo, t_lo), np.minimum(hi, t_hi)
    lo = np.where(controlled, lo, origin)
    hi = np.where(controlled, hi, origin)
    quantum = model.quantum()
    q = np.where(quantum > 0, quantum, 1.0)
    lo = np.where(quantum > 0, np.ceil(lo / q - _TOLERANCE) * q, lo)
    hi = np.where(quantum > 0, np.floor(hi / q + _TOLERANCE) * q, hi)
    return lo, hi


def project(
    model: ThreatModel,
    candidates: FloatArray,
    origin: FloatArray,
    previous: FloatArray | None = None,
) -> FloatArray:
    """The feasible input nearest each candidate; same shape (..., d) as ``candidates``.

    ``origin`` (and ``previous``) broadcast against ``candidates``. The
    origin itself is always feasible, so the result always is.
    """
    controlled = model.controlled_mask()
    lo, hi = feasible_box(model, origin, previous, controlled)
    x = _grid(candidates, model.quantum(), lo, hi)
    x = _apply_ratios(model, x, origin)
    if model.consistency is None:
        return x
    for sensor in model.sensors:
        if not sensor.linked or not controlled[list(_linked(model, sensor))].any():
            continue
        assert sensor.flow and sensor.occupancy and sensor.speed
        f, o, s = (model.index(n) for n in (sensor.flow, sensor.occupancy, sensor.speed))
        allowed = consistency_gap(model, sensor, origin)
        band_lo, band_hi = _band(model, sensor, x)
        occ_lo = np.maximum(lo[..., o], band_lo - allowed)
        occ_hi = np.minimum(hi[..., o], band_hi + allowed)
        # No occupancy fits this flow and speed: keep the true flow and speed,
        # whose band (widened by the truth's own gap) holds the true occupancy.
        stuck = occ_lo > occ_hi
        if stuck.any():
            x[..., f] = np.where(stuck, np.broadcast_to(origin[..., f], stuck.shape), x[..., f])
            x[..., s] = np.where(stuck, np.broadcast_to(origin[..., s], stuck.shape), x[..., s])
            if sensor.lanes:
                n = model.index(sensor.lanes)
                x[..., n] = np.where(stuck, np.broadcast_to(origin[..., n], stuck.shape), x[..., n])
            x = _apply_ratios(model, x, origin)
            band_lo, band_hi = _band(model, sensor, x)
            occ_lo = np.maximum(lo[..., o], band_lo - allowed)
            occ_hi = np.minimum(hi[..., o], band_hi + allowed)
        q = model.quantum()[o]
        if q > 0:  # an occupancy on a grid: the band's inner grid points
            occ_lo, occ_hi = (
                np.ceil(occ_lo / q - _TOLERANCE) * q,
                np.floor(occ_hi / q + _TOLERANCE) * q,
            )
            occ = np.round(x[..., o] / q) * q
        else:
            occ = x[..., o]
        x[..., o] = np.clip(occ, occ_lo, np.maximum(occ_lo, occ_hi))
    return x


def _apply_ratios(model: ThreatModel, x: FloatArray, origin: FloatArray) -> FloatArray:
    """Recompute derived features; where one would leave its bounds, keep the true inputs."""
    lo, hi, _ = model.arrays()
    for ratio in model.ratios:
        f, n, d = (model.index(k) for k in (ratio.feature, ratio.numerator, ratio.denominator))
        moved = (x[..., n] != origin[..., n]) | (x[..., d] != origin[..., d])
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(x[..., d] != 0, x[..., n] / x[..., d], 0.0)
        outside = moved & ((value < lo[f] - _TOLERANCE) | (value > hi[f] + _TOLERANCE))
        x = x.copy()
        x[..., n] = np.where(outside, origin[..., n], x[..., n])
        x[..., d] = np.where(outside, origin[..., d], x[..., d])
        # Unmoved inputs keep the true derived value (real data is rounded).
        x[..., f] = np.where(moved & ~outside, value, np.broadcast_to(origin[..., f], value.shape))
    return x


def violations(
    model: ThreatModel,
    attacked: FloatArray,
    origin: FloatArray,
    previous: FloatArray | None = None,
) -> NDArray[np.int64]:
    """Broken constraints per row (0 for a feasible row), checked from scratch."""
    low, high, change = model.arrays()
    controlled = model.controlled_mask()
    delta = attacked - origin
    tol = _TOLERANCE * np.maximum(1.0, np.abs(origin))
    broken = (attacked < low - tol) | (attacked > high + tol)
    broken |= np.abs(delta) > change + tol
    broken |= ~controlled & (np.abs(delta) > tol)
    quantum = model.quantum()
    q = np.where(quantum > 0, quantum, 1.0)
    broken |= (quantum > 0) & (np.abs(attacked / q - np.round(attacked / q)) > _TOLERANCE)
    if previous is not None and model.temporal is not None:
        step = model.max_step()
        has = np.isfinite(previous)
        limit = np.maximum(step, np.abs(origin - np.where(has, previous, origin)))
        broken |= has & (np.abs(attacked - np.where(has, previous, 0.0)) > limit + tol)
    # A derived feature's own change is judged by its ratio, not by its box.
    for ratio in model.ratios:
        broken[..., model.index(ratio.feature)] &= (
            attacked[..., model.index(ratio.feature)] < low[model.index(ratio.feature)] - _TOLERANCE
        ) | (
            attacked[..., model.index(ratio.feature)]
            > high[model.index(ratio.feature)] + _TOLERANCE
        )
    count: NDArray[np.int64] = broken.sum(axis=-1).astype(np.int64)
    for ratio in model.ratios:
        worse = ratio_gap(model, ratio, attacked) > ratio_gap(model, ratio, origin) + 1e-9
        count += worse.astype(np.int64)
    if model.consistency is not None:
        for sensor in model.sensors:
            if sensor.linked:
                worse = (
                    consistency_gap(model, sensor, attacked)
                    > consistency_gap(model, sensor, origin) + 1e-6
                )
                count += worse.astype(np.int64)
    return count


__all__ = ["consistency_gap", "feasible_box", "project", "violations"]
