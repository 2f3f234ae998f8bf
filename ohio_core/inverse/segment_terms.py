"""Controller terms at every step of every segment, reshaped to (N, k, ...), and the one residual
every torque-matching inverse reports::

    residual = sqrt( 1/(n k) sum_{j<k} || clip(pi_LL(s_j, g*)) - tau_j ||^2 )     (N m)

the recovered goal g* pushed through the deployment controller's clipped law at each of the k logged
states, against the logged torques: a wrong k, controller config or model shows up in it.
"""

from __future__ import annotations

import numpy as np

from controllers.base import InverseCapability, supports
from controllers.goals import PoseGoal
from controllers.osc import OSCTerms, osc_terms, task_error
from controllers.qp import qp_step
from ohio_core.inverse.terms import batch_kinematics


def osc_segment_terms(controller, q: np.ndarray, qd: np.ndarray) -> OSCTerms:
    """``osc_terms`` for q, qd of shape (N, k, n_joints): fields shaped (N, k, ...)."""
    n, k, nj = q.shape
    qs, qds = q.reshape(-1, nj), qd.reshape(-1, nj)
    t = osc_terms(batch_kinematics(controller.model, qs, qds), qs, qds, controller.config)
    return OSCTerms(p=t.p.reshape(n, k, 3), R=t.R.reshape(n, k, 3, 3), B=t.B.reshape(n, k, nj, 6),
                    c=t.c.reshape(n, k, nj), cond=t.cond.reshape(n, k))


def osc_prediction(terms: OSCTerms, goal_p: np.ndarray, goal_R: np.ndarray) -> np.ndarray:
    """Unclipped OSC torque B_j e_j(g) + c_j at every step j of ``terms`` (N, k, ...) for goals of shape
    (N, ..., 3), (N, ..., 3, 3): held over the segment, one or several (candidates) per segment ->
    (N, ..., k, 7)."""
    at = (slice(None),) + (None,) * (goal_p.ndim - 2)          # the goals' extra axes, in the terms
    e = task_error(PoseGoal.unchecked(goal_p[..., None, :], goal_R[..., None, :, :]), terms.p[at], terms.R[at])
    return (terms.B[at] @ e[..., None])[..., 0] + terms.c[at]


def torque_residual(predicted: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """RMS over the k periods and 7 joints of predicted (clipped) minus logged torques (N, k, 7) -> (N,);
    inf where a prediction is not finite (a state the law could not be evaluated at), so that no
    threshold passes it."""
    with np.errstate(invalid="ignore", over="ignore"):
        rms = np.sqrt(np.mean((predicted - tau) ** 2, axis=(1, 2)))
    return np.where(np.isfinite(rms), rms, np.inf)


def predicted_torques(controller, q: np.ndarray, qd: np.ndarray, goal_p: np.ndarray, goal_R: np.ndarray,
                      terms: OSCTerms | None = None) -> np.ndarray:
    """clip(pi_LL(s_j, g)) (N, k, 7) at every logged state of every segment: the OSC through its batched
    law (``terms``: its terms at those states, if already computed), the QP through its own solve
    (``controllers.qp.qp_step``, fallbacks included) state by state."""
    if supports(controller, InverseCapability.CLOSED_FORM, InverseCapability.DIFFERENTIABLE):
        terms = terms if terms is not None else osc_segment_terms(controller, q, qd)
        return np.clip(osc_prediction(terms, goal_p, goal_R), -controller.tau_max, controller.tau_max)
    if supports(controller, InverseCapability.KKT):
        out = np.empty(q.shape)
        for i in range(q.shape[0]):
            goal = PoseGoal.unchecked(goal_p[i], goal_R[i])
            for j in range(q.shape[1]):
                out[i, j] = qp_step(controller.model, q[i, j], qd[i, j], goal, controller.config,
                                    controller.tau_max).tau
        return out
    raise ValueError(f"no torque prediction for a {type(controller).__name__} controller")


def segment_residual(controller, q: np.ndarray, qd: np.ndarray, tau: np.ndarray, goal_p: np.ndarray,
                     goal_R: np.ndarray, terms: OSCTerms | None = None) -> np.ndarray:
    """The residual of the module docstring (N,) for segments' states and torques (N, k, 7)."""
    return torque_residual(predicted_torques(controller, q, qd, goal_p, goal_R, terms), tau)
