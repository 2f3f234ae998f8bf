"""The torque-rate limit (controllers.rate_limit): steps become ramps, the first command ramps from zero."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.config import OSCConfig, QPConfig
from controllers.description import Q_HOME
from controllers.goals import PoseGoal
from controllers.osc import OSC
from controllers.qp import QP
from controllers.rate_limit import TorqueRateLimiter
from controllers.robot import ArmModel
from ohio_core.envs.arm.sim import ArmSim

T = 0.02
LIMIT = 1000.0       # N m/s, a Franka's


@pytest.fixture(scope="module")
def panda() -> ArmModel:
    return ArmModel()


def test_the_first_command_ramps_from_zero():
    f = TorqueRateLimiter(LIMIT, T)
    target = np.array([87.0, -87.0, 30.0, -5.0, 12.0, 0.0, -12.0])
    outs = np.array([f(target) for _ in range(6)])
    np.testing.assert_allclose(outs[0], np.clip(target, -20.0, 20.0))      # 1000 N m/s x 20 ms = 20 N m
    np.testing.assert_allclose(np.diff(np.vstack([np.zeros(7), outs]), axis=0).clip(-20, 20),
                               np.diff(np.vstack([np.zeros(7), outs]), axis=0))
    np.testing.assert_allclose(outs[-1], target)                           # 87 N m after 5 periods
    assert f.limited == 4                                                  # 20, 40, 60, 80 N m
    f.reset()
    np.testing.assert_allclose(f(target), outs[0])                          # after reset: from zero again


def test_per_joint_limits_and_validation():
    f = TorqueRateLimiter([1000.0] * 4 + [500.0] * 3, T)
    np.testing.assert_allclose(f(np.full(7, 50.0)), [20.0] * 4 + [10.0] * 3)
    for bad in (0.0, -1.0, [1.0] * 6, np.nan):
        with pytest.raises(ValueError, match="torque_rate_limit"):
            TorqueRateLimiter(bad, T)
    with pytest.raises(ValueError, match="period"):
        TorqueRateLimiter(LIMIT, 0.0)


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_a_step_goal_never_changes_the_command_by_more_than_limit_times_period(panda, kind):
    """A goal that jumps 0.3 m asks for a torque step of tens of N m; through the filter every period's
    change is at most limit * T (the controller alone steps by more), and the filtered command
    reaches the controller's as the arm settles."""
    controller = OSC(panda, OSCConfig()) if kind == "osc" else QP(panda, QPConfig())
    sim = ArmSim(control_period=T)
    sim.reset(Q_HOME, cube_pos=(0.3, 0.45, 0.02))
    p0, R0 = sim.tcp_pose()
    f = TorqueRateLimiter(LIMIT, T)
    raw, sent = [], []
    for i in range(100):
        goal = PoseGoal(p0 + (np.array([0.0, 0.3, 0.0]) if i >= 20 else 0.0), R0)
        tau = controller.act(sim.q, sim.qd, goal)
        raw.append(tau)
        sent.append(f(tau))
        sim.control_step(sent[-1])
    raw, sent = np.array(raw), np.array(sent)
    steps = np.abs(np.diff(np.vstack([np.zeros(7), sent]), axis=0))
    assert steps.max() <= LIMIT * T + 1e-9
    assert np.abs(np.diff(raw, axis=0)).max() > 2 * LIMIT * T        # unfiltered, the step is larger
    assert np.all(np.abs(sent) <= controller.tau_max)
    np.testing.assert_allclose(sent[-1], raw[-1], atol=1e-9)
