"""Phase candidates: features, choice and agreement with max-pressure (no SUMO needed)."""

from __future__ import annotations

import numpy as np
import pytest

from cityx.core.errors import InputError
from cityx.core.systems import Observation
from cityx.worlds.traffic.candidates import FEATURE_NAMES, PhaseCandidates, ScoredController
from cityx.worlds.traffic.controllers import MaxPressure
from cityx.worlds.traffic.network import Intersection, NetworkInfo, Phase

# Two intersections: A (north-south vs east-west, a yellow between) feeding B.
A = Intersection(
    id="A",
    program_id="0",
    phases=(
        Phase("GGrr", 30),
        Phase("yyrr", 3),
        Phase("rrGG", 30),
        Phase("rryy", 3),
    ),
    links=(("n_0", "x_0"), ("s_0", "y_0"), ("e_0", "ab_0"), ("w_0", "z_0")),
    lanes=("n_0", "s_0", "e_0", "w_0"),
)
B = Intersection(
    id="B",
    program_id="0",
    phases=(Phase("Gr", 20), Phase("yr", 3), Phase("rG", 20), Phase("ry", 3)),
    links=(("ab_0", "q_0"), ("c_0", "r_0")),
    lanes=("ab_0", "c_0"),
)
NETWORK = NetworkInfo(intersections=(A, B))
LANES = ("n_0", "s_0", "e_0", "w_0", "ab_0", "c_0")


def observe(
    halting: list[float], phase: tuple[int, int] = (0, 0), t: float = 3600.0
) -> Observation:
    n = len(LANES)
    return Observation(
        time_s=t,
        time_of_day_s=t,
        intersection_ids=("A", "B"),
        lanes=LANES,
        lane_start=np.array([0, 4, 6]),
        phase=np.array(phase),
        phase_age_s=np.array([12.0, 4.0]),
        counts=np.ones(n),
        occupancy=np.full(n, 10.0),
        halting=np.asarray(halting, dtype=np.float64),
        mean_speed=np.full(n, 5.0),
    )


def test_rows_are_the_green_phases_and_features_sum_the_served_lanes() -> None:
    c = PhaseCandidates.from_network(NETWORK)
    assert c.row_phase.tolist() == [0, 2, 0, 2]
    assert c.row_intersection.tolist() == [0, 0, 1, 1]
    f = c.features(observe([3, 1, 5, 0, 2, 7], phase=(2, 0)))
    col = {name: f[:, i] for i, name in enumerate(FEATURE_NAMES)}
    assert col["queue_in"].tolist() == [4, 5, 2, 7]
    # A's east approach feeds lane ab_0 (B's input, queue 2): its pressure is 5 - 2.
    assert col["queue_out"].tolist() == [0, 2, 0, 0]
    assert col["pressure"].tolist() == [4, 3, 2, 7]
    assert col["is_current"].tolist() == [0, 1, 1, 0]
    assert col["queue_total"].tolist() == [9, 9, 9, 9]
    assert col["served_lanes"].tolist() == [2, 2, 1, 1]
    assert col["phase_age_s"].tolist() == [12, 12, 4, 4]
    assert col["hour"].tolist() == [1, 1, 1, 1]
    assert col["occupancy_in"].tolist() == [10, 10, 10, 10]


def test_choice_takes_the_best_and_keeps_the_current_phase_on_a_tie() -> None:
    c = PhaseCandidates.from_network(NETWORK)
    obs = observe([0] * 6, phase=(2, 0))
    assert c.choose(obs, np.array([0.9, 0.1, 0.2, 0.8])).phases == {"A": 0, "B": 2}
    assert c.choose(obs, np.array([0.5, 0.5, 0.5, 0.5])).phases == {"A": 2, "B": 0}


@pytest.mark.parametrize(
    ("scores", "message"),
    [([0.1, 0.2, np.nan, 0.3], "not finite"), ([0.1, 0.2], "expected 4")],
)
def test_unusable_scores_are_refused(scores: list[float], message: str) -> None:
    c = PhaseCandidates.from_network(NETWORK)
    with pytest.raises(ValueError, match=message):
        c.choose(observe([0] * 6), np.array(scores))


def naive_max_pressure(network: NetworkInfo, obs: Observation) -> dict[str, int]:
    """Max-pressure written out by hand, intersection by intersection, link by link."""
    queue = dict(zip(obs.lanes, obs.halting.tolist(), strict=True))
    chosen = {}
    for k, tls in enumerate(network.intersections):
        pressure = {}
        for p in tls.green_phases:
            pressure[p] = sum(
                queue.get(a, 0.0) - queue.get(b, 0.0)
                for letter, (a, b) in zip(tls.phases[p].state, tls.links, strict=False)
                if letter in "Gg"
            )
        current = int(obs.phase[k])
        best = max(pressure.values())
        if pressure.get(current, -np.inf) >= best:
            chosen[tls.id] = current
        else:
            chosen[tls.id] = next(p for p, v in pressure.items() if v == best)
    return chosen


def test_max_pressure_and_scoring_by_pressure_match_the_definition() -> None:
    scored = ScoredController(NETWORK, lambda rows: rows[:, 0], columns=("pressure",))
    teacher = MaxPressure(NETWORK)
    rng = np.random.default_rng(3)
    for _ in range(300):
        phase = (int(rng.choice([0, 2])), int(rng.choice([0, 2])))
        obs = observe(rng.integers(0, 6, 6).tolist(), phase=phase)
        expected = naive_max_pressure(NETWORK, obs)
        assert teacher.act(obs).phases == expected
        assert scored.act(obs).phases == expected


def test_unknown_feature_names_are_refused() -> None:
    with pytest.raises(InputError, match="unknown phase-candidates/v1 feature"):
        ScoredController(NETWORK, lambda rows: rows[:, 0], columns=("queue_in", "colour"))


def test_the_per_intersection_view_matches_the_arrays() -> None:
    obs = observe([3, 1, 5, 0, 2, 7])
    a, b = obs.intersections
    assert a.intersection == "A" and dict(a.halting) == {"n_0": 3, "s_0": 1, "e_0": 5, "w_0": 0}
    assert b.phase == 0 and b.phase_age_s == 4.0 and dict(b.halting) == {"ab_0": 2, "c_0": 7}
