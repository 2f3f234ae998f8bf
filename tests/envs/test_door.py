"""The door of the door task: a latch that holds a closed door until the handle is turned, a spring
that returns the handle, a pose drawn per episode, and the same arm as every other scene."""

import mujoco
import numpy as np
import pytest

from controllers.base import make_controller
from controllers.config import OSCConfig
from controllers.description import Q_HOME
from controllers.robot import ArmModel
from ohio_core.cli.main import main
from ohio_core.envs.arm.door import DoorConfig
from ohio_core.envs.arm.env import GoalArmEnv, run_episode
from ohio_core.envs.arm.scene import SceneConfig
from ohio_core.envs.arm.sim import ArmSim
from ohio_core.envs.arm.tasks import OBS_DIM, Door, obs_slices
from ohio_core.pipeline.dataset import load_dataset
from ohio_core.policies.scripted import DoorExpert

DOOR_SCENE = SceneConfig(door=DoorConfig())


def pull(sim: ArmSim, torque: float, handle: float | None = None, periods: int = 25) -> None:
    """Hold the arm still and pull the door open with ``torque`` (N m on the hinge), the handle held
    at ``handle`` (rad) when given, for ``periods`` control periods."""
    panda = ArmModel()
    door = sim.door
    for _ in range(periods):
        sim.data.qfrc_applied[:] = 0.0
        sim.data.qfrc_applied[door.qvel[0]] = torque
        if handle is not None:
            sim.data.qpos[door.qpos_handle] = handle
            sim.data.qvel[door.qvel[1]] = 0.0
        sim.control_step(panda.gravity(sim.q))


def test_a_closed_door_stays_shut_until_the_handle_is_turned_past_the_latch():
    sim = ArmSim(DOOR_SCENE)
    sim.reset(Q_HOME, door_pose=(0.62, 0.0, 0.0))
    assert sim.door.locked and sim.door.door_angle == 0.0
    pull(sim, 3.0, handle=DOOR_SCENE.door.latch_angle - 0.05)
    assert sim.door.locked and abs(sim.door.door_angle) < 1e-3
    pull(sim, 3.0, handle=DOOR_SCENE.door.latch_angle + 0.05)
    assert not sim.door.locked and sim.door.door_angle > 0.3
    pull(sim, 0.0, periods=5)                       # the handle let go: an open door does not lock
    assert not sim.door.locked


def test_the_handle_spring_returns_it_and_reset_closes_and_latches_the_door():
    sim = ArmSim(DOOR_SCENE)
    sim.reset(Q_HOME)
    sim.data.qpos[sim.door.qpos_handle] = 1.0
    pull(sim, 0.0, periods=100)
    assert sim.door.handle_angle < 0.05
    pull(sim, 3.0, handle=1.0)
    assert sim.door.door_angle > 0.3
    sim.reset(Q_HOME)
    assert sim.door.locked and sim.door.door_angle == 0.0 and sim.door.handle_angle == 0.0


def test_the_door_goes_where_it_is_placed():
    sim = ArmSim(DOOR_SCENE)
    hinge, grasp = [], []
    for pose in ((0.60, -0.05, -0.2), (0.64, 0.05, 0.2)):
        sim.reset(Q_HOME, door_pose=pose)
        hinge.append(sim.door.hinge_point())
        grasp.append(sim.door.grasp_pose()[0])
    # the hinge and the grasp point are 0.25 m apart across the panel wherever it stands
    assert np.linalg.norm(hinge[0][:2] - grasp[0][:2]) == pytest.approx(np.linalg.norm(hinge[1][:2] - grasp[1][:2]))
    assert np.linalg.norm(hinge[0] - hinge[1]) > 0.1
    rng = np.random.default_rng(0)
    poses = np.array([DoorConfig().sample_pose(rng) for _ in range(200)])
    assert np.all(poses.min(0) >= [0.59, -0.08, -0.2]) and np.all(poses.max(0) <= [0.65, 0.08, 0.2])


def test_a_scene_without_a_door_refuses_a_door_pose_and_the_config_its_bad_values():
    sim = ArmSim()
    assert sim.door is None
    with pytest.raises(ValueError, match="no door"):
        sim.reset(Q_HOME, door_pose=(0.6, 0.0, 0.0))
    with pytest.raises(ValueError, match="latch_angle"):
        DoorConfig(latch_angle=2.0)
    with pytest.raises(ValueError, match="x_range"):
        DoorConfig(x_range=(0.7, 0.6))


# -- the task ------------------------------------------------------------------------------------

def test_the_expert_opens_the_door_through_the_osc():
    env = GoalArmEnv(make_controller(OSCConfig()), "door")
    results = [run_episode(env, DoorExpert(), seed=s) for s in range(3)]
    assert all(ok for _, ok in results)
    obs = env.task.observation()
    s = obs_slices()
    assert obs[s["door_angle"]][0] > 0.3 and obs[s["handle_angle"]][0] > DOOR_SCENE.door.latch_angle
    np.testing.assert_allclose(obs[s["object_pos"]], env.sim.door.grasp_pose()[0])
    np.testing.assert_allclose(obs[s["target_pos"]], env.sim.door.hinge_point())


def test_the_reward_follows_robosuites_door():
    """Reaching the handle (up to 0.25), turning it (up to 0.25), 1 once the door is open past 0.3 rad."""
    task = Door()
    task.reset(np.random.default_rng(0))
    far, done = task.reward_success()
    assert 0.0 < far < 0.25 and not done
    sim, door = task.sim, task.door
    sim.data.qpos[door.qpos_handle] = np.pi / 4
    mujoco.mj_forward(sim.model, sim.data)
    turned, _ = task.reward_success()
    assert turned == pytest.approx(far + 0.125, abs=1e-9)
    sim.data.qpos[door.qpos_door] = 0.31
    assert task.reward_success() == (1.0, True)


def test_door_through_every_cli_path(tmp_path):
    """collect -> bag-info -> relabel -> train -> eval on the door task, tiny settings."""
    bag, ds, model = tmp_path / "bag", tmp_path / "ds", tmp_path / "m"
    assert main(["collect", "--task", "door", "--policy", "noisy0.1", "--episodes", "2", "--horizon", "60",
                 "--seed", "1", "--out", str(bag)]) == 0
    assert main(["bag-info", str(bag)]) == 0
    assert main(["relabel", str(bag), "--workers", "1", "--out", str(ds)]) == 0
    _, meta = load_dataset(ds)
    assert meta["task"] == "door" and meta["action_dim"] == 7 and meta["observation_dim"] == OBS_DIM
    assert main(["train", str(ds), "--algo", "bc", "--steps", "5", "--out", str(model)]) == 0
    assert main(["eval", str(model), "--episodes", "1", "--horizon", "10"]) == 0
