"""The joint-state-driven tick schedule of the controller node (ohio_ros.arm.tick_schedule)."""

import pytest

from ohio_ros.arm.tick_schedule import StateTickSchedule

MS = 1_000_000


def ticks(schedule, stamps):
    return [s for s in stamps if schedule.due(s)]


@pytest.mark.parametrize("interval_ms", [1, 2, 20])
def test_ticks_on_one_grid_of_the_period_whatever_the_state_rate(interval_ms):
    stamps = [i * interval_ms * MS for i in range(1000 // interval_ms)]
    assert ticks(StateTickSchedule(20 * MS), stamps) == [k * 20 * MS for k in range(50)]


def test_a_late_state_delays_one_tick_not_the_ones_after_it():
    stamps = [i * 2 * MS for i in range(60) if i != 10]          # the state due at 20 ms is lost
    assert ticks(StateTickSchedule(20 * MS), stamps)[:4] == [0, 22 * MS, 40 * MS, 60 * MS]


def test_jitter_within_the_tolerance_keeps_the_grid():
    stamps = [0, 19_700_000, 39_800_000, 60_100_000]
    assert ticks(StateTickSchedule(20 * MS, tolerance_ns=500_000), stamps) == stamps
    assert ticks(StateTickSchedule(20 * MS, tolerance_ns=0), stamps) == [0, 39_800_000, 60_100_000]


def test_a_gap_or_a_jump_back_in_time_starts_a_new_grid():
    schedule = StateTickSchedule(20 * MS)
    assert ticks(schedule, [0, 20 * MS, 95 * MS, 100 * MS, 115 * MS]) == [0, 20 * MS, 95 * MS, 115 * MS]
    assert schedule.resyncs == 1
    assert schedule.due(1 * MS) and schedule.resyncs == 2                 # a driver restarted its clock
    assert not schedule.due(5 * MS) and schedule.due(21 * MS)


def test_bad_periods_are_refused():
    with pytest.raises(ValueError):
        StateTickSchedule(0)
    with pytest.raises(ValueError):
        StateTickSchedule(20 * MS, tolerance_ns=20 * MS)
