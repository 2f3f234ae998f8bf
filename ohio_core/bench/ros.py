"""Benchmark of the ROS 2 closed loop: simulator, controller and policy nodes over DDS.

The three nodes of ``ros2_ws/src/ohio_ros`` run as separate processes on the wall clock
(the simulator paced at real time, joint states at ``publish_rate``, the scripted reach expert
as the policy; with ``realtime_priority`` the simulator and the controller run under SCHED_FIFO,
as a robot driver and a ros2_control loop would on a real-time system). The controller node logs every tick (``timing_log``); from it:

- period error: | time between two consecutive ticks - the control period |, p50/p99 (ms);
- latency: time the command was published minus the header stamp of the joint state it was
  computed from, i.e. from the simulator sampling the state to the command leaving the
  controller (DDS transport, waiting for the tick, compute), p50/p99 (ms);

- the latency's two parts: transport (the state's arrival in the controller minus its stamp) and
  in node (waiting for the tick, then the tick's work);
- compute: the tick's own work (take the newest state, the safety rules and the control law,
  publish), p50/p99 (ms), and its parts (``compute_breakdown_us_p50``/``_p99``, us: ``wake``, how
  late the timer callback started, and the stages ``take``, ``step``, ``law``, ``publish`` of
  ``ohio_ros.loop_stats.STAGES``); ``compute_ratio_p50``: compute p50 over the control law's p50,
  both measured in the controller's ticks;
- the controller process's CPU use (percent of one core while it ticked);

and from the simulator's report whether the arm reached the target of the first episode.
This module starts processes; it does not import rclpy (only the nodes do).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ohio_core.ros_env import local_ros_env

TARGETS = {"period_error_ms_p99": ("<", 1.0), "latency_ms_p99": ("<", 2.0), "compute_ratio_p50": ("<=", 3.0)}
#: the tick's parts in the controller's timing log (ohio_ros.loop_stats.STAGES)
STAGES = ("wake", "take", "step", "law", "publish")
#: what the controller node's ``executor`` parameter may name (ohio_ros.config.EXECUTOR_CHOICES); on the
#: wall clock, as here, ``auto`` is ``events``
EXECUTORS = ("auto", "events", "single_threaded", "multi_threaded")
#: what the controller node logs once the loop is closed (ohio_ros.arm.controller_node.FIRST_COMMAND)
FIRST_COMMAND = "first effort command published"


def find_executable(name: str) -> str:
    """A node's executable: an installed ohio_ros (AMENT_PREFIX_PATH), PATH, or beside this Python."""
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        exe = Path(prefix) / "lib" / "ohio_ros" / name
        if exe.is_file():
            return str(exe)
    found = shutil.which(name) or (Path(sys.executable).parent / name)
    if not Path(found).is_file():
        raise FileNotFoundError(f"{name} not found: install ohio_ros (./run.sh does, or colcon build "
                                f"and source the workspace)")
    return str(found)


def _percentile(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) if len(a) else float("nan")


def _values(log_values, n: int) -> np.ndarray:
    """A log's list of ns values (None: none) as floats, NaN where none; all NaN if the log lacks it."""
    if log_values is None:
        return np.full(n, np.nan)
    return np.array([np.nan if v is None else v for v in log_values], dtype=float)


def compute_breakdown(log: dict, rows: np.ndarray, q: float) -> dict:
    """Per part of the tick (``STAGES``) and for its whole work (``compute``), the ``q`` percentile (us)
    over the ticks ``rows`` of a timing log; NaN for a part the log does not hold."""
    stages = log.get("stage_ns") or {}
    n = len(log["tick_ns"])
    out = {}
    for name in STAGES:
        v = _values(stages.get(name), n)[rows]
        out[name] = _percentile(v[np.isfinite(v)] * 1e-3, q)
    out["compute"] = _percentile(np.asarray(log["compute_ns"], dtype=float)[rows] * 1e-3, q)
    return out


