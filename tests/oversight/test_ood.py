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
