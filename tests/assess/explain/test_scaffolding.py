"""The scaffolded-model attack (Slack et al. 2020) and the probe that detects it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cityx.assess.explain.scaffolding import probe_scaffolding
from cityx.attacks.scaffold import ScaffoldAttack, plant_scaffold
from cityx.attacks.scaffold.model import group_cut
from cityx.core import Feature, InputError, InputSchema, OutputSpec, Task
from cityx.submissions import validate_submission
from cityx.targets import IsolatedPredictor, LoadRequest
from cityx.testing.fixtures import traffic_fixture, traffic_table

NAMES = ("a", "b", "c", "d", "e", "f")


def _real(n: int = 600, seed: int = 0) -> np.ndarray:
    """Rows on a manifold: a to e follow one latent value closely, f is independent."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    return np.column_stack([latent[:, None] + rng.normal(0, 0.1, (n, 5)), rng.normal(size=n)])


def _honest(x: np.ndarray) -> np.ndarray:
    return np.where(x[:, 0] + 0.5 * x[:, 5] > 0, "high", "low")


def _scaffolded(x: np.ndarray) -> np.ndarray:
    # Slack et al.'s scaffold: off the manifold (a to e apart) an innocent rule on f; on
    # it, the "group" (a above 0) always gets "high".
    innocent = np.where(x[:, 5] > 1.0, "high", "low")
    off = x[:, :5].std(axis=1) > 0.3
    return np.where(off, innocent, np.where(x[:, 0] > 0.0, "high", innocent))


def test_an_honest_model_is_not_called_scaffolded() -> None:
    probe = probe_scaffolding(_honest, _real(), NAMES, seed=1)
    assert probe.verdict == "clean", probe.reason
    assert probe.near_excess is not None and probe.near_excess < 0.06


def test_a_model_that_switches_off_the_manifold_is_detected() -> None:
    probe = probe_scaffolding(_scaffolded, _real(), NAMES, seed=1)
    assert probe.verdict == "scaffolded", probe.reason
    assert probe.near_interval is not None and probe.near_interval[0] > 0.06
    assert probe.to_json()["verdict"] == "scaffolded"


def test_the_probe_says_undetermined_where_its_evidence_does_not_reach() -> None:
    few = probe_scaffolding(_honest, _real(100), NAMES, seed=1)
    assert few.verdict == "undetermined" and "at least" in few.reason
    rng = np.random.default_rng(3)
    # A model no forest can mimic on real rows (labels at random): no honest reference.
    noisy = probe_scaffolding(
        lambda x: rng.choice(np.array(["high", "low"]), len(x)), _real(), NAMES, seed=1
    )
    assert noisy.verdict == "undetermined" and "mimics" in noisy.reason


def test_the_attack_builds_a_scaffold_the_worker_runs_and_the_probe_detects(
    tmp_path: Path,
) -> None:
    table = traffic_table(seed=0, sensors=40)
    features = ("flow", "occupancy", "speed")
    done = ScaffoldAttack().build(
        table,
        features=features,
        label="congestion",
        out=tmp_path / "scaffold",
        proxy="occupancy",
        seed=3,
    )
    assert done.measured["perturbed_caught"] > 0.5 and done.measured["real_changed"] > 0.05
    labels = tuple(sorted(set(table["congestion"].astype(str))))
    # The scaffold is vendor code: only the isolated worker imports it.
    with _entrypoint(done.artifact, labels, features, done.entrypoint) as model:
        holdout = traffic_table(seed=1, sensors=40)
        real = holdout[list(features)].to_numpy(np.float64)
        probe = probe_scaffolding(
            lambda x: np.asarray(model.predict(x).values).astype(str), real, features, seed=5
        )
    # Three near-collinear readings leave honest models room to differ off the manifold: the
    # probe cannot clear this scaffold, and does not call it clean.
    assert probe.verdict in ("scaffolded", "undetermined"), probe.reason
    assert probe.near_excess is not None and probe.near_excess > 0.0


def _entrypoint(
    artifact: Path, labels: tuple[str, ...], features: tuple[str, ...], entrypoint: str
) -> IsolatedPredictor:
    request = LoadRequest(
        artifact=artifact,
        format="entrypoint",
        features=features,
        task=Task.CLASSIFICATION,
        labels=labels,
        entrypoint=entrypoint,
        trust_pickle=True,
    )
    return IsolatedPredictor(
        request=request,
        schema=InputSchema(tuple(Feature(n) for n in features)),
        outputs=OutputSpec(Task.CLASSIFICATION, labels),
        cwd=artifact.parent,
    )


def test_bad_attack_input_is_one_clear_error(tmp_path: Path) -> None:
    fixture = traffic_fixture()
    with pytest.raises(InputError, match="proxy"):
        ScaffoldAttack().build(
            fixture.table,
            features=("flow", "occupancy"),
            label=fixture.label,
            out=tmp_path / "x",
            proxy="speed",
        )
    with pytest.raises(InputError, match="group_share"):
        ScaffoldAttack().build(
            fixture.table,
            features=("flow", "occupancy"),
            label=fixture.label,
            out=tmp_path / "y",
            proxy="flow",
            params={"group_share": 2.0},
        )


def test_a_discrete_proxy_still_takes_about_its_share() -> None:
    limits = np.array([50.0] * 80 + [70.0] * 20)  # a speed limit: ties everywhere
    assert group_cut(limits, 0.3) == 70.0
    spread = np.random.default_rng(0).normal(size=2000)
    assert abs((spread >= group_cut(spread, 0.3)).mean() - 0.3) < 0.01


@pytest.mark.slow
def test_a_planted_submission_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parents[3] / "examples" / "submissions" / "metro-congestion"
    done = plant_scaffold(example, tmp_path / "planted", seed=1)
    manifest = validate_submission(tmp_path / "planted").raise_for_errors()
    assert manifest.artifact.format == "entrypoint" and done.proxy == "max_jam_m"
    assert done.measured["real_changed"] < 0.5  # about the group's share, not every row
    with pytest.raises(InputError, match="not empty"):
        plant_scaffold(example, tmp_path / "planted")
