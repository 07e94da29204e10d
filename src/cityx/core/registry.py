"""The plugin registry: one for every plugin kind.

A *plugin* is a class that declares :class:`PluginMeta` as its ``meta``
attribute. Its *kind* says which contract it honours:

==================== ==========================================================
kind                 contract (where it is written down)
==================== ==========================================================
``check``            measures one thing in a trial (:mod:`cityx.core.checks`)
``target``           loads one artifact format in the isolated worker
                     (:mod:`cityx.targets.model`)
``attack``           a red-team technique; one contract per sub-kind: sensor
                     hook, world insertion, message transport, poisoning,
                     evasion, scaffold (:mod:`cityx.attacks.base`)
``controller``       drives a world's signals (:mod:`cityx.worlds.traffic.controllers`)
``scenario``         a road network with its demand (:mod:`cityx.worlds.traffic.scenarios`)
``guard``            a runtime guard on the sensor path (:mod:`cityx.defenses.guards`)
``poisoning-detector`` scores training rows for poisoning
                     (:mod:`cityx.defenses.poisoning.detectors`)
``explainer``        explains a system's decisions (contract: the explanations issue)
``operator-action``  a human overseer's command (contract: the oversight issue)
==================== ==========================================================

Built-ins are listed by name with a lazy ``"module:Object"`` reference
(:mod:`cityx.core.builtins`), so nothing is imported until it is used.
Third parties add plugins of every kind through the entry-point group
``cityx.plugins``: an entry point's name is ``KIND:ID`` (``check:my.check``)
and its value ``module:Object``. A plugin's *distribution* is the installed
package that provides it (``cityx`` for the built-ins). Entry-point plugins
run in our process (targets in the isolated worker), so a policy or a server
configuration may give an *allow-list* of distributions: plugins from any
other distribution are then refused.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Any

from .builtins import BUILTINS
from .errors import PluginError
from .taxonomy import Tags

ENTRY_POINT_GROUP = "cityx.plugins"
BUILTIN_DISTRIBUTION = "cityx"
_PLUGIN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$")
_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class PluginKind(StrEnum):
    CHECK = "check"
    TARGET = "target"
    ATTACK = "attack"
    CONTROLLER = "controller"
    SCENARIO = "scenario"
    GUARD = "guard"
    POISONING_DETECTOR = "poisoning-detector"
    EXPLAINER = "explainer"
    OPERATOR_ACTION = "operator-action"


@dataclass(frozen=True, slots=True)
class PluginMeta:
    """What a plugin declares about itself.

    ``supports`` names what it applies to: system kinds (``predictor``,
    ``controller``) for checks, targets, guards and scenarios; what an
    attack acts on (``controller``, ``predictor``, ``message``,
    ``training-data``); the signal mode a controller runs in
    (``program``, ``actuated``, ``envelope``); ``training-data`` for a
    poisoning detector.
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
class PluginInfo:
    """Where a registered plugin comes from: its reference and distribution."""

    kind: PluginKind
    id: str
    reference: str
    distribution: str
    distribution_version: str
    allowed: bool = True

    def to_json(self) -> dict[str, str]:
        return {
            "kind": self.kind.value,
            "id": self.id,
            "distribution": self.distribution,
            "distribution_version": self.distribution_version,
        }


Discover = Callable[[str], Iterable[tuple[str, str, str]]]


