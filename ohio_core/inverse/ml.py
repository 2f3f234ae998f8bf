"""Maximum-likelihood inverse of a stochastic OSC low level (Gaussian action noise).

The low level is tau_j = clip(pi_LL(s_j, g) + eps_j), eps_j ~ N(0, diag(sigma^2)), independent per
control period, with pi_LL the (clipped) OSC law (``envs.arm.noise``). For a goal held over the k
periods of a segment, the negative log-likelihood of the logged torques, up to a constant, is on
the unsaturated entries::

    -log p(tau | g) = 1/2 sum_j || tau_j - pi_LL(s_j, g) ||^2_{Sigma^-1}
                    = 1/2 sum_j sum_i (tau_ji - pi_LL,i(s_j, g))^2 / sigma_i^2

so g* is the numerical inverse's least squares (``inverse.numerical.solve``, the same batched
Levenberg-Marquardt) with per-joint weights w_i = 1 / sigma_i. With equal sigma it IS the numerical
inverse. A logged entry at the torque limit is censored (only tau_ji + eps >= the limit is known;
its exact likelihood, Phi((pi_LL,i - tau_max,i) / sigma_i), is not a squared residual):

- ``censored="hinge"`` (default): kept as the numerical inverse keeps it, a one-sided squared residual
  (clip(pi_LL,i) - tau_max,i)^2 / sigma_i^2 that vanishes once the prediction reaches the limit,
  i.e. the censored entry is read as an observation at the limit that any prediction beyond it explains;
- ``censored="exclude"``: dropped from the sum (weight 0).
"""

from __future__ import annotations

import numpy as np

from controllers.osc import OSC
from ohio_core.inverse.analytical import unsaturated
from ohio_core.inverse.base import InverseResult, Segments, register
from ohio_core.inverse.numerical import solve

CENSORED = ("hinge", "exclude")


def noise_weights(sigma, tau_max: np.ndarray, censored: str = "hinge"):
    """``weights(tau)`` for ``numerical.solve``: 1 / sigma_i per joint, 0 on censored entries when
    ``censored="exclude"``. ``sigma``: N m, a scalar or one per joint, all > 0."""
    if censored not in CENSORED:
        raise ValueError(f"censored must be one of {CENSORED}, got {censored!r}")
    try:
        sig = np.broadcast_to(np.asarray(sigma, float), np.shape(tau_max)).copy()
    except ValueError:
        raise ValueError(f"sigma must be a scalar or one per joint ({len(tau_max)}), got {sigma}") from None
    if not (np.isfinite(sig).all() and (sig > 0).all()):
        raise ValueError(f"sigma must be finite and > 0 for every joint, got {sigma}")
    inv = 1.0 / sig

    def weights(tau: np.ndarray) -> np.ndarray:
        w = np.broadcast_to(inv, tau.shape)
        return w * unsaturated(tau, tau_max) if censored == "exclude" else w.copy()

    return weights


@register("ml")
def invert(segments: Segments, controller: OSC, sigma=1.0, censored: str = "hinge", iterations: int = 50,
           tol: float = 1e-12, chunk: int = 4096) -> InverseResult:
    """g* = argmin_g sum_j ||tau_j - pi_LL(s_j, g)||^2_{Sigma^-1}, Sigma = diag(sigma^2) (N m^2)."""
    weights = noise_weights(sigma, controller.tau_max, censored)
    res = solve(segments, controller, iterations, tol, chunk, weights=weights, method="ml")
    res.info.update({"sigma": np.broadcast_to(np.asarray(sigma, float), controller.tau_max.shape).tolist(),
                     "censored": censored})
    return res
