"""The hand as the Franka hand behaves: coupled fingers that stop on the cube without sinking into
it, a binary grasp command, and grasps that do not depend on how hard the policy says "close"."""

import numpy as np
import pytest

from controllers.base import make_controller
from controllers.config import OSCConfig
from controllers.goals import gripper_command
from ohio_core.envs.arm.env import GoalArmEnv
from ohio_core.envs.arm.scene import SceneConfig
from ohio_core.policies.scripted import LiftExpert

LIMIT_TOLERANCE = 5e-4    # m: finger limits are soft constraints (stiff, 4 ms), contacts likewise


def expert_episode(seed: int, close: float = 1.0):
    """One lift episode of the expert whose grasp action is ``close``: (success, finger positions per
    high-level step, the fingers' positions and the finger opening while the cube is held)."""
    env = GoalArmEnv(make_controller(OSCConfig()), "lift")
    obs, _ = env.reset(seed=seed)
    expert = LiftExpert()
    fingers, held = [], []
    done, info = False, {"is_success": False}
    while not done:
        a = expert(obs)
        if a[-1] > 0:
            a[-1] = close
        obs, _, terminated, truncated, info = env.step(a)
        q = env.sim.data.qpos[env.sim.qpos_fingers].copy()
        fingers.append(q)
        if env.sim.cube_grasped() and env.sim.cube_pose()[0][2] > SceneConfig().cube_half_size + 0.03:
            held.append(env.sim.finger_opening)
        done = terminated or truncated
    return bool(info["is_success"]), np.array(fingers), np.array(held)


def test_during_an_expert_grasp_the_fingers_stay_in_range_equal_and_on_the_cube():
    success, fingers, held = expert_episode(seed=0)
    assert success
    assert fingers.min() >= -LIMIT_TOLERANCE and fingers.max() <= 0.04 + LIMIT_TOLERANCE
    assert np.abs(fingers[:, 0] - fingers[:, 1]).max() < 1e-3
    assert len(held) > 10, "the cube was never held off the table"
    width = 2 * SceneConfig().cube_half_size
    assert np.abs(held - width).max() < 2e-3, f"opening {held.min():.4f}..{held.max():.4f} m on a {width} m cube"


@pytest.mark.parametrize("close", [0.1, 0.4, 0.7, 1.0])
def test_every_close_command_grasps_and_lifts(close):
    assert gripper_command(close) == 1.0 and gripper_command(-close) == 0.0
    assert all(expert_episode(seed, close)[0] for seed in (1, 2))
