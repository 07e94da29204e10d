"""``check_plugin``: the named checks every plugin goes through, by its kind's contract.

The checks, in order (each is a :class:`PluginCheck`):

- ``metadata``: ``meta`` is a valid :class:`~cityx.core.PluginMeta` whose
  kind matches the base class the plugin extends, and whose ``supports``
  names things that kind applies to;
- ``constructor``: the plugin constructs without arguments and without
  work: no file opened, no process started, no connection made (a target
  is built by its ``load(request)`` classmethod instead, in the worker);
- ``parameters``: bad parameters are one clear error naming the parameter:
  an :class:`~cityx.core.InputError` for attacks, controllers and guards
  (unknown, out of range, not a number), a :class:`~cityx.core.PolicyError`
  for a check's options (unknown, or of another type than its default);
  scenarios refuse a bad demand; a target refuses a missing artifact;
- ``runs``: a run on the kind's tiny fixture (:mod:`cityx.testing.fixtures`)
  gives a well-formed result;
- ``deterministic``: a second run with the same seed gives the same result.

Plugins that run in another process (targets in the isolated worker,
controllers, scenarios and world insertions in the world's process, message
attacks in the secure loop) are found there through the registry, so they
must be registered (installed with their ``cityx.plugins`` entry point)
before they are checked. A plugin may shrink its fixture: a check declares
``conformance_options`` (its policy options), an attack, controller or
guard ``conformance_params``, and a target ``conformance_artifact`` (a
``"module:function"`` that writes a small artifact of its format into a
folder and returns an :class:`~cityx.testing.fixtures.ArtifactFixture`).
"""

from __future__ import annotations

import inspect
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityx.attacks import Attack
from cityx.core import Check, PluginKind, PluginMeta, Registry, Tags
from cityx.defenses import Guard
from cityx.defenses.poisoning.detectors import PoisoningDetector
from cityx.targets import TargetModel
from cityx.worlds.traffic import ControllerPlugin, ScenarioPlugin

from . import kinds
from .workbench import Workbench

# What ``supports`` may name, per kind (None: anything).
_SUPPORTS: dict[PluginKind, frozenset[str] | None] = {
    PluginKind.CHECK: frozenset({"predictor", "controller"}),
    PluginKind.TARGET: frozenset({"predictor", "controller"}),
    PluginKind.ATTACK: frozenset({"predictor", "controller", "message", "training-data"}),
    PluginKind.CONTROLLER: frozenset({"program", "actuated", "envelope"}),
    PluginKind.SCENARIO: frozenset({"controller"}),
    PluginKind.GUARD: frozenset({"controller"}),
    PluginKind.POISONING_DETECTOR: frozenset({"training-data"}),
    PluginKind.EXPLAINER: None,
    PluginKind.OPERATOR_ACTION: None,
}
# The base class a plugin of each kind extends (None: the contract is not written yet).
_BASES: dict[PluginKind, type | None] = {
    PluginKind.CHECK: Check,
    PluginKind.TARGET: TargetModel,
    PluginKind.ATTACK: Attack,
    PluginKind.CONTROLLER: ControllerPlugin,
    PluginKind.SCENARIO: ScenarioPlugin,
    PluginKind.GUARD: Guard,
    PluginKind.POISONING_DETECTOR: PoisoningDetector,
    PluginKind.EXPLAINER: None,
    PluginKind.OPERATOR_ACTION: None,
}


class ConformanceError(AssertionError):
    """A plugin broke its kind's contract; the message names the plugin and the check."""


@dataclass(frozen=True, slots=True)
class PluginCheck:
    """One named check of one plugin: call it to run it."""

    plugin: str  # "KIND:ID"
    name: str
    run: Callable[[], None]

    def __call__(self) -> None:
        try:
            self.run()
        except ConformanceError:
            raise
        except AssertionError as exc:
            raise ConformanceError(f"{self.plugin}: {self.name}: {exc}") from exc

    def __str__(self) -> str:
        return f"{self.plugin}:{self.name}"


