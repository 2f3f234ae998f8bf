"""OSC and QP controllers, in closed loop with the MuJoCo arm and as pure functions.

Issue requirement: a static goal within reach is tracked to < 1 cm and < 0.05 rad within 2 s at
50 Hz with the default gains (kp 150, damping ratio 1) for both controllers; torques never exceed
limits; the QP keeps joints inside limits when the goal asks to leave them; non-finite inputs,
and finite ones beyond the stated physical bounds, raise a clear error (a batch marks them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import quadprog

from controllers.base import clip_torque
from controllers.config import ConfigError, OSCConfig, QPConfig
from controllers.description import Q_HOME
from controllers.goals import (GOAL_POSITION_BOUND, ImplausibleInputError, NonFiniteInputError, PoseGoal,
                               action_from_goal, goal_from_action, orientation_error, so3_exp, so3_log)
from controllers.osc import OSC, OSCTerms, near_singular, osc_law, osc_terms, task_error, task_inertia
from controllers.qp import (QP, STATUS_BRAKE, STATUS_OK, hold_torque, qp_problem, safe_velocity,
                            task_acceleration)
from controllers.robot import POSITION_BOUND, VELOCITY_BOUND, Kinematics, ArmModel, controlled_model
from ohio_core.envs.arm.sim import ArmSim
from ohio_core.inverse.terms import batch_kinematics

CONTROL_HZ = 50
CUBE_OUT_OF_THE_WAY = (0.3, 0.45, 0.02)
#: the reference work's OSC: the law alone, without the joint-limit filter
UNFILTERED = OSCConfig(joint_limits=False, singularity_damping=0.0)


@pytest.fixture(scope="module")
def panda() -> ArmModel:
    return ArmModel()


@pytest.fixture(scope="module")
def sim() -> ArmSim:
    return ArmSim(control_period=1.0 / CONTROL_HZ)


def rotation_angle(R_a: np.ndarray, R_b: np.ndarray) -> float:
    """Angle of R_a R_b^T, independent of the code under test."""
    c = (np.trace(R_a @ R_b.T) - 1.0) / 2.0
    return float(np.arccos(np.clip(c, -1.0, 1.0)))


@dataclass
class Rollout:
    q: np.ndarray          # (n, 7) after each control step
    qd: np.ndarray         # (n, 7) after each control step
    tau: np.ndarray        # (n, 7) commanded
    applied: np.ndarray    # (n, 7) what MuJoCo's motors applied
    saturated: np.ndarray  # (n, 7)
    p: np.ndarray          # final TCP position
    R: np.ndarray          # final TCP orientation


def rollout(sim: ArmSim, controller, goal: PoseGoal, q0=Q_HOME, steps: int = 100) -> Rollout:
    sim.reset(q0, cube_pos=CUBE_OUT_OF_THE_WAY)
    qs, qds, taus, applied, sat = [], [], [], [], []
    for _ in range(steps):
        out = controller.compute(sim.q, sim.qd, goal)
        sim.control_step(out.tau)
        qs.append(sim.q)
        qds.append(sim.qd)
        taus.append(out.tau)
        applied.append(sim.tau)
        sat.append(out.saturated)
    p, R = sim.tcp_pose()
    return Rollout(np.array(qs), np.array(qds), np.array(taus), np.array(applied), np.array(sat), p, R)


def random_goal_near(rng, p0, R0, max_dp=0.15, max_angle=0.5) -> PoseGoal:
    dp = rng.normal(size=3)
    dp *= rng.uniform(0.3, 1.0) * max_dp / np.linalg.norm(dp)
    w = rng.normal(size=3)
    w *= rng.uniform(0.3, 1.0) * max_angle / np.linalg.norm(w)
    return PoseGoal(p0 + dp, so3_exp(w) @ R0)


def controllers(panda):
    return [OSC(panda, OSCConfig()), QP(panda, QPConfig())]


# -- defaults ----------------------------------------------------------------------------------

def test_controllers_use_the_issue_defaults(panda):
    for c in controllers(panda):
        np.testing.assert_array_equal(c.config.kp, [150.0] * 6)
        np.testing.assert_array_equal(c.config.damping_ratio, [1.0] * 6)
        np.testing.assert_array_equal(c.tau_max, panda.tau_max)
        assert c.config.control_period == pytest.approx(1.0 / CONTROL_HZ)
    with pytest.raises(TypeError):
        OSC(panda, QPConfig())
    with pytest.raises(TypeError):
        QP(panda, OSCConfig())


# -- closed-loop tracking (the issue's requirement) --------------------------------------------

@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_static_goal_within_reach_is_tracked_within_2s(panda, sim, kind):
    rng = np.random.default_rng(1234)
    sim.reset(Q_HOME)
    p0, R0 = sim.tcp_pose()
    steps = 2 * CONTROL_HZ   # 2 s at 50 Hz
    for trial in range(5):
        controller = OSC(panda) if kind == "osc" else QP(panda)
        goal = random_goal_near(rng, p0, R0)
        # the goal really asks for a motion
        assert np.linalg.norm(goal.p - p0) > 0.04 or rotation_angle(goal.R, R0) > 0.15
        r = rollout(sim, controller, goal, steps=steps)
        pos_err = np.linalg.norm(r.p - goal.p)
        rot_err = rotation_angle(goal.R, r.R)
        assert pos_err < 0.01, f"{kind} trial {trial}: position error {pos_err:.4f} m after 2 s"
        assert rot_err < 0.05, f"{kind} trial {trial}: orientation error {rot_err:.4f} rad after 2 s"
        assert np.all(np.abs(r.tau) <= panda.tau_max), f"{kind}: torque beyond limits"
        assert np.all(np.isfinite(r.tau))
        if kind == "qp":
            assert controller.fallbacks == 0 and controller.solves == steps


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_torques_stay_within_limits_with_a_far_goal(panda, sim, kind):
    """A goal 1 m away saturates the motors; the command never exceeds the limits."""
    sim.reset(Q_HOME)
    p0, R0 = sim.tcp_pose()
    controller = OSC(panda) if kind == "osc" else QP(panda)
    r = rollout(sim, controller, PoseGoal(p0 + np.array([0.0, 1.0, 0.0]), R0), steps=100)
    assert np.all(np.isfinite(r.tau))
    assert np.all(np.abs(r.tau) <= panda.tau_max)
    # the limits were really reached (otherwise this test proves nothing)
    assert np.max(np.abs(r.tau) / panda.tau_max) >= 0.999
    if kind == "osc":
        assert r.saturated.any()
    # MuJoCo applied exactly what was commanded: nothing was left for its own clipping
    np.testing.assert_allclose(r.applied, r.tau, atol=1e-9)


def test_torques_within_limits_at_random_states(panda):
    rng = np.random.default_rng(99)
    osc, qp = controllers(panda)
    for _ in range(100):
        q = panda.random_configuration(rng, margin=0.06)
        qd = rng.uniform(-1.0, 1.0, 7) * panda.qd_max
        p, R = panda.tcp_pose(q)
        goal = random_goal_near(rng, p, R, max_dp=0.5, max_angle=2.0)
        for c in (osc, qp):
            tau = c.act(q, qd, goal)
            assert tau.shape == (7,) and np.all(np.isfinite(tau))
            assert np.all(np.abs(tau) <= c.tau_max)


def test_at_rest_on_the_goal_both_controllers_compensate_gravity(panda):
    p, R = panda.tcp_pose(Q_HOME)
    goal = PoseGoal(p, R)
    g = panda.gravity(Q_HOME)
    for c in controllers(panda):
        out = c.compute(Q_HOME, np.zeros(7), goal)
        np.testing.assert_allclose(out.tau, g, atol=1e-8)
        assert not out.saturated.any()


# -- gravity compensation by the robot driver -------------------------------------------------

def _driver(panda, kind):
    return OSC(panda, OSCConfig(gravity_compensation="driver")) if kind == "osc" else \
        QP(panda, QPConfig(gravity_compensation="driver"))


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_with_the_driver_compensating_gravity_the_command_at_rest_is_zero(panda, kind):
    """At rest at the home pose, goal at the current pose: 'controller' commands g(q) (-20.2 N m
    on joint 2, 22.9 on joint 4), 'driver' nothing, for the driver adds g(q) itself."""
    goal = _goal_at(panda, Q_HOME)
    c = _driver(panda, kind)
    out = c.compute(Q_HOME, np.zeros(7), goal)
    np.testing.assert_allclose(out.tau, 0.0, atol=1e-9)
    assert not out.saturated.any() and getattr(out, "status", STATUS_OK) == STATUS_OK
    own = (OSC(panda) if kind == "osc" else QP(panda)).act(Q_HOME, np.zeros(7), goal)
    np.testing.assert_allclose(own[[1, 3]], [-20.2, 22.9], atol=0.05)
    # away from rest the two commands differ by exactly g(q) wherever neither saturates
    rng = np.random.default_rng(41)
    for _ in range(10):
        q = panda.random_configuration(rng, margin=0.3)
        qd = rng.uniform(-0.3, 0.3, 7)
        goal = random_goal_near(rng, *panda.tcp_pose(q), max_dp=0.03, max_angle=0.1)
        a, b = (OSC(panda) if kind == "osc" else QP(panda)).compute(q, qd, goal), c.compute(q, qd, goal)
        assert not a.saturated.any() and not b.saturated.any()
        np.testing.assert_allclose(a.tau - b.tau, panda.gravity(q), atol=1e-8)


def test_the_driver_mode_model_is_the_arm_without_gravity(panda):
    c = _driver(panda, "osc")
    assert c.model is not panda and panda.has_gravity and not c.model.has_gravity
    assert OSC(panda).model is panda and controlled_model(c.model, "driver") is c.model
    rng = np.random.default_rng(42)
    q, qd = panda.random_configuration(rng), rng.uniform(-1.0, 1.0, 7)
    k, kd = panda.kinematics(q, qd), c.model.kinematics(q, qd)
    for f in ("p", "R", "J", "M", "Minv"):
        np.testing.assert_array_equal(getattr(kd, f), getattr(k, f))
    np.testing.assert_allclose(kd.h, k.h - panda.gravity(q), atol=1e-10)
    np.testing.assert_array_equal(c.model.gravity(q), 0.0)
    np.testing.assert_array_equal(c.tau_max, panda.tau_max)       # the limits bound the command
    with pytest.raises(ValueError, match="without gravity"):
        OSC(c.model, OSCConfig())


def test_the_batched_law_and_the_inverses_inherit_the_driver_convention(panda):
    """osc_terms on the controller's model (what the inverses evaluate) gives the driver-mode
    command: relabeling such a controller's log stays consistent with what it commanded."""
    rng = np.random.default_rng(43)
    c = OSC(panda, UNFILTERED.replace(gravity_compensation="driver"))      # the law, as the inverses see it
    qs = np.array([panda.random_configuration(rng) for _ in range(8)])
    qds = rng.uniform(-0.5, 0.5, (8, 7))
    terms = osc_terms(batch_kinematics(c.model, qs, qds), qs, qds, c.config)
    ref = osc_terms(batch_kinematics(panda, qs, qds), qs, qds, UNFILTERED.for_joints(7, panda.home))
    np.testing.assert_allclose(ref.c - terms.c, [panda.gravity(q) for q in qs], atol=1e-9)
    for i in range(8):
        goal = random_goal_near(rng, terms.p[i], terms.R[i])
        np.testing.assert_allclose(osc_law(OSCTerms(terms.p[i], terms.R[i], terms.B[i], terms.c[i], terms.cond[i]), goal),
                                   c.compute(qs[i], qds[i], goal).tau_unclipped, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_driver_mode_tracks_in_the_simulator_that_adds_gravity_as_the_driver_does(panda, kind):
    """The closed loop with the driver convention on both sides (the controller leaves g(q) out,
    the simulator adds it at every physics step) reaches the same final error as the controller
    convention (within 1e-5 m and 5e-5 rad, against a requirement of 1 cm and 0.05 rad); the
    driver-mode controller on a simulator that adds nothing lets the arm sag instead."""
    sims = {mode: ArmSim(control_period=1.0 / CONTROL_HZ, gravity_compensation=mode)
            for mode in ("controller", "driver")}
    p0, R0 = panda.tcp_pose(Q_HOME)
    rng = np.random.default_rng(1234)
    for trial in range(3):
        goal = random_goal_near(rng, p0, R0)
        own = rollout(sims["controller"], OSC(panda) if kind == "osc" else QP(panda), goal)
        drv = rollout(sims["driver"], _driver(panda, kind), goal)
        e_own, e_drv = np.linalg.norm(own.p - goal.p), np.linalg.norm(drv.p - goal.p)
        a_own, a_drv = rotation_angle(goal.R, own.R), rotation_angle(goal.R, drv.R)
        assert e_drv < 0.01 and a_drv < 0.05, f"trial {trial}: {e_drv:.4f} m, {a_drv:.4f} rad"
        assert abs(e_drv - e_own) < 1e-5 and abs(a_drv - a_own) < 5e-5, (trial, e_own, e_drv, a_own, a_drv)
        assert np.all(np.abs(drv.tau) <= panda.tau_max)
        np.testing.assert_allclose(drv.applied, drv.tau, atol=1e-9)     # the motors apply the command alone
    sagging = rollout(sims["controller"], _driver(panda, kind), goal)
    assert np.linalg.norm(sagging.p - goal.p) > 0.05


# -- QP joint limits ---------------------------------------------------------------------------

def _goal_at(panda, q) -> PoseGoal:
    return PoseGoal(*panda.tcp_pose(np.asarray(q, float)))


def _with(q, **joints):
    q = np.array(q, float)
    for name, value in joints.items():
        q[int(name[1:]) - 1] = value
    return q


LIMIT_CASES = {
    # TCP goals 0.9 and 1.2 m in front of the base, out of reach: the elbow (joint 4, upper limit
    # -0.0698) wants to stretch straight (with the QP's limits removed, 0.9 m takes it to +0.01)
    "elbow_reach_0.9": (Q_HOME, 3, lambda panda: PoseGoal(np.array([0.9, 0.0, 0.35]), panda.tcp_pose(Q_HOME)[1])),
    "elbow_reach_1.2": (Q_HOME, 3, lambda panda: PoseGoal(np.array([1.2, 0.0, 0.35]), panda.tcp_pose(Q_HOME)[1])),
    # a wrist rotation that needs joint 7 past +2.8973 / -2.8973
    "wrist_up": (_with(Q_HOME, j7=2.5), 6, lambda panda: _goal_at(panda, _with(Q_HOME, j7=3.5))),
    "wrist_down": (_with(Q_HOME, j7=-2.5), 6, lambda panda: _goal_at(panda, _with(Q_HOME, j7=-3.5))),
    # a base rotation that needs joint 1 past +2.8973
    "base_turn": (_with(Q_HOME, j1=2.6), 0, lambda panda: _goal_at(panda, _with(Q_HOME, j1=3.4))),
}


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
def test_qp_keeps_joints_inside_limits_when_the_goal_asks_to_leave(panda, sim, case):
    q0, joint, make_goal = LIMIT_CASES[case]
    goal = make_goal(panda)
    steps = 3 * CONTROL_HZ
    lo, hi = panda.q_min[joint], panda.q_max[joint]
    toward_upper = case != "wrist_down"
    margin = QPConfig().position_margin

    # the unconstrained OSC does go there (so the goal really asks to leave the limits)
    osc = rollout(sim, OSC(panda, UNFILTERED), goal, q0=q0, steps=steps)
    if toward_upper:
        assert osc.q[:, joint].max() > hi - margin / 2, f"OSC did not approach joint {joint + 1}'s upper limit"
    else:
        assert osc.q[:, joint].min() < lo + margin / 2, f"OSC did not approach joint {joint + 1}'s lower limit"

    qp = QP(panda)
    r = rollout(sim, qp, goal, q0=q0, steps=steps)
    assert np.all(r.q >= panda.q_min) and np.all(r.q <= panda.q_max), (
        f"QP left the joint limits: worst {np.max(np.maximum(r.q - panda.q_max, panda.q_min - r.q)):.4f} rad")
    assert np.all(np.abs(r.tau) <= panda.tau_max)
    assert qp.fallbacks == 0
    if case.startswith("wrist"):
        # the QP did move toward the limit: the constraint, not timidity, stopped it (for the
        # other cases the redundant arm finds another way, e.g. the base turn through joints 3-7)
        if toward_upper:
            assert r.q[:, joint].max() > hi - 2 * margin
        else:
            assert r.q[:, joint].min() < lo + 2 * margin


def test_qp_table_plane_keeps_the_tcp_above_it(panda, sim):
    """A goal 10 cm below a table plane at z = 0.15 m (above the simulator's table, so nothing else
    stops the arm): without the plane the QP goes there, with it the TCP stays above
    table_height + table_margin (within 2 mm), without a fallback; the goal itself is clamped to
    the table height (``controllers.workspace``), below the plane's margin."""
    p0, R0 = panda.tcp_pose(Q_HOME)
    goal = PoseGoal(np.array([p0[0], p0[1], 0.05]), R0)
    steps = 2 * CONTROL_HZ
    free = rollout(sim, QP(panda), goal, steps=steps)
    z_free = np.array([panda.tcp_pose(q)[0][2] for q in free.q])
    assert z_free.min() < 0.1
    config = QPConfig(table_height=0.15, table_margin=0.02)
    qp = QP(panda, config)
    r = rollout(sim, qp, goal, steps=steps)
    z = np.array([panda.tcp_pose(q)[0][2] for q in r.q])
    assert z.min() > 0.17 - 0.002, f"TCP at {z.min():.4f} m"
    assert z[-1] < 0.175                          # it went down to the plane, not timidly above it
    assert qp.fallbacks == 0
    assert qp.goals_clamped == steps              # the goal is also floored at the table (z 0.15 m)


@pytest.mark.parametrize("case", ["elbow_reach_0.9", "elbow_reach_1.2"])
def test_unconstrained_osc_leaves_the_elbow_limit_on_a_far_reach(panda, sim, case):
    q0, joint, make_goal = LIMIT_CASES[case]
    r = rollout(sim, OSC(panda, UNFILTERED), make_goal(panda), q0=q0, steps=3 * CONTROL_HZ)
    assert r.q[:, joint].max() > panda.q_max[joint]


OUT_OF_REACH = {
    "5cm_beyond": lambda p0: p0 + np.array([0.3, 0.0, 0.0]),     # the arm reaches ~0.29 m further
    "1.2m_front": lambda p0: np.array([1.2, 0.0, 0.35]),
}


def test_without_singularity_damping_the_osc_chatters_at_the_straight_arm(panda, sim):
    """The reference law (plain task inertia) with the goal out of reach: the joint-limit filter holds
    the limits, but the arm keeps moving at the straight-arm singularity (joint 4 near -0.47 rad, inside
    its limits); the singularity-robust inertia is what brings it to rest (test below)."""
    p0, R0 = panda.tcp_pose(Q_HOME)
    r = rollout(sim, OSC(panda, OSCConfig(singularity_damping=0.0)), PoseGoal(OUT_OF_REACH["5cm_beyond"](p0), R0),
                steps=5 * CONTROL_HZ)
    assert np.abs(r.qd[-CONTROL_HZ:]).max() > 1.0


def test_singularity_robust_task_inertia(panda):
    """Lambda's eigenvalues are 1/w where w >= eps and w/eps^2 below (bounded by 1/eps, zero at w = 0);
    the plain inverse wherever every eigenvalue is at least eps; one state and a batch alike."""
    rng = np.random.default_rng(8)
    eps = 0.04
    states = [panda.random_configuration(rng) for _ in range(40)] + [SINGULAR_STATES["exact"]]
    As = np.array([(lambda k: k.J @ k.Minv @ k.J.T)(panda.kinematics(q, np.zeros(7))) for q in states])
    Lam_b, _ = task_inertia(As, 1e-6, eps)
    robust = 0
    for A, Lb in zip(As, Lam_b):
        Lam, _ = task_inertia(A, 1e-6, eps)
        np.testing.assert_allclose(Lb, Lam, rtol=1e-9, atol=1e-9)
        w, V = np.linalg.eigh(A)
        g = np.where(w >= eps, 1.0 / np.maximum(w, eps), np.maximum(w, 0.0) / eps ** 2)
        np.testing.assert_allclose(Lam, (V * g) @ V.T, rtol=1e-7, atol=1e-7 / eps)
        assert np.linalg.eigvalsh(Lam).max() <= 1.0 / eps * (1 + 1e-9)
        if w.min() >= eps:
            np.testing.assert_allclose(Lam, np.linalg.inv(A), rtol=1e-9)
        robust += w.min() < eps
    assert 0 < robust < len(states)              # both kinds of state were checked


@pytest.mark.parametrize("kind,where", [
    ("osc", "5cm_beyond"),
    ("qp", "5cm_beyond"),
    ("osc", "1.2m_front"),
    ("qp", "1.2m_front"),
])
def test_goal_out_of_reach_the_arm_stretches_and_comes_to_rest(panda, sim, kind, where):
    p0, R0 = panda.tcp_pose(Q_HOME)
    goal = PoseGoal(OUT_OF_REACH[where](p0), R0)
    controller = OSC(panda) if kind == "osc" else QP(panda)
    r = rollout(sim, controller, goal, steps=5 * CONTROL_HZ)
    assert np.all(np.abs(r.tau) <= panda.tau_max)
    speeds = np.abs(r.qd[-CONTROL_HZ:]).max()
    assert speeds < 0.1, f"{kind}: joints still move at {speeds:.2f} rad/s after 4-5 s"
    assert np.linalg.norm(r.p - goal.p) < np.linalg.norm(p0 - goal.p)


@pytest.mark.parametrize("where", sorted(OUT_OF_REACH))
def test_osc_limit_filter_holds_the_limits_with_a_goal_out_of_reach(panda, sim, where):
    """5 s toward a goal out of reach: without the filter the OSC drives joints past their velocity limits
    (7 rad/s 5 cm beyond reach, 40 rad/s at 1.2 m) and, at 1.2 m, joint 4 past its position limit; with it
    every joint stays position_margin inside its position limits (to 1 mm) and within its velocity limit
    (to 5 %: the filter holds the speed the one-period model predicts). At 1.2 m the arm strikes the table
    (a contact the filter does not model), so there only the positions are held to the limits."""
    p0, R0 = panda.tcp_pose(Q_HOME)
    goal = PoseGoal(OUT_OF_REACH[where](p0), R0)
    free = rollout(sim, OSC(panda, UNFILTERED), goal, steps=5 * CONTROL_HZ)
    assert np.max(np.abs(free.qd) / panda.qd_max) > 2.0
    osc = OSC(panda)
    r = rollout(sim, osc, goal, steps=5 * CONTROL_HZ)
    m = osc.config.position_margin
    worst = np.max(np.maximum(r.q - (panda.q_max - m), (panda.q_min + m) - r.q))
    assert worst < 1e-3, f"a joint {worst:.4f} rad past its limit less the margin"
    if where == "5cm_beyond":
        assert np.max(np.abs(r.qd) / panda.qd_max) < 1.05
    assert np.all(np.abs(r.tau) <= panda.tau_max)
    assert osc.limit_filtered > 0 and osc.steps == 5 * CONTROL_HZ


# -- QP fallback -------------------------------------------------------------------------------

INFEASIBLE_STATES = [
    # joint 4 beyond its upper limit, moving outward fast
    (_with(Q_HOME, j4=0.03), _with(np.zeros(7), j4=2.0)),
    (_with(Q_HOME, j4=-0.0698 - 0.02), _with(np.zeros(7), j4=2.0)),
    # joint 7 near its upper limit at full speed outward: a 12 N m wrist cannot stop in time
    (_with(Q_HOME, j7=2.85), _with(np.zeros(7), j7=2.6)),
]


@pytest.mark.parametrize("index", range(len(INFEASIBLE_STATES)))
def test_infeasible_qp_falls_back_to_the_braking_torque(panda, index):
    q, qd = INFEASIBLE_STATES[index]
    qp = QP(panda)
    goal = _goal_at(panda, Q_HOME)
    # the state is really infeasible for quadprog
    kin = panda.kinematics(q, qd, drift=True)
    prob = qp_problem(kin, q, qd, task_acceleration(goal, kin, qd, qp.config), qp.config,
                      panda.q_min, panda.q_max, panda.qd_max, qp.tau_max)
    with pytest.raises(ValueError):
        quadprog.solve_qp(prob.G, prob.a, prob.C, prob.b, 0)

    out = qp.compute(q, qd, goal)            # does not raise
    assert out.status == STATUS_BRAKE
    assert qp.fallbacks == 1 and qp.solves == 1
    assert np.all(np.isfinite(out.tau)) and np.all(np.abs(out.tau) <= qp.tau_max + 1e-9)
    # it brings the joint velocities at least as close to the safe velocity (zero within the limits,
    # back inside beyond them) as any torque within the limits: the hold torque, zero, and full
    # torque against the motion
    T = qp.config.control_period
    v_safe = safe_velocity(q, qp.config, panda.q_min, panda.q_max, panda.qd_max)
    outside = (q > panda.q_max - qp.config.position_margin) | (q < panda.q_min + qp.config.position_margin)
    assert outside.sum() == 1 and np.all(v_safe[outside] < 0) and np.all(v_safe[~outside] == 0)

    def velocity_after(tau):
        return qd + T * np.linalg.solve(kin.M, tau - kin.h)

    against = -np.sign(qd) * qp.tau_max
    for other in (hold_torque(kin, qd, qp.config, qp.tau_max), np.zeros(7), against):
        assert np.linalg.norm(velocity_after(out.tau) - v_safe) <= np.linalg.norm(velocity_after(other) - v_safe) + 1e-9
    assert np.linalg.norm(velocity_after(out.tau) - v_safe) < np.linalg.norm(qd - v_safe)
    assert velocity_after(out.tau)[outside] < qd[outside]          # the joint beyond its limit is turned back

    # the counter keeps counting, and a feasible state afterwards solves normally
    qp.compute(q, qd, goal)
    assert qp.fallbacks == 2
    ok = qp.compute(Q_HOME, np.zeros(7), goal)
    assert ok.status == STATUS_OK and qp.fallbacks == 2 and qp.solves == 3


@pytest.mark.parametrize("index", range(len(INFEASIBLE_STATES)))
def test_driver_mode_braking_and_hold_leave_gravity_to_the_driver(panda, index):
    """The QP's fallbacks in driver mode: the hold torque is h - g - d qd (Coriolis and damping,
    no g(q)), and the braking torque steers the arm toward the safe velocity, under the dynamics
    the driver leaves (M qdd = tau + g - h), at least as hard as the commands it is compared with."""
    q, qd = INFEASIBLE_STATES[index]
    qp = _driver(panda, "qp")
    out = qp.compute(q, qd, _goal_at(panda, Q_HOME))
    assert out.status == STATUS_BRAKE and np.all(np.abs(out.tau) <= qp.tau_max + 1e-9)
    full = panda.kinematics(q, qd)
    hold = hold_torque(qp.model.kinematics(q, qd), qd, qp.config, qp.tau_max)
    np.testing.assert_allclose(hold, np.clip(full.h - panda.gravity(q) - qp.config.hold_damping * qd,
                                             -qp.tau_max, qp.tau_max), atol=1e-9)
    T = qp.config.control_period
    v_safe = safe_velocity(q, qp.config, panda.q_min, panda.q_max, panda.qd_max)

    def miss(tau_cmd):
        return np.linalg.norm(qd + T * np.linalg.solve(full.M, tau_cmd + panda.gravity(q) - full.h) - v_safe)

    for other in (hold, np.zeros(7), -np.sign(qd) * qp.tau_max):
        assert miss(out.tau) <= miss(other) + 1e-9
    assert miss(out.tau) < np.linalg.norm(qd - v_safe)
    # the controller convention brakes differently: its torque carries g(q)
    own = QP(panda).compute(q, qd, _goal_at(panda, Q_HOME))
    assert own.status == STATUS_BRAKE and np.abs(own.tau - out.tau).max() > 1.0


# -- OSC near a singularity --------------------------------------------------------------------

SINGULAR_STATES = {
    # arm straight up: joints 1, 3, 5, 7 vertical, elbow straight
    "exact": np.zeros(7),
    "1e-7": 1e-7 * np.array([1.0, -0.5, 0.3, -0.8, 0.2, 0.6, -0.4]),
    "1e-4": 1e-4 * np.array([1.0, -0.5, 0.3, -0.8, 0.2, 0.6, -0.4]),
}


@pytest.mark.parametrize("name", sorted(SINGULAR_STATES))
def test_osc_near_a_singularity_returns_finite_torques_within_limits(panda, name):
    q = SINGULAR_STATES[name]
    rng = np.random.default_rng(5)
    osc = OSC(panda)
    p, R = panda.tcp_pose(q)
    for _ in range(5):
        qd = 0.5 * rng.normal(size=7)
        with np.errstate(over="ignore"):
            terms = osc_terms(panda.kinematics(q, qd), q, qd, osc.config)
            out = osc.compute(q, qd, random_goal_near(rng, p, R, max_dp=0.1, max_angle=0.3))
        # this is a singular state: J M^-1 J^T is ill-conditioned beyond 1/rcond
        assert terms.cond > 1e6
        assert np.all(np.isfinite(out.tau)) and np.all(np.isfinite(out.tau_unclipped))
        assert np.all(np.abs(out.tau) <= osc.tau_max)
        # the truncated pseudo-inverse keeps the task force bounded (a plain inverse gives ~1e10)
        assert np.abs(out.tau_unclipped).max() < 1e4


def test_task_inertia_takes_the_plain_inverse_away_from_singularities_for_one_state_and_a_batch(panda):
    """One state (Cholesky) and a batch agree on the branch: the exact inverse and the exact 1-norm
    condition number where n cond < 1/rcond, the truncated pseudo-inverse at the singular state."""
    rng = np.random.default_rng(11)
    rcond = OSCConfig().lambda_rcond
    qs = [panda.random_configuration(rng) for _ in range(4)] + [SINGULAR_STATES["exact"]]
    As = []
    for q in qs:
        kin = panda.kinematics(q, np.zeros(7))
        As.append(kin.J @ kin.Minv @ kin.J.T)
    As = np.array(As)
    Lam_b, cond_b = task_inertia(As, rcond)
    for A, Lb, cb in zip(As[:-1], Lam_b[:-1], cond_b[:-1]):
        Lam, cond = task_inertia(A, rcond)
        exact = np.linalg.inv(A)
        assert np.allclose(Lam, exact, rtol=1e-9, atol=0) and np.allclose(Lb, exact, rtol=1e-9, atol=0)
        one_norm_cond = np.abs(A).sum(0).max() * np.abs(exact).sum(0).max()
        assert cond == pytest.approx(one_norm_cond, rel=1e-9) and cb == pytest.approx(one_norm_cond, rel=1e-9)
        assert not near_singular(cond, rcond)
    Lam, cond = task_inertia(As[-1], rcond)
    assert near_singular(cond, rcond) and near_singular(cond_b[-1], rcond)
    assert np.allclose(Lam, Lam_b[-1], rtol=1e-9, atol=1e-9)
    assert np.abs(Lam).max() < 1.0 / rcond


def test_near_singular_takes_numbers_and_arrays():
    assert not near_singular(3.0, 1e-6) and near_singular(1e6, 1e-6)
    assert near_singular(float("inf"), 1e-6)
    np.testing.assert_array_equal(near_singular(np.array([3.0, 1e6, np.inf]), 1e-6), [False, True, True])


# -- non-finite inputs -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["osc", "qp"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_state_raises_a_clear_error(panda, kind, bad):
    c = OSC(panda) if kind == "osc" else QP(panda)
    goal = _goal_at(panda, Q_HOME)
    q_bad = _with(Q_HOME, j3=bad)
    qd_bad = _with(np.zeros(7), j5=bad)
    with pytest.raises(NonFiniteInputError, match=r"^q is not finite"):
        c.compute(q_bad, np.zeros(7), goal)
    with pytest.raises(NonFiniteInputError, match=r"^qd is not finite"):
        c.compute(Q_HOME, qd_bad, goal)
    with pytest.raises(NonFiniteInputError, match=r"^q is not finite"):
        c.act(q_bad, np.zeros(7), goal)
    with pytest.raises(NonFiniteInputError, match=r"^action is not finite"):
        c.goal_from_action(np.array([0.0, 0.0, bad, 0.0, 0.0, 0.0]), Q_HOME)
    with pytest.raises(NonFiniteInputError, match=r"^q is not finite"):
        c.goal_from_action(np.zeros(6), q_bad)
    if kind == "qp":
        assert c.solves == 0 and c.fallbacks == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_goal_raises_a_clear_error(bad):
    assert issubclass(NonFiniteInputError, ValueError)
    with pytest.raises(NonFiniteInputError, match=r"goal position"):
        PoseGoal(np.array([0.4, bad, 0.3]), np.eye(3))
    R = np.eye(3)
    R[1, 2] = bad
    with pytest.raises(NonFiniteInputError, match=r"goal orientation"):
        PoseGoal(np.array([0.4, 0.0, 0.3]), R)
    with pytest.raises(NonFiniteInputError, match=r"goal quaternion"):
        PoseGoal.from_pos_quat([0.4, 0.0, 0.3], [0.0, 0.0, bad, 1.0])
    with pytest.raises(NonFiniteInputError, match=r"^action is not finite"):
        goal_from_action(np.array([bad, 0, 0, 0, 0, 0]), np.zeros(3), np.eye(3), OSCConfig().output_max)
    with pytest.raises(ValueError):   # a NonFiniteInputError is a ValueError
        PoseGoal(np.array([bad, 0.0, 0.0]), np.eye(3))


# -- extreme finite inputs (fuzz) ---------------------------------------------------------------

def _beyond(panda, what: str, rng) -> tuple[np.ndarray, np.ndarray]:
    """A state with one entry beyond its stated bound: 'qd' past VELOCITY_BOUND x qd_max,
    'q' past POSITION_BOUND outside the joint limits; either by a hair or absurdly far."""
    q, qd = panda.random_configuration(rng), rng.uniform(-1.0, 1.0, 7) * panda.qd_max
    j, sign = rng.integers(7), rng.choice([-1.0, 1.0])
    far = rng.random() < 0.5
    if what == "qd":
        qd[j] = sign * (10.0 ** rng.uniform(154, 308) if far else VELOCITY_BOUND * panda.qd_max[j] * (1 + 1e-9))
    else:
        edge = panda.q_max[j] + POSITION_BOUND if sign > 0 else panda.q_min[j] - POSITION_BOUND
        q[j] = sign * 10.0 ** rng.uniform(307, 308) if far else edge + sign * 1e-9
    return q, qd


@pytest.mark.parametrize("kind", ["osc", "qp"])
@pytest.mark.parametrize("what", ["q", "qd"])
def test_extreme_finite_state_is_refused_like_nan(panda, kind, what):
    """Finite but impossible states (one joint velocity >= 1e154 rad/s or a hair above 100 x its
    limit; a joint 1e307 rad out, or a hair beyond pi rad past a limit) raise the error of a NaN
    state, naming the input and the bound, instead of returning NaN torques."""
    rng = np.random.default_rng(31 if what == "q" else 32)
    c = OSC(panda) if kind == "osc" else QP(panda)
    for _ in range(20):
        q, qd = _beyond(panda, what, rng)
        goal = random_goal_near(rng, *panda.tcp_pose(np.clip(q, panda.q_min, panda.q_max)))
        with pytest.raises(ImplausibleInputError, match=rf"^{what} is beyond the physical bound"):
            c.compute(q, qd, goal)
        with pytest.raises(NonFiniteInputError):          # the same error class as NaN
            c.act(q, qd, goal)
    if kind == "qp":
        assert c.solves == 0


def test_the_state_bounds_are_where_their_docstrings_say(panda):
    q, qd = Q_HOME.copy(), VELOCITY_BOUND * panda.qd_max          # exactly on the bound: accepted
    qd[::2] *= -1.0
    q[3] = panda.q_max[3] + POSITION_BOUND
    q[0] = panda.q_min[0] - POSITION_BOUND
    got_q, got_qd = panda.check_state(q, qd)
    np.testing.assert_array_equal(got_q, q)
    assert panda.states_in_bounds(q, qd) and not panda.states_in_bounds(q, np.nextafter(qd, 2 * qd))
    assert VELOCITY_BOUND == 100.0 and POSITION_BOUND == pytest.approx(np.pi) and GOAL_POSITION_BOUND == 10.0
    np.testing.assert_array_equal(panda.states_in_bounds(np.array([Q_HOME, Q_HOME, q]),
                                                         np.array([np.zeros(7), np.full(7, np.nan), qd])),
                                  [True, False, True])


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_fuzz_inputs_within_the_bounds_give_finite_torques_within_limits(panda, kind):
    """Random states anywhere within the bounds (velocities up to 100 x the limits, joints up to pi
    past them, some exactly on the bounds) and goals up to 10 m away: finite torques within limits."""
    rng = np.random.default_rng(33)
    c = OSC(panda) if kind == "osc" else QP(panda)
    lo, hi = panda.q_min - POSITION_BOUND, panda.q_max + POSITION_BOUND
    for i in range(150):
        q = rng.uniform(lo, hi) if i % 3 else np.where(rng.random(7) < 0.5, lo, hi)
        qd = VELOCITY_BOUND * panda.qd_max * (rng.uniform(-1.0, 1.0, 7) if i % 2 else rng.choice([-1.0, 1.0], 7))
        p = GOAL_POSITION_BOUND * (rng.uniform(-1.0, 1.0, 3) if i % 4 else rng.choice([-1.0, 1.0], 3))
        out = c.compute(q, qd, PoseGoal(p, so3_exp(rng.normal(size=3) * 2.0)))
        assert np.all(np.isfinite(out.tau)) and np.all(np.abs(out.tau) <= c.tau_max), f"state {i}"
        assert np.all(np.isfinite(out.tau_unclipped)) or kind == "qp"


#: a goal box within the Panda's reach (m, world), which keeps the OSC's goals reachable
REACHABLE_BOX = {"goal_box_min": (0.25, -0.4, 0.1), "goal_box_max": (0.65, 0.4, 0.7)}
#: rad: how far inside its position limits every joint stays in the closed-loop fuzz
FUZZ_LIMIT_MARGIN = 0.0


@pytest.mark.parametrize("kind", ["osc", "qp"])
def test_fuzz_closed_loop_random_goals_keep_joints_and_torques_within_limits(panda, sim, kind):
    """20 short episodes (1 s) from random states near home toward random goals, a third of them out of
    reach (0.9 to 1.3 m from the base) and orientations up to 1 rad off: every joint stays within its
    position limits (by FUZZ_LIMIT_MARGIN) and every torque within its limits. The QP runs with its
    defaults, the OSC with REACHABLE_BOX (its goals clamped into reach)."""
    rng = np.random.default_rng(35)
    config = OSCConfig(**REACHABLE_BOX) if kind == "osc" else QPConfig()
    out_of_reach = 0
    for episode in range(20):
        q0 = np.clip(Q_HOME + rng.uniform(-0.3, 0.3, 7), panda.q_min + 0.1, panda.q_max - 0.1)
        p0, R0 = panda.tcp_pose(q0)
        if episode % 3 == 0:
            direction = np.array([np.cos(a := rng.uniform(-1.0, 1.0)), np.sin(a), rng.uniform(-0.2, 0.5)])
            p = rng.uniform(0.9, 1.3) * direction / np.linalg.norm(direction)
            out_of_reach += 1
        else:
            p = p0 + rng.uniform(-0.3, 0.3, 3)
        controller = OSC(panda, config) if kind == "osc" else QP(panda, config)
        r = rollout(sim, controller, PoseGoal(p, so3_exp(rng.uniform(-1.0, 1.0, 3) / np.sqrt(3)) @ R0),
                    q0=q0, steps=CONTROL_HZ)
        worst = np.max(np.maximum(r.q - panda.q_max, panda.q_min - r.q))
        assert worst <= -FUZZ_LIMIT_MARGIN, f"{kind} episode {episode}: a joint {worst:.4f} rad past its limit"
        assert np.all(np.abs(r.tau) <= panda.tau_max) and np.all(np.isfinite(r.tau)), f"{kind} episode {episode}"
    assert out_of_reach == 7


def test_extreme_goal_position_is_refused_like_nan(panda):
    rng = np.random.default_rng(34)
    for _ in range(20):
        p = rng.uniform(-0.5, 0.5, 3)
        p[rng.integers(3)] = rng.choice([-1.0, 1.0]) * (10.0 ** rng.uniform(307, 308) if rng.random() < 0.5
                                                       else GOAL_POSITION_BOUND * (1 + 1e-9))
        with pytest.raises(ImplausibleInputError, match=r"^goal position is beyond the physical bound"):
            PoseGoal(p, so3_exp(rng.normal(size=3)))
    batch = np.zeros((4, 3))
    batch[2, 1] = 1e307
    with pytest.raises(NonFiniteInputError, match="goal position"):
        PoseGoal(batch, np.broadcast_to(np.eye(3), (4, 3, 3)))
    PoseGoal(np.full(3, GOAL_POSITION_BOUND), np.eye(3))        # on the bound: a goal


@pytest.mark.parametrize("name", ["scaled", "huge", "reflection", "shear", "one_of_a_batch"])
def test_goal_orientation_must_be_a_rotation(name):
    R0 = so3_exp(np.array([0.3, -0.2, 0.5]))
    R = {"scaled": 1.001 * R0, "huge": 1e307 * R0, "reflection": R0 @ np.diag([1.0, 1.0, -1.0]),
         "shear": R0 @ np.array([[1.0, 1e-3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
         "one_of_a_batch": np.stack([R0, R0, 1.01 * R0])}[name]
    p = np.zeros(R.shape[:-2] + (3,))
    with pytest.raises(ValueError, match=r"^goal orientation is not a rotation matrix"):
        PoseGoal(p, R)


def test_a_rotation_rounded_to_float32_is_still_a_goal():
    rng = np.random.default_rng(35)
    R = so3_exp(rng.normal(size=(200, 3)) * 2.0).astype(np.float32)
    goal = PoseGoal(np.zeros((200, 3)), R)
    assert goal.R.dtype == np.float64 and goal.R.shape == (200, 3, 3)


def test_a_bad_sample_in_a_batch_is_marked_and_the_others_are_computed_as_before(panda):
    """One NaN state (which raised LinAlgError for the whole batch), one whose kinematics overflow
    (qd 1e154) and one whose terms overflow (q 1.7e308: finite kinematics, infinite posture
    torque) get NaN terms and valid False; every other sample equals, bit for bit, the batch
    computed without them."""
    rng = np.random.default_rng(36)
    n = 12
    qs = np.array([panda.random_configuration(rng) for _ in range(n)])
    qs[7] = SINGULAR_STATES["exact"]
    qds = rng.uniform(-0.5, 0.5, (n, 7)) * panda.qd_max
    cfg = OSCConfig().for_joints(7, panda.home)
    good = np.ones(n, bool)
    good[[3, 5, 9]] = False
    with np.errstate(over="ignore"):
        ref = osc_terms(batch_kinematics(panda, qs[good], qds[good]), qs[good], qds[good], cfg)
    bad_q, bad_qd = qs.copy(), qds.copy()
    bad_q[3, 2] = np.nan
    bad_qd[9, 1] = 1e154
    bad_q[5, 0] = 1.7e308
    with np.errstate(over="ignore", invalid="ignore"):
        kin = batch_kinematics(panda, bad_q, bad_qd)
        terms = osc_terms(kin, bad_q, bad_qd, cfg)
    np.testing.assert_array_equal(terms.valid, good)
    for f in ("B", "c", "cond"):
        np.testing.assert_array_equal(getattr(terms, f)[good], getattr(ref, f))
        assert np.isnan(getattr(terms, f)[~good]).all()
    assert ref.valid.all() and np.isinf(ref.cond).sum() + np.isfinite(ref.cond).sum() == n - 3
    assert np.isfinite(kin.M[5]).all() and np.isfinite(kin.h[5]).all()      # only the terms overflow
    # one state: the same marks
    for i in (5, 9):
        with np.errstate(over="ignore", invalid="ignore"):
            one = osc_terms(panda.kinematics(bad_q[i], bad_qd[i]), bad_q[i], bad_qd[i], cfg)
        assert not one.valid and np.isnan(one.c).all() and np.isnan(one.B).all()
    # a batch of only bad samples
    with np.errstate(over="ignore", invalid="ignore"):
        none = osc_terms(_take(kin, ~good), bad_q[~good], bad_qd[~good], cfg)
    assert not none.valid.any()


def _take(kin: Kinematics, rows) -> Kinematics:
    return Kinematics(**{f: getattr(kin, f)[rows] for f in ("p", "R", "J", "M", "h")}, Minv=None)


def test_malformed_goal_shapes_are_rejected():
    with pytest.raises(ValueError, match="PoseGoal"):
        PoseGoal(np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="unit norm"):
        PoseGoal.from_pos_quat([0, 0, 0], [0, 0, 0, 2.0])


# -- the batched twin and the affine law -------------------------------------------------------

def _stack_kinematics(ks: list[Kinematics]) -> Kinematics:
    return Kinematics(**{f: np.stack([getattr(k, f) for k in ks]) for f in ("p", "R", "J", "M", "Minv", "h")})


def test_batched_osc_equals_per_sample_compute(panda):
    rng = np.random.default_rng(2024)
    n = 24
    qs = np.array([panda.random_configuration(rng) for _ in range(n)])
    qs[5] = SINGULAR_STATES["exact"]    # a singular sample takes the pseudo-inverse in both paths
    qs[11] = SINGULAR_STATES["1e-7"]
    qds = rng.uniform(-0.5, 0.5, (n, 7)) * panda.qd_max
    ks = [panda.kinematics(q, qd) for q, qd in zip(qs, qds)]
    p = np.array([k.p for k in ks]) + rng.normal(size=(n, 3)) * 0.1
    R = so3_exp(rng.normal(size=(n, 3)) * 0.4) @ np.array([k.R for k in ks])
    osc = OSC(panda, UNFILTERED)          # the law (the joint-limit filter acts on some of these states)
    with np.errstate(over="ignore"):
        terms = osc_terms(_stack_kinematics(ks), qs, qds, osc.config)
        batched = clip_torque(osc_law(terms, PoseGoal(p, R)), osc.tau_max)
    assert batched.tau.shape == (n, 7) and terms.B.shape == (n, 7, 6)
    for i in range(n):
        with np.errstate(over="ignore"):
            single = osc.compute(qs[i], qds[i], PoseGoal(p[i], R[i]))
        scale = max(1.0, np.abs(single.tau_unclipped).max())
        assert np.abs(batched.tau[i] - single.tau).max() <= 1e-10 * scale, f"sample {i}"
        assert np.abs(batched.tau_unclipped[i] - single.tau_unclipped).max() <= 1e-10 * scale, f"sample {i}"
        np.testing.assert_array_equal(batched.saturated[i], single.saturated)
    assert batched.saturated.any() and not batched.saturated.all()   # both regimes are in the batch
    with pytest.raises(ValueError, match="one state"):
        osc.compute(qs, qds, PoseGoal(p, R))


def test_osc_law_is_affine_in_the_task_error_with_the_documented_terms(panda):
    """tau(e1) - tau(e2) = B (e1 - e2), B = J^T Lambda K_p, checked against an independent
    evaluation of the documented law at well-conditioned states."""
    rng = np.random.default_rng(77)
    cfg = OSCConfig(kp=[150, 140, 130, 120, 110, 100], damping_ratio=[1.0, 0.9, 0.8, 1.1, 1.2, 0.7],
                    joint_limits=False, singularity_damping=0.0).for_joints(7, panda.home)
    osc = OSC(panda, cfg)
    kp, kd, kn = np.array(cfg.kp), 2 * np.array(cfg.damping_ratio) * np.sqrt(cfg.kp), cfg.nullspace_kp
    for _ in range(10):
        q = panda.random_configuration(rng, margin=0.3)
        qd = rng.uniform(-1, 1, 7)
        k = panda.kinematics(q, qd)
        terms = osc_terms(k, q, qd, cfg)
        # independent evaluation
        Lam = np.linalg.inv(k.J @ np.linalg.inv(k.M) @ k.J.T)
        B_ref = k.J.T @ Lam @ np.diag(kp)
        N = np.eye(7) - k.J.T @ Lam @ k.J @ np.linalg.inv(k.M)
        qdd_post = kn * (np.array(cfg.rest_posture) - q) - 2 * np.sqrt(kn) * qd
        c_ref = k.h + N @ k.M @ qdd_post - k.J.T @ Lam @ (kd * (k.J @ qd))
        np.testing.assert_allclose(terms.B, B_ref, rtol=1e-8, atol=1e-8 * np.abs(B_ref).max())
        np.testing.assert_allclose(terms.c, c_ref, rtol=1e-8, atol=1e-8 * np.abs(c_ref).max())

        g1, g2 = (random_goal_near(rng, k.p, k.R, 0.1, 0.4) for _ in range(2))

        def err(g):   # e = (p_g - p, 1/2 sum_i r_i x r_g,i)
            return np.concatenate([g.p - k.p, 0.5 * sum(np.cross(k.R[:, i], g.R[:, i]) for i in range(3))])

        e1, e2 = err(g1), err(g2)
        np.testing.assert_allclose(task_error(g1, k.p, k.R), e1, atol=1e-14)
        t1 = osc.compute(q, qd, g1).tau_unclipped
        t2 = osc.compute(q, qd, g2).tau_unclipped
        np.testing.assert_allclose(t1 - t2, terms.B @ (e1 - e2), rtol=1e-9, atol=1e-9 * np.abs(t1 - t2).max())
        np.testing.assert_allclose(t1, B_ref @ e1 + c_ref, rtol=1e-8, atol=1e-8 * np.abs(t1).max())
        # nullspace torque does not disturb the task: J M^-1 N = 0
        np.testing.assert_allclose(k.J @ np.linalg.inv(k.M) @ N, 0.0, atol=1e-9)


# -- goal conventions --------------------------------------------------------------------------

def test_goal_from_action_and_back_round_trip(panda):
    rng = np.random.default_rng(8)
    s = np.array(OSCConfig().output_max)
    for _ in range(50):
        q = panda.random_configuration(rng)
        p0, R0 = panda.tcp_pose(q)
        a = rng.uniform(-1.0, 1.0, 6)
        goal = goal_from_action(a, p0, R0, s)
        np.testing.assert_allclose(goal.p, p0 + s[:3] * a[:3], atol=1e-15)
        np.testing.assert_allclose(goal.R, so3_exp(s[3:] * a[3:]) @ R0, atol=1e-15)
        np.testing.assert_allclose(action_from_goal(goal, p0, R0, s), a, atol=1e-12)
        # the controller's own helper is the same map from the current TCP pose
        g2 = OSC(panda).goal_from_action(a, q)
        np.testing.assert_allclose(g2.p, goal.p, atol=1e-15)
        np.testing.assert_allclose(g2.R, goal.R, atol=1e-15)


def test_goal_from_action_clips_and_batches():
    s = np.array(OSCConfig().output_max)
    rng = np.random.default_rng(9)
    p0 = rng.normal(size=(16, 3))
    R0 = so3_exp(rng.normal(size=(16, 3)))
    a = rng.uniform(-3.0, 3.0, (16, 6))
    batched = goal_from_action(a, p0, R0, s)
    for i in range(16):
        single = goal_from_action(a[i], p0[i], R0[i], s)
        clipped = goal_from_action(np.clip(a[i], -1, 1), p0[i], R0[i], s)
        np.testing.assert_allclose(batched.p[i], single.p, atol=1e-15)
        np.testing.assert_allclose(batched.R[i], single.R, atol=1e-15)
        np.testing.assert_allclose(single.p, clipped.p, atol=1e-15)
        np.testing.assert_allclose(single.R, clipped.R, atol=1e-15)
    np.testing.assert_allclose(action_from_goal(batched, p0, R0, s), np.clip(a, -1, 1), atol=1e-12)


@pytest.mark.parametrize("angle", [0.0, 1e-12, 1e-9, 1e-7, 1e-6, 1e-5, 1e-3, 0.1, 1.0, 2.0, 3.0,
                                   np.pi - 1e-3, np.pi - 2e-4])
def test_so3_log_inverts_so3_exp(angle):
    rng = np.random.default_rng(10)
    u = rng.normal(size=(200, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = angle * u
    R = so3_exp(w)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-14)
    tol = 1e-12 if angle <= 2.0 else 2e-7
    np.testing.assert_allclose(so3_log(R), w, rtol=0, atol=tol)
    for i in range(0, 200, 40):   # batched and single agree
        np.testing.assert_allclose(so3_log(R[i]), so3_log(R)[i], atol=1e-15)


@pytest.mark.parametrize("gap", [5e-5, 1e-5, 1e-7])
def test_so3_log_inverts_so3_exp_within_1e_4_of_pi(gap):
    rng = np.random.default_rng(10)
    u = rng.normal(size=(200, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = (np.pi - gap) * u
    np.testing.assert_allclose(so3_log(so3_exp(w)), w, rtol=0, atol=2e-7)


def test_orientation_error_is_sin_theta_times_axis():
    rng = np.random.default_rng(12)
    for _ in range(100):
        R = so3_exp(rng.normal(size=3))
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        theta = rng.uniform(0.0, np.pi)
        R_goal = so3_exp(theta * u) @ R            # world-frame rotation from R to R_goal
        np.testing.assert_allclose(orientation_error(R_goal, R), np.sin(theta) * u, atol=1e-12)
    np.testing.assert_allclose(orientation_error(R, R), np.zeros(3), atol=1e-15)
    # batched
    Rs = so3_exp(rng.normal(size=(8, 3)))
    ws = rng.normal(size=(8, 3)) * 0.5
    e = orientation_error(so3_exp(ws) @ Rs, Rs)
    t = np.linalg.norm(ws, axis=1, keepdims=True)
    np.testing.assert_allclose(e, np.sin(t) * ws / t, atol=1e-12)


def test_quaternion_goal_matches_rotation_matrix():
    # 90 degrees about z: (x, y, z, w) = (0, 0, sin 45, cos 45)
    goal = PoseGoal.from_pos_quat([0.1, 0.2, 0.3], [0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    np.testing.assert_allclose(goal.R, so3_exp(np.array([0.0, 0.0, np.pi / 2])), atol=1e-15)
    np.testing.assert_allclose(goal.p, [0.1, 0.2, 0.3])


# -- the OSC's joint-limit filter --------------------------------------------------------------

def test_osc_limit_filter_leaves_the_law_unchanged_within_the_limits(panda):
    """Where the law's accelerations meet the joint constraints the filtered OSC returns the law's torque
    bit for bit, with status ok and nothing counted: on every state the reach expert visits, and on
    most random states near home moving toward random goals (some of which the filter projects)."""
    from ohio_core.bench.controllers import _visited_states
    rng = np.random.default_rng(41)
    expert = _visited_states(panda, 300, seed=0)
    random = []
    for _ in range(200):
        q = Q_HOME + rng.uniform(-0.5, 0.5, 7)
        p0, R0 = panda.tcp_pose(q)
        random.append((q, rng.uniform(-0.5, 0.5, 7), random_goal_near(rng, p0, R0)))
    for states, most in ((expert, 1.0), (random, 0.9)):
        filtered, plain = OSC(panda), OSC(panda, UNFILTERED)
        for q, qd, goal in states:
            a, b = filtered.compute(q, qd, goal), plain.compute(q, qd, goal)
            if a.status == STATUS_OK:
                for field in ("tau", "tau_unclipped", "saturated"):
                    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        assert filtered.limit_filtered <= (1.0 - most) * len(states), filtered.limit_filtered
        assert plain.limit_filtered == 0 and plain.steps == filtered.steps == len(states)


def _near_limit_states(panda, rng, count):
    """States with one or two joints within 0.15 rad of a limit (or just past the margin), moving toward it."""
    out = []
    for _ in range(count):
        q = np.clip(Q_HOME + rng.uniform(-0.4, 0.4, 7), panda.q_min + 0.2, panda.q_max - 0.2)
        qd = rng.uniform(-0.3, 0.3, 7)
        for j in rng.choice(7, size=rng.integers(1, 3), replace=False):
            upper = rng.random() < 0.5
            room = rng.uniform(0.0, 0.15)
            q[j] = panda.q_max[j] - room if upper else panda.q_min[j] + room
            qd[j] = (1.0 if upper else -1.0) * rng.uniform(0.0, 1.0) * panda.qd_max[j]
        out.append((q, qd))
    return out


def test_osc_limit_filter_meets_the_joint_constraints_near_the_limits(panda):
    """States near the limits, moving toward them, with goals that pull further: where the filter
    projects (status filtered) the accelerations M^-1 (tau - h) meet every joint constraint (the
    QP's, ``controllers.limits``), and no torque within the limits that meets them is closer to
    the law's in the metric of M^-1; where they cannot be met it brakes."""
    from controllers.limits import joint_constraints
    from controllers.osc import STATUS_BRAKE as OSC_BRAKE, STATUS_FILTERED, osc_step
    rng = np.random.default_rng(42)
    osc = OSC(panda)
    cfg, T = osc.config, osc.config.control_period
    counts = {STATUS_OK: 0, STATUS_FILTERED: 0, OSC_BRAKE: 0}
    for q, qd in _near_limit_states(panda, rng, 150):
        p0, R0 = panda.tcp_pose(q)
        goal = PoseGoal(p0 + rng.uniform(-0.4, 0.4, 3), so3_exp(rng.uniform(-1.0, 1.0, 3)) @ R0)
        out = osc.compute(q, qd, goal)
        counts[out.status] += 1
        assert np.all(np.abs(out.tau) <= osc.tau_max) and np.all(np.isfinite(out.tau))
        kin = panda.kinematics(q, qd)
        C, b = joint_constraints(kin, q, qd, T, cfg.position_margin, cfg.braking_acceleration,
                                 panda.q_min, panda.q_max, panda.qd_max, osc.tau_max)
        qdd = np.linalg.solve(kin.M, out.tau - kin.h)
        law = osc_step(kin, q, qd, goal, cfg, osc.tau_max)
        if out.status == STATUS_OK:
            assert np.all(C.T @ qdd >= b - 1e-9)
            np.testing.assert_array_equal(out.tau, law.tau)
        elif out.status == STATUS_FILTERED:
            assert np.all(C.T @ qdd >= b - 1e-6), np.min(C.T @ qdd - b)
            qdd_law = np.linalg.solve(kin.M, law.tau - kin.h)
            cost = (qdd - qdd_law) @ kin.M @ (qdd - qdd_law)
            # any other point of the feasible set, e.g. the midpoint toward a random feasible one, costs more
            for _ in range(5):
                other = quadprog.solve_qp(kin.M, kin.M @ (qdd_law + rng.normal(size=7) * 5.0), C, b, 0)[0]
                mid = 0.5 * (qdd + other)
                assert cost <= (mid - qdd_law) @ kin.M @ (mid - qdd_law) + 1e-9
    assert counts[STATUS_FILTERED] > 30 and counts[OSC_BRAKE] > 10 and counts[STATUS_OK] > 0, counts
    assert osc.limit_filtered == counts[STATUS_FILTERED] + counts[OSC_BRAKE]
    assert osc.limit_brakes == counts[OSC_BRAKE] and osc.steps == 150


@pytest.mark.parametrize("index", range(len(INFEASIBLE_STATES)))
def test_osc_limit_filter_brakes_where_the_limits_cannot_be_met(panda, index):
    """The QP's infeasible states: the filtered OSC returns the QP's braking torque (status brake)."""
    from controllers.limits import brake_torque
    from controllers.osc import STATUS_BRAKE as OSC_BRAKE
    q, qd = INFEASIBLE_STATES[index]
    osc = OSC(panda)
    out = osc.compute(q, qd, _goal_at(panda, Q_HOME))
    assert out.status == OSC_BRAKE and osc.limit_brakes == 1 and osc.limit_filtered == 1
    expected = brake_torque(panda.kinematics(q, qd), q, qd, osc.config, osc.tau_max,
                            panda.q_min, panda.q_max, panda.qd_max)
    np.testing.assert_allclose(out.tau, expected, rtol=0, atol=1e-9)
    assert np.all(np.abs(out.tau) <= osc.tau_max)


def test_osc_limit_filter_is_a_config_flag(panda):
    assert OSCConfig().joint_limits is True and UNFILTERED.joint_limits is False
    assert OSCConfig.from_dict({"joint_limits": False, "singularity_damping": 0.0}) == UNFILTERED
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError, match=r"OSCConfig\.joint_limits must be"):
            OSCConfig(joint_limits=bad)
    q, qd = INFEASIBLE_STATES[0]
    plain = OSC(panda, UNFILTERED)
    out = plain.compute(q, qd, _goal_at(panda, Q_HOME))
    assert out.status == STATUS_OK and plain.limit_filtered == 0 and plain.steps == 1
