"""Why this phase and not the runner-up: the margin split, the rule, the envelope, the timeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from cityx.assess.explain.controller import explain_run, read_choices, timeline
from cityx.assess.explain.model import exact_model
from cityx.assess.explain.shapley import paired_shap
from cityx.core import InputError
from cityx.targets.describe_estimators import describe_estimator
from cityx.worlds.traffic.candidates import FEATURE_NAMES
from cityx.worlds.traffic.choices import (
    CHOICES_FILE,
    ControllerChoice,
    DecidedBy,
    EnvelopeOutcome,
)
from cityx.worlds.traffic.safety import SafetyEnvelope


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = np.zeros((n, len(FEATURE_NAMES)))
    x[:, 0] = rng.integers(0, 15, n)  # queue_in
    x[:, 1] = rng.integers(0, 5, n)  # queue_out
    x[:, 2] = x[:, 0] - x[:, 1]  # pressure
    x[:, 3] = rng.uniform(0, 60, n)
    x[:, 5] = 2
    x[:, 7] = rng.integers(0, 2, n)
    x[:, 8] = rng.uniform(0, 60, n)
    return x


@pytest.fixture(scope="module")
def scorer_model() -> Any:
    rng = np.random.default_rng(0)
    x = _rows(rng, 800)
    y = (x[:, 2] + 3 * x[:, 7] + rng.normal(0, 1, 800) > 6).astype(int)
    est = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(x, y)
    header, arrays = describe_estimator(est, x.shape[1]).to_wire()
    return est, exact_model(header, arrays, inputs=x.shape[1], where="t")


def _write_run(folder: Path, choices: list[ControllerChoice], controller: str) -> Path:
    folder.mkdir()
    (folder / "spec.json").write_text(json.dumps({"controller": controller}))
    (folder / CHOICES_FILE).write_text("".join(json.dumps(c.to_json()) + "\n" for c in choices))
    return folder


def _choices(score: Any, rule: bool, n: int = 40) -> list[ControllerChoice]:
    rng = np.random.default_rng(1)
    out = []
    envelopes = list(EnvelopeOutcome)
    for k in range(n):
        rows = _rows(rng, 3)
        s = score(rows)
        order = np.argsort(-s)
        out.append(
            ControllerChoice(
                time_s=float(k),
                intersection="A0" if k % 2 else "B1",
                decided_by=DecidedBy.RULE if rule else DecidedBy.MODEL,
                current_phase=0,
                chosen_phase=int(order[0]) * 2,
                runner_up_phase=int(order[1]) * 2,
                phases=(0, 2, 4),
                scores=tuple(float(v) for v in s),
                columns=FEATURE_NAMES,
                rows=tuple(tuple(r) for r in rows.tolist()),
                envelope=envelopes[k % len(envelopes)],
            )
        )
    return out


def test_the_margin_splits_exactly_across_features(scorer_model: Any, tmp_path: Path) -> None:
    est, model = scorer_model
    choices = _choices(lambda r: est.predict_proba(r)[:, 1], rule=False)
    run = _write_run(tmp_path / "run", choices, "acme")
    result = explain_run(run, model=model, score_column=1)
    assert result.method == "tree-exact" and result.exact and result.unit == "log-odds"
    assert result.additivity_max_error is not None and result.additivity_max_error < 1e-9
    explained = [e for items in result.intersections.values() for e in items]
    assert len(explained) == len(choices)
    for e, c in zip(sorted(explained, key=lambda e: e.t), choices, strict=True):
        chosen, runner = np.array([c.row(c.chosen_phase)]), np.array([c.row(c.runner_up_phase)])
        log_odds = model.margin(chosen)[0, 0] - model.margin(runner)[0, 0]
        assert sum(e.contributions.values()) == pytest.approx(log_odds, abs=1e-9)
        assert e.decided_by == ("envelope" if c.envelope in {
            EnvelopeOutcome.MIN_GREEN_HELD, EnvelopeOutcome.IN_TRANSITION,
            EnvelopeOutcome.FORCED_MAX_GREEN} else "model")  # fmt: skip
        if e.counterfactual is not None:
            # The stated reading really makes the runner-up win.
            ((name, value),) = e.counterfactual["changes"].items()
            changed = runner.copy()
            changed[0, FEATURE_NAMES.index(name)] = value
            assert model.margin(changed)[0, 0] > model.margin(chosen)[0, 0]
    # One reference row: paired values equal a one-row background TreeSHAP.
    x, z = np.array([choices[0].rows[0]]), np.array([choices[0].rows[1]])
    phi = paired_shap(model, x, z, 1)
    assert phi.sum() == pytest.approx(model.margin(x)[0, 0] - model.margin(z)[0, 0], abs=1e-9)


def test_max_pressure_is_explained_by_its_rule(tmp_path: Path) -> None:
    choices = _choices(lambda r: r[:, 2], rule=True)
    run = _write_run(tmp_path / "run", choices, "max-pressure")
    result = explain_run(run, intersection="A0", at=30.0)
    assert result.method == "rule" and set(result.intersections) == {"A0"}
    (e,) = result.intersections["A0"]
    assert e.t == 29.0  # the decision in force at 30 s
    assert set(k for k, v in e.contributions.items() if v) <= {"pressure"}
    assert e.margin == pytest.approx(choices[29].margin)
    assert timeline(result)["A0"]


def test_runs_without_choices(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.json").write_text(json.dumps({"controller": "actuated"}))
    result = explain_run(run)
    assert result.method == "sumo" and "inside SUMO" in result.note
    (run / "spec.json").write_text(json.dumps({"controller": "some/folder"}))
    with pytest.raises(InputError, match="no recorded controller choices") as info:
        read_choices(run)
    assert "cityx world run" in (info.value.hint or "")


def test_the_envelope_reports_what_it_did() -> None:
    from cityx.worlds.traffic.network import Intersection, Phase

    phases = (Phase("GGrr", 30.0), Phase("yyrr", 3.0), Phase("rrGG", 30.0), Phase("rryy", 3.0))
    tls = Intersection(id="J", program_id="0", phases=phases, links=(("a", "b"),) * 4, lanes=())
    env = SafetyEnvelope([tls], min_green_s=5, max_green_s=20)
    env.reset({"J": 0})
    env.step({"J": 2})
    assert env.outcomes()["J"] == "min_green_held"
    for _ in range(5):
        env.step({"J": 0})
    assert env.outcomes()["J"] == "kept"
    env.step({"J": 2})
    assert env.outcomes()["J"] == "switched"
    env.step({"J": 0})
    assert env.outcomes()["J"] == "in_transition"
    for _ in range(40):
        env.step({})
    assert env.outcomes()["J"] in ("kept", "forced_max_green")
