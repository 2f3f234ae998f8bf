"""Inverse of the QP controller from its optimality (KKT) conditions.

The controller solves min 1/2 qdd^T G qdd - a(g)^T qdd  s.t.  C^T qdd >= b  (``controllers.qp``),
with a(g) = J^T W (K_p e(g) - K_d v - dJ qd) + w_p qdd_post - w_v T qd affine in the task error:
a(g) = a(0) + J^T W K_p e(g), where a(0) is built by the controller's own ``qp_problem``.
From the logged torque, qdd = M^-1 (tau - h). Stationarity, G qdd - a(g) = C_A lambda_A over the
constraints active at qdd, gives with P the projector onto the complement of range(C_A)::

    P J^T W K_p e = P (G qdd - a(0))

solved for e in least squares, then e -> (p_g, R_g) as for the OSC. With no active constraint this
is exact; each active constraint removes one equation (6 unknowns, n - |A| equations for n joints). The goal is
held over the segment, so the step with the fewest active constraints is used; a segment whose
every step has two or more is ILL_POSED. The residual is the QP controller's own solve for the
recovered goal at each of the k logged states against the logged torques (``segment_terms``).
"""

from __future__ import annotations

import numpy as np

from controllers.base import InverseCapability, supports
from controllers.qp import QP, qp_problem
from ohio_core.inverse.analytical import error_to_pose
from ohio_core.inverse.base import InverseResult, Segments, Status, finish, register
from ohio_core.inverse.segment_terms import segment_residual
from ohio_core.inverse.terms import batch_kinematics

#: a constraint counts as active when its slack is below this (quadprog's solutions are exact to ~1e-12)
ACTIVE_TOL = 1e-9


def _problems(controller: QP, kin, q, qd):
    """G, a at zero task error (xdd* = -K_d v) and the constraints for every state (quadprog form)."""
    model, cfg = controller.model, controller.config
    G, a0, C, b = [], [], [], []
    xdd0 = -cfg.kd * (kin.J @ qd[..., None])[..., 0]
    for i in range(len(q)):
        k_i = type(kin)(p=kin.p[i], R=kin.R[i], J=kin.J[i], M=kin.M[i], Minv=None, h=kin.h[i],
                        dJqd=kin.dJqd[i])
        prob = qp_problem(k_i, q[i], qd[i], xdd0[i], cfg, model.q_min, model.q_max, model.qd_max, controller.tau_max)
        G.append(prob.G)
        a0.append(prob.a)
        C.append(prob.C)
        b.append(prob.b)
    return np.array(G), np.array(a0), np.array(C), np.array(b)


@register("qp")
def invert(segments: Segments, controller: QP) -> InverseResult:
    if not supports(controller, InverseCapability.KKT):
        raise ValueError(f"the KKT inverse needs the QP controller, got {type(controller).__name__}")
    cfg = controller.config
    n, k = len(segments), segments.k
    finite, seg = segments.sanitized()
    nj = seg.q.shape[-1]
    q, qd, tau = seg.q.reshape(-1, nj), seg.qd.reshape(-1, nj), seg.tau.reshape(-1, nj)
    kin = batch_kinematics(controller.model, q, qd, drift=True)
    G, a0, C, b = _problems(controller, kin, q, qd)
    qdd = np.linalg.solve(kin.M, (tau - kin.h)[..., None])[..., 0]
    slack = (np.swapaxes(C, 1, 2) @ qdd[..., None])[..., 0] - b
    active = slack < ACTIVE_TOL * np.maximum(1.0, np.abs(b))
    CA = C * active[:, None, :]
    P = np.eye(nj) - CA @ np.linalg.pinv(CA)
    # a(g) - a(0) = J^T W K_p e
    JtWKp = np.swapaxes(kin.J, 1, 2) * (cfg.array("task_weight") * cfg.array("kp"))
    rhs = (P @ ((G @ qdd[..., None])[..., 0] - a0)[..., None])[..., 0]
    e, rank, cond = _lstsq(P @ JtWKp, rhs)
    # the goal is the same at every step: use the step with the fewest active constraints
    score = np.where(rank == 6, active.sum(-1), 99).reshape(n, k)
    j = np.argmin(score, axis=1)
    pick = np.arange(n) * k + j
    p_j, R_j = kin.p[pick], kin.R[pick]
    goal_p, goal_R, in_range = error_to_pose(e[pick], p_j, R_j)
    p0, R0 = kin.p[::k], kin.R[::k]
    status = np.full(n, Status.OK, dtype=int)
    status[~in_range] = Status.OUT_OF_RANGE
    status[rank[pick] < 6] = Status.ILL_POSED
    status[~finite] = Status.NON_FINITE
    residual = segment_residual(controller, seg.q, seg.qd, seg.tau, goal_p, goal_R)
    return finish(goal_p, goal_R, p0, R0, cfg.output_max, residual, status, cond[pick],
                  {"method": "qp", "active_constraints": active.sum(-1)[pick], "step_used": j}, config=cfg)


def _lstsq(A: np.ndarray, rhs: np.ndarray):
    """Batched least squares through the SVD: solution, numerical rank, condition."""
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    tol = s[:, :1] * 1e-9
    keep = s > tol
    s_inv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
    e = (np.swapaxes(Vt, 1, 2) @ (s_inv * (np.swapaxes(U, 1, 2) @ rhs[..., None])[..., 0])[..., None])[..., 0]
    with np.errstate(divide="ignore"):
        cond = s[:, 0] / s[:, -1]
    return e, keep.sum(-1), cond
