"""What ``runs``, ``deterministic`` and ``parameters`` mean for each plugin kind.

An *outcome* is the JSON-able result of one run of a plugin on its tiny
fixture, with timings and the run's own folder left out, so that two runs
with the same seed compare equal exactly when the plugin is deterministic.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cityx.attacks import Attack, AttackKind, HookAttack, MessageAttack
from cityx.attacks.evasion import schema_threat_model
from cityx.attacks.poisoning import PoisoningAttack
from cityx.attacks.scaffold import ScaffoldAttack
from cityx.core import (
    Action,
    Check,
    CheckContext,
    CheckStatus,
    CityxError,
    Feature,
    FeatureType,
    FloatArray,
    InputError,
    InputSchema,
    Observation,
    OutputSpec,
    Param,
    PluginKind,
    PluginMeta,
    PolicyError,
    Prediction,
    Registry,
    TargetLoadError,
    Task,
    resolve,
)
from cityx.data import labelled_batch
from cityx.defenses import Guard
from cityx.defenses.poisoning import prepare
from cityx.defenses.poisoning.detectors import DetectorRole, PoisoningDetector
from cityx.runs.sandbox import SandboxRunner
from cityx.runs.secure_loop import SecureLoop
from cityx.submissions import validate_submission
from cityx.targets import IsolatedPredictor, LoadRequest
from cityx.worlds.traffic import ControllerPlugin, SignalMode, WorldSpec, run_world

from .fixtures import (
    READINGS,
    TRACE_SECONDS,
    ArtifactFixture,
    TableFixture,
    artifact,
    traffic_fixture,
)
from .workbench import Workbench

_TIMINGS = (
    "wall_s",
    "sim_steps_per_s",
    "load_s",
    "out",
    # A controller's decision time per step (runs.submitted), and the sandbox's metrics of it.
    "decision_p50_ms",
    "decision_p95_ms",
    "decision_max_ms",
    "decision_latency_p95_ms",
    "decision_latency_max_ms",
)
_runs = itertools.count()


def runnable(plugin: Any) -> bool:
    """Whether the kind's behaviour has a written contract (explainers' and actions' come later)."""
    meta: PluginMeta = plugin.meta
    return meta.kind not in (PluginKind.EXPLAINER, PluginKind.OPERATOR_ACTION)


def kind_metadata(plugin: Any, meta: PluginMeta) -> None:
    """The metadata each kind adds to PluginMeta."""
    if issubclass(plugin, Attack):
        spec = plugin.spec
        assert spec.id == meta.id and spec.plugin_meta == meta, "meta must be spec.plugin_meta"
        assert isinstance(plugin.subkind, AttackKind), "an attack declares its sub-kind"
    if issubclass(plugin, Check):
        assert all(isinstance(m, str) and m for m in plugin.threshold_metrics)
    if issubclass(plugin, ControllerPlugin):
        assert meta.supports == {plugin.mode.value}, "a controller supports its signal mode"
        assert isinstance(plugin.reads_observations, bool), "reads_observations is a bool"
        # The world hands an envelope controller every observation: it cannot claim to read
        # none (a campaign would reuse clean runs for sensor attacks on it).
        assert plugin.reads_observations or plugin.mode is not SignalMode.ENVELOPE, (
            "an envelope-mode controller reads observations"
        )
    if issubclass(plugin, PoisoningDetector):
        assert isinstance(plugin.role, DetectorRole), "a detector declares its role"


# -- parameters -------------------------------------------------------------------------------


def _params(plugin: Any) -> tuple[Param, ...]:
    if issubclass(plugin, Attack):
        return tuple(plugin.spec.params)
    if issubclass(plugin, ControllerPlugin | Guard):
        return tuple(plugin.params)
    return ()


