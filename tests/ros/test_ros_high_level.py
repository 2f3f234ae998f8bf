"""The policy node's high-level step (ohio_ros.arm.high_level), without DDS."""

import numpy as np
import pytest
from controllers.base import make_controller
from controllers.config import OSCConfig, QPConfig
from controllers.goals import matrix_to_quat
from controllers.robot import ArmModel
from ohio_core.data import topics as tp
from ohio_core.envs.arm.env import GoalArmEnv
from ohio_core.envs.arm.tasks import OBS_LAYOUT
from ohio_core.policies.scripted import EXPERTS

from ohio_ros.arm import high_level
from ohio_ros.arm.sim_session import SimSession
from ohio_ros.config import ParameterError


@pytest.fixture(scope="module")
def model():
    return ArmModel()


def task_state_of(env) -> np.ndarray:
    """The ohio/task_state row a simulator would publish for the env's current state."""
    sim = env.sim
    row = np.zeros(len(tp.TASK_STATE_FIELDS))
    cp, cR = sim.cube_pose()
    row[tp.TS["object_x"]:tp.TS["object_z"] + 1] = cp
    row[tp.TS["object_qx"]:tp.TS["object_qw"] + 1] = matrix_to_quat(cR)
    row[tp.TS["target_x"]:tp.TS["target_z"] + 1] = sim.target
    row[tp.TS["finger_opening"]] = sim.finger_opening
    return row


@pytest.mark.parametrize("task", ["reach", "lift"])
def test_observation_from_topics_equals_the_environment_observation(model, task):
    env = GoalArmEnv(make_controller(OSCConfig(), model), task)
    obs, _ = env.reset(seed=3)
    for _ in range(3):
        obs, *_ = env.step(env.action_space.sample())
    mine = high_level.observation(env.sim.q, env.sim.qd, task_state_of(env), model)
    np.testing.assert_allclose(mine, obs, atol=1e-9)


def test_observation_from_the_simulator_node_rows(model):
    s = SimSession("lift", 0, 0, 0.02, 10)
    pos, vel, _ = s.joint_state()
    obs = high_level.observation(pos[:7], vel[:7], s.task_state_row(), model)
    np.testing.assert_allclose(obs, s.task.observation(), atol=1e-9)


@pytest.mark.parametrize("task, config", [("reach", OSCConfig()), ("lift", QPConfig(output_max=0.04))])
def test_scripted_policy_gives_the_goals_of_the_environment(model, task, config):
    """Same expert, same controller: the node's goals are the env's goals, step by step."""
    env = GoalArmEnv(make_controller(config, model), task)
    obs, _ = env.reset(seed=1)
    expert = EXPERTS[task](config.output_max)
    pol = high_level.scripted(task, 5, config, model)
    pol.reset()
    for _ in range(8):
        decision = pol.decide(env.sim.q, env.sim.qd, task_state_of(env))
        action = expert(obs)
        np.testing.assert_allclose(decision.action, action, atol=1e-9)
        obs, _, _, _, info = env.step(action)
        np.testing.assert_allclose(decision.goal.p, info["goal"].p, atol=1e-9)
        np.testing.assert_allclose(decision.goal.R, info["goal"].R, atol=1e-9)
        if task == "lift":
            assert decision.gripper == pytest.approx(0.5 * (action[6] + 1))
        else:
            assert decision.gripper is None


class TinyModel:
    """A goal-level model with the interface of ohio_core.learning.policy (meta + act)."""

    def __init__(self, **meta):
        self.meta = {"task": "reach", "k": 4, "controller": OSCConfig(output_max=0.02).to_dict(),
                     "obs_layout": [list(x) for x in OBS_LAYOUT], "action_dim": 6, "level": "goal", **meta}

    def act(self, obs):
        return np.full(self.meta["action_dim"], 0.5)


def test_model_meta_decides_task_k_and_controller(model):
    pol = high_level.from_model(TinyModel(), "tiny.d3", model)
    assert (pol.task, pol.k, pol.action_dim) == ("reach", 4, 6)
    assert pol.controller.config.output_max == (0.02,) * 6
    s = SimSession("reach", 0, 0, 0.02, 10)
    pos, vel, _ = s.joint_state()
    d = pol.decide(pos[:7], vel[:7], s.task_state_row())
    p0, _ = model.tcp_pose(pos[:7])
    np.testing.assert_allclose(d.goal.p - p0, 0.01, atol=1e-12)      # 0.5 * output_max


@pytest.mark.parametrize("meta, message", [
    ({"task": "stack"}, "task"),
    ({"level": "torque"}, "level"),
    ({"action_dim": 7}, "action_dim"),
    ({"k": 0}, "k must"),
    ({"obs_layout": [["q", 7]]}, "observation layout"),
    ({"controller": {"type": "osc", "kp": -1}}, "controller"),
])
def test_model_meta_errors_name_model_path(model, meta, message):
    with pytest.raises(ParameterError, match=f"model_path.*{message}"):
        high_level.from_model(TinyModel(**meta), "tiny.d3", model)


def test_bad_actions_are_refused(model):
    class Bad(TinyModel):
        def act(self, obs):
            return np.array([np.nan] * 6)
    pol = high_level.from_model(Bad(), "bad", model)
    s = SimSession("reach", 0, 0, 0.02, 10)
    pos, vel, _ = s.joint_state()
    with pytest.raises(ValueError, match="non-finite"):
        pol.decide(pos[:7], vel[:7], s.task_state_row())
    row = s.task_state_row()
    row[tp.TS["target_x"]] = np.nan
    with pytest.raises(ValueError, match="observation"):
        high_level.scripted("reach", 5, OSCConfig(), model).decide(pos[:7], vel[:7], row)


def test_loading_a_missing_model_names_the_parameter(tmp_path, model):
    with pytest.raises(ParameterError, match="model_path"):
        high_level.load_model(str(tmp_path / "missing.d3"), model)


def test_a_trained_model_drives_the_policy_node_step(tmp_path, model):
    """A real model from ohio train: the node's goal is the controller's goal for the model's action."""
    from ohio_core.data.collect import collect
    from ohio_core.learning.algos import TrainConfig
    from ohio_core.learning.policy import load_policy
    from ohio_core.learning.train import train
    from ohio_core.pipeline.dataset import load_dataset, save_dataset
    from ohio_core.pipeline.relabel import relabel

    traj = collect("reach", "expert", OSCConfig(), episodes=1, seed=0, horizon=30)
    data = relabel(traj, make_controller(OSCConfig(), model), 5, "analytical")
    h5, _ = save_dataset(data, tmp_path / "ds", {"task": "reach", "k": 5, "controller": OSCConfig().to_dict()})
    buffer, meta = load_dataset(h5)
    path = train(buffer, meta, TrainConfig(algo="bc", steps=10, epochs=1, batch_size=8), tmp_path / "m",
                 progress=False).model
    pol = high_level.load_model(str(path), model)
    assert (pol.task, pol.k) == ("reach", 5)
    s = SimSession("reach", 0, 0, 0.02, 10)
    pos, vel, _ = s.joint_state()
    d = pol.decide(pos[:7], vel[:7], s.task_state_row())
    a = load_policy(path).act(s.task.observation())
    np.testing.assert_allclose(d.action, a, atol=1e-6)
    expected = make_controller(OSCConfig(), model).goal_from_action(a, pos[:7])
    np.testing.assert_allclose(d.goal.p, expected.p, atol=1e-9)
    np.testing.assert_allclose(d.goal.R, expected.R, atol=1e-9)