class Registry:
    """Plugins by kind and id; each is imported on first use.

    ``builtins`` defaults to cityx's own table. ``allow`` is an allow-list
    of distributions whose entry-point plugins may load (``None``: all
    installed ones); the built-ins are always allowed.
    """

    def __init__(
        self,
        builtins: Mapping[tuple[PluginKind | str, str], str] | None = None,
        *,
        group: str | None = ENTRY_POINT_GROUP,
        discover: Discover | None = None,
        allow: Collection[str] | None = None,
    ) -> None:
        table = BUILTINS if builtins is None else builtins
        self._builtins = {(PluginKind(k), pid): ref for (k, pid), ref in table.items()}
        self._group = group
        self._discover = discover or _entry_points
        self.allow = None if allow is None else frozenset(allow)
        self._entries: dict[tuple[PluginKind, str], PluginInfo] | None = None
        self._loaded: dict[tuple[PluginKind, str], Any] = {}

    def _index(self) -> dict[tuple[PluginKind, str], PluginInfo]:
        if self._entries is None:
            own = _distribution_version(BUILTIN_DISTRIBUTION)
            entries = {
                key: PluginInfo(key[0], key[1], ref, BUILTIN_DISTRIBUTION, own)
                for key, ref in self._builtins.items()
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
                        f"{dist} registers {name!r}, which {entries[key].distribution} already has",
                        where=f"entry point group {self._group}",
                    )
                allowed = self.allow is None or dist in self.allow
                entries[key] = PluginInfo(
                    key[0], plugin_id, ref, dist, _distribution_version(dist), allowed
                )
            self._entries = entries
        return self._entries

    def ids(self, kind: PluginKind) -> tuple[str, ...]:
        """The ids of the allowed plugins of ``kind``, sorted."""
        return tuple(
            sorted(pid for (k, pid), e in self._index().items() if k is kind and e.allowed)
        )

    def plugins(self) -> tuple[tuple[PluginKind, str], ...]:
        """Every allowed plugin as (kind, id), sorted by kind then id."""
        return tuple(sorted(key for key, e in self._index().items() if e.allowed))

    def refused(self) -> tuple[PluginInfo, ...]:
        """Installed entry-point plugins the allow-list keeps out."""
        return tuple(e for e in self._index().values() if not e.allowed)

    def info(self, kind: PluginKind, plugin_id: str) -> PluginInfo:
        key = (PluginKind(kind), plugin_id)
        entry = self._index().get(key)
        if entry is None:
            known = ", ".join(self.ids(key[0])) or "none"
            raise PluginError(f"unknown {key[0].value} {plugin_id!r}", hint=f"known: {known}")
        if not entry.allowed:
            raise PluginError(
                f"{key[0].value} {plugin_id!r} comes from {entry.distribution}, which is not on "
                "the allow-list",
                hint=f"allowed: {', '.join(sorted(self.allow or ())) or 'none'}; add the "
                "distribution to the policy's [plugins] allow list to use it",
            )
        return entry

    def load(self, kind: PluginKind, plugin_id: str) -> Any:
        key = (PluginKind(kind), plugin_id)
        if key in self._loaded:
            return self._loaded[key]
        entry = self.info(*key)
        where = f"{key[0].value} {plugin_id!r} from {entry.distribution}"
        obj = resolve(entry.reference, where=where)
        meta = getattr(obj, "meta", None)
        if not isinstance(meta, PluginMeta) or meta.kind is not key[0] or meta.id != plugin_id:
            raise PluginError(
                f"{entry.reference} must declare meta = PluginMeta(kind={key[0].value!r}, "
                f"id={plugin_id!r}, ...)",
                where=where,
            )
        self._loaded[key] = obj
        return obj

    def meta(self, kind: PluginKind, plugin_id: str) -> PluginMeta:
        meta: PluginMeta = self.load(kind, plugin_id).meta
        return meta

    def record(self, kind: PluginKind, plugin_id: str) -> dict[str, str]:
        """What a result records of a plugin it used: kind, id, version and distribution."""
        info = self.info(kind, plugin_id)
        return {**info.to_json(), "version": self.meta(kind, plugin_id).version}

    def describe(self) -> list[dict[str, Any]]:
        """One row per allowed plugin: what ``cityx plugins --json`` prints."""
        rows = []
        for kind, pid in self.plugins():
            meta = self.meta(kind, pid)
            rows.append(
                {
                    "kind": kind.value,
                    "id": pid,
                    "version": meta.version,
                    "summary": meta.summary,
                    "tags": meta.tags.to_json(),
                    "supports": sorted(meta.supports),
                    "distribution": self.info(kind, pid).distribution,
                }
            )
        return rows


def resolve(reference: str, *, where: str) -> Any:
    """The object a ``"module:Object"`` reference names, or a PluginError saying why not."""
    if not _REFERENCE.match(reference):
        raise PluginError(
            f"{reference!r} is not a reference of the form 'package.module:Object'", where=where
        )
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


@cache
def _distribution_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


__all__ = [
    "BUILTIN_DISTRIBUTION",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginKind",
    "PluginMeta",
    "Registry",
    "resolve",
]
