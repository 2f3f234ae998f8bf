"""Cross-entropy search over the deployment controller's normalized actions (no gradients).

For each segment, a full-covariance Gaussian over a in [-1, 1]^6 (the cost has narrow, correlated
valleys: position and orientation errors can trade torque against each other) is refit, with
smoothing, to the elite samples of::

    cost(a) = sum_j || clip(B_j e_j(g(a)) + c_j) - tau_j ||^2,    g(a) = (p0 + s_p a_p, exp(s_o a_o) R0)

batched over segments and samples (the controller law is evaluated through its batched twin).
"""

from __future__ import annotations

import numpy as np

from controllers.base import InverseCapability, supports
from controllers.goals import so3_exp
from controllers.osc import OSC
from ohio_core.inverse.base import InverseResult, Segments, Status, finish, register
from ohio_core.inverse.segment_terms import osc_prediction, osc_segment_terms, segment_residual


def _goal(p0, R0, a, s):
    """Goals (p, R) of normalized actions a from the TCP pose (p0, R0) (broadcast against a)."""
    return p0 + a[..., :3] * s[:3], so3_exp(a[..., 3:] * s[3:]) @ R0


def _cost(terms, a, s, tau, tau_max):
    """terms (N, k, ...), actions a (N, M, 6) -> cost (N, M)."""
    pred = osc_prediction(terms, *_goal(terms.p[:, None, 0], terms.R[:, None, 0], a, s))
    return ((np.clip(pred, -tau_max, tau_max) - tau[:, None]) ** 2).sum((2, 3))


@register("cem")
def invert(segments: Segments, controller: OSC, population: int = 128, elites: int = 24, iterations: int = 40,
           init_std: float = 0.5, min_std: float = 1e-5, smoothing: float = 0.5, tol: float = 1e-2, seed: int = 0,
           chunk: int = 512) -> InverseResult:
    if not supports(controller, InverseCapability.DIFFERENTIABLE, InverseCapability.CLOSED_FORM):
        raise ValueError(f"the CEM inverse needs the OSC's batched twin, got {type(controller).__name__}")
    rng = np.random.default_rng(seed)
    n = len(segments)
    s = controller.config.array("output_max")
    finite, seg = segments.sanitized()
    q, qd, tau = seg.q, seg.qd, seg.tau
    goal_p, goal_R, residual, final_std = np.empty((n, 3)), np.empty((n, 3, 3)), np.empty(n), np.empty(n)
    p0, R0 = np.empty((n, 3)), np.empty((n, 3, 3))
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        terms = osc_segment_terms(controller, q[sl], qd[sl])
        m = sl.stop - sl.start
        mean, cov = np.zeros((m, 6)), np.broadcast_to(init_std ** 2 * np.eye(6), (m, 6, 6)).copy()
        top_a, top_c = np.zeros((m, 6)), np.full(m, np.inf)
        for _ in range(iterations):
            L = np.linalg.cholesky(cov)
            z = rng.standard_normal((m, population, 6))
            a = np.clip(mean[:, None] + (L[:, None] @ z[..., None])[..., 0], -1.0, 1.0)
            a[:, 0] = mean                                   # keep the current mean in the population
            cost = _cost(terms, a, s, tau[sl], controller.tau_max)
            order = np.argsort(cost, axis=1)[:, :elites]
            elite = np.take_along_axis(a, order[..., None], 1)
            mean = elite.mean(1)
            d = elite - mean[:, None]
            elite_cov = np.swapaxes(d, 1, 2) @ d / elites
            cov = smoothing * cov + (1.0 - smoothing) * elite_cov + min_std ** 2 * np.eye(6)
            c0 = np.take_along_axis(cost, order[:, :1], 1)[:, 0]
            better = c0 < top_c
            top_a[better], top_c[better] = elite[better, 0], c0[better]
        std = np.sqrt(np.linalg.eigvalsh(cov)[:, -1:])
        final_std[sl] = std.max(1)
        p0[sl], R0[sl] = terms.p[:, 0], terms.R[:, 0]
        goal_p[sl], goal_R[sl] = _goal(p0[sl], R0[sl], top_a, s)
        residual[sl] = segment_residual(controller, q[sl], qd[sl], tau[sl], goal_p[sl], goal_R[sl], terms)
    status = np.where(final_std < tol, Status.OK, Status.NOT_CONVERGED)
    status[~finite] = Status.NON_FINITE
    return finish(goal_p, goal_R, p0, R0, s, residual, status, np.full(n, np.nan),
                  {"method": "cem", "population": population, "iterations": iterations},
                  config=controller.config)
