"""The rebalancing LP's inverse (ohio_core.routing.inverse): exact round trips, the KKT test of optimality
(certificate and re-solving agree, in chunks too), the negative-cycle test, statuses."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.rebalancing import RebalancingConfig, Rebalancer, desired_counts, flow_cost, project_flows, rebalance
from ohio_core.routing.env import FlatRoutingEnv, RoutingEnv, rollout
from ohio_core.routing.inverse import FlowStatus, desired_from_flows, distribution_from_flows, invert_flows
from ohio_core.routing.policies import make_routing_policy
from ohio_core.routing.scenario import synthetic


def test_inverse_round_trip_is_exact(rng):
    N, n = 150, 8
    pos = rng.random((n, 2))
    tt = np.maximum(1, np.rint(8 * np.abs(pos[:, None] - pos[None]).sum(-1))).astype(int)
    idle = rng.integers(0, 30, (N, n)) * (rng.random((N, n)) < 0.8)
    idle[:, 0] += 1
    p = rng.dirichlet(np.full(n, 0.7), N)
    desired = desired_counts(p, idle.sum(1))
    flows = np.stack([rebalance(a, d, tt) for a, d in zip(idle, desired)])
    assert np.array_equal(desired_from_flows(idle, flows), desired)
    q = distribution_from_flows(idle, flows)
    assert np.allclose(q.sum(1), 1.0) and np.array_equal(desired_counts(q, idle.sum(1)), desired)
    res = invert_flows(idle, flows, tt)
    assert res.counts()["ok"] == N and np.array_equal(res.desired, desired) and (res.residual == 0).all()
    assert res.info["solves"] == 0


def test_kkt_inverse_flags_a_detour_and_a_swap():
    tt = np.full((3, 3), 2)
    np.fill_diagonal(tt, 1)
    idle = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0]])
    detour = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])       # 0 -> 1 -> 2 where 0 -> 2 would do
    direct = np.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]])
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]])         # two vehicles trade places
    res = invert_flows(idle, np.stack([detour, direct, swap]), tt)
    assert res.status.tolist() == [FlowStatus.NOT_OPTIMAL, FlowStatus.OK, FlowStatus.NOT_OPTIMAL]
    assert res.desired.tolist() == [[0, 1, 1], [0, 1, 1], [1, 1, 0]]
    assert res.residual.tolist() == [2.0, 0.0, 4.0]
    assert res.cost.tolist() == [4.0, 2.0, 4.0] and res.optimal_cost.tolist() == [2.0, 2.0, 0.0]


@pytest.mark.parametrize("method", ["certificate", "resolve"])
def test_inverse_in_chunks_equals_the_inverse_in_one_piece(rng, monkeypatch, method):
    """invert_flows bounds its memory by chunks of samples; the chunks change nothing."""
    import ohio_core.routing.inverse as inverse_routing

    s = synthetic(10, layout="geometric", horizon=20, seed=2)
    greedy = rollout(FlatRoutingEnv(s), make_routing_policy("greedy_dispatcher", s), 2, seed=5)
    idle = np.r_[greedy.idle, rng.integers(0, 25, (30, 10)), np.zeros((2, 10), int)]
    flows = np.r_[greedy.flows, project_flows(rng.random((30, 10, 10)) * 4, idle[len(greedy):-2]),
                  np.zeros((2, 10, 10), int)]
    flows[-5, 0, 1] = -1                                              # one infeasible sample
    whole = invert_flows(idle, flows, s.travel_time, method=method)
    monkeypatch.setattr(inverse_routing, "CHUNK_ENTRIES", 7 * 100)   # 7 samples per chunk
    chunked = invert_flows(idle, flows, s.travel_time, method=method)
    assert whole.info == chunked.info and whole.info["solves"] > 0
    for key in ("desired", "distribution", "cost", "optimal_cost", "residual", "status"):
        np.testing.assert_array_equal(getattr(chunked, key), getattr(whole, key), err_msg=key)
    assert set(whole.counts()) >= {"not_optimal", "ill_posed", "infeasible"}
    assert whole.counts()["not_optimal"] > 0 and whole.counts()["ill_posed"] == 2 and whole.counts()["infeasible"] == 1
    empty = invert_flows(idle[:0], flows[:0], s.travel_time, method=method)
    assert empty.status.shape == (0,) and empty.desired.shape == (0, 10)


def test_kkt_certificate_agrees_with_resolving(rng):
    s = synthetic(10, layout="geometric", horizon=20, seed=2)
    greedy = rollout(FlatRoutingEnv(s), make_routing_policy("greedy_dispatcher", s), 2, seed=5)
    idle = rng.integers(0, 25, (60, 10))
    noisy = project_flows(rng.random((60, 10, 10)) * 4, idle)
    for a, x in ((greedy.idle, greedy.flows), (idle, noisy)):
        cert = invert_flows(a, x, s.travel_time)
        full = invert_flows(a, x, s.travel_time, method="resolve")
        assert np.array_equal(cert.status, full.status) and np.allclose(cert.residual, full.residual)
        not_optimal = cert.status == FlowStatus.NOT_OPTIMAL
        assert cert.info["certificate_disagreements"] == 0 and cert.info["solves"] == not_optimal.sum()
        # the excess cost of a flagged flow against the LP's own flows to the same counts
        for k in np.flatnonzero(not_optimal)[:10]:
            best = rebalance(a[k], cert.desired[k], s.travel_time)
            assert cert.residual[k] == pytest.approx(flow_cost(x[k], s.travel_time) - flow_cost(best, s.travel_time))
    assert 0 < (invert_flows(greedy.idle, greedy.flows, s.travel_time).status == FlowStatus.NOT_OPTIMAL).sum() < len(greedy)
    assert (invert_flows(idle, noisy, s.travel_time).status == FlowStatus.NOT_OPTIMAL).sum() > 30


def test_negative_cycle_test_bellman_ford_rounds_agree_with_floyd_warshall_alone(rng, monkeypatch):
    """The Bellman-Ford rounds only settle samples early: the same answers as Floyd-Warshall on every
    sample (rounds = 0), on LP-optimal, greedy and noisy plans, non-metric float costs included; the
    LP's own plans settle without Floyd-Warshall."""
    from ohio_core.routing import inverse as inv

    s = synthetic(12, layout="geometric", horizon=20, seed=3)
    n = s.regions
    greedy = rollout(FlatRoutingEnv(s), make_routing_policy("greedy_dispatcher", s), 2, seed=1)
    lp = rollout(RoutingEnv(s, Rebalancer(RebalancingConfig())), make_routing_policy("random_distribution", s), 2, seed=1)
    idle = rng.integers(0, 20, (80, n))
    noisy = project_flows(rng.random((80, n, n)) * 3, idle)
    odd_costs = rng.uniform(0.5, 9.0, (n, n))                      # no triangle inequality, not integral
    sent = []
    fw = inv._floyd_warshall_negative
    monkeypatch.setattr(inv, "_floyd_warshall_negative", lambda W, tol: sent.append(len(W)) or fw(W, tol))
    for a, x in ((greedy.idle, greedy.flows), (lp.idle, lp.flows), (idle, noisy)):
        for tt in (s.travel_time, odd_costs):
            plan = inv.transport_plan(a, x)
            quick = inv.has_negative_cycle(plan, tt)
            assert np.array_equal(quick, inv.has_negative_cycle(plan, tt, bellman_ford_rounds=0))
    sent.clear()
    assert not inv.has_negative_cycle(inv.transport_plan(lp.idle, lp.flows), s.travel_time).any()
    assert sum(sent) < len(lp) // 10


def test_inverse_statuses():
    tt = np.array([[1, 2], [2, 1]])
    idle = np.array([[1, 1], [1, 1], [1, 1], [1, 1], [0, 0], [1, 1]])
    flows = np.array([[[0, 2], [0, 0]],          # more than region 0 holds
                      [[0, -1], [0, 0]],         # negative
                      [[0, 0.5], [0, 0]],        # fractional
                      [[1, 0], [0, 0]],          # diagonal
                      [[0, 0], [0, 0]],          # no idle vehicles
                      [[0, np.nan], [0, 0]]])
    res = invert_flows(idle, flows, tt)
    assert res.status.tolist() == [FlowStatus.INFEASIBLE] * 4 + [FlowStatus.ILL_POSED, FlowStatus.NON_FINITE]
    assert np.isnan(res.distribution[[0, 1, 2, 3, 5]]).all() and np.allclose(res.distribution[4], 0.5)
    assert res.counts() == {"ok": 0, "not_optimal": 0, "ill_posed": 1, "infeasible": 4, "non_finite": 1}
