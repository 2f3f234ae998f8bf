"""The behavior heuristics (ohio_core.routing.policies): each runs an episode at its level; the greedy
dispatcher moves surplus to the nearest deficit."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.rebalancing import Rebalancer
from ohio_core.routing.env import FlatRoutingEnv, ObsLayout, RoutingEnv, rollout
from ohio_core.routing.policies import POLICIES, make_routing_policy
from ohio_core.routing.scenario import Scenario


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_each_heuristic_runs_an_episode(city, name):
    policy = make_routing_policy(name, city)
    env = RoutingEnv(city, Rebalancer()) if policy.level == "goal" else FlatRoutingEnv(city)
    log = rollout(env, policy, 1, seed=0)
    assert len(log) == city.horizon and log.meta["policy"] == name
    assert log.served.sum() > 0.5 * log.requests.sum() and np.isfinite(log.reward).all()
    other = FlatRoutingEnv(city) if policy.level == "goal" else RoutingEnv(city, Rebalancer())
    with pytest.raises(ValueError, match="acts at level"):
        rollout(other, policy, 1)


def test_greedy_dispatcher_moves_surplus_to_the_nearest_deficit():
    tt = np.array([[1, 1, 3], [1, 1, 2], [3, 2, 1]])
    s = Scenario(name="line", travel_time=tt, demand=np.zeros((2, 3, 3)), price=np.zeros((2, 3, 3)),
                 vehicles=10, horizon=2)
    policy = make_routing_policy("greedy_dispatcher", s)
    x = policy.flows(np.array([6, 4, 0]), np.array([1.0, 2.0, 3.5]))
    # surplus (5, 2, 0), deficit (0, 0, 4): region 1 (2 steps) first, then region 0 (3 steps)
    assert x.tolist() == [[0, 0, 2], [0, 0, 2], [0, 0, 0]]
    lay = ObsLayout(3)
    obs = np.zeros(lay.size)
    obs[lay.idle], obs[lay.demand] = np.array([6, 4, 0]) / 10, np.array([1.0, 2.0, 3.5]) / 10
    assert np.array_equal(policy(obs).reshape(3, 3), x)
