"""Tiny fixtures the conformance checks run plugins on, built at run time from a seed.

- *traffic table*: detector rows of 12 sensors over 30 intervals with a
  next-interval congestion label (``free``/``moderate``/``heavy``), a source
  column (``sensor``), a time column and a sensitive column (``district``);
- *predictor submission*: a folder with a small logistic regression (skops,
  a format that loads without running code) trained on such a table, its
  manifest (schema version 2, declaring ``district`` sensitive) with the
  artifact's real digest, training and holdout data and a
  datasheet;
- *controller submission*: a linear model that scores the sandbox's phase
  candidates by their pressure (a max-pressure imitation), in skops;
- *artifacts*: one small model per built-in target format, with the batch
  to call it on;
- *world trace*: the observations of a 60 s max-pressure run on the
  generated 3x3 grid, recorded once per folder (real SUMO readings for
  sensor-path attacks and guards to work on).

Every builder writes only into the folder it is given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.core import FloatArray, Observation, RunError, Task
from cityx.data import file_sha256
from cityx.worlds.traffic import (
    NetworkInfo,
    TrafficWorld,
    WorldOptions,
    controller_plugin,
    get_scenario,
    prepare_run,
)
from cityx.worlds.traffic.candidates import FEATURES

LABELS = ("free", "moderate", "heavy")
READINGS = ("flow", "occupancy", "speed")
TRACE_SECONDS = 60
_OBSERVATION_ARRAYS = ("phase", "phase_age_s", "counts", "occupancy", "halting", "mean_speed")


def traffic_table(*, seed: int = 0, sensors: int = 12, intervals: int = 30) -> pd.DataFrame:
    """Detector rows whose next-interval congestion follows occupancy and speed."""
    rng = np.random.default_rng(seed)
    n = sensors * intervals
    base = rng.uniform(5, 60, sensors)
    wave = 30 * np.sin(np.linspace(0, 3 * np.pi, intervals))
    occupancy = np.clip(
        base[:, None] + wave[None, :] + rng.normal(0, 6, (sensors, intervals)), 0, 100
    )
    occupancy = occupancy.ravel().round(2)
    speed = np.clip(70 - 0.6 * occupancy + rng.normal(0, 5, n), 0, 70).round(2)
    flow = np.clip(occupancy * 2 + rng.normal(0, 10, n), 0, 250).round()
    score = occupancy / 100 + (70 - speed) / 140
    label = np.select([score < 0.45, score < 0.85], ["free", "moderate"], "heavy")
    sensor = np.repeat([f"s{k:02d}" for k in range(sensors)], intervals)
    return pd.DataFrame(
        {
            "sensor": sensor,
            "district": np.repeat(["north", "south"], n // 2 + 1)[:n],
            "interval_start_s": np.tile(np.arange(intervals) * 300, sensors),
            "flow": flow.astype(int),
            "occupancy": occupancy,
            "speed": speed,
            # The label is about the next interval: shift each sensor's series by one.
            "congestion": np.roll(label.reshape(sensors, intervals), -1, axis=1).ravel(),
        }
    )


@dataclass(frozen=True, slots=True)
class TableFixture:
    """A training table to poison or audit: the rows, the label column, the source columns."""

    table: pd.DataFrame
    label: str
    source_cols: tuple[str, ...]


def traffic_fixture() -> TableFixture:
    """The traffic table as a poisoning fixture (label ``congestion``, source ``sensor``)."""
    return TableFixture(traffic_table(seed=0), "congestion", ("sensor",))


def demonstration_table(*, seed: int = 0, decisions: int = 60) -> TableFixture:
    """A teacher controller's decisions: per decision 2-4 candidate phases, one chosen."""
    rng = np.random.default_rng(seed)
    size = rng.integers(2, 5, decisions)
    decision = np.repeat(np.arange(decisions), size)
    n = decision.size
    queue_in = rng.integers(0, 20, n).astype(np.float64)
    queue_out = rng.integers(0, 10, n).astype(np.float64)
    pressure = queue_in - queue_out
    # The teacher (max-pressure) chooses each decision's highest-pressure candidate.
    best = pd.Series(pressure).groupby(decision).transform("max").to_numpy()
    first = ~pd.Series(pressure == best).groupby(decision).cumsum().gt(1).to_numpy()
    chosen = ((pressure == best) & first).astype(np.int64)
    table = pd.DataFrame(
        {
            "scenario": "grid3x3",
            "seed": 1,
            "demand": 1.0,
            "time_s": decision // 4 * 5.0,
            "intersection": np.char.add("tls", (decision % 4).astype(str)),
            "queue_in": queue_in,
            "queue_out": queue_out,
            "pressure": pressure,
            "chosen": chosen,
        }
    )
    return TableFixture(table, "chosen", ())