def bad_parameters(plugin: Any, bench: Workbench) -> None:
    """Bad parameters are one clear InputError that names what was wrong."""
    params = _params(plugin)
    if params or issubclass(plugin, Attack | ControllerPlugin | Guard):
        configure = plugin.configure
        _refused(lambda: configure({"no_such_parameter": 1.0}), "no_such_parameter")
        for p in params:
            _refused(lambda p=p: configure({p.name: p.high + max(1.0, abs(p.high))}), p.name)
            _refused(lambda p=p: configure({p.name: "high"}), p.name)
        return
    meta: PluginMeta = plugin.meta
    if issubclass(plugin, Check):
        _refused(
            lambda: plugin.configure({"no_such_option": 1}), "no_such_option", error=PolicyError
        )
        for name, default in plugin.option_defaults.items():
            if default is None:  # declared as "anything goes"
                continue
            wrong = "text" if not isinstance(default, str) else 1.5
            _refused(lambda n=name, w=wrong: plugin.configure({n: w}), name, error=PolicyError)
        return
    if meta.kind is PluginKind.SCENARIO:
        spec = WorldSpec(scenario=meta.id, seconds=60, out=bench.folder("bad", meta.id))
        _refused(lambda: WorldSpec(**{**spec.to_json(), "demand": 0.0, "out": None}), "demand")
    if meta.kind is PluginKind.TARGET:
        request = LoadRequest(
            artifact=bench.folder("bad") / "no-such-artifact",
            format=meta.id,
            features=READINGS,
            task=Task.CLASSIFICATION,
            labels=("free", "moderate", "heavy"),
        )
        predictor = _isolated(request)
        try:
            _refused(predictor.start, "no-such-artifact", error=TargetLoadError)
        finally:
            predictor.close()


def _refused(call: Any, name: str, *, error: type[CityxError] = InputError) -> None:
    try:
        call()
    except error as exc:
        text = str(exc)
    except Exception as exc:
        raise AssertionError(f"bad {name!r} raised {type(exc).__name__}: {exc}") from exc
    else:
        raise AssertionError(f"bad {name!r} was accepted")
    assert name in text, f"the error does not name {name!r}: {text}"
    assert "\n" not in text, f"the error is not one line: {text!r}"


# -- outcomes ---------------------------------------------------------------------------------


def outcome(plugin: Any, bench: Workbench, registry: Registry, *, seed: int) -> Any:
    """One run of ``plugin`` on its kind's fixture, as comparable JSON."""
    meta: PluginMeta = plugin.meta
    run = f"{meta.kind.value}-{meta.id}-{next(_runs)}"
    if meta.kind is PluginKind.CHECK:
        found = _check(plugin, bench, run, seed)
    elif meta.kind is PluginKind.TARGET:
        found = _target(plugin, bench, run)
    elif meta.kind is PluginKind.ATTACK:
        found = _attack(plugin, bench, registry, run, seed)
    elif meta.kind in (PluginKind.CONTROLLER, PluginKind.SCENARIO):
        _registered(meta, registry)
        controller = meta.id if meta.kind is PluginKind.CONTROLLER else "fixed"
        scenario = meta.id if meta.kind is PluginKind.SCENARIO else "grid3x3"
        found = _world(bench, run, scenario=scenario, controller=controller, seed=seed)
    elif meta.kind is PluginKind.GUARD:
        found = _guard(plugin, bench, seed)
    elif meta.kind is PluginKind.POISONING_DETECTOR:
        found = _detector(plugin, bench, seed)
    else:
        raise AssertionError(f"no behavioural contract for kind {meta.kind.value} yet")
    return _comparable(found, bench.root, run)


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two outcomes first differ, for the error message."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{path}/{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
    return f"{path or '/'}: {str(a)[:80]} != {str(b)[:80]}"


def _comparable(obj: Any, root: Path, run: str) -> Any:
    # A run's own folder is named after the run: the same run twice differs only there.
    text = json.dumps(obj, default=str, sort_keys=True).replace(str(root), "<workbench>")
    clean = json.loads(text.replace(run, "<run>"))

    def strip(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k not in _TIMINGS}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o

    return strip(clean)


def _registered(meta: PluginMeta, registry: Registry) -> None:
    if meta.id not in registry.ids(meta.kind):
        raise AssertionError(
            f"a {meta.kind.value} runs in another process, where it is found through the "
            "registry: install it with its cityx.plugins entry point first"
        )


def _world(
    bench: Workbench,
    run: str,
    *,
    scenario: str,
    controller: str,
    seed: int,
    hooks: tuple[tuple[str, Mapping[str, Any]], ...] = (),
) -> Any:
    result = run_world(
        WorldSpec(
            scenario=scenario,
            controller=controller,
            seconds=TRACE_SECONDS,
            seed=seed,
            out=bench.folder("runs", run),
            hooks=hooks,
        ),
        timeout_s=300,
    )
    assert result.complete and result.steps == TRACE_SECONDS, "the run did not finish"
    report = result.to_json()
    return {"kpis": report["kpis"], "safety": report["safety"], "hooks": report["hooks"]}