def summarize(log: dict, warmup: float) -> dict:
    """Period error, latency and compute statistics of a controller timing log, after ``warmup`` s of commands."""
    ticks = np.asarray(log["tick_ns"], dtype=np.int64)
    lat = _values(log["latency_ns"], len(ticks))
    commanded = np.flatnonzero(np.isfinite(lat))
    if not len(commanded):
        raise RuntimeError("the controller published no command (no joint states reached it?)")
    start = commanded[0] + int(np.searchsorted(ticks[commanded[0]:], ticks[commanded[0]] + warmup * 1e9))
    rows = np.arange(start, len(ticks))
    ticks, lat = ticks[rows], lat[rows]
    comp = np.asarray(log["compute_ns"], dtype=float)[rows] * 1e-6
    transport = _values(log.get("arrival_ns"), len(log["tick_ns"]))[rows]
    err = np.abs(np.diff(ticks) - log["period_ns"]) * 1e-6
    with_cmd = np.isfinite(lat)
    lat_ms, transport_ms = lat[with_cmd] * 1e-6, transport[with_cmd] * 1e-6
    in_node_ms = lat_ms - transport_ms
    p50, p99 = compute_breakdown(log, rows, 50), compute_breakdown(log, rows, 99)
    cpu, wall = log.get("cpu_ns"), log.get("wall_ns")
    return {
        "period_error_ms_p50": _percentile(err, 50), "period_error_ms_p99": _percentile(err, 99),
        "period_error_ms_max": float(err.max()) if len(err) else float("nan"),
        "latency_ms_p50": _percentile(lat_ms, 50), "latency_ms_p99": _percentile(lat_ms, 99),
        "latency_ms_max": float(lat_ms.max()) if len(lat_ms) else float("nan"),
        "latency_transport_ms_p50": _percentile(transport_ms, 50),
        "latency_transport_ms_p99": _percentile(transport_ms, 99),
        "latency_in_node_ms_p50": _percentile(in_node_ms, 50), "latency_in_node_ms_p99": _percentile(in_node_ms, 99),
        "compute_ms_p50": _percentile(comp, 50), "compute_ms_p99": _percentile(comp, 99),
        "compute_breakdown_us_p50": p50, "compute_breakdown_us_p99": p99,
        "law_us_p50": p50["law"], "compute_ratio_p50": p50["compute"] / p50["law"] if p50["law"] > 0 else float("nan"),
        "controller_cpu_percent": 100.0 * cpu / wall if cpu is not None and wall else float("nan"),
        "ticks": int(len(ticks)), "commands": int(len(lat_ms)),
    }


def _node_cmd(name: str, node: str, params: dict) -> list[str]:
    cmd = [find_executable(name), "--ros-args", "-r", f"__node:={node}"]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={json.dumps(v) if not isinstance(v, str) else v}"]
    return cmd


def run(seconds: float = 20.0, warmup: float = 2.0, controller: str = "osc", publish_rate: float = 500.0,
        seed: int = 0, keep: Path | None = None, start_timeout: float = 120.0, realtime_priority: int = 0,
        executor: str = "auto", robot: str = "panda", tick_on: str = "joint_state") -> dict:
    """Run the loop for ``warmup + seconds`` of commands on the arm ``robot`` (a name of config/robots
    or a robot file); the statistics and ``goal_reached``.

    ``executor``: the controller node's executor (its ``executor`` parameter, ``EXECUTORS``); the result
    names the one that ran."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS)}, got {executor!r}")
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ohio_bench_ros_"))
    work.mkdir(parents=True, exist_ok=True)
    timing, report = work / "controller_timing.json", work / "sim_report.json"
    for f in (timing, report):
        f.unlink(missing_ok=True)
    env = local_ros_env(dict(os.environ))
    nodes = {
        "mujoco_sim": _node_cmd("mujoco_sim_node", "mujoco_sim", {
            "task": "reach", "seed": seed, "publish_rate": float(publish_rate), "real_time_factor": 1.0,
            "report_path": str(report), "realtime_priority": realtime_priority, "robot": str(robot)}),
        "controller": _node_cmd("controller_node", "controller", {
            "controller.type": controller, "controller.gravity_compensation": "controller",     # the simulator's
            "timing_log": str(timing), "realtime_priority": realtime_priority,
            "executor": executor, "robot": str(robot), "tick_on": tick_on}),
        "policy": _node_cmd("policy_node", "policy", {"policy": "scripted", "task": "reach",
                                                     "controller.type": controller, "robot": str(robot)}),
    }
    procs = {}
    try:
        for name, cmd in nodes.items():
            with open(work / f"{name}.log", "wb") as out:
                procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, env=env)
        # the loop closes with the controller's first command (the simulator's episode starts
        # then); measure from there
        deadline = time.monotonic() + start_timeout
        started = None
        while started is None or time.monotonic() - started < warmup + seconds + 0.5:
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"node(s) {dead} exited early; logs in {work}")
            if started is None:
                if FIRST_COMMAND in (work / "controller.log").read_text(errors="replace"):
                    started = time.monotonic()
                elif time.monotonic() > deadline:
                    raise RuntimeError(f"no command within {start_timeout:g} s; logs in {work}")
            time.sleep(0.1)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if not timing.is_file() or not report.is_file():
        raise RuntimeError(f"the nodes wrote no timing log or report; logs in {work}")
    result = summarize(json.loads(timing.read_text()), warmup)
    sim = json.loads(report.read_text())
    episodes = sim["episodes"]
    result.update({
        "goal_reached": bool(episodes and episodes[0]["success"]),
        "episodes": len(episodes), "episodes_succeeded": sum(bool(e["success"]) for e in episodes),
        "robot": str(robot), "tick_on": tick_on, "controller": controller, "publish_rate_hz": float(publish_rate),
        "seconds": float(seconds),
        "sim_lag_resets": sim.get("lag_resets", 0), "realtime_priority": realtime_priority,
        "executor": "events" if executor == "auto" else executor,
        "load_average_1min": os.getloadavg()[0], "cpus": os.cpu_count(),
    })
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return result
