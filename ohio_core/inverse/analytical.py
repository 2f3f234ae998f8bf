"""Closed-form inverse of the OSC (action matching at the step the goal is set).

Before clipping the OSC is affine in the task error (``controllers.osc.OSCTerms``)::

    tau = B e + c,     e = (p_g - p,  1/2 vee(R_g R^T - R R_g^T)) = (p_g - p, sin(theta) u)

so with W the mask of unsaturated torque entries, e* = (B^T W B)^-1 B^T W (tau - c), then
p_g = p + e*_p and R_g = exp(asin(|e*_o|) e*_o / |e*_o|) R, valid for rotations under 90 degrees.
Segments with fewer than 6 unsaturated entries are ILL_POSED (hand them to the numerical inverse).
The goal is solved at the first period; the residual pushes it through the clipped law at all k
logged states (``segment_terms.segment_residual``), so a wrong k or controller shows.
"""

from __future__ import annotations

import numpy as np

from controllers.base import InverseCapability, supports
from controllers.goals import so3_exp
from controllers.osc import OSC, near_singular
from ohio_core.inverse.base import InverseResult, Segments, Status, finish, register
from ohio_core.inverse.segment_terms import osc_segment_terms, segment_residual

#: relative margin under the torque limit below which an entry counts as unsaturated
SATURATION_TOL = 1e-6


def unsaturated(tau: np.ndarray, tau_max: np.ndarray) -> np.ndarray:
    return np.abs(tau) < tau_max * (1.0 - SATURATION_TOL)


def clamp_rotation(e: np.ndarray, max_sin: float = 0.99) -> np.ndarray:
    """Scale the orientation part of task errors e (N, 6) down to |e_o| <= max_sin (a starting point
    inside the closed form's range)."""
    e = e.copy()
    e[:, 3:] *= np.minimum(1.0, max_sin / np.maximum(np.linalg.norm(e[:, 3:], axis=-1), 1e-12))[:, None]
    return e


def error_to_pose(e: np.ndarray, p: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_g, R_g, in_range) from a task error e = (p_g - p, sin(theta) u)."""
    s = np.linalg.norm(e[..., 3:], axis=-1)
    in_range = s < 1.0
    theta = np.arcsin(np.minimum(s, 1.0))
    u = e[..., 3:] / np.where(s > 0, s, 1.0)[..., None]
    return p + e[..., :3], so3_exp(theta[..., None] * u) @ R, in_range


def solve_masked(B: np.ndarray, rhs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares min ||W (B e - rhs)|| per batch entry; returns e, residual RMS and a condition
    estimate of B^T W B: (max_i L_ii / min_i L_ii)^2 of its Cholesky factor (a lower bound of cond_2)."""
    n = B.shape[-1]
    Bw = B * mask[..., None]
    G = np.swapaxes(Bw, -1, -2) @ Bw
    well = mask.sum(-1) >= n
    G = np.where(well[..., None, None], G, np.eye(n))
    try:
        L = np.linalg.cholesky(G)
        diag = np.diagonal(L, axis1=-2, axis2=-1)
        with np.errstate(divide="ignore", over="ignore"):
            cond = (diag.max(-1) / diag.min(-1)) ** 2
    except np.linalg.LinAlgError:          # some G is not positive definite: exact spectrum for all
        w = np.linalg.eigvalsh(G)
        with np.errstate(divide="ignore", over="ignore"):
            cond = w[..., -1] / np.maximum(w[..., 0], 0.0)
    e = np.linalg.solve(G, (np.swapaxes(Bw, -1, -2) @ (rhs * mask)[..., None]))[..., 0]
    r = ((B @ e[..., None])[..., 0] - rhs) * mask
    rms = np.sqrt((r ** 2).sum(-1) / np.maximum(mask.sum(-1), 1))
    return e, rms, np.where(well, cond, np.inf)


@register("analytical")
def invert(segments: Segments, controller: OSC, max_cond: float = 1e10, chunk: int = 4096) -> InverseResult:
    """Closed form at the first period; ``residual`` over all k periods (``segment_terms``), computed
    ``chunk`` segments at a time."""
    if not supports(controller, InverseCapability.CLOSED_FORM):
        raise ValueError(f"the analytical inverse needs a closed-form controller (OSC), got {type(controller).__name__}")
    finite, seg = segments.sanitized()
    n = len(segments)
    p0, R0, goal_p, goal_R = np.empty((n, 3)), np.empty((n, 3, 3)), np.empty((n, 3)), np.empty((n, 3, 3))
    residual, cond, cond0, in_range = np.empty(n), np.empty(n), np.empty(n), np.empty(n, bool)
    mask = unsaturated(seg.tau[:, 0], controller.tau_max)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        terms = osc_segment_terms(controller, seg.q[sl], seg.qd[sl])
        p0[sl], R0[sl], cond0[sl] = terms.p[:, 0], terms.R[:, 0], terms.cond[:, 0]
        e, _, cond[sl] = solve_masked(terms.B[:, 0], seg.tau[sl, 0] - terms.c[:, 0], mask[sl])
        goal_p[sl], goal_R[sl], in_range[sl] = error_to_pose(e, p0[sl], R0[sl])
        residual[sl] = segment_residual(controller, seg.q[sl], seg.qd[sl], seg.tau[sl], goal_p[sl], goal_R[sl], terms)
    status = np.full(n, Status.OK, dtype=int)
    status[~in_range] = Status.OUT_OF_RANGE
    status[near_singular(cond0, controller.config.lambda_rcond)] = Status.SINGULAR
    status[~(cond < max_cond)] = Status.ILL_POSED
    status[~finite] = Status.NON_FINITE
    return finish(goal_p, goal_R, p0, R0, controller.config.output_max, residual, status, cond,
                  {"method": "analytical", "unsaturated_entries": mask.sum(-1)}, config=controller.config)