def plugin_checks(
    plugin: Any,
    *,
    workbench: Workbench,
    registry: Registry | None = None,
    seed: int = 1,
    outcomes: dict[str, Any] | None = None,
) -> Iterator[PluginCheck]:
    """The checks of ``plugin``, in order; ``workbench`` holds the shared fixtures.

    ``outcomes`` keeps the ``runs`` check's result by plugin, so that
    ``deterministic`` (run later, from another call) reruns it only once.
    """
    meta = getattr(plugin, "meta", None)
    label = f"{meta.kind.value}:{meta.id}" if isinstance(meta, PluginMeta) else repr(plugin)
    registry = registry or Registry()
    kept: dict[str, Any] = {} if outcomes is None else outcomes

    def runs() -> None:
        kept[label] = kinds.outcome(plugin, workbench, registry, seed=seed)

    def deterministic() -> None:
        if label not in kept:
            runs()
        first = kept[label]
        again = kinds.outcome(plugin, workbench, registry, seed=seed)
        if again != first:
            raise ConformanceError(
                f"{label}: deterministic: two runs with seed {seed} differ: "
                f"{kinds.first_difference(first, again)}"
            )

    yield PluginCheck(label, "metadata", lambda: _metadata(plugin))
    yield PluginCheck(label, "constructor", lambda: _constructor(plugin))
    yield PluginCheck(label, "parameters", lambda: kinds.bad_parameters(plugin, workbench))
    if kinds.runnable(plugin):
        yield PluginCheck(label, "runs", runs)
        yield PluginCheck(label, "deterministic", deterministic)


def check_plugin(
    plugin: Any, *, registry: Registry | None = None, workdir: Path | None = None, seed: int = 1
) -> list[str]:
    """Run every check of ``plugin``; return their names, or raise ConformanceError.

    ``workdir`` keeps the fixtures (a temporary folder otherwise).
    """
    with _workbench(workdir) as bench:
        done = []
        for check in plugin_checks(plugin, workbench=bench, registry=registry, seed=seed):
            check()
            done.append(check.name)
        return done


@contextmanager
def _workbench(workdir: Path | None) -> Iterator[Workbench]:
    if workdir is not None:
        yield Workbench(workdir)
        return
    with tempfile.TemporaryDirectory(prefix="cityx-conformance-") as tmp:
        yield Workbench(Path(tmp))


def _metadata(plugin: Any) -> None:
    meta = getattr(plugin, "meta", None)
    assert isinstance(meta, PluginMeta), "meta must be a cityx.core.PluginMeta"
    assert inspect.isclass(plugin), "a plugin is a class"
    assert meta.summary.strip() and meta.version.strip(), "meta needs a summary and a version"
    assert isinstance(meta.tags, Tags), "meta.tags must be cityx.core.Tags"
    base = _BASES[meta.kind]
    if base is not None:
        assert issubclass(plugin, base), f"a {meta.kind.value} plugin extends {base.__name__}"
        left = sorted(getattr(plugin, "__abstractmethods__", ()))
        assert not inspect.isabstract(plugin), f"abstract methods left: {left}"
    allowed = _SUPPORTS[meta.kind]
    assert meta.supports, "meta.supports names what the plugin applies to"
    if allowed is not None:
        unknown = sorted(meta.supports - allowed)
        assert not unknown, f"supports names {unknown}, which a {meta.kind.value} cannot apply to"
    kinds.kind_metadata(plugin, meta)


_forbidden = threading.local()
_EVENTS = ("open", "subprocess.Popen", "os.system", "os.posix_spawn", "socket.connect")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if getattr(_forbidden, "active", False) and event in _EVENTS:
        _forbidden.active = False  # report once, and let the error itself be built
        raise ConformanceError(f"constructor: the constructor did work: {event} {args[:1]!r}")


_hooked = False


def _constructor(plugin: Any) -> None:
    if issubclass(plugin, TargetModel):
        # A target is built by its load(request) in the isolated worker, which reads the
        # artifact by design: its contract is that classmethod, checked by running it.
        assert inspect.ismethod(plugin.load), "a target's load(request) is a classmethod"
        return
    global _hooked
    if not _hooked:
        # Audit hooks cannot be removed; this one acts only while a constructor runs.
        sys.addaudithook(_audit)
        _hooked = True
    _forbidden.active = True
    try:
        plugin()
    except TypeError as exc:
        raise ConformanceError(f"constructor: takes arguments: {exc}") from exc
    finally:
        _forbidden.active = False


__all__ = ["ConformanceError", "PluginCheck", "check_plugin", "plugin_checks"]
