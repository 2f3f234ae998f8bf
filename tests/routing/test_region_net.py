"""The region-shared routing networks: permutation symmetry, d3rlpy training and save/load, clear errors.

Renumbering the regions of an observation (and of the action) must renumber the per-region
features the same way and leave the pooled ones (V and Q) unchanged: that is what lets one network
learn from every region at once. A model trained with them must load back through ``load_policy``
(the factory is registered with d3rlpy) and act.
"""

import numpy as np
import pytest
import torch

from controllers.rebalancing import RebalancingConfig, Rebalancer
from ohio_core.learning.algos import TrainConfig, build
from ohio_core.learning.policy import load_policy
from ohio_core.learning.train import train
from ohio_core.pipeline.dataset import load_dataset, save_dataset
from ohio_core.routing.datasets import relabel_routing
from ohio_core.routing.env import ObsLayout, RoutingEnv, rollout
from ohio_core.routing.policies import make_routing_policy
from ohio_core.routing.region_net import RegionEncoderFactory
from ohio_core.routing.scenario import synthetic

N, L = 5, 3


def _permute(obs: torch.Tensor, perm: np.ndarray) -> torch.Tensor:
    """The same observation with region i renamed perm^-1(i) in every per-region block."""
    layout = ObsLayout(N, L)
    idle, arrivals = obs[:, layout.idle], obs[:, layout.arrivals].reshape(-1, L, N)
    demand, time = obs[:, layout.demand], obs[:, layout.time]
    return torch.cat([idle[:, perm], arrivals[:, :, perm].reshape(-1, L * N), demand[:, perm], time], 1)


def test_region_features_follow_the_regions_and_pooled_features_ignore_their_order():
    torch.manual_seed(0)
    obs = torch.randn(4, ObsLayout(N, L).size)
    action = torch.randn(4, N)
    perm = np.random.default_rng(1).permutation(N)
    shape = (ObsLayout(N, L).size,)
    per_region = RegionEncoderFactory(regions=N, lookahead=L, hidden=8, feature=3).create(shape)
    pooled = RegionEncoderFactory(regions=N, lookahead=L, hidden=8, feature=3, pool=True).create(shape)
    q = RegionEncoderFactory(regions=N, lookahead=L, hidden=8, feature=3).create_with_action(shape, N)
    z, zp = per_region(obs).reshape(4, N, 3), per_region(_permute(obs, perm)).reshape(4, N, 3)
    torch.testing.assert_close(zp, z[:, perm])
    assert not torch.allclose(z[:, 0], z[:, 1])                     # regions with other data differ
    torch.testing.assert_close(pooled(_permute(obs, perm)), pooled(obs))
    torch.testing.assert_close(q(_permute(obs, perm), action[:, perm]), q(obs, action))
    assert not torch.allclose(q(obs, action), q(obs, action.flip(1)))  # Q depends on which region gets what


def test_wrong_shapes_and_layouts_are_named():
    factory = RegionEncoderFactory(regions=N, lookahead=L)
    with pytest.raises(ValueError, match="expects observations of size 28"):
        factory.create((27,))
    with pytest.raises(ValueError, match="one continuous action per region"):
        factory.create_with_action((28,), N * N)
    with pytest.raises(ValueError, match="needs a routing observation"):
        build(TrainConfig(network="region"), [["q", 7], ["dq", 7]])
    with pytest.raises(ValueError, match="unknown network"):
        TrainConfig(network="gnn")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        TrainConfig(temperature=0.0)


def test_trained_region_model_saves_loads_and_acts(tmp_path):
    city = synthetic(N, horizon=8, seed=2)
    env = RoutingEnv(city, Rebalancer(RebalancingConfig()), lookahead=L)
    log = rollout(env, make_routing_policy("random_distribution", city, lookahead=L), 3, seed=4)
    log.meta["obs_layout"] = env.layout.as_list()
    save_dataset(relabel_routing(log, city.travel_time, "ohio"), tmp_path / "d",
                 {"task": "routing", "level": "goal", "k": 1, "regions": N, "method": "ohio"})
    buffer, meta = load_dataset(tmp_path / "d")
    res = train(buffer, meta, TrainConfig(algo="iql", steps=20, network="region", hidden=(8,)), tmp_path / "m",
                progress=False)
    policy = load_policy(res.model)
    assert policy.meta["train"]["network"] == "region"
    a = policy.act(log.obs[0])
    assert a.shape == (N,) and np.isfinite(a).all() and np.abs(a).max() <= 1.0
