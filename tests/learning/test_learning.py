"""Offline training and evaluation: every algorithm trains and round-trips, models refuse an
environment they do not fit, evaluation is reproducible, baseline datasets say what they claim."""

import numpy as np
import pytest

from controllers.base import make_controller
from controllers.config import OSCConfig
from ohio_core.data.collect import collect
from ohio_core.envs.arm.tasks import OBS_DIM, OBS_LAYOUT
from ohio_core.learning.algos import ALGOS, TrainConfig
from ohio_core.learning.evaluate import evaluate, normalize, reference, seeds
from ohio_core.learning.policy import PolicyMismatchError, load_policy
from ohio_core.learning.train import train
from ohio_core.pipeline.baselines import flat_transitions, logged_actions
from ohio_core.pipeline.dataset import load_dataset, save_dataset
from ohio_core.pipeline.relabel import relabel
from ohio_core.policies.scripted import EXPERTS


@pytest.fixture(scope="module")
def reach_traj():
    return collect("reach", "noisy0.1", OSCConfig(), episodes=2, seed=3, horizon=60)


@pytest.fixture(scope="module")
def reach_dataset(reach_traj, tmp_path_factory):
    data = relabel(reach_traj, make_controller(OSCConfig()), 5, "analytical")
    h5, _ = save_dataset(data, tmp_path_factory.mktemp("ds") / "reach",
                         {"task": "reach", "k": 5, "controller": OSCConfig().to_dict(), "method": "analytical"})
    return h5


@pytest.fixture(scope="module")
def reach_model(reach_dataset, tmp_path_factory):
    buffer, meta = load_dataset(reach_dataset)
    res = train(buffer, meta, TrainConfig(algo="bc", steps=30, epochs=3), tmp_path_factory.mktemp("m") / "bc",
                progress=False)
    return res.model


@pytest.mark.parametrize("algo", ALGOS)
def test_every_algorithm_trains_saves_and_loads_back(algo, reach_dataset, tmp_path, rng):
    buffer, meta = load_dataset(reach_dataset)
    res = train(buffer, meta, TrainConfig(algo=algo, steps=20, epochs=2, batch_size=32), tmp_path / algo,
                progress=False)
    assert res.model.is_file() and res.sidecar.is_file() and res.plot.stat().st_size > 0
    assert res.curves and all(len(v) == 2 for v in res.curves.values())
    policy = load_policy(res.model)
    assert policy.meta["train"]["algo"] == algo and policy.k == 5 and policy.task == "reach"
    obs = rng.normal(size=(4, 38))
    a1 = np.array([policy.act(o) for o in obs])
    a2 = np.array([load_policy(res.model).act(o) for o in obs])
    assert a1.shape == (4, 6) and np.all(np.abs(a1) <= 1.0)
    np.testing.assert_array_equal(a1, a2)                # deterministic, and the same after a reload


def test_training_is_reproducible_for_a_seed(reach_dataset, tmp_path, rng):
    buffer, meta = load_dataset(reach_dataset)
    obs = rng.normal(size=38)
    acts = []
    for i, seed in enumerate((7, 7, 8)):
        res = train(buffer, meta, TrainConfig(algo="td3bc", steps=20, epochs=1, seed=seed, batch_size=32),
                    tmp_path / f"m{i}", progress=False)
        acts.append(load_policy(res.model).act(obs))
    np.testing.assert_array_equal(acts[0], acts[1])
    assert not np.array_equal(acts[0], acts[2])


def test_model_refuses_a_mismatched_observation_layout(reach_model):
    policy = load_policy(reach_model)
    policy.check("reach", OBS_LAYOUT, 5, OSCConfig())                       # fits
    bad_layout = list(OBS_LAYOUT[:-1]) + [("target_pos", 3), ("extra", 2)]
    with pytest.raises(PolicyMismatchError, match="observation layout"):
        policy.check("reach", bad_layout)
    with pytest.raises(PolicyMismatchError, match="task 'lift'"):
        policy.check("lift", OBS_LAYOUT)
    with pytest.raises(PolicyMismatchError, match="k = 10"):
        policy.check("reach", OBS_LAYOUT, 10)
    with pytest.raises(PolicyMismatchError, match="shape"):
        policy.act(np.zeros(OBS_DIM + 2))


def test_model_refuses_another_controller_unless_allowed(reach_model):
    policy = load_policy(reach_model)
    changed = OSCConfig(damping_ratio=3.0)
    with pytest.raises(PolicyMismatchError, match="damping_ratio"):
        evaluate(policy, changed, episodes=1, seed=0, horizon=10)
    res = evaluate(policy, changed, episodes=1, seed=0, horizon=10, allow_controller_change=True)
    assert len(res.returns) == 1


