"""The rebalancing LP (controllers.rebalancing): its config, desired counts, optimal integral flows, errors, the
projection of raw flows, and the transportation formulation on metric travel times."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from controllers.config import ConfigError
from controllers.rebalancing import RebalancingConfig, desired_counts, flow_cost, project_flows, rebalance
from ohio_core.routing.inverse import FlowStatus, invert_flows
from ohio_core.routing.scenario import synthetic


def test_rebalancing_config():
    assert RebalancingConfig.from_dict({"type": "rebalancing", "cost_weight": 2}).cost_weight == 2.0
    assert RebalancingConfig.from_dict(RebalancingConfig().to_dict()) == RebalancingConfig()
    for bad in ({"cost_weight": 0.0}, {"cost_weight": float("nan")}, {"cost_weight": "1"}, {"solver": "glpk"}):
        with pytest.raises(ConfigError):
            RebalancingConfig(**bad)
    with pytest.raises(ConfigError, match="unknown key"):
        RebalancingConfig.from_dict({"solvr": "highs"})


def test_desired_counts(rng):
    w = rng.random((500, 12)) * (rng.random((500, 12)) < 0.7)
    w[:, 0] += 1e-3
    totals = rng.integers(0, 400, 500)
    d = desired_counts(w, totals)
    p = w / w.sum(1, keepdims=True)
    assert d.dtype == np.int64 and np.array_equal(d.sum(1), totals) and (d >= 0).all()
    assert (np.abs(d - p * totals[:, None]) < 1).all()
    assert np.array_equal(desired_counts(w[0], totals[0]), d[0])
    assert np.array_equal(desired_counts([1, 1, 1, 1], 6), [2, 2, 1, 1])       # ties: lower index first
    for bad, text in (([0, 0, 0], "positive sum"), ([1, -1, 1], ">= 0"), ([1, np.nan], "finite"),
                      (np.ones((2, 2, 2)), "shape")):
        with pytest.raises(ValueError, match=text):
            desired_counts(bad, 5)
    with pytest.raises(ValueError, match="idle_total"):
        desired_counts([1, 1], 2.5)


def brute_force(idle, desired, tt):
    """Least-cost feasible integer flows by enumeration (tiny n)."""
    n = len(idle)
    edges = [(i, j) for i in range(n) for j in range(n) if i != j]
    best = None
    for values in itertools.product(*[range(idle[i] + 1) for i, _ in edges]):
        x = np.zeros((n, n), dtype=int)
        for (i, j), v in zip(edges, values):
            x[i, j] = v
        if (x.sum(1) > idle).any() or (idle + x.sum(0) - x.sum(1) < desired).any():
            continue
        c = (tt * x).sum()
        best = c if best is None else min(best, c)
    return best


def check_feasible(x, idle, desired):
    assert x.dtype == np.int64 and (x >= 0).all() and not np.diagonal(x).any()
    assert (x.sum(1) <= idle).all() and (idle + x.sum(0) - x.sum(1) >= desired).all()


def test_lp_is_optimal_on_tiny_cases(rng):
    for _ in range(25):
        n = 3
        tt = rng.integers(1, 6, (n, n))       # often not a metric: detours can be cheaper
        idle = rng.integers(0, 4, n)
        desired = desired_counts(rng.random(n) + 1e-3, idle.sum() - rng.integers(0, 2) * (idle.sum() > 0))
        x = rebalance(idle, desired, tt)
        check_feasible(x, idle, desired)
        assert flow_cost(x, tt) == brute_force(idle, desired, tt)


def test_lp_integral_and_feasible_at_scale(rng):
    for n in (20, 60):
        pos = rng.random((n, 2))
        tt = np.maximum(1, np.rint(10 * np.abs(pos[:, None] - pos[None]).sum(-1))).astype(int)
        for _ in range(3):
            idle = rng.integers(0, 40, n)
            desired = desired_counts(rng.dirichlet(np.ones(n)), idle.sum())
            x = rebalance(idle, desired, tt, RebalancingConfig(solver="highs-ds"))
            check_feasible(x, idle, desired)
            # every unit leaving a surplus region pays at least its cheapest move
            assert flow_cost(x, tt) >= np.maximum(desired - idle, 0).sum() * tt[~np.eye(n, dtype=bool)].min()


def test_lp_errors():
    tt = np.array([[1, 2], [2, 1]])
    with pytest.raises(ValueError, match="infeasible"):
        rebalance([1, 1], [2, 1], tt)
    with pytest.raises(ValueError, match="idle"):
        rebalance([1, -1], [0, 0], tt)
    with pytest.raises(ValueError, match="desired"):
        rebalance([1, 1], [1, 0.5], tt)
    with pytest.raises(ValueError, match="travel_time"):
        rebalance([1, 1], [1, 1], np.ones((3, 3)))
    assert not rebalance([3, 1], [2, 1], tt).any()           # nobody short: nothing moves


def test_project_flows(rng):
    for _ in range(200):
        n = int(rng.integers(2, 8))
        idle = rng.integers(0, 10, n)
        raw = rng.normal(0, 1, (n, n)) * rng.choice([0.3, 3.0, 30.0])
        x = project_flows(raw, idle)
        assert x.dtype == np.int64 and (x >= 0).all() and not np.diagonal(x).any()
        assert (x.sum(1) <= idle).all()
        assert (x[raw <= 0] == 0).all()
        y = np.clip(raw, 0, None)
        np.fill_diagonal(y, 0)
        fits = y.sum(1) <= idle
        assert np.array_equal(x.sum(1)[fits], np.rint(y.sum(1))[fits])     # rows that fit keep their rounded total
        assert np.array_equal(project_flows(x, idle), x)                    # feasible integer flows unchanged
    batch = project_flows(rng.random((5, 4, 4)) * 3, rng.integers(0, 5, (5, 4)))
    assert batch.shape == (5, 4, 4)
    with pytest.raises(ValueError, match="finite"):
        project_flows(np.full((2, 2), np.nan), np.array([1, 1]))


def test_transport_formulation_is_optimal_for_the_rebalancing_lp_on_metric_travel_times(rng):
    """Surplus-to-deficit transportation: feasible integral flows of the full LP's optimal cost on
    metric cities (sum d = sum a and sum d < sum a); non-metric travel times are detected, refused
    by the transport formulation, and ``invert_flows`` then prices flows with the full LP (agreeing
    with ``resolve``)."""
    from controllers.rebalancing import is_metric, transport_flows

    transport = RebalancingConfig(formulation="transport")
    for layout, n in (("grid", 9), ("geometric", 14)):
        tt = synthetic(n, layout=layout, horizon=10, seed=n).travel_time
        assert is_metric(tt)
        for spare in (0, 3) * 12:
            a = rng.integers(0, 12, n)
            d = desired_counts(rng.dirichlet(np.ones(n)), max(a.sum() - spare, 0))
            lp = float(flow_cost(rebalance(a, d, tt), tt))
            x = rebalance(a, d, tt, transport)
            assert x.dtype == np.int64 and (x >= 0).all() and (np.diagonal(x) == 0).all()
            assert (x.sum(1) <= a).all() and (a + x.sum(0) - x.sum(1) >= d).all()
            assert float(flow_cost(x, tt)) == pytest.approx(lp, abs=1e-9)
            assert transport_flows(a, d, tt)[1] == pytest.approx(lp, abs=1e-9)
    shortcut = np.array([[1.0, 1.0, 5.0], [1.0, 1.0, 1.0], [5.0, 1.0, 1.0]])   # 0 -> 2 costs 5, via 1 costs 2
    assert not is_metric(shortcut) and is_metric(np.minimum(shortcut, 2.0))
    a, d = np.array([3, 3, 0]), np.array([0, 3, 3])               # 1's own vehicles relay: 0 -> 1, 1 -> 2
    assert float(flow_cost(rebalance(a, d, shortcut), shortcut)) == 6.0
    assert transport_flows(a, d, shortcut)[1] == 15.0               # why non-metric times need the full LP
    with pytest.raises(ValueError, match="needs metric travel times"):
        rebalance(a, d, shortcut, transport)
    with pytest.raises(ConfigError, match="formulation"):
        RebalancingConfig(formulation="shortest")
    odd = rng.uniform(0.5, 9.0, (8, 8))
    idle = rng.integers(0, 15, (40, 8))
    noisy = project_flows(rng.random((40, 8, 8)) * 3, idle)
    cert = invert_flows(idle, noisy, odd)
    full = invert_flows(idle, noisy, odd, method="resolve")
    assert not is_metric(odd) and (cert.status == FlowStatus.NOT_OPTIMAL).sum() > 20
    assert np.array_equal(cert.status, full.status) and np.allclose(cert.residual, full.residual)


def test_triangle_violation_names_the_worst_detour(rng):
    """The triple (i, k, j) with the largest t_ij - (t_ik + t_kj) > 0, distinct regions; None for metric times."""
    from controllers.rebalancing import triangle_violation

    shortcut = np.array([[1.0, 1.0, 5.0], [1.0, 1.0, 1.0], [5.0, 1.0, 1.0]])
    assert triangle_violation(shortcut) == (0, 1, 2)
    assert triangle_violation(np.minimum(shortcut, 2.0)) is None
    assert triangle_violation(synthetic(9, horizon=10).travel_time) is None
    np.fill_diagonal(shortcut, 50.0)                 # the diagonal (trips inside a region) plays no part
    assert triangle_violation(shortcut) == (0, 1, 2)
    odd = rng.uniform(1.0, 2.0, (6, 6))
    odd[4, 1] = 30.0
    i, k, j = triangle_violation(odd)
    assert (i, j) == (4, 1) and k not in (4, 1)
    assert odd[i, j] - odd[i, k] - odd[k, j] == max(odd[4, 1] - odd[4, m] - odd[m, 1] for m in (0, 2, 3, 5))
