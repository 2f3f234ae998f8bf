"""The arm tasks: seeding, action interfaces, what each step logs, rewards, the experts."""

import numpy as np
import pytest

from controllers.config import OSCConfig
from controllers.description import Q_HOME
from controllers.osc import OSC
from controllers.qp import QP
from controllers.robot import ArmModel
from ohio_core.envs.arm.env import TRACE_FIELDS, GoalArmEnv, TorqueArmEnv
from ohio_core.envs.arm.scene import build_model
from ohio_core.envs.arm.sim import ArmSim
from ohio_core.envs.arm.tasks import OBS_DIM, OBS_LAYOUT, TaskConfig, obs_slices
from ohio_core.policies.scripted import EXPERTS


@pytest.fixture(scope="module")
def model():
    return ArmModel()


def rollout(env, policy, seed):
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    observations, rewards, done, info = [obs], [], False, {}
    while not done:
        obs, r, term, trunc, info = env.step(policy(obs))
        observations.append(obs)
        rewards.append(r)
        done = term or trunc
    return np.array(observations), np.array(rewards), info


def test_observation_layout_is_consistent():
    s = obs_slices()
    assert OBS_DIM == sum(n for _, n in OBS_LAYOUT) == 38
    assert s["q"] == slice(0, 7) and s["handle_angle"].stop == OBS_DIM


@pytest.mark.parametrize("task", ["reach", "lift"])
def test_reset_is_seeded(model, task):
    env = GoalArmEnv(OSC(model), task)
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    c, _ = env.reset(seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_goal_env_holds_goal_for_k_control_steps_and_logs_each(model):
    env = GoalArmEnv(OSC(model), TaskConfig("reach", k=5, horizon=20))
    env.reset(seed=0)
    obs, reward, term, trunc, info = env.step(np.zeros(6))
    trace = info["trace"]
    assert set(trace) == set(TRACE_FIELDS)
    assert trace["q"].shape == (5, 7) and trace["tau"].shape == (5, 7)
    np.testing.assert_allclose(np.diff(trace["t"]), 0.02, atol=1e-9)
    assert reward == pytest.approx(trace["reward"].sum())
    np.testing.assert_allclose(trace["obs"][0][obs_slices()["q"]], trace["q"][0])   # rows: state at the start
    assert not np.allclose(obs[obs_slices()["q"]], trace["q"][-1])                   # obs: after the last period
    assert not term and not trunc
    for _ in range(3):
        *_, trunc, info = env.step(np.zeros(6))
    assert trunc                     # 4 high-level steps x 5 = 20 control steps
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(6))


def test_goal_env_applies_what_the_controller_commands(model):
    """The logged torque equals the controller's torque at the logged state (zero-order hold)."""
    ctl = OSC(model)
    env = GoalArmEnv(ctl, TaskConfig("reach", k=3))
    env.reset(seed=1)
    q0, qd0 = env.sim.q, env.sim.qd
    action = np.array([0.3, -0.2, 0.1, 0.0, 0.2, 0.0])
    goal = ctl.goal_from_action(action, q0)
    _, _, _, _, info = env.step(action)
    np.testing.assert_allclose(info["trace"]["tau"][0], ctl.act(q0, qd0, goal), atol=1e-9)
    np.testing.assert_allclose(info["goal"].p, goal.p)


def test_torque_env_rejects_bad_actions(model):
    env = TorqueArmEnv("reach")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(6))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.r_[np.nan, np.zeros(6)])


def test_torque_env_scales_to_limits_and_gravity_pulls_an_unpowered_arm_down():
    env = TorqueArmEnv(TaskConfig("reach", horizon=25))
    env.reset(seed=0)
    z0 = env.sim.tcp_pose()[0][2]
    _, _, _, _, info = env.step(np.full(7, 5.0))           # clipped to +1 -> +limit
    np.testing.assert_allclose(info["trace"]["tau"][0], env.sim.tau_max)
    env.reset(seed=0)
    for _ in range(25):
        *_, info = env.step(np.zeros(7))
    assert env.sim.tcp_pose()[0][2] < z0 - 0.05


@pytest.mark.parametrize("controller", [OSC, QP])
@pytest.mark.parametrize("task", ["reach", "lift"])
def test_scripted_expert_solves_task(model, controller, task):
    env = GoalArmEnv(controller(model), task)
    for seed in (0, 1):
        _, rewards, info = rollout(env, EXPERTS[task](), seed)
        assert info["is_success"], f"{task} expert failed with {controller.__name__}, seed {seed}"
        assert rewards.shape == (env.horizon // env.config.k,)


def test_lift_reward_stages(model):
    """Grasping pays more than hovering, lifting pays the most; doing nothing does not succeed."""
    env = GoalArmEnv(OSC(model), "lift")
    _, idle, info = rollout(env, lambda obs: np.r_[np.zeros(6), -1.0], 0)
    assert not info["is_success"]
    _, expert, _ = rollout(env, EXPERTS["lift"](), 0)
    assert expert.sum() > 2 * idle.sum()
    assert expert.max() == pytest.approx(5.0)   # 5 control steps at r = 1 once lifted


def test_task_config_validation():
    with pytest.raises(ValueError, match="unknown task"):
        TaskConfig("stack")
    with pytest.raises(ValueError, match="k must be"):
        TaskConfig("reach", k=0)
    with pytest.raises(ValueError, match="horizon"):
        TaskConfig("reach", k=5, horizon=3)


# -- the driver's gravity compensation in the simulator -----------------------------------------

def test_driver_sim_adds_the_arms_gravity_torque_outside_the_motors(model):
    """gravity_compensation 'driver': at every physics step MuJoCo adds the arm's g(q) (equal to
    Pinocchio's, fingers at the model's lock position), not through the motors; an arm commanded
    zero torque then stays where it is. 'controller' is the model as before and adds nothing."""
    own, drv = ArmSim(), ArmSim(gravity_compensation="driver")
    assert own.model.ngravcomp == 0 and drv.model.ngravcomp > 0
    reference = build_model()
    for name in ("body_mass", "dof_damping", "actuator_ctrlrange", "body_gravcomp"):
        np.testing.assert_array_equal(getattr(own.model, name), getattr(reference, name))
    rng = np.random.default_rng(5)
    for _ in range(5):
        q = model.random_configuration(rng)
        drv.reset(q)
        own.reset(q)
        np.testing.assert_allclose(drv.gravity_torque, model.gravity(q), atol=1e-9)
        np.testing.assert_array_equal(own.gravity_torque, 0.0)
    for sim in (own, drv):
        sim.reset(Q_HOME)
    p0 = drv.tcp_pose()[0]
    for _ in range(50):                                  # 1 s, zero command
        own.control_step(np.zeros(7))
        drv.control_step(np.zeros(7))
    np.testing.assert_array_equal(drv.tau, 0.0)          # the motors applied the command alone
    assert np.linalg.norm(drv.tcp_pose()[0] - p0) < 1e-3
    assert np.linalg.norm(own.tcp_pose()[0] - p0) > 0.05    # without it the arm falls
    with pytest.raises(ValueError, match="gravity_compensation"):
        ArmSim(gravity_compensation="robot")


def test_goal_env_refuses_a_controller_of_the_other_gravity_convention(model):
    with pytest.raises(ValueError, match=r"gravity_compensation 'driver' does not match the simulated arm's 'controller' "
                                         r"\(g\(q\) would be added by neither\)"):
        GoalArmEnv(OSC(model, OSCConfig(gravity_compensation="driver")), "reach")