def test_load_refuses_a_model_without_its_sidecar(reach_model, tmp_path):
    lonely = tmp_path / "m.d3"
    lonely.write_bytes(reach_model.read_bytes())
    with pytest.raises(FileNotFoundError, match="sidecar"):
        load_policy(lonely)


def test_evaluation_is_reproducible_for_a_fixed_seed(reach_model):
    policy = load_policy(reach_model)
    a = evaluate(policy, episodes=3, seed=11, horizon=40)
    b = evaluate(load_policy(reach_model), episodes=3, seed=11, horizon=40)
    c = evaluate(policy, episodes=3, seed=12, horizon=40)
    assert a.returns == b.returns and a.normalized == b.normalized and a.successes == b.successes
    assert a.returns != c.returns
    assert a.summary["episodes"] == 3 and np.isfinite(a.summary["se"])


def test_normalized_score_is_0_for_random_and_100_for_the_expert():
    ref = reference("reach", 3, 5, horizon=40)
    assert ref["expert_return"] > ref["random_return"]
    assert np.mean(normalize([ref["random_return"]] * 2, ref)) == pytest.approx(0.0)
    assert np.mean(normalize([ref["expert_return"]], ref)) == pytest.approx(100.0)
    assert seeds(5, 3) == seeds(5, 3) and seeds(5, 3) != seeds(6, 3)


def test_logged_actions_are_the_actions_the_expert_sent():
    traj = collect("reach", "expert", OSCConfig(), episodes=1, seed=2, horizon=30)
    data = logged_actions(traj, make_controller(OSCConfig()), 5)
    assert data.account["segments_written"] == 6
    expert = EXPERTS["reach"]()
    sent = np.array([expert(o) for o in data.observations.astype(float)])
    np.testing.assert_allclose(data.actions, sent, atol=1e-5)


def test_logged_actions_need_logged_goals():
    traj = collect("reach", "flat", OSCConfig(), episodes=1, seed=2, horizon=10)
    with pytest.raises(ValueError, match="no logged goals"):
        logged_actions(traj, make_controller(OSCConfig()), 5)


def test_flat_transitions_are_normalized_logged_torques(reach_traj):
    tau_max = make_controller(OSCConfig()).tau_max
    data = flat_transitions(reach_traj, tau_max)
    assert data.account["segments_written"] == len(reach_traj)
    np.testing.assert_allclose(data.actions, np.clip(reach_traj.tau / tau_max, -1, 1), atol=1e-6)
    np.testing.assert_allclose(data.rewards, reach_traj.reward, atol=1e-6)
    assert data.timeouts.sum() == 2                        # one episode end each


def test_minmax_action_scaling_trains_on_the_datasets_range_and_acts_in_it(reach_traj, tmp_path, rng):
    """Goals relabeled for a controller with an 8x wider output range use an eighth of [-1, 1]:
    the scaler maps the dataset's range onto [-1, 1] for training and back when the policy acts."""
    data = relabel(reach_traj, make_controller(OSCConfig()), 5, "analytical")
    data.actions = data.actions / 8.0
    h5, _ = save_dataset(data, tmp_path / "narrow", {"task": "reach", "k": 5, "controller": OSCConfig().to_dict()})
    buffer, meta = load_dataset(h5)
    res = train(buffer, meta, TrainConfig(algo="bc", steps=30, epochs=1, action_scaling="minmax"), tmp_path / "m",
                progress=False)
    policy = load_policy(res.model)
    assert policy.meta["train"]["action_scaling"] == "minmax"
    low, high = data.actions.min(0), data.actions.max(0)
    acts = np.array([policy.act(o) for o in rng.normal(size=(20, 38))])
    assert np.all(acts >= low - 1e-6) and np.all(acts <= high + 1e-6)
    assert np.abs(high - low).max() < 0.5                  # so the check above is not the [-1, 1] box
    with pytest.raises(ValueError, match="action scaling"):
        TrainConfig(action_scaling="standard")


