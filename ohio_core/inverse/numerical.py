"""Numerical inverse of the OSC: batched Levenberg-Marquardt through the exact controller law,
torque clipping included, matching every step of the segment (action matching)::

    g* = argmin_g  sum_j || clip(B_j e_j(g) + c_j) - tau_j ||^2,   g = (p_g, R_g),  R_g <- exp(dw) R_g

B_j, c_j are ``controllers.osc.osc_terms`` at step j (the same code the controller runs). The
Jacobian of e_j is [I, 0; 0, 1/2 (tr(A_j) I - A_j)] with A_j = R_g R_j^T. An entry that is
saturated in both the log and the prediction, on the same side, carries no information and gets
no gradient; every other entry keeps the unclipped gradient, which pulls a wrongly saturated
prediction back. Initialized by the closed form at the segment's most informative step.
"""

from __future__ import annotations

import numpy as np

from controllers.base import InverseCapability, supports
from controllers.goals import so3_exp
from controllers.osc import OSC, near_singular
from ohio_core.inverse.analytical import clamp_rotation, error_to_pose, solve_masked, unsaturated
from ohio_core.inverse.base import InverseResult, Segments, Status, finish, register
from ohio_core.inverse.segment_terms import osc_prediction, osc_segment_terms, segment_residual

_EYE3 = np.eye(3)


def _residual(terms, goal_p, goal_R, tau, tau_max, w=None):
    """Weighted clipped prediction minus log, w (clip(pred) - tau) (N, k, n_joints), the unclipped
    prediction, and the cost per segment (w = 1 when None)."""
    pred = osc_prediction(terms, goal_p, goal_R)
    r = np.clip(pred, -tau_max, tau_max) - tau
    if w is not None:
        r = r * w
    return r, pred, (r ** 2).sum((1, 2))


def _jacobian(terms, goal_R, pred, tau, tau_max, sat_tol, w=None):
    A = goal_R[:, None] @ np.swapaxes(terms.R, -1, -2)
    E = 0.5 * (np.trace(A, axis1=-2, axis2=-1)[..., None, None] * _EYE3 - A)
    Jr = np.concatenate([terms.B[..., :3], terms.B[..., 3:] @ E], -1)          # (N, k, n_joints, 6)
    lim = tau_max * (1.0 - sat_tol)
    dead = (np.abs(pred) >= lim) & (np.abs(tau) >= lim) & (np.sign(pred) == np.sign(tau))
    return Jr * (~dead if w is None else w * ~dead)[..., None]


def _initial_goal(terms, tau, tau_max):
    """Closed form at the step with the most unsaturated entries (the goal is the same at every
    step of a segment, so any step whose n_joints equations are informative pins it down)."""
    n = tau.shape[0]
    mask = unsaturated(tau, tau_max)
    count = mask.sum(-1)
    mask = np.where(count[..., None] >= 6, mask, True)
    e, rms, _ = solve_masked(terms.B, tau - terms.c, mask)
    score = np.where(count >= 6, rms, np.inf) - count * 1e-9      # informative first, then best fit
    j = np.argmin(np.where(np.isfinite(score), score, 1e30 - count), axis=1)
    rows = np.arange(n)
    e = clamp_rotation(e[rows, j])
    goal_p, goal_R, _ = error_to_pose(e, terms.p[rows, j], terms.R[rows, j])
    return goal_p, goal_R


