"""The controller node's safety rules (ohio_ros.arm.control_loop), without DDS."""

import numpy as np
import pytest
from controllers.config import OSCConfig, QPConfig
from controllers.description import Q_HOME
from controllers.goals import PoseGoal
from controllers.osc import OSC
from controllers.qp import QP
from controllers.rate_limit import TorqueRateLimiter
from controllers.robot import ArmModel

from ohio_ros.arm.control_loop import HOLD, TRACK, ControlLoop

MS = 1_000_000


@pytest.fixture(scope="module")
def model():
    return ArmModel()


def make_loop(model, kind="osc", goal_timeout=0.5, state_timeout=0.1):
    controller = OSC(model, OSCConfig()) if kind == "osc" else QP(model, QPConfig())
    return ControlLoop(controller, goal_timeout, state_timeout)


def goal_near(model, q, dp=(0.05, 0.0, -0.03)):
    p, R = model.tcp_pose(q)
    return PoseGoal(p + np.asarray(dp), R)


def test_the_step_times_the_control_law(model):
    """``law_ns``: the last step's time in ``controller.compute`` (the node's timing log keeps it)."""
    loop = make_loop(model)
    assert loop.law_ns == 0
    loop.on_state(0, Q_HOME, np.zeros(7), stamp=0)
    assert loop.step(MS) is not None and loop.law_ns > 0


def test_no_joint_state_no_command(model):
    loop = make_loop(model)
    loop.on_goal(0, goal_near(model, Q_HOME))
    assert loop.step(10 * MS) is None and loop.step(30 * MS) is None
    assert loop.counters.ticks_without_state == 2 and loop.counters.commands == 0
    assert loop.reason == "no joint state yet"


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_fresh_goal_is_tracked_with_the_controller_law(model, kind):
    loop = make_loop(model, kind)
    q, qd = Q_HOME + 0.1, np.full(7, 0.05)
    goal = goal_near(model, q)
    loop.on_state(0, q, qd, stamp=0)
    loop.on_goal(0, goal)
    cmd = loop.step(20 * MS)
    assert cmd.mode == TRACK and cmd.state_stamp == 0 and not cmd.fallback
    reference = (OSC(model) if kind == "osc" else QP(model)).compute(q, qd, goal)
    np.testing.assert_allclose(cmd.tau, reference.tau, rtol=1e-12, atol=1e-12)


def test_stale_goal_holds_the_pose_where_holding_began(model):
    loop = make_loop(model, goal_timeout=0.5)
    q0 = Q_HOME.copy()
    loop.on_state(0, q0, np.zeros(7), 0)
    loop.on_goal(0, goal_near(model, q0))
    loop.on_state(450 * MS, q0, np.zeros(7), 450 * MS)
    assert loop.step(500 * MS).mode == TRACK               # exactly goal_timeout old: still fresh
    q1 = Q_HOME + 0.02
    loop.on_state(510 * MS, q1, np.zeros(7), 510 * MS)
    cmd = loop.step(520 * MS)
    assert cmd.mode == HOLD and loop.reason == "holding: goal stale"
    p1, R1 = model.tcp_pose(q1)
    np.testing.assert_allclose(cmd.tau, OSC(model).act(q1, np.zeros(7), PoseGoal(p1, R1)), atol=1e-12)
    # the hold pose stays latched while the arm moves
    q2 = Q_HOME + 0.05
    loop.on_state(530 * MS, q2, np.zeros(7), 530 * MS)
    cmd = loop.step(540 * MS)
    np.testing.assert_allclose(cmd.tau, OSC(model).act(q2, np.zeros(7), PoseGoal(p1, R1)), atol=1e-12)
    # a fresh goal ends holding
    goal = goal_near(model, q2)
    loop.on_goal(550 * MS, goal)
    cmd = loop.step(560 * MS)
    assert cmd.mode == TRACK
    np.testing.assert_allclose(cmd.tau, OSC(model).act(q2, np.zeros(7), goal), atol=1e-12)
    assert loop.counters.ticks_holding == 2


def test_without_any_goal_the_arm_holds(model):
    loop = make_loop(model)
    loop.on_state(0, Q_HOME, np.zeros(7), 0)
    cmd = loop.step(MS)
    assert cmd.mode == HOLD and loop.reason == "holding: no goal yet"
    p, R = model.tcp_pose(Q_HOME)
    np.testing.assert_allclose(cmd.tau, OSC(model).act(Q_HOME, np.zeros(7), PoseGoal(p, R)), atol=1e-12)


def test_stale_joint_state_no_command(model):
    loop = make_loop(model, state_timeout=0.1)
    loop.on_state(0, Q_HOME, np.zeros(7), 0)
    assert loop.step(100 * MS) is not None
    assert loop.step(101 * MS) is None and loop.reason == "joint states stale"
    assert loop.counters.ticks_state_stale == 1


