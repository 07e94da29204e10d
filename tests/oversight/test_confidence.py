"""Calibrated confidence: roll-outs in forked copies, reliability and ECE, fitted calibrations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cityx.core.errors import InputError
from cityx.oversight.choice_labels import _rollout
from cityx.oversight.confidence import (
    FEATURES,
    Calibration,
    LabelledChoice,
    evaluate,
    fit_calibration,
    label_run,
    load_calibration,
    reliability,
    sigmoid_of_margin,
)
from cityx.worlds.traffic import SignalMode, TrafficWorld, WorldOptions, get_scenario, prepare_run
from cityx.worlds.traffic.choices import ControllerChoice, DecidedBy
from cityx.worlds.traffic.controllers import MaxPressure

from ..worlds.traffic.conftest import needs_resco, needs_sumo


def test_ece_is_the_share_weighted_gap_per_bin() -> None:
    rel = reliability(np.array([0.05, 0.05, 0.95, 0.95]), [False, True, True, True])
    # bin 0: confidence 0.05, half right (gap 0.45); bin 9: 0.95 vs all right (gap 0.05)
    assert rel.ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert rel.bins[0].count == 2 and rel.bins[0].right == 0.5
    assert rel.bins[5].count == 0 and rel.bins[5].confidence is None
    assert rel.brier == pytest.approx((0.0025 + 0.9025 + 0.0025 + 0.0025) / 4)
    with pytest.raises(InputError, match="as many outcomes"):
        reliability(np.array([0.5]), [True, False])


def _synthetic(seed: int, n: int, runs: int) -> list[LabelledChoice]:
    """Choices whose chance of being right depends on margin and on keeping the green."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        margin = float(rng.exponential(3.0))
        keeps = float(rng.integers(0, 2))
        features = (
            float(np.log1p(margin)),
            margin / (margin + 5.0),
            keeps,
            float(rng.uniform()),
            float(rng.uniform(0, 4)),
            4.0,
        )
        p = 1.0 / (1.0 + np.exp(-(1.5 * features[0] - 1.0 + 0.8 * keeps)))
        right = bool(rng.uniform() < p)
        out.append(
            LabelledChoice(
                scenario="synthetic",
                seed=seed * 100 + k % runs,
                time_s=float(k),
                intersection="A",
                chosen=0,
                runner_up=2,
                margin=margin,
                features=features,
                cost_chosen=0.0 if right else 1.0,
                cost_runner_up=0.0,
            )
        )
    return out


def test_a_fitted_calibration_beats_a_sigmoid_of_the_margin_on_held_out_data() -> None:
    dev, held = _synthetic(1, 3000, runs=5), _synthetic(2, 3000, runs=3)
    calibration, cv = fit_calibration(dev, horizon_s=20)
    assert set(cv) == {"logistic", "isotonic-margin"}
    assert calibration.method == min(cv, key=lambda m: (cv[m].ece, cv[m].brier))
    fitted = evaluate(calibration, held)
    naive = sigmoid_of_margin(held)
    assert fitted.ece < 0.04
    assert naive.ece > 3 * fitted.ece
    assert calibration.provenance["dev"] == sorted({c.run for c in dev})
    assert len(calibration.provenance["dev_range"]["lo"]) == len(FEATURES)


def test_the_calibration_file_round_trips_and_an_edit_is_caught(tmp_path: Path) -> None:
    calibration, _ = fit_calibration(_synthetic(3, 600, runs=3), horizon_s=20)
    obj = calibration.to_json()
    again = Calibration.from_json(json.loads(json.dumps(obj)))
    assert again.digest == calibration.digest == obj["digest"]
    edited = {**obj, "params": {**obj["params"]}}
    key = next(iter(edited["params"]))
    edited["params"][key] = (
        edited["params"][key][:-1] if isinstance(edited["params"][key], list) else 0.0
    )
    with pytest.raises(InputError, match="digest"):
        Calibration.from_json(edited)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({**obj, "method": "magic"}))
    with pytest.raises(InputError, match="method"):
        load_calibration(path)


def _choice(margin: float) -> ControllerChoice:
    return ControllerChoice(
        time_s=100.0,
        intersection="A",
        decided_by=DecidedBy.RULE,
        current_phase=0,
        chosen_phase=2,
        runner_up_phase=0,
        phases=(0, 2),
        scores=(1.0, 1.0 + margin),
        columns=("pressure", "queue_total", "phase_age_s"),
        rows=((1.0, 6.0, 12.0), (1.0 + margin, 6.0, 12.0)),
    )


def test_the_shipped_calibration_gives_a_probability_with_its_provenance() -> None:
    calibration = load_calibration()
    assert calibration.controller == "max-pressure"
    held = calibration.provenance["heldout"]
    assert held["choices"] > 0 and 0.0 <= held["ece"] <= 1.0
    assert not set(held["runs"]) & set(calibration.provenance["dev"])
    low, high = calibration.confidence(_choice(0.0)), calibration.confidence(_choice(8.0))
    assert low is not None and high is not None
    assert 0.0 <= low.p <= 1.0 and 0.0 <= high.p <= 1.0
    assert high.digest == calibration.digest and high.calibration == calibration.id
    assert high.heldout_ece == held["ece"]
    record = _choice(8.0)
    stamped = ControllerChoice.from_json({**record.to_json(), "confidence": high.to_json()})
    assert stamped.confidence == high


def test_a_roll_out_runs_in_a_copy_and_repeats_exactly(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    run = prepare_run(get_scenario("cologne1"), tmp_path, seed=1, seconds=90, detector_period_s=300)
    world = TrafficWorld(run, WorldOptions(seconds=90, mode=SignalMode.ENVELOPE))
    obs = world.reset(1)
    controller = MaxPressure(run.network)
    try:
        for _ in range(40):
            assert obs is not None
            obs = world.step(controller.act(obs))
        assert obs is not None
        tls = run.network.intersections[0].id
        greens = run.network.intersections[0].green_phases
        before = world.time_s
        costs = [
            _rollout(world, controller, obs, tls, p, 15) for p in (greens[0], greens[0], greens[1])
        ]
        assert costs[0] == costs[1]  # the same copy twice: the same cost
        assert world.time_s == before  # the parent did not move
        assert world.step(controller.act(obs)) is not None
    finally:
        world.close()


def test_a_labelling_run_labels_each_choice_by_its_roll_outs(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    labelled = label_run("cologne1", 3, tmp_path, seconds=120, horizon_s=10, every_s=20)
    assert labelled and all(c.time_s >= 60 for c in labelled)
    for c in labelled:
        assert c.right == (c.cost_chosen <= c.cost_runner_up)
        assert c.chosen != c.runner_up and len(c.features) == len(FEATURES)
        assert LabelledChoice.from_json(c.to_json()) == c


def test_a_run_under_oversight_logs_each_choice_with_confidence_and_ood(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    from cityx.oversight import OversightSpec, run_oversight
    from cityx.oversight.decisions import iter_records

    result = run_oversight(OversightSpec("cologne1", seconds=30, seed=1, out=tmp_path))
    shipped = load_calibration()
    records = [e.payload for e in iter_records(tmp_path, kind="choice")]
    assert records and result.to_json()["oversight"]["choice_flags"]["choices"] == len(records)
    for r in records:
        choice = ControllerChoice.from_json(r)
        assert choice.ood is not None and "detectors" in choice.ood.checked
        if choice.runner_up_phase is not None:
            assert choice.confidence is not None
            assert choice.confidence.digest == shipped.digest
