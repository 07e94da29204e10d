"""The controller choice record: built from one step, its runner-up, margin and JSON form."""

from __future__ import annotations

import numpy as np
import pytest

from cityx.core.errors import InputError
from cityx.worlds.traffic.candidates import FEATURE_NAMES, PhaseCandidates
from cityx.worlds.traffic.choices import (
    ControllerChoice,
    DecidedBy,
    EnvelopeOutcome,
    choices_from_step,
)

from .test_candidates import NETWORK, observe


def test_a_step_gives_one_record_per_intersection_with_its_runner_up() -> None:
    c = PhaseCandidates.from_network(NETWORK)
    obs = observe([3, 1, 5, 0, 2, 7], phase=(2, 0))
    features = c.features(obs)
    scores = np.array([0.9, 0.1, 0.2, 0.8])
    action = c.choose(obs, scores)
    records = choices_from_step(
        c, obs, features, scores, action.phases, columns=FEATURE_NAMES, decided_by=DecidedBy.MODEL
    )
    assert [r.intersection for r in records] == ["A", "B"]
    a, b = records
    assert (a.current_phase, a.chosen_phase, a.runner_up_phase) == (2, 0, 2)
    assert (b.current_phase, b.chosen_phase, b.runner_up_phase) == (0, 2, 0)
    assert a.margin == pytest.approx(0.8)
    assert a.row(0) == tuple(features[0])
    assert b.score(2) == pytest.approx(0.8)


def test_the_json_form_round_trips_and_refuses_other_records() -> None:
    record = ControllerChoice(
        time_s=5.0,
        intersection="A",
        decided_by=DecidedBy.RULE,
        current_phase=0,
        chosen_phase=0,
        runner_up_phase=2,
        phases=(0, 2),
        scores=(3.0, 3.0),
        columns=("pressure",),
        rows=((3.0,), (3.0,)),
    ).with_envelope(EnvelopeOutcome.KEPT)
    assert ControllerChoice.from_json(record.to_json()) == record
    assert record.margin == 0.0
    with pytest.raises(InputError, match="controller-choice/v1"):
        ControllerChoice.from_json({**record.to_json(), "schema": "other"})
    with pytest.raises(InputError, match="malformed"):
        ControllerChoice.from_json({**record.to_json(), "decided_by": "oracle"})


def test_an_inconsistent_record_is_refused() -> None:
    with pytest.raises(InputError, match="must agree"):
        ControllerChoice(
            time_s=0.0,
            intersection="A",
            decided_by=DecidedBy.MODEL,
            current_phase=0,
            chosen_phase=0,
            runner_up_phase=None,
            phases=(0, 2),
            scores=(1.0,),
            columns=("pressure",),
            rows=((1.0,), (2.0,)),
        )