def test_minmax_action_scaling_survives_an_action_dimension_the_data_never_vary(reach_traj, tmp_path, rng):
    """A constant action dimension (a flow a region never sends) has no range to scale: it is widened to
    MIN_ACTION_RANGE about its value instead of dividing by zero (NaN actions, training crashed)."""
    from ohio_core.learning.algos import MIN_ACTION_RANGE, minmax_action_scaler

    data = relabel(reach_traj, make_controller(OSCConfig()), 5, "analytical")
    data.actions[:, 2] = 0.25
    h5, _ = save_dataset(data, tmp_path / "flat_dim", {"task": "reach", "k": 5, "controller": OSCConfig().to_dict()})
    buffer, meta = load_dataset(h5)
    res = train(buffer, meta, TrainConfig(algo="iql", steps=30, epochs=1, action_scaling="minmax"), tmp_path / "m",
                progress=False)
    policy = load_policy(res.model)
    acts = np.array([policy.act(o) for o in rng.normal(size=(10, 38))])
    assert np.isfinite(acts).all() and np.all(np.abs(acts[:, 2] - 0.25) <= MIN_ACTION_RANGE / 2 + 1e-6)
    scaler = minmax_action_scaler(data.actions)
    np.testing.assert_allclose(np.asarray(scaler.maximum) - np.asarray(scaler.minimum),
                               np.maximum(np.ptp(data.actions, 0), MIN_ACTION_RANGE), rtol=1e-4)   # float32


def test_minmax_action_scaling_has_the_bounds_of_d3rlpys_own_fit(reach_dataset):
    """Where no dimension is narrower than MIN_ACTION_RANGE the bounds are d3rlpy's, bit for bit: the
    actions of the transitions (an unfinished episode's last action is no transition's)."""
    import d3rlpy

    from ohio_core.learning.algos import minmax_action_scaler

    buffer, _ = load_dataset(reach_dataset)
    ours = minmax_action_scaler(np.concatenate([ep.actions[:ep.transition_count] for ep in buffer.episodes]))
    theirs = d3rlpy.preprocessing.MinMaxActionScaler()
    theirs.fit_with_transition_picker(buffer.episodes, d3rlpy.dataset.BasicTransitionPicker())
    assert any(ep.transition_count < len(ep.actions) for ep in buffer.episodes)   # the case the slice is for
    np.testing.assert_array_equal(ours.minimum, theirs.minimum)
    np.testing.assert_array_equal(ours.maximum, theirs.maximum)


@pytest.mark.parametrize("algo", ["bc", "iql"])
def test_ignored_observation_parts_do_not_move_the_policy(reach_dataset, tmp_path, rng, algo):
    """A policy blind to the joint positions acts the same whatever q is; the others still count."""
    buffer, meta = load_dataset(reach_dataset)
    q = slice(0, 7)
    res = train(buffer, meta, TrainConfig(algo=algo, steps=30, epochs=1, ignore_observations=("q",)), tmp_path / "m",
                progress=False)
    policy = load_policy(res.model)
    assert policy.meta["train"]["ignore_observations"] == ["q"]
    obs = np.concatenate([ep.observations for ep in buffer.episodes])[::50]
    moved = obs.copy()
    moved[:, q] += rng.uniform(-1.0, 1.0, size=moved[:, q].shape)
    a, b = np.array([policy.act(o) for o in obs]), np.array([policy.act(o) for o in moved])
    assert np.abs(a - b).max() < 1e-6
    other = obs.copy()
    other[:, 7:] += rng.uniform(-1.0, 1.0, size=other[:, 7:].shape)
    assert np.abs(a - np.array([policy.act(o) for o in other])).max() > 1e-3
    seeing = load_policy(train(buffer, meta, TrainConfig(algo=algo, steps=30, epochs=1), tmp_path / "s",
                               progress=False).model)
    assert np.abs(np.array([seeing.act(o) for o in obs]) - np.array([seeing.act(o) for o in moved])).max() > 1e-3


def test_ignoring_an_observation_part_the_dataset_lacks_is_refused(reach_dataset, tmp_path):
    buffer, meta = load_dataset(reach_dataset)
    with pytest.raises(ValueError, match=r"cannot ignore observation parts \['elbow'\]"):
        train(buffer, meta, TrainConfig(algo="bc", steps=5, epochs=1, ignore_observations=("elbow",)), tmp_path / "m",
              progress=False)
    with pytest.raises(ValueError, match="distinct part names"):
        TrainConfig(ignore_observations="q")


def test_train_config_validates_its_fields():
    with pytest.raises(ValueError, match="unknown algorithm"):
        TrainConfig(algo="ppo")
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    assert TrainConfig.for_task("lift").steps > TrainConfig.for_task("reach").steps
    assert TrainConfig.for_task("reach", steps=None, algo="bc").algo == "bc"
