"""The goal workspace (controllers.workspace): a box and a floor above the table, shared by the OSC
and the QP; goals outside are clamped and counted, and the default clamps nothing."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.config import ConfigError, OSCConfig, QPConfig, load_config
from controllers.description import Q_HOME
from controllers.goals import PoseGoal
from controllers.osc import OSC
from controllers.qp import QP
from controllers.robot import ArmModel
from controllers.workspace import clamp_goal, clamp_position, goal_bounds, has_goal_bounds

BOX = {"goal_box_min": [0.2, -0.4, 0.0], "goal_box_max": [0.7, 0.4, 0.8]}


@pytest.fixture(scope="module")
def panda() -> ArmModel:
    return ArmModel()


@pytest.mark.parametrize("cls", [OSCConfig, QPConfig])
def test_default_config_has_no_workspace_and_clamps_nothing(cls):
    c = cls()
    assert not has_goal_bounds(c)
    lo, hi = goal_bounds(c)
    assert np.all(lo == -np.inf) and np.all(hi == np.inf)
    goal = PoseGoal(np.array([9.0, -9.0, -9.0]), np.eye(3))
    out, moved = clamp_goal(goal, c)
    assert out is goal and not moved


@pytest.mark.parametrize("cls", [OSCConfig, QPConfig])
def test_box_and_table_floor_give_the_bounds(cls):
    c = cls(**BOX, table_height=0.05, goal_table_clearance=0.03)
    lo, hi = goal_bounds(c)
    np.testing.assert_allclose(lo, [0.2, -0.4, 0.08])
    np.testing.assert_allclose(hi, [0.7, 0.4, 0.8])
    lo, hi = goal_bounds(cls(table_height=0.0, goal_table_clearance=0.1))      # a floor without a box
    np.testing.assert_array_equal(lo, [-np.inf, -np.inf, 0.1])
    np.testing.assert_array_equal(hi, [np.inf] * 3)


def test_clamp_position_moves_only_what_is_outside_and_batches():
    lo, hi = np.array([0.0, -1.0, 0.1]), np.array([1.0, 1.0, 1.0])
    p = np.array([[0.5, 0.0, 0.5], [1.5, 0.0, 0.5], [0.5, -2.0, 0.0], [0.0, 1.0, 1.0]])
    out, moved = clamp_position(p, lo, hi)
    np.testing.assert_array_equal(out, [[0.5, 0.0, 0.5], [1.0, 0.0, 0.5], [0.5, -1.0, 0.1], [0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(moved, [False, True, True, False])     # on the boundary: inside


@pytest.mark.parametrize("cls", [OSCConfig, QPConfig])
def test_workspace_config_is_validated_naming_the_field(cls, tmp_path):
    with pytest.raises(ConfigError, match="set together"):
        cls(goal_box_min=[0.0, 0.0, 0.0])
    with pytest.raises(ConfigError, match="goal_box_min must be below goal_box_max"):
        cls(goal_box_min=[0.0, 0.5, 0.0], goal_box_max=[1.0, 0.5, 1.0])
    with pytest.raises(ConfigError, match=rf"{cls.__name__}\.goal_box_max must be a scalar or a list of 3"):
        cls(goal_box_min=[0.0, 0.0, 0.0], goal_box_max=[1.0, 1.0])
    with pytest.raises(ConfigError, match="table_height"):
        cls(**BOX, table_height=0.79, goal_table_clearance=0.02)
    with pytest.raises(ConfigError, match="goal_table_clearance must be >= 0"):
        cls(table_height=0.0, goal_table_clearance=-0.1)
    path = tmp_path / "c.yaml"
    path.write_text(f"type: {cls.kind}\ngoal_box: [0, 0, 0]\n")
    with pytest.raises(ConfigError, match=rf"^{path}: unknown key\(s\) \['goal_box'\]"):
        load_config(path)
    path.write_text(f"type: {cls.kind}\ngoal_box_min: [0.2, -0.4, 0.0]\ngoal_box_max: [0.7, 0.4, 0.8]\n"
                    "table_height: 0.0\n")
    assert load_config(path) == cls(**BOX, table_height=0.0)


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_a_goal_outside_is_clamped_and_counted(panda, kind):
    """The command for a goal outside the box is the command for the clamped goal; goals inside
    are left alone and not counted."""
    config = (OSCConfig if kind == "osc" else QPConfig)(**BOX, table_height=0.0, goal_table_clearance=0.05)
    free = OSC(panda) if kind == "osc" else QP(panda)
    boxed = OSC(panda, config) if kind == "osc" else QP(panda, config)
    _, R = panda.tcp_pose(Q_HOME)
    qd = np.zeros(7)
    outside = PoseGoal(np.array([1.1, 0.1, -0.2]), R)
    np.testing.assert_allclose(boxed.act(Q_HOME, qd, outside),
                               free.act(Q_HOME, qd, PoseGoal(np.array([0.7, 0.1, 0.05]), R)), atol=1e-9)
    assert boxed.goals_clamped == 1
    inside = PoseGoal(np.array([0.5, 0.1, 0.3]), R)
    np.testing.assert_array_equal(boxed.act(Q_HOME, qd, inside), free.act(Q_HOME, qd, inside))
    assert boxed.goals_clamped == 1 and free.goals_clamped == 0
    boxed.act(Q_HOME, qd, outside)
    assert boxed.goals_clamped == 2
