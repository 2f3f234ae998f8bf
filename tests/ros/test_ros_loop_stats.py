"""The controller node's timing statistics (ohio_ros.loop_stats), without DDS."""

import json

import pytest

from ohio_ros.loop_stats import STAGES, LoopStats

MS = 1_000_000


def test_the_log_keeps_every_tick_with_its_stages_and_the_cpu_time(tmp_path):
    stats = LoopStats(0.02, keep_log=True)
    stats.record(0, 300_000, None, False)                                   # no command: no stages
    stats.record(20 * MS, 400_000, 3 * MS, True, arrival_ns=MS, stages=(50_000, 10_000, 300_000, 250_000, 90_000))
    stats.record(41 * MS, 500_000, 2 * MS, False, arrival_ns=MS, stages=(1_000_000, 10_000, 400_000, None, 90_000))
    window = stats.window()
    assert window["ticks"] == 3 and window["compute_ms_p50"] == pytest.approx(0.4)
    assert window["period_error_ms_p99"] == pytest.approx(0.99) and window["saturated_fraction"] == 0.5
    stats.write_log(tmp_path / "log.json")
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["period_ns"] == 20 * MS and log["tick_ns"] == [0, 20 * MS, 41 * MS]
    assert log["latency_ns"] == [None, 3 * MS, 2 * MS] and log["arrival_ns"] == [None, MS, MS]
    assert list(log["stage_ns"]) == list(STAGES)
    assert log["stage_ns"]["law"] == [None, 250_000, None] and log["stage_ns"]["wake"] == [None, 50_000, 1_000_000]
    assert log["cpu_ns"] >= 0 and log["wall_ns"] >= 0


def test_without_a_log_nothing_is_kept(tmp_path):
    stats = LoopStats(0.02)
    stats.record(0, 300_000, MS, False, stages=(0, 0, 0, 0, 0))
    assert stats.log["tick_ns"] == [] and all(v == [] for v in stats.log["stage_ns"].values())