def test_rejections_are_counted_and_do_not_refresh_the_goal(model):
    loop = make_loop(model, goal_timeout=0.5)
    loop.on_state(0, Q_HOME, np.zeros(7), 0)
    loop.on_goal(0, goal_near(model, Q_HOME))
    loop.reject("goal", "nonfinite")
    loop.reject("goal", "nonfinite")
    loop.reject("goal", "invalid")
    loop.reject("state", "nonfinite")
    c = loop.counters
    assert (c.goals_rejected_nonfinite, c.goals_rejected_invalid, c.states_rejected) == (2, 1, 1)
    assert c.rejected == {"goal: nonfinite": 2, "goal: invalid": 1, "state: nonfinite": 1}
    loop.on_state(600 * MS, Q_HOME, np.zeros(7), 600 * MS)
    assert loop.step(600 * MS).mode == HOLD              # the rejected goals did not keep it fresh


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_torques_stay_within_limits_for_extreme_goals(model, kind, rng):
    loop = make_loop(model, kind)
    for _ in range(20):
        q = model.random_configuration(rng, margin=0.2)
        qd = rng.normal(scale=2.0, size=7)
        loop.on_state(0, q, qd, 0)
        loop.on_goal(0, PoseGoal(rng.uniform(-3, 3, 3), np.eye(3)))     # far out of reach
        cmd = loop.step(MS)
        assert np.all(np.abs(cmd.tau) <= loop.tau_max) and np.isfinite(cmd.tau).all()
    assert loop.counters.saturated_commands > 0


class _Failing:
    """A controller whose law fails (numerical trouble): the loop must not pass that on."""

    def __init__(self, model, tau):
        self.model, self.tau_max, self._tau = model, model.tau_max, tau

    def compute(self, q, qd, goal):
        if self._tau is None:
            raise np.linalg.LinAlgError("singular")
        from controllers.base import clip_torque
        return clip_torque(np.asarray(self._tau, float), np.full(7, np.inf))


@pytest.mark.parametrize("tau", [None, [np.nan] * 7, [1e6] * 7])
def test_controller_failure_falls_back_to_gravity_compensation(model, tau):
    loop = ControlLoop(_Failing(model, tau), 0.5, 0.1, hold_damping=10.0)
    qd = np.full(7, 0.1)
    loop.on_state(0, Q_HOME, qd, 0)
    cmd = loop.step(MS)
    assert np.all(np.abs(cmd.tau) <= model.tau_max)
    if tau is None or np.isnan(tau[0]):
        assert cmd.fallback and loop.counters.fallback_commands == 1
        np.testing.assert_allclose(cmd.tau, model.gravity(Q_HOME) - 10.0 * qd, atol=1e-12)
    else:                                       # finite but beyond the limits: clipped, flagged
        assert cmd.saturated and not cmd.fallback
        np.testing.assert_array_equal(cmd.tau, model.tau_max)


def test_a_joint_state_beyond_the_physical_bounds_is_rejected_and_the_last_good_one_kept(model):
    """A finite but impossible reading (a joint at 1e154 rad/s, or 1e307 rad) is refused like NaN:
    counted as 'state: implausible', never used for a command (which would be NaN)."""
    loop = make_loop(model)
    assert loop.on_state(0, Q_HOME, np.zeros(7), 0)
    fast, far = np.zeros(7), Q_HOME.copy()
    fast[1] = 1e154
    far[0] = 1e307
    assert not loop.on_state(MS, Q_HOME, fast, MS) and not loop.on_state(2 * MS, far, np.zeros(7), 2 * MS)
    c = loop.counters
    assert c.rejected == {"state: implausible": 2} and c.states_rejected == 2 and c.states_received == 1
    cmd = loop.step(3 * MS)
    assert cmd.state_stamp == 0 and not cmd.fallback and np.isfinite(cmd.tau).all()


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_with_the_driver_compensating_gravity_hold_and_fallback_leave_g_out(model, kind):
    """gravity_compensation 'driver': holding at rest commands nothing (the driver adds g(q)),
    and the fallback of a failing controller is -d qd, not g(q) - d qd (twice the arm's weight)."""
    config = (OSCConfig if kind == "osc" else QPConfig)(gravity_compensation="driver")
    controller = OSC(model, config) if kind == "osc" else QP(model, config)
    loop = ControlLoop(controller, 0.5, 0.1)
    loop.on_state(0, Q_HOME, np.zeros(7), 0)
    cmd = loop.step(MS)
    assert cmd.mode == HOLD and not cmd.fallback
    np.testing.assert_allclose(cmd.tau, 0.0, atol=1e-9)
    qd = np.full(7, 0.1)
    failing = ControlLoop(_Failing(controller.model, None), 0.5, 0.1, hold_damping=10.0)
    failing.on_state(0, Q_HOME, qd, 0)
    cmd = failing.step(MS)
    assert cmd.fallback
    np.testing.assert_allclose(cmd.tau, -10.0 * qd, atol=1e-12)


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_rate_limited_loop_ramps_the_first_command_and_again_after_a_gap(model, kind):
    """With a torque-rate limiter the first command ramps from zero, every change is at most
    limit * period, and after a period without a command (stale states) it ramps from zero again."""
    controller = OSC(model, OSCConfig()) if kind == "osc" else QP(model, QPConfig())
    limit, period = 200.0, controller.config.control_period
    loop = ControlLoop(controller, 0.5, 0.1, rate_limiter=TorqueRateLimiter(limit, period))
    q = Q_HOME.copy()
    loop.on_goal(0, goal_near(model, q))
    previous = np.zeros(7)
    for i in range(4):
        loop.on_state(i * 20 * MS, q, np.zeros(7), i * 20 * MS)
        cmd = loop.step(i * 20 * MS)
        assert np.abs(cmd.tau - previous).max() <= limit * period + 1e-9
        previous = cmd.tau
    unlimited = controller.compute(q, np.zeros(7), goal_near(model, q)).tau
    assert np.abs(unlimited).max() > 3 * limit * period          # the controller alone steps further
    assert loop.counters.rate_limited_commands >= 1
    assert loop.step(300 * MS) is None                           # states stale: no command, reset
    loop.on_state(300 * MS, q, np.zeros(7), 300 * MS)
    assert np.abs(loop.step(300 * MS).tau).max() <= limit * period + 1e-9
