"""Segments with known goals, simulated: the ground truth for round-trip tests and benchmarks.

Each segment starts from a random state (joint noise around home, random velocity), holds one
random goal (a normalized action of the controller) for k control periods in MuJoCo, and logs
state and torque per period, exactly as a recorded robot would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from controllers.goals import PoseGoal, so3_log
from ohio_core.envs.arm.sim import ArmSim
from ohio_core.inverse.base import Segments


@dataclass
class SyntheticSegments:
    segments: Segments
    goal_p: np.ndarray      # (N, 3) true goals
    goal_R: np.ndarray      # (N, 3, 3)
    action: np.ndarray      # (N, 6) the normalized actions that produced them
    saturated: np.ndarray   # (N, k, n) torque entries the controller clipped
    #: (N, k) steps whose torque is not the controller's law: its status is not ``ok`` (the OSC's
    #: joint-limit filter acted, the QP fell back); the closed-form and KKT inverses do not hold there
    filtered: np.ndarray | None = None


def simulate_segments(controller, n: int, k: int = 5, seed: int = 0, joint_noise: float = 0.4,
                      velocity_std: float = 0.3, action_scale: float = 1.0, sim: ArmSim | None = None,
                      progress: bool = False, torque_sigma=None) -> SyntheticSegments:
    """``n`` segments of ``k`` periods under ``controller`` (any ``compute(q, qd, goal)`` controller).
    ``torque_sigma`` (N m, scalar or per joint): a stochastic low level, the applied and logged torque
    is clip(tau + eps), eps ~ N(0, diag(sigma^2)), drawn from its own generator (seeded by ``seed``),
    so the states, goals and noise-free torques do not depend on it; ``saturated`` then marks
    entries at the limit after the noise."""
    rng = np.random.default_rng(seed)
    noise_rng = np.random.default_rng([seed, 1])
    nj = controller.model.nq
    sigma = None if torque_sigma is None else np.broadcast_to(np.asarray(torque_sigma, float), (nj,))
    sim = sim or ArmSim(control_period=controller.config.control_period,
                        gravity_compensation=controller.config.gravity_compensation, robot=controller.model.robot)
    model = controller.model
    lo, hi = model.q_min + 0.1, model.q_max - 0.1
    q_log, qd_log, tau_log = (np.empty((n, k, nj)) for _ in range(3))
    sat = np.empty((n, k, nj), bool)
    filtered = np.zeros((n, k), bool)
    q_next, qd_next = np.empty((n, nj)), np.empty((n, nj))
    goal_p, goal_R, actions = np.empty((n, 3)), np.empty((n, 3, 3)), np.empty((n, 6))
    it = range(n)
    if progress:
        it = tqdm(it, desc="simulating segments", unit="seg")
    for i in it:
        q0 = np.clip(model.home + rng.uniform(-joint_noise, joint_noise, nj), lo, hi)
        sim.reset(q0)
        sim.data.qvel[sim.qvel_arm] = rng.normal(0.0, velocity_std, nj)
        a = np.clip(rng.uniform(-1, 1, 6) * action_scale, -1, 1)
        goal: PoseGoal = controller.goal_from_action(a, sim.q)
        for j in range(k):
            q, qd = sim.q, sim.qd
            out = controller.compute(q, qd, goal)
            tau, saturated = out.tau, out.saturated
            if sigma is not None:
                tau = np.clip(tau + sigma * noise_rng.standard_normal(nj), -controller.tau_max, controller.tau_max)
                saturated = np.abs(tau) >= controller.tau_max
            q_log[i, j], qd_log[i, j], tau_log[i, j], sat[i, j] = q, qd, tau, saturated
            filtered[i, j] = getattr(out, "status", "ok") != "ok"
            sim.control_step(tau)
        q_next[i], qd_next[i] = sim.q, sim.qd
        goal_p[i], goal_R[i], actions[i] = goal.p, goal.R, a
    return SyntheticSegments(Segments(q_log, qd_log, tau_log, q_next, qd_next), goal_p, goal_R, actions, sat,
                             filtered)


def recovery(result, goal_p: np.ndarray, goal_R: np.ndarray, pos_tol: float = 1e-3, ori_tol: float = 1e-2):
    """Per-segment position error (m), orientation error (rad) and recovered-within-tolerance flags."""
    perr = np.linalg.norm(result.goal_p - goal_p, axis=-1)
    oerr = np.linalg.norm(so3_log(result.goal_R @ np.swapaxes(goal_R, -1, -2)), axis=-1)
    return perr, oerr, (perr < pos_tol) & (oerr < ori_tol)
