"""A torque-rate limit on the command stream, with a ramp from zero at the first command.

A real arm's torque interface refuses steps in the command (Franka: libfranka's torque-rate limit,
1000 N m/s per joint, is enforced and a violation stops the robot). Per joint i, with r_i the limit
(N m/s) and T the control period::

    tau_out(t) = tau_out(t - T) + clip(tau(t) - tau_out(t - T), -r_i T, r_i T),   tau_out before the first = 0

so the first command ramps up from zero and a step in the goal reaches the motors as a ramp. A
command within the torque limits stays within them (it is between two commands that are).
"""

from __future__ import annotations

import numpy as np

from controllers import validate


class TorqueRateLimiter:
    """Stateful filter of the commanded torque: ``__call__(tau) -> tau`` limited as in the module
    docstring; ``reset()`` forgets the previous command (the next ramps from zero again);
    ``limited`` counts the commands it changed."""

    def __init__(self, limit, period: float, n: int = 7):
        self.step = np.asarray(validate.vector("torque_rate_limit", limit, n, ValueError, "positive")) \
            * validate.number("period", period, ValueError, low=0.0, low_open=True)
        self.limited = 0
        self.reset()

    def reset(self) -> None:
        self.previous = np.zeros_like(self.step)

    def __call__(self, tau: np.ndarray) -> np.ndarray:
        tau = np.asarray(tau, dtype=float)
        out = self.previous + np.clip(tau - self.previous, -self.step, self.step)
        self.limited += bool(np.any(out != tau))
        self.previous = out
        return out.copy()
