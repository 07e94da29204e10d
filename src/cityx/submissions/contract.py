"""A controller's declared inputs against its observation contract.

A controller submission's model reads the features of an *observation
contract* (``[controller] observation``, today only ``phase-candidates/v1``,
:mod:`cityx.worlds.traffic.candidates`), which the sandbox computes and
feeds it. Each feature the manifest declares must be one the contract
has, in the contract's unit (no unit at all is a warning), with bounds
that hold every value the contract may feed: a model that expects a 0-1
fraction where the sandbox sends a 0-100 percentage would otherwise be fed
values it never saw, silently.
"""

from __future__ import annotations

from cityx.core import Level, Manifest, Problem, SystemKind
from cityx.worlds.traffic.candidates import CONTRACT, FEATURES


def contract_problems(manifest: Manifest, toml: str) -> list[Problem]:
    """Every declared feature of a controller that its contract would not feed as declared."""
    section = manifest.controller
    if manifest.system.kind is not SystemKind.CONTROLLER or section is None:
        return []
    contract = {f.name: f for f in FEATURES}
    found: list[Problem] = []
    for i, spec in enumerate(manifest.inputs.features):
        where = f"{toml}: [inputs].features[{i}]"
        known = contract.get(spec.name)
        if known is None:
            found.append(
                Problem(
                    f"{where}.name",
                    f"{spec.name!r} is not a feature of the {CONTRACT} observation "
                    f"(it has: {', '.join(contract)})",
                )
            )
            continue
        if not spec.unit and known.unit:
            found.append(
                Problem(
                    f"{where}.unit",
                    f"{spec.name} declares no unit; the {CONTRACT} observation feeds it in "
                    f"{known.unit!r}",
                    Level.WARNING,
                )
            )
        elif spec.unit != known.unit:
            found.append(
                Problem(
                    f"{where}.unit",
                    f"{spec.name} is in {known.unit or 'no unit'!r} in the {CONTRACT} "
                    f"observation, not {spec.unit or 'no unit'!r}",
                )
            )
        declared = f"[{_num(spec.min, '-inf')}, {_num(spec.max, 'inf')}]"
        low = spec.min is not None and spec.min > known.min
        high = spec.max is not None and spec.max < known.max
        if low or high:
            found.append(
                Problem(
                    f"{where}.{'min' if low else 'max'}",
                    f"{spec.name} is declared within {declared}, but "
                    f"the {CONTRACT} observation feeds it values in [{known.min:g}, "
                    f"{known.max:g}] {known.unit}".rstrip(),
                )
            )
    return found


def _num(value: float | None, unbounded: str) -> str:
    return unbounded if value is None else f"{value:g}"


__all__ = ["contract_problems"]
