"""The HIRO-style baselines: goals relabeled from the states k periods later, a goal-conditioned
low level, and the pair deployed as one torque-level policy."""

import numpy as np
import pytest

from controllers.config import OSCConfig
from ohio_core.data.collect import collect
from ohio_core.envs.arm.tasks import OBS_LAYOUT
from ohio_core.experiments.mismatch import MismatchConfig, run
from ohio_core.learning.hierarchical import _target_obs, load_hierarchical
from ohio_core.pipeline.hiro import GOAL_DIMS, NO_TARGET, goal_from_states, goal_layout, hiro_datasets

K = 5
TAU_MAX = np.array([87.0] * 4 + [12.0] * 3)


@pytest.fixture(scope="module")
def traj():
    return collect("reach", "noisy0.1", OSCConfig(), episodes=2, seed=5, horizon=40)


@pytest.mark.parametrize("space", ["joint", "operational"])
def test_goals_are_the_states_reached_k_periods_later(traj, space):
    high, low, scale = hiro_datasets(traj, K, space, TAU_MAX)
    # 8 segments per episode; the last has no state after it in the data
    assert high.account["segments_built"] == 16 and high.account["segments_dropped"] == {NO_TARGET: 2}
    first = np.flatnonzero(traj.episode == traj.episode[0])[0]
    g = goal_from_states(space, traj.obs[first], traj.obs[first + K])
    np.testing.assert_allclose(high.actions[0], np.clip(g / scale, -1, 1), atol=1e-6)
    np.testing.assert_array_equal(high.observations[0], traj.obs[first].astype(np.float32))
    # the low level: every period of the kept segments, its remaining goal after the task's observation
    assert len(low.actions) == K * len(high.actions) and low.actions.shape[1] == 7
    assert low.obs_layout == goal_layout(space) and low.observations.shape[1] == sum(n for _, n in OBS_LAYOUT) + GOAL_DIMS[space]
    last = goal_from_states(space, traj.obs[first + K - 1], traj.obs[first + K]) / scale
    np.testing.assert_allclose(low.observations[K - 1, -GOAL_DIMS[space]:], last, atol=1e-5)
    np.testing.assert_allclose(low.actions[:K], np.clip(traj.tau[first:first + K] / TAU_MAX, -1, 1), atol=1e-6)


@pytest.mark.parametrize("space", ["joint", "operational"])
def test_a_target_is_where_the_goal_says(traj, space, rng):
    obs = traj.obs[3]
    g = rng.normal(0.0, 0.1, GOAL_DIMS[space])
    np.testing.assert_allclose(goal_from_states(space, obs, _target_obs(space, obs, g)), g, atol=1e-9)


def test_the_pair_trains_and_acts_as_a_torque_level_policy(tmp_path):
    cfg = MismatchConfig(task="reach", episodes=3, steps=5, eval_episodes=1, configs=("kp_ori50", "damping3"),
                         methods=("hiro_joint", "hiro_ops"), workers=1)
    result = run(cfg, tmp_path, progress=False)
    for method in ("hiro_joint", "hiro_ops"):
        # no controller in it: one evaluation, the same under every deployment config
        assert result["configs"]["kp_ori50"][method] == result["configs"]["damping3"][method]
        policy = load_hierarchical(result["models"][method])
        assert policy.level == "torque" and policy.high_k == 5
        policy.reset()
        action = policy.act(np.zeros(sum(n for _, n in OBS_LAYOUT)))
        assert action.shape == (7,) and np.all(np.abs(action) <= 1.0)
