"""Benchmark of the low-level controllers and of the simulator with a controller in the loop, per robot.

Per-step compute time is measured on states visited by the scripted reach expert (so the
distribution of configurations and goals is the one the controllers meet in use); the OSC's with its
joint-limit filter (the default) and without, and how many of those steps the filter changed. Per robot it
also reports what makes an arm usable by the stack:

- tracking: step goals 5 cm and 0.2 rad away (random directions) from the home pose, held for
  1.5 s in the simulator; the final position and orientation errors, both controllers;
- inverse: simulated k = 5 segments relabeled by the closed form (OSC) and the KKT inverse (QP);
  the largest goal error over segments without saturated torques (a round trip);
- reach: the scripted expert's success rate through each controller.
"""

from __future__ import annotations

import time

import numpy as np

from controllers.config import OSCConfig
from controllers.goals import PoseGoal, so3_exp, so3_log
from controllers.osc import OSC
from controllers.qp import QP
from controllers.robot import ArmModel
from ohio_core.envs.arm.env import GoalArmEnv, run_episode
from ohio_core.envs.arm.sim import ArmSim
from ohio_core.inverse import invert
from ohio_core.inverse.synthetic import recovery, simulate_segments
from ohio_core.policies.scripted import ReachExpert


def _visited_states(model: ArmModel, n: int, seed: int) -> list[tuple]:
    """(q, qd, goal) triples from expert reach episodes under the OSC."""
    env, expert = GoalArmEnv(OSC(model), "reach", robot=model.robot), ReachExpert()
    out, ep = [], 0
    while len(out) < n:
        obs, _ = env.reset(seed=seed + ep)
        ep += 1
        done = False
        while not done and len(out) < n:
            q, qd = env.sim.q, env.sim.qd
            action = expert(obs)
            out.append((q, qd, env.controller.goal_from_action(action, q)))
            obs, _, _, done, _ = env.step(action)
    return out


def time_steps(controller, states: list[tuple], repeats: int = 3) -> np.ndarray:
    """Wall time (us) of ``controller.compute`` per call, best of ``repeats`` per state."""
    for q, qd, goal in states[:200]:
        controller.compute(q, qd, goal)
    clock = time.perf_counter_ns
    times = np.empty(len(states))
    for i, (q, qd, goal) in enumerate(states):
        best = np.inf
        for _ in range(repeats):
            t0 = clock()
            controller.compute(q, qd, goal)
            best = min(best, clock() - t0)
        times[i] = best / 1e3
    return times


def realtime_factor(controller, seconds: float, seed: int) -> tuple[float, float]:
    """(simulated seconds per wall second, expert success rate): expert reach episodes, controller at 50 Hz."""
    env, expert = GoalArmEnv(controller, "reach"), ReachExpert()
    sim_time, ep, successes = 0.0, 0, 0
    t0 = time.perf_counter()
    while sim_time < seconds:
        successes += run_episode(env, expert, seed + ep)[1]
        ep += 1
        sim_time += env.sim.time
    return sim_time / (time.perf_counter() - t0), successes / ep


def step_tracking(controller, goals: int = 10, seconds: float = 1.5, seed: int = 0) -> dict:
    """Final position (m) and orientation (rad) errors of step goals 5 cm and 0.2 rad from the home
    pose, held for ``seconds`` (module docstring): median and max over ``goals``."""
    rng = np.random.default_rng(seed)
    sim = ArmSim(control_period=controller.config.control_period,
                 gravity_compensation=controller.config.gravity_compensation, robot=controller.model.robot)
    perr, oerr = [], []
    for _ in range(goals):
        sim.reset()
        p0, R0 = sim.tcp_pose()
        d, w = rng.normal(size=3), rng.normal(size=3)
        goal = PoseGoal(p0 + 0.05 * d / np.linalg.norm(d), so3_exp(0.2 * w / np.linalg.norm(w)) @ R0)
        for _ in range(int(round(seconds / sim.control_period))):
            sim.control_step(controller.act(sim.q, sim.qd, goal))
        p, R = sim.tcp_pose()
        perr.append(np.linalg.norm(p - goal.p))
        oerr.append(np.linalg.norm(so3_log(goal.R @ R.T)))
    return {"pos_err_m_median": float(np.median(perr)), "pos_err_m_max": float(np.max(perr)),
            "ori_err_rad_median": float(np.median(oerr)), "ori_err_rad_max": float(np.max(oerr))}


def inverse_round_trip(controller, method: str, segments: int = 200, seed: int = 0) -> dict:
    """The largest goal error of ``method`` on simulated k = 5 segments without saturated torques, and
    without steps the controller's law did not set (the OSC's joint-limit filter, the QP's fallbacks)."""
    data = simulate_segments(controller, segments, k=5, seed=seed, velocity_std=0.3)
    res = invert(method, data.segments, controller)
    perr, oerr, _ = recovery(res, data.goal_p, data.goal_R)
    keep = ~data.saturated.any((1, 2)) & ~data.filtered.any(1)
    return {"segments": int(keep.sum()), "solved": float(res.ok[keep].mean()) if keep.any() else 0.0,
            "pos_err_m_max": float(perr[keep].max()) if keep.any() else float("nan"),
            "ori_err_rad_max": float(oerr[keep].max()) if keep.any() else float("nan")}


def run(n_states: int = 2000, sim_seconds: float = 20.0, seed: int = 0, robot: str | None = None) -> dict:
    model = ArmModel(robot)
    states = _visited_states(model, n_states, seed)
    osc = OSC(model)
    osc_t = time_steps(osc, states)
    osc_law_t = time_steps(OSC(model, OSCConfig(joint_limits=False, singularity_damping=0.0)), states)
    qp = QP(model)
    qp_t = time_steps(qp, states)
    rtf_osc, reach_osc = realtime_factor(OSC(model), sim_seconds, seed)
    rtf_qp, reach_qp = realtime_factor(QP(model), sim_seconds, seed)
    return {
        "robot": model.robot.name, "joints": model.nq,
        "osc_step_us_median": float(np.median(osc_t)),
        "osc_step_us_p99": float(np.percentile(osc_t, 99)),
        "osc_no_limit_filter_step_us_median": float(np.median(osc_law_t)),
        "osc_limit_filtered": int(osc.limit_filtered),
        "qp_step_us_median": float(np.median(qp_t)),
        "qp_step_us_p99": float(np.percentile(qp_t, 99)),
        "qp_fallbacks": int(qp.fallbacks),
        "sim_realtime_factor": float(rtf_osc),
        "sim_realtime_factor_qp": float(rtf_qp),
        "reach_expert_success_osc": float(reach_osc),
        "reach_expert_success_qp": float(reach_qp),
        "tracking_osc": step_tracking(OSC(model), seed=seed),
        "tracking_qp": step_tracking(QP(model), seed=seed),
        "inverse_analytical_osc": inverse_round_trip(OSC(model), "analytical", seed=seed),
        "inverse_kkt_qp": inverse_round_trip(QP(model), "qp", seed=seed),
        "states": n_states,
    }


TARGETS = {"osc_step_us_median": ("<=", 50.0), "qp_step_us_median": ("<=", 200.0),
           "sim_realtime_factor": (">=", 20.0)}
