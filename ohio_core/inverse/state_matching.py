"""State matching, for logs without torques: find the goal whose k-step rollout reproduces the
state observed k steps later, under a dynamics model f::

    g* = argmin_g || x_{t+k} - rollout_f(x_t, pi_LL(., g), k) ||^2,   x = (q, T_s qd)

The rollout runs the deployment controller at the control rate (torque held, zero-order hold) and
advances the state one control period at a time with ``dynamics.step(q, qd, tau)`` (batched over
segments). The default, ``PinocchioDynamics``, integrates M(q) qdd = tau - h(q, qd) - d qd of the
controller's model with semi-implicit Euler at ``substeps`` per period; any object with the same
``step`` (e.g. a learned model, ``learning.dynamics``) can take its place.
Initialization: torques estimated by inverse dynamics from consecutive logged states, inverted in
closed form; refinement: batched Gauss-Newton with a finite-difference Jacobian (6 extra rollouts
per iteration). The reported residual is the RMS state mismatch after every one of the k periods
(the rollout against each logged state), so that it covers the whole segment.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin

from controllers.base import InverseCapability, clip_torque, supports
from controllers.goals import PoseGoal, so3_exp
from controllers.osc import OSC, osc_law, osc_terms
from ohio_core.inverse.analytical import clamp_rotation, error_to_pose, solve_masked
from ohio_core.inverse.base import InverseResult, Segments, Status, finish, register
from ohio_core.inverse.terms import batch_kinematics


class PinocchioDynamics:
    """One control period of rigid-body dynamics with the torque held: ``substeps`` semi-implicit
    Euler steps of qdd = ABA(q, qd, tau - d qd), qd += dt qdd, q += dt qd (dt = period / substeps).

    ABA runs over the whole batch in Pinocchio's C++ (``abaInParallel`` on ``threads`` threads), not in
    a Python loop over samples."""

    def __init__(self, model, control_period: float, substeps: int = 10, threads: int = 1):
        if substeps < 1 or not control_period > 0:
            raise ValueError(f"substeps must be >= 1 and control_period > 0, got {substeps}, {control_period}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.model, self.control_period, self.substeps, self.threads = model, control_period, substeps, threads
        self._pool = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pool": None}              # Pinocchio's pool does not pickle: rebuilt on use

    def step(self, q: np.ndarray, qd: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        damping = np.asarray(self.model.model.damping)
        dt = self.control_period / self.substeps
        q, qd, tau = (np.asarray(x, dtype=float) for x in (q, qd, tau))
        if self._pool is None:
            self._pool = pin.ModelPool(self.model.model, self.threads)
        for _ in range(self.substeps):
            qdd = pin.abaInParallel(self.threads, self._pool, q.T, qd.T, (tau - damping * qd).T).T
            qd = qd + dt * qdd
            q = q + dt * qd
        return q, qd


def rollout(controller: OSC, q: np.ndarray, qd: np.ndarray, goal_p: np.ndarray, goal_R: np.ndarray, k: int,
            substeps: int = 10, dynamics=None, trajectory: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Batched closed-loop rollout of k control periods from (q, qd) (N, 7) under goals (N, ...);
    ``dynamics`` (default: ``PinocchioDynamics`` of the controller's model) advances each period.
    Returns the state after the k periods, or with ``trajectory`` the state after each (N, k, 7)."""
    dynamics = dynamics or PinocchioDynamics(controller.model, controller.config.control_period, substeps)
    goal = PoseGoal.unchecked(goal_p, goal_R)
    qs, qds = [], []
    for _ in range(k):
        kin = batch_kinematics(controller.model, q, qd)
        tau = clip_torque(osc_law(osc_terms(kin, q, qd, controller.config), goal), controller.tau_max).tau
        q, qd = dynamics.step(q, qd, tau)
        qs.append(q)
        qds.append(qd)
    return (np.stack(qs, 1), np.stack(qds, 1)) if trajectory else (q, qd)


def inverse_dynamics_torques(controller: OSC, seg: Segments) -> np.ndarray:
    """tau_j ~ M(q_j) (qd_{j+1} - qd_j) / T + h(q_j, qd_j) + d qd_j, for every period (N, k, n)."""
    n, k = len(seg), seg.k
    qd_after = np.concatenate([seg.qd[:, 1:], seg.qd_next[:, None]], 1)
    nj = seg.q.shape[-1]
    q, qd = seg.q.reshape(-1, nj), seg.qd.reshape(-1, nj)
    kin = batch_kinematics(controller.model, q, qd)
    qdd = (qd_after.reshape(-1, nj) - qd) / controller.config.control_period
    damping = np.asarray(controller.model.model.damping)
    return ((kin.M @ qdd[..., None])[..., 0] + kin.h + damping * qd).reshape(n, k, nj)


