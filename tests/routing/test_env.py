"""The routing envs (ohio_core.routing.env): vehicles conserved in the step order, actions, seeded rollouts and
their logs, the observation layout."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.rebalancing import RebalancingConfig, Rebalancer, project_flows, rebalance
from ohio_core.routing.env import FlatRoutingEnv, ObsLayout, RoutingEnv, RoutingLog, rollout
from ohio_core.routing.policies import make_routing_policy


def test_env_conserves_vehicles_and_follows_the_step_order(city):
    env = RoutingEnv(city, Rebalancer())
    policy = make_routing_policy("random_distribution", city)
    policy.reset(np.random.default_rng(0))
    obs, info = env.reset(seed=0)
    lay, V = env.layout, city.vehicles
    assert obs.shape == env.observation_space.shape == (lay.size,)
    steps = 0
    while True:
        assert env.sim.idle.sum() + env.sim.in_transit() == V
        assert np.allclose(lay.split(obs)["idle"] * V, env.sim.idle)
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        steps += 1
        served, flows, idle = info["served"], info["flows"], info["idle_before"]
        assert (served <= info["requests"]).all()
        assert np.array_equal(flows, rebalance(idle, info["goal"], city.travel_time))
        assert np.array_equal(info["idle_after"], idle - flows.sum(1))
        assert np.array_equal(idle + flows.sum(0) - flows.sum(1), info["goal"])
        expected = (served * city.price[info["t"]]).sum() - city.op_cost * (
            (served * city.travel_time).sum() + (flows * city.travel_time).sum())
        assert reward == pytest.approx(expected) and not terminated
        if truncated:
            break
    assert steps == city.horizon and env.sim.idle.sum() + env.sim.in_transit() == V
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step(np.ones(city.regions))


def test_flat_env_conserves_vehicles(city, rng):
    env = FlatRoutingEnv(city)
    obs, _ = env.reset(seed=3)
    done = False
    while not done:
        raw = rng.normal(0, 5, city.regions ** 2)
        idle = env.sim.idle.copy()
        obs, reward, _, done, info = env.step(raw)
        assert np.array_equal(info["flows"], project_flows(raw.reshape(city.regions, -1), idle))
        assert env.sim.idle.sum() + env.sim.in_transit() == city.vehicles


def test_env_actions(city):
    env = RoutingEnv(city, Rebalancer())
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(city.regions))       # all zero: uniform
    assert np.allclose(info["distribution"], 1.0 / city.regions)
    for bad, text in ((-np.ones(city.regions), ">= 0"), (np.ones(3), "shape"), (np.full(city.regions, np.nan), "finite")):
        with pytest.raises(ValueError, match=text):
            env.step(bad)
    with pytest.raises(TypeError, match="goal_from_action"):
        RoutingEnv(city, RebalancingConfig())
    start = np.zeros(city.regions, dtype=int)
    start[0] = city.vehicles
    obs, _ = env.reset(seed=0, options={"idle": start})
    assert obs[env.layout.idle][1:].sum() == 0
    with pytest.raises(ValueError, match="summing to"):
        env.reset(seed=0, options={"idle": start + 1})


def test_rollouts_are_seeded(city, tmp_path):
    env = RoutingEnv(city, Rebalancer())
    policy = make_routing_policy("random_distribution", city)
    a, b = rollout(env, policy, 2, seed=11), rollout(env, policy, 2, seed=11)
    c = rollout(env, policy, 2, seed=12)
    for key in ("obs", "idle", "flows", "reward", "action", "desired"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert not np.array_equal(a.reward, c.reward)
    assert len(a) == 2 * city.horizon and a.episodes == 2 and a.timeout.sum() == 2 and not a.terminal.any()
    assert np.array_equal(a.obs[1:city.horizon], a.next_obs[:city.horizon - 1])
    assert np.allclose(a.returns(), [a.reward[:city.horizon].sum(), a.reward[city.horizon:].sum()])
    back = RoutingLog.load(a.save(tmp_path / "log.npz"))
    assert back.meta == a.meta and all(np.array_equal(getattr(a, k), getattr(back, k)) for k in ("obs", "flows"))
    both = RoutingLog.concatenate([a, c])
    assert both.episodes == 4 and len(both) == 4 * city.horizon


def test_operations_summarize_the_log_and_add_up_to_its_reward(city):
    env = RoutingEnv(city, Rebalancer())
    log = rollout(env, make_routing_policy("random_distribution", city), 2, seed=4)
    ops = log.operations()
    V = city.vehicles
    moved = [int(np.sum(f)) for f in log.flows]
    assert ops["moved"] == pytest.approx(np.mean(moved)) and max(moved) > 0
    assert ops["rebalancing_cost"] == pytest.approx(
        np.mean([city.op_cost * np.sum(f * city.travel_time) for f in log.flows]) / V)
    assert ops["revenue"] - ops["trip_cost"] - ops["rebalancing_cost"] == pytest.approx(log.reward.mean() / V)
    assert ops["served_share"] == pytest.approx(log.served.sum() / log.requests.sum()) and 0 < ops["served_share"] <= 1
    assert ops["idle"] == pytest.approx(log.idle.sum(1).mean())
    with pytest.raises(ValueError, match="empty log"):
        rollout(env, make_routing_policy("uniform", city), 0).operations()
    # a concatenation of logs of one fleet keeps its size: the operations are those of all steps
    other = rollout(env, make_routing_policy("uniform", city), 1, seed=5)
    both = RoutingLog.concatenate([log, other]).operations()
    assert both["revenue"] == pytest.approx(np.r_[log.revenue, other.revenue].mean() / V)
    assert both["moved"] == pytest.approx(np.mean(moved + [int(np.sum(f)) for f in other.flows]))
    del other.meta["vehicles"]
    with pytest.raises(ValueError, match="fleet size"):
        RoutingLog.concatenate([log, other]).operations()


@pytest.mark.parametrize("regions,lookahead", [(1, 0), (5, 3), (16, 4)])
def test_obs_layout_is_read_back_from_its_list(regions, lookahead):
    layout = ObsLayout(regions, lookahead)
    assert ObsLayout.from_list(layout.as_list()) == layout
    assert ObsLayout.from_list([(name, str(size)) for name, size in layout.as_list()]) == layout


@pytest.mark.parametrize("bad,match", [
    ([["q", 7], ["qd", 7]], "not a routing ObsLayout"),
    ([["idle", 4], ["arrivals", 9], ["demand", 4], ["time", 3]], "not a routing ObsLayout"),   # 9 = no L * n
    ([["idle", 4], ["arrivals", 8], ["demand", 4]], "not a routing ObsLayout"),
    ([["idle", 0], ["arrivals", 0], ["demand", 0], ["time", 3]], "not a routing ObsLayout"),
    (5, "not a list of \\[block, size\\]"),
    ([["idle", "four"]], "not a list of \\[block, size\\]"),
])
def test_obs_layout_refuses_lists_that_are_not_routing_layouts(bad, match):
    with pytest.raises(ValueError, match=match):
        ObsLayout.from_list(bad)
