"""Benchmark of the low-level controllers and of the simulator with a controller in the loop.

Per-step compute time is measured on states visited by the scripted reach expert (so the
distribution of configurations and goals is the one the controllers meet in use).
"""

from __future__ import annotations

import time

import numpy as np

from controllers.osc import OSC
from controllers.qp import QP
from controllers.robot import PandaModel
from ohio_core.envs.arm.env import GoalArmEnv, run_episode
from ohio_core.policies.scripted import ReachExpert


def _visited_states(model: PandaModel, n: int, seed: int) -> list[tuple]:
    """(q, qd, goal) triples from expert reach episodes under the OSC."""
    env, expert = GoalArmEnv(OSC(model), "reach"), ReachExpert()
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


def realtime_factor(controller, seconds: float, seed: int) -> float:
    """Simulated seconds per wall second, expert reach episodes, controller at 50 Hz."""
    env, expert = GoalArmEnv(controller, "reach"), ReachExpert()
    sim_time, ep = 0.0, 0
    t0 = time.perf_counter()
    while sim_time < seconds:
        run_episode(env, expert, seed + ep)
        ep += 1
        sim_time += env.sim.time
    return sim_time / (time.perf_counter() - t0)


def run(n_states: int = 2000, sim_seconds: float = 20.0, seed: int = 0) -> dict:
    model = PandaModel()
    states = _visited_states(model, n_states, seed)
    osc_t = time_steps(OSC(model), states)
    qp = QP(model)
    qp_t = time_steps(qp, states)
    return {
        "osc_step_us_median": float(np.median(osc_t)),
        "osc_step_us_p99": float(np.percentile(osc_t, 99)),
        "qp_step_us_median": float(np.median(qp_t)),
        "qp_step_us_p99": float(np.percentile(qp_t, 99)),
        "qp_fallbacks": int(qp.fallbacks),
        "sim_realtime_factor": float(realtime_factor(OSC(model), sim_seconds, seed)),
        "sim_realtime_factor_qp": float(realtime_factor(QP(model), sim_seconds, seed)),
        "states": n_states,
    }


TARGETS = {"osc_step_us_median": ("<=", 50.0), "qp_step_us_median": ("<=", 200.0),
           "sim_realtime_factor": (">=", 20.0)}