def _manifest(
    *,
    system_id: str,
    kind: str,
    artifact: Path,
    fmt: str,
    features: Sequence[tuple[str, str, float, float, str]],
    outputs: str,
    data: str,
    extra: str = "",
) -> str:
    rows = "\n".join(
        f'[[inputs.features]]\nname = "{name}"\ntype = "{kind_}"\nunit = "{unit}"\n'
        f"min = {low:g}\nmax = {high:g}\n"
        for name, kind_, low, high, unit in features
    )
    return (
        textwrap.dedent(
            f"""\
        schema_version = 2

        [system]
        id = "{system_id}"
        vendor = "CityXchange conformance fixtures"
        version = "1.0.0"
        kind = "{kind}"
        intended_use = "A tiny {kind} that cityx.testing runs plugins against."
        contact = "conformance@example.com"

        [artifact]
        path = "{artifact.name}"
        format = "{fmt}"
        sha256 = "{file_sha256(artifact)}"

        """
        )
        + f"{rows}\n{outputs}\n{data}\n{extra}"
    )


def predictor_submission(folder: Path, *, seed: int = 0) -> Path:
    """A predictor submission folder (skops logistic regression) in ``folder``."""
    import skops.io  # an optional heavy dependency of building the fixture, not of cityx.testing
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    table = traffic_table(seed=seed)
    half = table["interval_start_s"] < table["interval_start_s"].median()
    model = LogisticRegression(max_iter=500).fit(
        table.loc[half, list(READINGS)].to_numpy(np.float64), table.loc[half, "congestion"]
    )
    (folder / "data").mkdir(exist_ok=True)
    table[half].to_csv(folder / "data" / "train.csv", index=False)
    table[~half].to_csv(folder / "data" / "holdout.csv", index=False)
    (folder / "datasheet.md").write_text("# Datasheet\n\nGenerated by cityx.testing.\n")
    artifact = folder / "model.skops"
    skops.io.dump(model, artifact)
    labels = ", ".join(f'"{c}"' for c in model.classes_)
    (folder / "cityx.toml").write_text(
        _manifest(
            system_id="conformance-predictor",
            kind="predictor",
            artifact=artifact,
            fmt="skops",
            features=(
                ("flow", "int", 0, 250, "veh/interval"),
                ("occupancy", "float", 0, 100, "%"),
                ("speed", "float", 0, 70, "km/h"),
            ),
            outputs=f'[outputs]\ntask = "classification"\nlabels = [{labels}]\n'
            'label_column = "congestion"\n',
            data='[data]\ntraining = "data/train.csv"\nholdout = "data/holdout.csv"\n'
            'datasheet = "datasheet.md"\n',
            # Version 2: the sensitive column is the fairness declaration, not [data]'s.
            extra='[fairness]\nsensitive = ["district"]\n',
        )
    )
    return folder


def controller_submission(folder: Path, *, seed: int = 0) -> Path:
    """A controller submission folder: a linear model that scores candidates by pressure."""
    import skops.io  # an optional heavy dependency of building the fixture
    from sklearn.linear_model import LinearRegression

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(f.min, f.max, 400) for f in FEATURES])
    pressure = [f.name for f in FEATURES].index("pressure")
    model = LinearRegression().fit(x, x[:, pressure])
    artifact = folder / "model.skops"
    skops.io.dump(model, artifact)
    (folder / "datasheet.md").write_text("# Datasheet\n\nGenerated by cityx.testing.\n")
    (folder / "cityx.toml").write_text(
        _manifest(
            system_id="conformance-controller",
            kind="controller",
            artifact=artifact,
            fmt="skops",
            # The phase-candidates/v1 contract's own units and bounds.
            features=tuple((f.name, "float", f.min, f.max, f.unit) for f in FEATURES),
            outputs='[outputs]\ntask = "regression"\nlabel_column = "chosen"\n',
            data='[data]\ndatasheet = "datasheet.md"\n',
            extra='[controller]\nobservation = "phase-candidates/v1"\n',
        )
    )
    return folder


@dataclass(frozen=True, slots=True)
class ArtifactFixture:
    """A model file of one target format and what a call to it looks like."""

    artifact: Path
    features: tuple[str, ...]
    task: Task
    labels: tuple[str, ...]
    batch: FloatArray
    entrypoint: str | None = None
    trust_pickle: bool = False
    trusted: tuple[str, ...] = ()  # type names to trust in a skops file


_ENTRYPOINT = """\
import numpy as np

LABELS = np.array(["free", "moderate", "heavy"])


class Model:
    classes_ = LABELS

    def predict(self, batch):
        return LABELS[np.clip((batch[:, 1] // 34).astype(int), 0, 2)]


def load():
    return Model()
"""