def _solve_chunk(terms, tau, tau_max, iterations, tol, ftol=1e-10, w=None):
    """Levenberg-Marquardt on sum_j ||w_j (clip(pred_j(g)) - tau_j)||^2 (w: per-entry weights
    (N, k, n_joints), or None for 1)."""
    n, k = tau.shape[:2]
    goal_p, goal_R = _initial_goal(terms, tau, tau_max)
    mu = np.full(n, 1e-3)
    r, pred, cost = _residual(terms, goal_p, goal_R, tau, tau_max, w)
    done, converged = np.zeros(n, bool), np.zeros(n, bool)
    for _ in range(iterations):
        Jr = _jacobian(terms, goal_R, pred, tau, tau_max, 1e-6, w).reshape(n, -1, 6)
        H = np.swapaxes(Jr, 1, 2) @ Jr
        g = (np.swapaxes(Jr, 1, 2) @ r.reshape(n, -1, 1))[..., 0]
        Hd = H + (mu[:, None, None] * (np.diagonal(H, axis1=1, axis2=2)[:, None, :] * _EYE6 + 1e-9 * _EYE6))
        step = -np.linalg.solve(Hd, g[..., None])[..., 0]
        step[done] = 0.0
        cand_p = goal_p + step[:, :3]
        cand_R = so3_exp(step[:, 3:]) @ goal_R
        r_c, pred_c, cost_c = _residual(terms, cand_p, cand_R, tau, tau_max, w)
        better = cost_c < cost
        stalled = better & (cost - cost_c <= ftol * cost)       # relative decrease below ftol: a minimum
        goal_p = np.where(better[:, None], cand_p, goal_p)
        goal_R = np.where(better[:, None, None], cand_R, goal_R)
        r = np.where(better[:, None, None], r_c, r)
        pred = np.where(better[:, None, None], pred_c, pred)
        cost = np.where(better, cost_c, cost)
        mu = np.where(better, mu / 3.0, mu * 5.0)
        small = np.linalg.norm(step, axis=-1) < tol
        # mu blowing up: not even a short gradient step lowers the cost, a (local) minimum; with
        # a mismatched log it may have a residual, which the caller reports and thresholds
        converged |= (better & small) | stalled | (cost < 1e-24) | (mu > 1e12)
        done |= converged
        if done.all():
            break
    return goal_p, goal_R, cost, converged


_EYE6 = np.eye(6)


@register("numerical")
def invert(segments: Segments, controller: OSC, iterations: int = 50, tol: float = 1e-12,
           chunk: int = 4096) -> InverseResult:
    return solve(segments, controller, iterations, tol, chunk)


def solve(segments: Segments, controller: OSC, iterations: int = 50, tol: float = 1e-12, chunk: int = 4096,
          weights=None, method: str = "numerical") -> InverseResult:
    """The batched solve behind ``numerical`` (and ``ml``): ``weights(tau)`` maps a chunk's logged
    torques (n, k, n_joints) to per-entry weights w (None: w = 1). ``residual`` is the unweighted one of
    ``segment_terms.segment_residual``."""
    if not supports(controller, InverseCapability.DIFFERENTIABLE):
        raise ValueError(f"the {method} inverse needs a differentiable controller (OSC), "
                         f"got {type(controller).__name__}")
    n = len(segments)
    finite, seg = segments.sanitized()
    q, qd, tau = seg.q, seg.qd, seg.tau
    tau_max = controller.tau_max
    goal_p, goal_R = np.empty((n, 3)), np.empty((n, 3, 3))
    p0, R0 = np.empty((n, 3)), np.empty((n, 3, 3))
    residual, converged, cond = np.empty(n), np.empty(n, bool), np.empty(n)
    singular = np.empty(n, bool)
    for s in range(0, n, chunk):
        sl = slice(s, min(n, s + chunk))
        terms = osc_segment_terms(controller, q[sl], qd[sl])
        w = None if weights is None else weights(tau[sl])
        gp, gR, _, done = _solve_chunk(terms, tau[sl], tau_max, iterations, tol, w=w)
        goal_p[sl], goal_R[sl] = gp, gR
        p0[sl], R0[sl] = terms.p[:, 0], terms.R[:, 0]
        residual[sl] = segment_residual(controller, q[sl], qd[sl], tau[sl], gp, gR, terms)
        converged[sl] = done
        cond[sl] = terms.cond.max(1)
        singular[sl] = near_singular(terms.cond, controller.config.lambda_rcond).any(1)
    status = np.full(n, Status.OK, dtype=int)
    status[~converged] = Status.NOT_CONVERGED
    status[singular] = Status.SINGULAR
    status[~finite] = Status.NON_FINITE
    return finish(goal_p, goal_R, p0, R0, controller.config.output_max, residual, status, cond,
                  {"method": method}, config=controller.config)
