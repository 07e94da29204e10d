"""Controller fairness: inequality indices, per-group statistics and real SUMO runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cityx.assess.fairness.controllers import controller_fairness, gini, group_stats, jain
from cityx.core import DataError

from ...support.cli import cityx


def test_gini_and_jain_on_known_cases() -> None:
    assert gini(np.full(10, 7.0)) == pytest.approx(0.0, abs=1e-12)
    assert jain(np.full(10, 7.0)) == pytest.approx(1.0)
    one = np.zeros(10)
    one[3] = 5.0
    assert gini(one) == pytest.approx(0.9)  # (n - 1) / n when one carries everything
    assert jain(one) == pytest.approx(0.1)  # 1 / n
    assert np.isnan(gini(np.zeros(4))) and np.isnan(jain(np.array([])))
    # Gini as the mean absolute difference over twice the mean.
    x = np.random.default_rng(0).exponential(10, 300)
    direct = np.abs(x[:, None] - x[None, :]).mean() / (2 * x.mean())
    assert gini(x) == pytest.approx(direct, abs=1e-12)


def test_group_stats_equal_numpy_per_group() -> None:
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, 400).astype(np.int64)
    codes[codes == 3] = 4  # group 3 is empty
    values = rng.exponential(20, 400)
    values[rng.random(400) < 0.1] = np.nan  # unfinished trips have no travel time
    stats = group_stats(codes, values, 5)
    for g in range(5):
        v = values[(codes == g) & ~np.isnan(values)]
        if v.size == 0:
            assert stats["n"][g] == 0 and np.isnan(stats["mean"][g]) and np.isnan(stats["p95"][g])
            continue
        assert stats["mean"][g] == pytest.approx(v.mean(), abs=1e-12)
        assert stats["p50"][g] == pytest.approx(np.percentile(v, 50), abs=1e-12)
        assert stats["p95"][g] == pytest.approx(np.percentile(v, 95), abs=1e-12)
        assert stats["max"][g] == v.max()


def test_a_folder_that_is_not_a_run_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"result\.json is missing"):
        controller_fairness(tmp_path)


def _world(out: Path, controller: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cityx.cli.main", "world", "run", "--scenario", "grid3x3",
         "--seconds", "150", "--controller", controller, "--out", str(out), "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("worlds")
    # Two short runs side by side: the baseline and the controller under test.
    procs = [_world(root / "fixed", "fixed"), _world(root / "mp", "max-pressure")]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    return root / "fixed", root / "mp"


@pytest.mark.slow
def test_real_runs_by_group_and_against_a_baseline(runs: tuple[Path, Path]) -> None:
    fixed, mp = runs
    report = controller_fairness(mp, fixed)
    json.dumps(report, allow_nan=False)  # valid JSON, undefined as null
    kpis = json.loads((mp / "result.json").read_text())["kpis"]
    assert report["overall"]["waiting_s"]["n"] == kpis["overall"]["vehicles"]
    assert report["overall"]["waiting_s"]["mean"] == pytest.approx(
        kpis["overall"]["mean_waiting_s"], abs=1e-3
    )
    for kind in ("district", "vclass"):
        for name, row in report["by"][kind]["groups"].items():
            theirs = kpis["by_group"][kind][name]
            assert row["n"] == theirs["vehicles"]
            assert row["mean_waiting_s"] == pytest.approx(theirs["mean_waiting_s"], abs=1e-3)
            assert row["p95_waiting_s"] == pytest.approx(theirs["p95_waiting_s"], abs=1e-3)
    spread = report["by"]["district"]["spread"]["waiting_s"]
    assert 0 < spread["ratio"] <= 1 and spread["difference"] >= 0
    base = report["baseline"]
    assert base["controller"] == "fixed"
    delta = base["delta_overall"]["waiting_s"]
    assert delta == pytest.approx(
        report["overall"]["waiting_s"]["mean"] - controller_fairness(fixed)["overall"]
        ["waiting_s"]["mean"], abs=1e-3
    )  # fmt: skip
    for payer in base["who_pays"]:
        assert payer["delta_mean_waiting_s"] > 0 and delta < 0


@pytest.mark.slow
def test_cli_world_run_json(runs: tuple[Path, Path]) -> None:
    fixed, mp = runs
    run = cityx("fairness", "--world-run", mp, "--baseline", fixed, "--json")
    assert run.code == 0, run.err
    assert run.out.count("\n") == 1
    obj = run.json()
    assert obj["controller"] == "max-pressure" and obj["baseline"]["controller"] == "fixed"
    run = cityx("fairness", "--world-run", mp)
    assert run.code == 0, run.err
    assert "by district: mean waiting ratio" in run.out and "Gini" in run.out
