"""A stochastic low level: a controller with Gaussian action noise per control period.

    tau = clip(pi_LL(s, g) + eps),   eps ~ N(0, diag(sigma^2)),   clipped to the torque limits

``NoisyController`` wraps any controller with ``goal_from_action(action, q)`` and ``act(q, qd, goal)``
(``controllers.OSC``/``QP``) and is used in its place (``GoalArmEnv``, ``data.collect``): the torque
it returns, and that the logs hold, is the applied noisy one. The noise comes from the generator
given to ``reset`` (seeded per episode by the caller), so runs are reproducible.
"""

from __future__ import annotations

import numpy as np


def torque_sigma(fraction: float, tau_max: np.ndarray) -> np.ndarray:
    """Per-joint noise std (N m) as a fraction of the torque limits: sigma_i = fraction * tau_max_i."""
    if not (np.isfinite(fraction) and fraction >= 0):
        raise ValueError(f"torque noise fraction must be finite and >= 0, got {fraction}")
    return float(fraction) * np.asarray(tau_max, float)


class NoisyController:
    """``controller`` with additive Gaussian torque noise (std ``sigma``, N m, scalar or per joint)."""

    def __init__(self, controller, sigma, rng: np.random.Generator | None = None):
        sig = np.broadcast_to(np.asarray(sigma, float), controller.tau_max.shape).copy()
        if not (np.isfinite(sig).all() and (sig >= 0).all()):
            raise ValueError(f"sigma must be finite and >= 0 for every joint, got {sigma}")
        self.controller, self.sigma = controller, sig
        self.config, self.model, self.tau_max = controller.config, controller.model, controller.tau_max
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def goal_from_action(self, action, q):
        return self.controller.goal_from_action(action, q)

    def act(self, q, qd, goal) -> np.ndarray:
        tau = np.asarray(self.controller.act(q, qd, goal), float)
        return np.clip(tau + self.sigma * self.rng.standard_normal(len(tau)), -self.tau_max, self.tau_max)
