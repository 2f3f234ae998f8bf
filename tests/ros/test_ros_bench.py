"""``ohio bench ros``: a short run closes the loop and reports every key (values are not targets here)."""

import json
import math

import pytest

from ohio_core.bench.ros import summarize
from ohio_core.cli.main import main

pytestmark = pytest.mark.ros


def test_bench_ros_json(tmp_path, capsys):
    assert main(["bench", "ros", "--seconds", "2", "--warmup", "0.5", "--keep", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    stats = [f"{m}_ms_{s}" for m in ("period_error", "latency", "compute") for s in ("p50", "p99", "max")
             if not (m == "compute" and s == "max")]
    assert set(out) == set(stats) | {"ticks", "commands", "goal_reached", "episodes", "episodes_succeeded",
                                     "controller", "publish_rate_hz", "seconds", "sim_lag_resets",
                                     "realtime_priority", "load_average_1min", "cpus"}
    for key in stats:
        assert math.isfinite(out[key]) and out[key] >= 0.0, key
    assert out["commands"] > 0 and out["episodes"] >= 1 and 0 <= out["episodes_succeeded"] <= out["episodes"]
    assert (out["controller"], out["publish_rate_hz"], out["seconds"]) == ("osc", 500.0, 2.0)
    assert (tmp_path / "controller_timing.json").is_file() and (tmp_path / "sim_report.json").is_file()


def test_summary_of_a_timing_log():
    """Period errors and latencies of a known log; ticks before the first command and the warm-up are left out."""
    ms = 1_000_000
    ticks = [0, 20 * ms, 40 * ms, 61 * ms, 80 * ms, 100 * ms, 123 * ms]
    log = {"period_ns": 20 * ms, "tick_ns": ticks, "compute_ns": [ms] * 7,
           "latency_ns": [None, 2 * ms, 3 * ms, 3 * ms, 1 * ms, 2 * ms, 4 * ms]}
    s = summarize(log, warmup=0.03)          # from the first command (20 ms) + 30 ms: ticks 61, 80, 100, 123 ms
    assert s["ticks"] == 4 and s["commands"] == 4
    assert s["period_error_ms_max"] == pytest.approx(3.0) and s["period_error_ms_p50"] == pytest.approx(1.0)
    assert s["latency_ms_max"] == pytest.approx(4.0) and s["latency_ms_p50"] == pytest.approx(2.5)
