from __future__ import annotations

from typing import ClassVar

import pytest

from cityx.core import NistFunction, PluginError, PluginKind, PluginMeta, Principle, Registry, Tags


class Sample:
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="sample.one",
        kind=PluginKind.CHECK,
        version="1",
        summary="A sample.",
        tags=Tags(Principle.SAFETY, NistFunction.MEASURE),
    )


class Mislabelled:
    meta: ClassVar[PluginMeta] = PluginMeta(
        id="other",
        kind=PluginKind.CHECK,
        version="1",
        summary="Wrong id.",
        tags=Tags(Principle.SAFETY),
    )


HERE = __name__


def test_builtins_load_lazily_by_kind_and_id() -> None:
    reg = Registry({(PluginKind.CHECK, "sample.one"): f"{HERE}:Sample"}, group=None)
    assert reg.ids(PluginKind.CHECK) == ("sample.one",)
    assert reg.load(PluginKind.CHECK, "sample.one") is Sample


def test_unknown_plugin_names_the_known_ones() -> None:
    reg = Registry({(PluginKind.CHECK, "sample.one"): f"{HERE}:Sample"}, group=None)
    with pytest.raises(PluginError, match=r"known: sample\.one"):
        reg.load(PluginKind.CHECK, "nope")


def test_a_plugin_must_declare_matching_meta() -> None:
    reg = Registry({(PluginKind.CHECK, "sample.two"): f"{HERE}:Mislabelled"}, group=None)
    with pytest.raises(PluginError, match="must declare meta"):
        reg.load(PluginKind.CHECK, "sample.two")


def test_entry_points_add_plugins_and_cannot_shadow_builtins() -> None:
    def discover(_: str) -> list[tuple[str, str, str]]:
        return [("check:sample.ext", f"{HERE}:Sample", "thirdparty")]

    reg = Registry({}, discover=discover)
    assert reg.ids(PluginKind.CHECK) == ("sample.ext",)

    def clash(_: str) -> list[tuple[str, str, str]]:
        return [("check:sample.one", f"{HERE}:Sample", "thirdparty")]

    reg = Registry({(PluginKind.CHECK, "sample.one"): f"{HERE}:Sample"}, discover=clash)
    with pytest.raises(PluginError, match="already has"):
        reg.ids(PluginKind.CHECK)


def test_entry_point_names_need_a_kind() -> None:
    reg = Registry({}, discover=lambda _: [("sample", f"{HERE}:Sample", "thirdparty")])
    with pytest.raises(PluginError, match="KIND:ID"):
        reg.ids(PluginKind.CHECK)


@pytest.mark.parametrize("bad", ["Upper", "a..b", "", "-x"])
def test_plugin_ids_are_lowercase_dotted_words(bad: str) -> None:
    with pytest.raises(ValueError, match="plugin"):
        PluginMeta(
            id=bad, kind=PluginKind.CHECK, version="1", summary="s", tags=Tags(Principle.SAFETY)
        )
