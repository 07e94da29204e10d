"""Out-of-distribution flags: declared bounds, data ranges, stale/dead/stuck detectors."""

from __future__ import annotations

import numpy as np
import pytest

from cityx.core.errors import InputError
from cityx.core.schema import Feature, InputSchema
from cityx.oversight.ood import InputBounds, detector_reasons, flag_choice
from cityx.worlds.traffic.candidates import FEATURE_NAMES
from cityx.worlds.traffic.choices import ChoiceOod, ControllerChoice, DecidedBy


def _choice(row: list[float], other: list[float] | None = None) -> ControllerChoice:
    rows = (tuple(row), tuple(other or row))
    return ControllerChoice(
        time_s=10.0,
        intersection="A",
        decided_by=DecidedBy.RULE,
        current_phase=0,
        chosen_phase=0,
        runner_up_phase=2,
        phases=(0, 2),
        scores=(2.0, 1.0),
        columns=FEATURE_NAMES,
        rows=rows,
    )


NORMAL = [3.0, 1.0, 2.0, 20.0, 1.0, 2.0, 6.0, 1.0, 12.0, 7.0]


def test_values_outside_the_declared_bounds_are_flagged_and_named() -> None:
    declared = InputBounds.candidates()
    assert flag_choice(_choice(NORMAL), row_bounds=[declared]) == ChoiceOod(False, (), ("bounds",))
    bad = list(NORMAL)
    bad[FEATURE_NAMES.index("occupancy_in")] = 140.0
    worse = list(NORMAL)
    worse[FEATURE_NAMES.index("queue_in")] = float("nan")
    ood = flag_choice(_choice(bad, worse), row_bounds=[declared])
    assert ood.flag
    assert any("phase 0: occupancy_in=140 outside [0, 100]" in r for r in ood.reasons)
    assert any("phase 2: queue_in=nan" in r for r in ood.reasons)


def test_a_manifest_schema_and_a_data_range_are_bounds_too() -> None:
    schema = InputSchema((Feature("queue_in", min=0.0, max=50.0), Feature("hour")))
    declared = InputBounds.from_schema(schema, source="manifest:acme")
    assert declared.upper[1] == np.inf
    seen = InputBounds.from_data(
        ["queue_in", "pressure"], np.array([[0.0, -3.0], [10.0, 4.0]]), source="data:train"
    )
    high = list(NORMAL)
    high[FEATURE_NAMES.index("queue_in")] = 60.0
    ood = flag_choice(_choice(high), row_bounds=[declared, seen])
    assert ood.checked == ("bounds", "data_range")
    assert [r.split(" (")[-1] for r in ood.reasons] == ["manifest:acme)", "data:train)"]
    with pytest.raises(InputError, match="non-empty"):
        InputBounds.from_data(["a"], np.zeros((0, 1)), source="empty")
    with pytest.raises(InputError, match="above"):
        InputBounds(("a",), (2.0,), (1.0,), source="bad")


def test_readings_of_dead_stale_or_stuck_detectors_make_a_choice_ood() -> None:
    lanes = ["a_0", "a_1", "a_2"]
    flags = {
        "dead": np.array([False, True, False]),
        "stale": np.zeros(3, dtype=bool),
        "stuck": np.array([False, False, True]),
    }
    assert detector_reasons(lanes, flags) == ["dead detector(s): a_1", "stuck detector(s): a_2"]
    ood = flag_choice(_choice(NORMAL), lanes=lanes, detector_flags=flags)
    assert ood.flag and ood.checked == ("detectors",)
    quiet = {k: np.zeros(3, dtype=bool) for k in flags}
    assert not flag_choice(_choice(NORMAL), lanes=lanes, detector_flags=quiet).flag
    # Nothing checked: no verdict of "in distribution" either.
    assert flag_choice(_choice(NORMAL)).checked == ()


def test_the_annotator_flags_dead_lanes_and_gives_the_calibrated_confidence() -> None:
    from cityx.oversight.annotate import ChoiceAnnotator
    from cityx.oversight.confidence import fit_calibration
    from cityx.worlds.traffic.candidates import PhaseCandidates
    from cityx.worlds.traffic.choices import choices_from_step

    from ..worlds.traffic.test_candidates import NETWORK, observe
    from .test_confidence import _synthetic

    calibration, _ = fit_calibration(_synthetic(5, 800, runs=4), horizon_s=20)
    annotator = ChoiceAnnotator(NETWORK, calibration=calibration)
    c = PhaseCandidates.from_network(NETWORK)
    obs = observe([3, 1, 5, 0, 2, 7], phase=(2, 0))
    features = c.features(obs)
    pressure = features[:, FEATURE_NAMES.index("pressure")]
    made = choices_from_step(
        c,
        obs,
        features,
        pressure,
        c.choose(obs, pressure).phases,
        columns=FEATURE_NAMES,
        decided_by=DecidedBy.RULE,
    )
    dead = np.zeros(6, dtype=bool)
    dead[4] = True  # ab_0, a lane of B
    a, b = annotator.annotate(made, {"dead": dead, "stale": np.zeros(6, dtype=bool)})
    assert a.confidence is not None and a.confidence.digest == calibration.digest
    assert a.ood is not None and b.ood is not None
    assert "detectors" in a.ood.checked and "bounds" in a.ood.checked
    assert b.ood.flag and "dead detector(s): ab_0" in b.ood.reasons
    # A's calibration inputs lie inside the synthetic dev range unless the queue is far off.
    assert not a.ood.flag or all("calibration" in r for r in a.ood.reasons)
    assert annotator.counts() == {"choices": 2, "with_confidence": 2, "ood": int(a.ood.flag) + 1}
    round_trip = ControllerChoice.from_json(b.to_json())
    assert round_trip.ood == b.ood and round_trip.confidence == b.confidence
