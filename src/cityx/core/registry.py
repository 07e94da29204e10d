"""The plugin registry.

A *plugin* is a class that declares :class:`PluginMeta` as its ``meta``
attribute: a check, an attack, a defense, a scenario or a target adapter.
Built-ins are listed by name with a lazy ``"module:Object"`` reference, so
nothing is imported until it is used. Third parties add plugins through the
entry-point group ``cityx.plugins``; an entry point's name is
``KIND:ID`` (``check:my.check``) and its value ``module:Object``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import entry_points
from typing import Any

from .errors import PluginError
from .taxonomy import Tags

ENTRY_POINT_GROUP = "cityx.plugins"
_PLUGIN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$")


class PluginKind(StrEnum):
    CHECK = "check"
    ATTACK = "attack"
    DEFENSE = "defense"
    SCENARIO = "scenario"
    TARGET = "target"


@dataclass(frozen=True, slots=True)
class PluginMeta:
    """What a plugin declares about itself.

    ``supports`` names what it applies to: system kinds (``predictor``,
    ``controller``) for checks and attacks, artifact formats for targets.
    """

    id: str
    kind: PluginKind
    version: str
    summary: str
    tags: Tags
    supports: frozenset[str] = field(default_factory=frozenset)
    reference: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", PluginKind(self.kind))
        object.__setattr__(self, "supports", frozenset(self.supports))
        if not _PLUGIN_ID.match(self.id):
            raise ValueError(f"plugin id {self.id!r} is not lowercase dotted words")
        if not self.version or not self.summary:
            raise ValueError(f"plugin {self.id!r} needs a version and a summary")


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: PluginKind
    id: str
    reference: str
    origin: str  # "builtin" or the distribution that provides the entry point


class Registry:
    """Plugins by kind and id; each is imported on first use."""

    def __init__(
        self,
        builtins: Mapping[tuple[PluginKind, str], str],
        *,
        group: str | None = ENTRY_POINT_GROUP,
        discover: Callable[[str], Iterable[tuple[str, str, str]]] | None = None,
    ) -> None:
        self._builtins = dict(builtins)
        self._group = group
        self._discover = discover or _entry_points
        self._entries: dict[tuple[PluginKind, str], _Entry] | None = None
        self._loaded: dict[tuple[PluginKind, str], Any] = {}

    def _index(self) -> dict[tuple[PluginKind, str], _Entry]:
        if self._entries is None:
            entries = {
                key: _Entry(key[0], key[1], ref, "builtin") for key, ref in self._builtins.items()
            }
            for name, ref, dist in self._discover(self._group) if self._group else ():
                kind_text, _, plugin_id = name.partition(":")
                try:
                    key = (PluginKind(kind_text), plugin_id)
                except ValueError:
                    raise PluginError(
                        f"entry point {name!r} from {dist} must be named KIND:ID with KIND one "
                        f"of {', '.join(k.value for k in PluginKind)}",
                        where=f"entry point group {self._group}",
                    ) from None
                if key in entries:
                    raise PluginError(
                        f"{dist} registers {name!r}, which {entries[key].origin} already has",
                        where=f"entry point group {self._group}",
                    )
                entries[key] = _Entry(key[0], plugin_id, ref, dist)
            self._entries = entries
        return self._entries

    def ids(self, kind: PluginKind) -> tuple[str, ...]:
        return tuple(sorted(pid for k, pid in self._index() if k is kind))

    def plugins(self) -> tuple[tuple[PluginKind, str], ...]:
        return tuple(sorted(self._index()))

    def load(self, kind: PluginKind, plugin_id: str) -> Any:
        key = (PluginKind(kind), plugin_id)
        if key in self._loaded:
            return self._loaded[key]
        entry = self._index().get(key)
        if entry is None:
            known = ", ".join(self.ids(key[0])) or "none"
            raise PluginError(f"unknown {kind} {plugin_id!r}", hint=f"known: {known}")
        obj = _resolve(entry.reference, where=f"{kind} {plugin_id!r}")
        meta = getattr(obj, "meta", None)
        if not isinstance(meta, PluginMeta) or meta.kind is not key[0] or meta.id != plugin_id:
            raise PluginError(
                f"{entry.reference} must declare meta = PluginMeta(kind={kind!r}, "
                f"id={plugin_id!r}, ...)",
                where=f"{kind} {plugin_id!r} from {entry.origin}",
            )
        self._loaded[key] = obj
        return obj

    def meta(self, kind: PluginKind, plugin_id: str) -> PluginMeta:
        meta: PluginMeta = self.load(kind, plugin_id).meta
        return meta


def _resolve(reference: str, *, where: str) -> Any:
    module_name, _, attr = reference.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"cannot load {reference}: {exc}", where=where) from exc
    return obj


def _entry_points(group: str) -> Iterable[tuple[str, str, str]]:
    for ep in entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
        yield ep.name, ep.value, dist


__all__ = ["ENTRY_POINT_GROUP", "PluginKind", "PluginMeta", "Registry"]