def artifact(fmt: str, folder: Path, *, seed: int = 0) -> ArtifactFixture:
    """A small classifier in the built-in target format ``fmt`` (KeyError for others)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = traffic_table(seed=seed)
    x = table[list(READINGS)].to_numpy(np.float64)
    y = table["congestion"].to_numpy()
    batch = x[:40]

    def made(path: Path, labels: tuple[str, ...], **extra: Any) -> ArtifactFixture:
        return ArtifactFixture(path, READINGS, Task.CLASSIFICATION, labels, batch, **extra)

    if fmt == "entrypoint":
        path = folder / "vendor_model.py"
        path.write_text(_ENTRYPOINT)
        return made(path, LABELS, entrypoint="vendor_model:load", trust_pickle=True)
    if fmt == "lightgbm":
        import lightgbm  # a heavy dependency: only the lightgbm fixture needs it

        # The lightgbm target reads class i as the manifest's label i.
        codes = pd.Categorical(y, categories=LABELS).codes
        booster = lightgbm.train(
            {"objective": "multiclass", "num_class": 3, "verbose": -1, "seed": seed},
            lightgbm.Dataset(x, label=codes),
            num_boost_round=5,
        )
        path = folder / "model.txt"
        booster.save_model(str(path))
        return made(path, LABELS)
    # heavy: only this fixture's builder needs the library
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(max_depth=3, random_state=seed).fit(x, y)
    labels = tuple(str(c) for c in model.classes_)
    if fmt == "skops":
        # heavy: only this fixture's builder needs the library
        import skops.io

        path = folder / "model.skops"
        skops.io.dump(model, path)
        return made(path, labels, trusted=tuple(skops.io.get_untrusted_types(file=path)))
    if fmt == "pickle":
        # heavy: only this fixture's builder needs the library
        import pickle

        path = folder / "model.pkl"
        path.write_bytes(pickle.dumps(model))
        return made(path, labels, trust_pickle=True)
    if fmt == "onnx":
        from skl2onnx import to_onnx  # the examples extra; the onnx fixture needs it

        path = folder / "model.onnx"
        onx = to_onnx(model, x[:1].astype(np.float32), options={"zipmap": False})
        path.write_bytes(onx.SerializeToString())
        return made(path, labels)
    raise KeyError(fmt)


# -- the world trace --------------------------------------------------------------------------

_RECORD = (
    "import sys, pathlib; from cityx.testing.fixtures import record_trace; "
    "record_trace(pathlib.Path(sys.argv[1]))"
)


def record_trace(folder: Path) -> None:
    """Run the world for :data:`TRACE_SECONDS` and save its observations (in this process)."""
    run = prepare_run(get_scenario("grid3x3"), folder, seed=1, seconds=TRACE_SECONDS)
    plugin = controller_plugin("max-pressure")
    controller = plugin.controller(run.network, seed=1)
    assert controller is not None
    world = TrafficWorld(run, WorldOptions(seconds=TRACE_SECONDS, mode=plugin.mode))
    seen: list[Observation] = []
    observation = world.reset(1)
    try:
        while not world.done and observation is not None:
            seen.append(observation)
            observation = world.step(controller.act(observation))
    finally:
        world.close()
    first = seen[0]
    arrays = {name: np.stack([getattr(o, name) for o in seen]) for name in _OBSERVATION_ARRAYS}
    arrays["time_s"] = np.array([o.time_s for o in seen])
    arrays["lane_start"] = first.lane_start
    np.savez(folder / "trace.npz", **arrays)  # type: ignore[arg-type]
    (folder / "trace.json").write_text(
        json.dumps({"intersections": list(first.intersection_ids), "lanes": list(first.lanes)})
    )


@dataclass(frozen=True, slots=True)
class WorldTrace:
    """A recorded run: its network and the observation of every second."""

    network: NetworkInfo
    observations: tuple[Observation, ...]


def world_trace(folder: Path) -> WorldTrace:
    """The trace in ``folder``, recorded there first (in a child process) when absent."""
    if not (folder / "trace.npz").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        # libsumo holds one simulation per process: record in a child of our own.
        done = subprocess.run(
            [sys.executable, "-c", _RECORD, str(folder)],
            capture_output=True,
            text=True,
            env={**os.environ, "LIBSUMO_AS_TRACI": "quiet"},
        )
        if done.returncode != 0:
            tail = " ".join(done.stderr.split()[-40:])
            raise RunError(f"recording the world trace failed: {tail}", where=str(folder))
    arrays = np.load(folder / "trace.npz")
    names = json.loads((folder / "trace.json").read_text())
    network = NetworkInfo.from_json(json.loads((folder / "network.json").read_text()))
    lane_start: NDArray[np.int64] = arrays["lane_start"]
    observations = tuple(
        Observation(
            time_s=float(t),
            time_of_day_s=float(t),
            intersection_ids=tuple(names["intersections"]),
            lanes=tuple(names["lanes"]),
            lane_start=lane_start,
            **{name: arrays[name][k] for name in _OBSERVATION_ARRAYS},
        )
        for k, t in enumerate(arrays["time_s"])
    )
    return WorldTrace(network, observations)


__all__ = [
    "LABELS",
    "TRACE_SECONDS",
    "ArtifactFixture",
    "TableFixture",
    "WorldTrace",
    "artifact",
    "controller_submission",
    "demonstration_table",
    "predictor_submission",
    "record_trace",
    "traffic_fixture",
    "traffic_table",
    "world_trace",
]