def _check(plugin: Any, bench: Workbench, run: str, seed: int) -> Any:
    meta: PluginMeta = plugin.meta
    options = dict(getattr(plugin, "conformance_options", {}))
    check: Check = plugin()
    controller = meta.supports == {"controller"}
    folder = bench.controller if controller else bench.predictor
    validation = validate_submission(folder)
    manifest = validation.raise_for_errors()
    base = CheckContext(
        submission_dir=folder,
        manifest=manifest,
        seed=seed,
        problems=validation.problems,
        options=options,
    )
    if controller:
        runner = SandboxRunner(folder, bench.folder("checks", run, "world"), workers=2)
        result = check.run(replace(base, world=runner))
    else:
        holdout = labelled_batch(
            folder / "data" / "holdout.csv",
            manifest.input_schema(),
            manifest.output_spec(),
            manifest.outputs.label_column,
        )
        result = check.run(replace(base, predictor=bench.predictor_model, holdout=holdout))
    assert result.check == meta.id, f"the result names check {result.check!r}"
    assert result.status in (CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.UNDETERMINED), (
        f"the check ended {result.status.value} on a valid submission: {result.message}"
    )
    return result.to_json()


def _isolated(request: LoadRequest) -> IsolatedPredictor:
    labels = request.labels
    outputs = OutputSpec(task=request.task, labels=labels)
    schema = InputSchema(tuple(Feature(name) for name in request.features))
    return IsolatedPredictor(
        request=request, schema=schema, outputs=outputs, cwd=request.artifact.parent
    )


def _target(plugin: Any, bench: Workbench, run: str) -> Any:
    meta: PluginMeta = plugin.meta
    reference = getattr(plugin, "conformance_artifact", None)
    folder = bench.folder("targets", run)
    fixture: ArtifactFixture = (
        resolve(reference, where=f"target {meta.id}")(folder)
        if reference
        else artifact(meta.id, folder)
    )
    request = LoadRequest(
        artifact=fixture.artifact,
        format=meta.id,
        features=fixture.features,
        task=fixture.task,
        labels=fixture.labels,
        entrypoint=fixture.entrypoint,
        trust_pickle=fixture.trust_pickle,
        trusted=fixture.trusted,
    )
    with _isolated(request) as predictor:
        prediction: Prediction = predictor.predict(fixture.batch)
    assert prediction.values.shape == (fixture.batch.shape[0],), "one answer per row"
    return {
        "values": prediction.values.tolist(),
        "scores": None if prediction.scores is None else np.round(prediction.scores, 9).tolist(),
    }


def _attack(plugin: Any, bench: Workbench, registry: Registry, run: str, seed: int) -> Any:
    meta: PluginMeta = plugin.meta
    params = dict(getattr(plugin, "conformance_params", {}))
    attack = plugin()
    if isinstance(attack, PoisoningAttack):
        reference = getattr(plugin, "conformance_table", None)
        fixture: TableFixture = (
            resolve(reference, where=f"attack {meta.id}")() if reference else traffic_fixture()
        )
        table = fixture.table
        done = attack.poison(
            table,
            label=fixture.label,
            source_cols=fixture.source_cols,
            params=params,
            seed=seed,
        )
        assert done.truth.shape == (len(table),) and done.truth.dtype == bool
        assert list(done.table.columns) == list(table.columns), "the table keeps its columns"
        digest = int(
            np.asarray(done.table.select_dtypes("number").to_numpy(np.float64).sum() * 1e6).round()
        )
        return {"truth": np.flatnonzero(done.truth).tolist(), "checksum": digest}
    if attack.subkind is AttackKind.EVASION:
        return _evasion(attack, seed)
    if isinstance(attack, ScaffoldAttack):
        return _scaffold(attack, bench, run, seed, params)
    if isinstance(attack, MessageAttack):
        _registered(meta, registry)
        return _message(meta, bench, run, seed, params)
    if isinstance(attack, HookAttack) and attack.subkind is AttackKind.WORLD_INSERTION:
        _registered(meta, registry)
        hook = (f"attack:{meta.id}", {"intensity": 1.0, **params})
        return _world(bench, run, scenario="grid3x3", controller="fixed", seed=seed, hooks=(hook,))
    if isinstance(attack, HookAttack):
        trace = bench.trace
        sensor = attack.hook(trace.network, seed=seed, **{"intensity": 1.0, **params})
        sums = []
        for o in trace.observations:
            seen = sensor.observe(o)
            assert isinstance(seen, Observation), "observe returns an Observation"
            _same_shape(o, seen)
            sums.append(
                round(float(seen.counts.sum() + seen.halting.sum() + seen.occupancy.sum()), 6)
            )
        return {"report": dict(sensor.report()), "sums": sums}
    raise AssertionError(f"no contract for attack sub-kind {attack.subkind}")


