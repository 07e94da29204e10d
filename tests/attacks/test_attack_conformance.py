"""Every registered attack plugin declares a valid spec and honours the attack contract."""

from __future__ import annotations

import inspect

import pytest

from cityx.attacks import (
    Access,
    Attack,
    AttackSpec,
    AttackTarget,
    NistClass,
    describe_attacks,
)
from cityx.core import InputError, Param, PluginKind, PluginMeta, Registry
from cityx.core.taxonomy import ATLAS_NAMES

REGISTRY = Registry()
ATTACKS = REGISTRY.ids(PluginKind.ATTACK)


def test_at_least_one_attack_is_registered() -> None:
    assert "evasion.constrained" in ATTACKS


@pytest.mark.parametrize("plugin_id", ATTACKS)
def test_attack_declares_a_valid_spec(plugin_id: str) -> None:
    cls = REGISTRY.load(PluginKind.ATTACK, plugin_id)
    assert inspect.isclass(cls) and issubclass(cls, Attack) and not inspect.isabstract(cls)
    spec = cls.spec
    assert isinstance(spec, AttackSpec) and spec.id == plugin_id
    assert isinstance(cls.meta, PluginMeta) and cls.meta == spec.plugin_meta
    assert cls.meta.kind is PluginKind.ATTACK
    assert spec.target in set(AttackTarget) and spec.nist_class in set(NistClass)
    assert spec.access and spec.access <= set(Access)
    assert spec.atlas and all(t[:9] in ATLAS_NAMES for t in spec.atlas)
    assert set(cls.meta.tags.atlas) == set(spec.atlas)
    assert cls.meta.supports == {spec.target.value}
    for p in spec.params:
        assert p.low <= p.default <= p.high
    # Defaults are valid parameters, and the constructor does no work.
    assert cls.configure() == {p.name: p.default for p in spec.params}
    cls()


def test_attacks_list_rows_follow_the_contract() -> None:
    rows = describe_attacks(REGISTRY)
    assert [r["id"] for r in rows] == list(ATTACKS)
    for row in rows:
        assert {"id", "goal", "target", "atlas", "params"} <= set(row)
        assert row["target"] in {"controller", "predictor", "message", "training-data"}
        for param in row["params"].values():
            assert param["min"] <= param["default"] <= param["max"]


def _spec(**changes: object) -> AttackSpec:
    fields: dict[str, object] = {
        "id": "test.attack",
        "version": "1",
        "goal": "a goal",
        "target": "controller",
        "atlas": ("AML.T0015",),
        "nist_class": "evasion",
        "access": frozenset({"sensor"}),
        "params": (Param("intensity", 0.5, 0.0, 1.0),),
    }
    fields.update(changes)
    return AttackSpec(**fields)  # type: ignore[arg-type]


def test_spec_accepts_string_enums_and_subtechniques() -> None:
    spec = _spec(atlas=("AML.T0043.003",), target="training-data")
    assert spec.target is AttackTarget.TRAINING_DATA
    assert spec.plugin_meta.supports == {"training-data"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"atlas": ("AML.T9999",)}, "not in the taxonomy"),
        ({"atlas": ()}, "names no MITRE ATLAS"),
        ({"target": "satellite"}, "satellite"),
        ({"access": frozenset()}, "access"),
        ({"goal": " "}, "goal"),
        ({"id": "Bad Id"}, "lowercase"),
    ],
)
def test_spec_rejects_bad_metadata(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**changes)


def test_param_rejects_a_default_outside_its_bounds() -> None:
    with pytest.raises(ValueError, match="outside"):
        Param("x", 2.0, 0.0, 1.0)


class _Toy(Attack):
    spec = _spec()
    meta = spec.plugin_meta


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"intensity": 1.5}, "'intensity' must be a number in \\[0, 1\\]"),
        ({"intensity": "high"}, "'intensity' must be"),
        ({"strength": 1}, "unknown parameter"),
    ],
)
def test_configure_names_the_bad_parameter(values: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        _Toy.configure(values)
    assert _Toy.configure({"intensity": 1}) == {"intensity": 1.0}
