"""The simulator node's world (ohio_ros.arm.sim_session), without DDS."""

import numpy as np
import pytest
from controllers.osc import OSC
from controllers.robot import ArmModel
from ohio_core.data.topics import TS
from ohio_core.envs.arm.env import GoalArmEnv

from ohio_ros.arm.sim_session import SimSession


def session(task="reach", horizon=4, substeps=10, seed=0):
    return SimSession(task, seed, horizon, control_period=0.02, substeps_per_period=substeps)


def test_period_rows_follow_the_bag_conventions():
    s = session(horizon=3, substeps=10)
    assert s.publish_period == pytest.approx(0.002)
    rows, times = [s.task_state_row()], [s.time]
    while len(rows) < 4:
        s.advance()
        if s.at_period_start:
            rows.append(s.task_state_row())
            times.append(s.time)
    rows = np.array(rows)
    np.testing.assert_allclose(np.diff(times), 0.02, atol=1e-9)
    assert rows[:, TS["step"]].tolist() == [0, 1, 2, 3] and set(rows[:, TS["episode"]]) == {0}
    assert np.isnan(rows[0, TS["reward"]]) and np.isfinite(rows[1:, TS["reward"]]).all()
    assert rows[:, TS["last"]].tolist() == [0, 0, 0, 1] and rows[3, TS["timeout"]] == 1
    assert s.episode_over()
    target = rows[0, TS["target_x"]:TS["target_z"] + 1]
    s.next_episode()
    row = s.task_state_row()
    assert row[TS["episode"]] == 1 and row[TS["step"]] == 0 and s.time == pytest.approx(times[-1])
    assert not np.allclose(row[TS["target_x"]:TS["target_z"] + 1], target)     # a new scene
    assert [r["episode"] for r in s.report()["episodes"]] == [0, 1]


def test_zero_order_hold_matches_the_simulator_stepped_per_control_period():
    """Ten 2 ms increments with a held torque are one 20 ms control step of the environment."""
    s = session(substeps=10)
    env = GoalArmEnv(OSC(ArmModel()), "reach")
    env.reset(seed=0)
    env.sim.reset(s.sim.q)
    env.sim.data.qpos[:] = s.sim.data.qpos
    env.sim.data.qvel[:] = s.sim.data.qvel
    env.sim.data.mocap_pos[:] = s.sim.data.mocap_pos
    tau = np.array([5.0, -3.0, 2.0, 1.0, 0.5, -0.5, 0.2])
    s.command(tau)
    for _ in range(10):
        s.advance()
    env.sim.control_step(tau)
    np.testing.assert_allclose(s.sim.q, env.sim.q, atol=1e-12)
    np.testing.assert_allclose(s.sim.qd, env.sim.qd, atol=1e-12)
    pos, vel, eff = s.joint_state()
    np.testing.assert_allclose(eff[:7], tau, atol=1e-12)         # within the motor limits
    assert len(pos) == len(vel) == len(eff) == 9


def test_commands_are_validated_and_clipped_by_the_motors():
    s = session()
    with pytest.raises(ValueError):
        s.command([np.nan] * 7)
    with pytest.raises(ValueError):
        s.command([0.0] * 6)
    with pytest.raises(ValueError):
        s.command_gripper(float("inf"))
    s.command([1e4] * 7)
    s.advance()
    np.testing.assert_allclose(s.joint_state()[2][:7], s.sim.tau_max)


def test_idle_holds_the_arm_and_runs_the_clock():
    s = session()
    q = s.sim.q
    for _ in range(5):
        s.idle()
    assert s.time == pytest.approx(5 * 0.002) and np.array_equal(s.sim.q, q) and s.step == 0


def test_endless_episode():
    s = session(horizon=-1, substeps=1)
    for _ in range(300):
        s.advance()
    assert not s.episode_over() and s.step == 300
