"""``ohio bench ros``: a short run closes the loop and reports every key (values are not targets here)."""

import json
import math

import numpy as np
import pytest

from ohio_core.bench.ros import STAGES, TARGETS, compute_breakdown, summarize
from ohio_core.cli.main import main
from ohio_core.cli.output import check_targets
from ohio_ros.loop_stats import STAGES as LOGGED_STAGES

pytestmark = pytest.mark.ros


def test_bench_ros_json(tmp_path, capsys):
    assert main(["bench", "ros", "--seconds", "2", "--warmup", "0.5", "--keep", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    stats = [f"{m}_ms_{s}" for m in ("period_error", "latency", "compute") for s in ("p50", "p99", "max")
             if not (m == "compute" and s == "max")]
    stats += [f"latency_{part}_ms_{s}" for part in ("transport", "in_node") for s in ("p50", "p99")]
    stats += ["law_us_p50", "compute_ratio_p50", "controller_cpu_percent"]
    assert set(out) == set(stats) | {"ticks", "commands", "goal_reached", "episodes", "episodes_succeeded",
                                     "controller", "publish_rate_hz", "seconds", "sim_lag_resets",
                                     "realtime_priority", "executor", "load_average_1min", "cpus", "robot", "tick_on",
                                     "compute_breakdown_us_p50", "compute_breakdown_us_p99"}
    for key in stats:
        assert math.isfinite(out[key]) and out[key] >= 0.0, key
    for key in ("compute_breakdown_us_p50", "compute_breakdown_us_p99"):
        assert set(out[key]) == {*STAGES, "compute"}
        # wake (how late a timer's callback started) is not measured where the joint state triggers the tick
        assert math.isnan(out[key]["wake"]) and out["tick_on"] == "joint_state"
        assert all(math.isfinite(v) and v >= 0.0 for k, v in out[key].items() if k != "wake"), out[key]
    assert out["executor"] == "events" and out["robot"] == "panda"
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


def test_stages_and_the_compute_ratio_of_a_timing_log():
    """The tick's parts, the latency's transport and in-node parts, the compute ratio and the CPU
    use of a log as the controller node writes it (a tick without a command has no law stage)."""
    ms, us = 1_000_000, 1_000
    stages = {"wake": [50 * us, 60 * us, 70 * us], "take": [10 * us] * 3, "step": [None, 300 * us, 500 * us],
              "law": [None, 100 * us, 300 * us], "publish": [None, 40 * us, 60 * us]}
    log = {"period_ns": 20 * ms, "tick_ns": [0, 20 * ms, 40 * ms], "compute_ns": [20 * us, 400 * us, 600 * us],
           "latency_ns": [None, 3 * ms, 2 * ms], "arrival_ns": [None, 1 * ms, 1 * ms], "stage_ns": stages,
           "cpu_ns": 10 * ms, "wall_ns": 40 * ms}
    s = summarize(log, warmup=0.0)               # from the first command: ticks 20, 40 ms
    assert s["compute_breakdown_us_p50"] == pytest.approx(
        {"wake": 65.0, "take": 10.0, "step": 400.0, "law": 200.0, "publish": 50.0, "compute": 500.0})
    assert s["compute_breakdown_us_p99"]["law"] == pytest.approx(298.0)
    assert s["law_us_p50"] == pytest.approx(200.0) and s["compute_ratio_p50"] == pytest.approx(2.5)
    assert s["latency_transport_ms_p50"] == pytest.approx(1.0) and s["latency_in_node_ms_p50"] == pytest.approx(1.5)
    assert s["controller_cpu_percent"] == pytest.approx(25.0)
    assert compute_breakdown(log, np.arange(1), 50)["law"] != compute_breakdown(log, np.arange(1), 50)["law"]   # NaN
    assert STAGES == LOGGED_STAGES


def test_a_log_without_stages_has_no_breakdown():
    """Logs written before the stages were logged still summarize; what they lack is NaN."""
    ms = 1_000_000
    log = {"period_ns": 20 * ms, "tick_ns": [0, 20 * ms, 40 * ms], "compute_ns": [ms] * 3,
           "latency_ns": [2 * ms] * 3}
    s = summarize(log, warmup=0.0)
    assert s["compute_ms_p50"] == pytest.approx(1.0) and s["latency_ms_p50"] == pytest.approx(2.0)
    assert all(math.isnan(s["compute_breakdown_us_p50"][k]) for k in STAGES)
    assert math.isnan(s["compute_ratio_p50"]) and math.isnan(s["controller_cpu_percent"])
    assert math.isnan(s["latency_transport_ms_p50"])


def test_targets_are_the_issue_targets_and_strict_bounds_are_strict():
    assert TARGETS == {"period_error_ms_p99": ("<", 1.0), "latency_ms_p99": ("<", 2.0),
                       "compute_ratio_p50": ("<=", 3.0)}
    rows = check_targets({"period_error_ms_p99": 1.0, "latency_ms_p99": 1.5, "compute_ratio_p50": 3.0}, TARGETS)
    assert [r[3] for r in rows] == ["NO", "yes", "yes"]
