"""The planner's two records on plain numbers: learned durations (`Durations`) and earned speculation
(`SpeculationRecord`)."""

from __future__ import annotations

import pytest

from orchestrator._durations import Durations
from orchestrator._speculation import SpeculationRecord


def test_durations_fit_a_line_over_size_once_three_sizes_are_known():
    """The median until three sized samples; then the least-squares line, never below the shortest."""
    durations = Durations()
    assert durations.expect(100) is None
    durations.add(100, 10.0)
    durations.add(300, 30.0)
    assert durations.expect(200) == pytest.approx(20.0)  # the median of two
    durations.add(200, 20.0)
    assert durations.expect(400) == pytest.approx(40.0)
    assert durations.expect(0) == pytest.approx(10.0)  # the line says 0: the shortest seen
    assert durations.expect(None) == pytest.approx(20.0)  # size unknown: the median


def test_the_margin_moves_toward_four_hits_in_five_and_stays_in_range():
    """A miss widens the margin four times as much as a hit narrows it; both stop at the range."""
    durations = Durations(margin=0.1)
    durations.steer(hit=False)
    assert durations.margin == pytest.approx(0.14)
    durations.steer(hit=True)
    assert durations.margin == pytest.approx(0.13)
    for _ in range(200):
        durations.steer(hit=False)
    assert durations.margin == pytest.approx(1.0)
    for _ in range(2000):
        durations.steer(hit=True)
    assert durations.margin == pytest.approx(-0.3)


def test_speculation_is_earned_above_c_over_one_plus_c():
    """Laplace-smoothed hit rate against the refusal cost: 2/3 is enough for c = 1, not for c = 2."""
    record = SpeculationRecord()
    assert not record.earned(1)  # 1/2, not above 1/2
    record.score(hit=True)
    assert record.earned(1)
    assert not record.earned(2)  # 2/3, not above 2/3
    assert record.room(2) is None


def test_the_window_grows_by_one_per_accepted_contact_and_falls_to_one_on_a_refusal():
    """Slow start: one place, one more per hit, back to one after a miss; a drop only frees its place."""
    record = SpeculationRecord()
    for _ in range(4):
        record.score(hit=True)
    assert record.grant(1)
    assert not record.grant(1)  # the window is one
    record.answered(hit=True)
    assert record.window == 2
    assert record.grant(1)
    assert record.grant(1)
    assert record.room(1) == 0
    record.answered(hit=None)  # dropped (the item left the batch): the window stays
    assert record.window == 2
    record.answered(hit=False)
    assert (record.window, record.in_flight) == (1, 0)


def test_the_spread_is_the_longest_duration_over_its_expected_time():
    """One of three items of one size took three times the median: spread 3; none: 1."""
    durations = Durations()
    assert durations.spread() == 1.0
    for took in (10.0, 10.0, 30.0):
        durations.add(None, took)
    assert durations.spread() == pytest.approx(3.0)
