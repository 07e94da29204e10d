"""Alert management: raised once per condition, cleared, and not flooding the overseer."""

from __future__ import annotations

from cityx.oversight import AlertBook, AlertLimits


def test_a_flapping_condition_raises_one_alert_per_rearm_period() -> None:
    book = AlertBook(AlertLimits(rearm_s=60))
    raised = 0
    for t in range(600):  # a condition toggling every second for 10 minutes
        new, _ = book.update("sensor.dead", "j", t % 2 == 0, float(t), suggestion="fixed-time")
        raised += new is not None
    assert raised == 10 and book.suppressed > 250
    assert book.raised[0].priority == "high" and book.raised[0].suggestion == "fixed-time"


def test_a_standing_condition_is_one_alert_until_it_clears() -> None:
    book = AlertBook()
    for t in range(100):
        book.update("ai.low_margin", "j", True, float(t))
    _, cleared = book.update("ai.low_margin", "j", False, 100.0)
    assert len(book.raised) == 1 and cleared is not None and not book.active()


def test_disagreement_needs_a_full_window_over_the_share() -> None:
    book = AlertBook(AlertLimits(disagreement_window=10, disagreement_share=0.6))
    answers = [book.disagreement("j", k % 3 != 0) for k in range(10)]
    assert not any(over for over, _, n in answers[:9])
    over, share, n = answers[-1]
    assert n == 10 and share == 0.6 and over


def test_a_shelved_kind_raises_nothing_until_its_time_and_acks_are_kept() -> None:
    book = AlertBook(AlertLimits(rearm_s=0))
    raised, _ = book.update("sensor.dead", "j", True, 0.0)
    assert raised is not None and book.acknowledge(raised.id, "urn:cityx:operator:alice", 1.0)
    assert not book.acknowledge(99, "urn:cityx:operator:alice", 1.0)
    book.shelve("sensor.dead", "j", until_s=100.0)
    assert not book.active()
    assert all(book.update("sensor.dead", "j", True, float(t))[0] is None for t in range(2, 100))
    assert book.update("sensor.dead", "j", True, 100.0)[0] is not None
    assert book.acknowledged == {1: ("urn:cityx:operator:alice", 1.0)}
