"""The routing simulator (ohio_core.routing.sim): trip matching maximizes revenue."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from ohio_core.routing.sim import match


def test_matching_maximizes_revenue(rng):
    for _ in range(20):
        n = 5
        requests = rng.poisson(2.0, (n, n))
        price = rng.integers(1, 6, (n, n)).astype(float)
        idle = rng.integers(0, 8, n)
        served = match(requests, price, idle)
        assert (served >= 0).all() and (served <= requests).all() and (served.sum(1) <= idle).all()
        # the LP of the assignment (integral: one constraint per origin plus bounds)
        A = np.kron(np.eye(n), np.ones(n))
        best = linprog(-price.ravel(), A_ub=A, b_ub=idle, bounds=list(zip(np.zeros(n * n), requests.ravel())),
                       method="highs")
        assert (served * price).sum() == pytest.approx(-best.fun)