@register("state_matching")
def invert(segments: Segments, controller: OSC, iterations: int = 6, fd_eps: float = 1e-5,
           velocity_scale: float = 0.02, substeps: int = 10, dynamics=None) -> InverseResult:
    """``dynamics``: the plant model of the rollouts (default: Pinocchio, the controller's model)."""
    if segments.q_next is None or segments.qd_next is None:
        raise ValueError("state matching needs the state after each segment (q_next, qd_next)")
    if not supports(controller, InverseCapability.DIFFERENTIABLE):
        raise ValueError(f"state matching needs the OSC's batched twin, got {type(controller).__name__}")
    n, k = len(segments), segments.k
    segments = Segments(segments.q, segments.qd, None, segments.q_next, segments.qd_next)   # torques unused
    finite, seg = segments.sanitized(need_next=True)
    dynamics = dynamics or PinocchioDynamics(controller.model, controller.config.control_period, substeps)
    # initial goal: closed form on inverse-dynamics torque estimates at the first period
    tau_est = np.clip(inverse_dynamics_torques(controller, seg)[:, 0], -controller.tau_max, controller.tau_max)
    kin0 = batch_kinematics(controller.model, seg.q[:, 0], seg.qd[:, 0])
    terms0 = osc_terms(kin0, seg.q[:, 0], seg.qd[:, 0], controller.config)
    e, _, _ = solve_masked(terms0.B, tau_est - terms0.c, np.ones(terms0.c.shape, bool))
    goal_p, goal_R, _ = error_to_pose(clamp_rotation(e), kin0.p, kin0.R)
    target = np.concatenate([seg.q_next, velocity_scale * seg.qd_next], -1)

    def residual(gp, gR):
        qe, qde = rollout(controller, seg.q[:, 0], seg.qd[:, 0], gp, gR, k, substeps, dynamics)
        return np.concatenate([qe, velocity_scale * qde], -1) - target

    r = residual(goal_p, goal_R)
    cost = (r ** 2).sum(-1)
    for _ in range(iterations):
        Jr = np.empty((n, r.shape[-1], 6))
        for a in range(6):
            dp, dw = np.zeros(3), np.zeros(3)
            (dp if a < 3 else dw)[a % 3] = fd_eps
            Jr[:, :, a] = (residual(goal_p + dp, so3_exp(dw) @ goal_R) - r) / fd_eps
        H = np.swapaxes(Jr, 1, 2) @ Jr + 1e-9 * np.eye(6)
        step = -np.linalg.solve(H, (np.swapaxes(Jr, 1, 2) @ r[..., None]))[..., 0]
        cand_p, cand_R = goal_p + step[:, :3], so3_exp(step[:, 3:]) @ goal_R
        r_c = residual(cand_p, cand_R)
        c_c = (r_c ** 2).sum(-1)
        better = c_c < cost
        goal_p = np.where(better[:, None], cand_p, goal_p)
        goal_R = np.where(better[:, None, None], cand_R, goal_R)
        r = np.where(better[:, None], r_c, r)
        cost = np.where(better, c_c, cost)
    status = np.where(np.sqrt(cost / r.shape[-1]) < 1e-4, Status.OK, Status.NOT_CONVERGED)
    status[~finite] = Status.NON_FINITE
    # reported: the mismatch after every period of the segment, not only the last one matched
    q_roll, qd_roll = rollout(controller, seg.q[:, 0], seg.qd[:, 0], goal_p, goal_R, k, substeps, dynamics,
                              trajectory=True)
    q_log = np.concatenate([seg.q[:, 1:], seg.q_next[:, None]], 1)
    qd_log = np.concatenate([seg.qd[:, 1:], seg.qd_next[:, None]], 1)
    rms = np.sqrt(np.mean(np.concatenate([q_roll - q_log, velocity_scale * (qd_roll - qd_log)], -1) ** 2, (1, 2)))
    return finish(goal_p, goal_R, kin0.p, kin0.R, controller.config.output_max, rms, status, np.full(n, np.nan),
                  {"method": "state_matching", "residual_units": "rad (q) and velocity_scale * rad/s (qd)",
                   "dynamics": type(dynamics).__name__}, config=controller.config)