def _scaffold(
    attack: ScaffoldAttack, bench: Workbench, run: str, seed: int, params: Mapping[str, Any]
) -> Any:
    """The scaffold loads in the isolated worker as an entry point and answers every row."""
    fixture = traffic_fixture()
    table = fixture.table
    features = ("flow", "occupancy", "speed")
    done = attack.build(
        table,
        features=features,
        label=fixture.label,
        out=bench.folder("attacks", run, "scaffold"),
        sensitive="district",
        params=params,
        seed=seed,
    )
    assert done.proxy in features and done.artifact.is_file()
    request = LoadRequest(
        artifact=done.artifact,
        format="entrypoint",
        features=features,
        task=Task.CLASSIFICATION,
        labels=tuple(sorted(set(table[fixture.label].astype(str)))),
        entrypoint=done.entrypoint,
        trust_pickle=True,
    )
    x = table[list(features)].to_numpy(np.float64)[:40]
    with _isolated(request) as predictor:
        answered = predictor.predict(x).values
    assert answered.shape == (40,), "one answer per row"
    return {"labels": answered.tolist(), "measured": dict(done.measured)}


def _same_shape(a: Observation, b: Observation) -> None:
    assert b.lanes == a.lanes and b.intersection_ids == a.intersection_ids
    for name in ("counts", "occupancy", "halting", "mean_speed"):
        x = getattr(b, name)
        assert x.shape == getattr(a, name).shape, f"{name} changed shape"
        assert np.isfinite(x).all(), f"{name} holds non-finite readings"
    assert (b.counts >= 0).all() and (b.halting >= 0).all(), "negative counts or queues"


class _Thresholds:
    """A tiny predictor for evasion: congestion bands of occupancy, in this process."""

    def __init__(self) -> None:
        self.schema = InputSchema(
            (
                Feature("flow", FeatureType.INT, "veh", 0, 250),
                Feature("occupancy", FeatureType.FLOAT, "%", 0, 100),
                Feature("speed", FeatureType.FLOAT, "km/h", 0, 70),
            )
        )
        self.outputs = OutputSpec(Task.CLASSIFICATION, ("free", "moderate", "heavy"))

    def predict(self, batch: FloatArray) -> Prediction:
        codes = np.clip((batch[:, 1] // 34).astype(int), 0, 2)
        labels = np.array(self.outputs.labels, dtype=object)
        return Prediction(labels[codes].astype(str), np.eye(3)[codes], self.outputs.labels)


def _evasion(attack: Any, seed: int) -> Any:
    model = _Thresholds()
    rng = np.random.default_rng(0)
    rows = np.column_stack(
        [rng.integers(0, 250, 30), rng.uniform(0, 100, 30), rng.uniform(0, 70, 30)]
    ).astype(np.float64)
    truth = model.predict(rows).values
    report = attack.run(
        model, rows, truth, schema_threat_model(model.schema), seed=seed, budget=40, samples=10
    )
    found = report.to_json()
    assert 0.0 <= found["success_rate"] <= 1.0
    return found


def _message(
    meta: PluginMeta, bench: Workbench, run: str, seed: int, params: Mapping[str, Any]
) -> Any:
    trace = bench.trace

    folder = bench.folder("messages", run)
    loop = SecureLoop(
        _Hold(),
        trace.network,
        folder=folder,
        message_attack={"attack": meta.id, "seed": seed, "intensity": 1.0, **params},
    )
    try:
        for o in trace.observations:
            loop.act(o)
    finally:
        loop.close()
    report: dict[str, Any] = json.loads((folder / "interop.json").read_text())
    assert "attack" in report, "the secure loop saw no attack"
    return report


class _Hold:
    """A controller that keeps every intersection's phase: the messages are what is tested."""

    def act(self, observation: Observation) -> Action:
        phases = observation.phase.tolist()
        return Action(dict(zip(observation.intersection_ids, phases, strict=True)))


def _guard(plugin: Any, bench: Workbench, seed: int) -> Any:
    params = dict(getattr(plugin, "conformance_params", {}))
    trace = bench.trace
    hook = plugin().hook(trace.network, seed=seed, **params)
    for o in trace.observations:
        assert hook.observe(o) is o, "a guard never changes what the controller sees"
    return dict(hook.report())


def _detector(plugin: Any, bench: Workbench, seed: int) -> Any:
    data = prepare(bench.table, label="congestion", source_cols=("sensor",))
    scores = plugin().score(data, seed=seed)
    assert all(math.isfinite(v) for v in scores.level.tolist())
    return {"level": np.round(scores.level, 9).tolist(), "applicable": scores.applicable}


__all__ = ["bad_parameters", "first_difference", "kind_metadata", "outcome", "runnable"]
