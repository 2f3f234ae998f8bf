"""OHIO inverse problems: round trips from known goals through the controller and back."""

import numpy as np
import pytest

from controllers.config import OSCConfig
from controllers.description import Q_HOME
from controllers.osc import OSC
from controllers.robot import ArmModel
from ohio_core.inverse import Segments, Status, invert
from ohio_core.inverse.synthetic import recovery, simulate_segments


#: the OSC's law, which the inverses invert: the joint-limit filter left off (it changes the torque of
#: some of these random states, as saturation does)
LAW = OSCConfig(joint_limits=False, singularity_damping=0.0)


@pytest.fixture(scope="module")
def model():
    return ArmModel()


def random_states(model, n, rng, velocity_std=0.3):
    q = np.clip(Q_HOME + rng.uniform(-0.5, 0.5, (n, 7)), model.q_min + 0.05, model.q_max - 0.05)
    return q, rng.normal(0.0, velocity_std, (n, 7))


def one_step_segments(controller, n, rng, velocity_std=0.3, rotation_scale=1.0):
    """Random reachable states, random goals, the controller's torques: k = 1 segments."""
    q, qd = random_states(controller.model, n, rng, velocity_std)
    actions = rng.uniform(-1, 1, (n, 6)) * np.r_[1.0, 1.0, 1.0, [rotation_scale] * 3]
    goals = [controller.goal_from_action(a, qi) for a, qi in zip(actions, q)]
    outs = [controller.compute(qi, qdi, g) for qi, qdi, g in zip(q, qd, goals)]
    tau = np.array([o.tau for o in outs])
    sat = np.array([o.saturated for o in outs])
    gp, gR = np.array([g.p for g in goals]), np.array([g.R for g in goals])
    return Segments(q[:, None], qd[:, None], tau[:, None]), gp, gR, actions, sat


@pytest.mark.parametrize("method", ["analytical", "numerical"])
def test_round_trip_unsaturated_recovers_goal_to_1e8(model, method):
    ctl = OSC(model, LAW)
    seg, gp, gR, actions, sat = one_step_segments(ctl, 300, np.random.default_rng(0))
    keep = ~sat.any(1)
    assert keep.sum() > 250
    res = invert(method, seg.take(keep), ctl)
    perr, oerr, _ = recovery(res, gp[keep], gR[keep])
    assert np.all(res.status == Status.OK)
    assert perr.max() < 1e-8 and oerr.max() < 1e-8
    np.testing.assert_allclose(res.action, actions[keep], atol=1e-7)
    assert res.residual.max() < 1e-8


def test_round_trip_with_another_deployment_config(model):
    """Goals are expressed for the deployment controller: invert config B's law, normalize by B's scale."""
    source = OSC(model, LAW)
    deploy = OSC(model, LAW.replace(kp=[150, 150, 150, 50, 50, 50], damping_ratio=3.0,
                                  output_max=[0.05, 0.05, 0.05, 1.0, 1.0, 1.0]))
    # B's orientation gain is 3x lower: it can only match A's torque for A's rotations with
    # 3 sin(theta_A) < 1; larger ones come back OUT_OF_RANGE, counted, never used silently
    seg, *_ = one_step_segments(source, 200, np.random.default_rng(1), velocity_std=0.05, rotation_scale=0.2)
    res = invert("analytical", seg, deploy)
    ok = res.ok & ~res.clipped
    assert res.ok.mean() > 0.95 and ok.mean() > 0.7     # the rest need actions beyond B's [-1, 1]
    wide, *_ = one_step_segments(source, 100, np.random.default_rng(1), velocity_std=0.05)
    assert (invert("analytical", wide, deploy).status == Status.OUT_OF_RANGE).mean() > 0.5
    # replaying the recovered goal through B gives back the logged torque
    for i in np.flatnonzero(ok)[:20]:
        goal = deploy.goal_from_action(res.action[i], seg.q[i, 0])
        np.testing.assert_allclose(deploy.act(seg.q[i, 0], seg.qd[i, 0], goal), seg.tau[i, 0], atol=1e-6)


def test_numerical_recovers_saturated_segments(model):
    """>= 10% of torque entries clip; the numerical inverse recovers >= 95% of goals (1 mm, 0.01 rad)."""
    ctl = OSC(model, LAW)
    data = simulate_segments(ctl, 400, k=5, seed=0, velocity_std=2.5)
    assert data.saturated.mean() >= 0.10
    res = invert("numerical", data.segments, ctl)
    _, _, rec = recovery(res, data.goal_p, data.goal_R)
    assert rec.mean() >= 0.95, f"recovered {rec.mean():.3f}"
    analytical = invert("analytical", data.segments, ctl)
    _, _, rec_a = recovery(analytical, data.goal_p, data.goal_R)
    assert rec.mean() > rec_a.mean() + 0.2    # the closed form alone cannot handle saturation
    auto = invert("auto", data.segments, ctl)
    _, _, rec_auto = recovery(auto, data.goal_p, data.goal_R)
    assert rec_auto.mean() >= 0.95 and auto.info["numerical_segments"] == int((analytical.status != Status.OK).sum())


def test_analytical_flags_what_it_cannot_invert(model):
    ctl = OSC(model, LAW)
    rng = np.random.default_rng(2)
    seg, *_ = one_step_segments(ctl, 50, rng)
    tau = seg.tau.copy()
    tau[0, 0, :3] = ctl.tau_max[:3]                  # 3 entries at the limit: only 4 informative
    tau[1, 0, 2] = np.nan
    res = invert("analytical", Segments(seg.q, seg.qd, tau), ctl)
    assert res.status[0] == Status.ILL_POSED
    assert res.status[1] == Status.NON_FINITE
    assert np.all(np.isfinite(res.action))           # failed entries never leak NaN downstream
    assert res.counts()["ok"] == 48


def test_parallel_workers_give_identical_results(model):
    ctl = OSC(model, LAW)
    seg, *_ = one_step_segments(ctl, 60, np.random.default_rng(3))
    big = Segments(*(np.repeat(a, 200, axis=0) for a in (seg.q, seg.qd, seg.tau)))
    one = invert("analytical", big, ctl, workers=1)
    two = invert("analytical", big, ctl, workers=2)
    np.testing.assert_array_equal(one.action, two.action)
    np.testing.assert_array_equal(one.status, two.status)


def test_unknown_method_and_wrong_controller(model):
    from controllers.qp import QP

    seg, *_ = one_step_segments(OSC(model, LAW), 3, np.random.default_rng(4))
    with pytest.raises(ValueError, match="unknown inverse method"):
        invert("magic", seg, OSC(model, LAW))
    with pytest.raises(ValueError, match="closed-form"):
        invert("analytical", seg, QP(model))


def test_qp_kkt_round_trip_recovers_goal_to_1e8(model):
    from controllers.qp import QP

    ctl = QP(model)
    seg, gp, gR, actions, _ = one_step_segments(ctl, 200, np.random.default_rng(5))
    res = invert("qp", seg, ctl)
    perr, oerr, _ = recovery(res, gp, gR)
    assert np.all(res.status == Status.OK)
    assert perr.max() < 1e-8 and oerr.max() < 1e-8
    # some states had an active constraint (joint velocity/position/torque), still exact
    data = simulate_segments(ctl, 60, k=5, seed=1, velocity_std=1.5)
    res = invert("qp", data.segments, ctl)
    perr, oerr, _ = recovery(res, data.goal_p, data.goal_R)
    ok = res.ok
    assert ok.mean() > 0.9 and perr[ok].max() < 1e-8 and oerr[ok].max() < 1e-8
    assert (res.info["active_constraints"][ok] > 0).any()


@pytest.mark.parametrize("method", ["analytical", "state_matching"])
def test_driver_gravity_convention_segments_are_simulated_and_inverted_in_that_convention(model, method):
    """A controller that leaves g(q) to the driver runs in a simulator that adds it (simulate_segments
    builds that simulator): its segments round-trip, torques and rollouts alike."""
    ctl = OSC(model, LAW.replace(gravity_compensation="driver"))
    data = simulate_segments(ctl, 8, k=5, seed=5, velocity_std=0.1, action_scale=0.3)
    s = data.segments
    segments = s if method == "analytical" else Segments(s.q, s.qd, None, s.q_next, s.qd_next)
    res = invert(method, segments, ctl)
    perr, oerr, recovered = recovery(res, data.goal_p, data.goal_R)
    assert np.all(res.status == Status.OK) and recovered.all()
    if method == "analytical":                  # exact; state matching's rollouts integrate differently
        assert perr.max() < 1e-8 and oerr.max() < 1e-8


def test_naive_baseline_is_the_pose_k_steps_later_and_misses_the_goal(model):
    ctl = OSC(model, LAW)
    data = simulate_segments(ctl, 40, k=5, seed=2)
    res = invert("naive", data.segments, ctl)
    end_p, _ = model.tcp_pose(data.segments.q_next[0])
    np.testing.assert_allclose(res.goal_p[0], end_p, atol=1e-12)
    perr, _, _ = recovery(res, data.goal_p, data.goal_R)
    assert np.median(perr) > 5e-3           # a finite-gain controller is not at its goal after k steps


def test_cem_recovers_most_goals_without_gradients(model):
    ctl = OSC(model, LAW)
    data = simulate_segments(ctl, 40, k=5, seed=3)
    res = invert("cem", data.segments, ctl, seed=0)
    perr, oerr, rec = recovery(res, data.goal_p, data.goal_R)
    assert rec.mean() >= 0.8, f"recovered {rec.mean():.2f}"
    again = invert("cem", data.segments, ctl, seed=0)
    np.testing.assert_array_equal(res.action, again.action)       # seeded


def test_state_matching_recovers_goals_without_torques(model):
    """No torques logged: the goal whose rollout (Pinocchio dynamics) reaches the observed next state."""
    ctl = OSC(model, LAW)
    data = simulate_segments(ctl, 12, k=5, seed=4)
    s = data.segments
    res = invert("state_matching", Segments(s.q, s.qd, None, s.q_next, s.qd_next), ctl)
    _, _, rec = recovery(res, data.goal_p, data.goal_R)
    assert rec.mean() == 1.0 and res.ok.all()
    with pytest.raises(ValueError, match="state after each segment"):
        invert("state_matching", Segments(s.q, s.qd, None), ctl)


def test_pinocchio_dynamics_batch_equals_aba_per_sample_and_pickles(model):
    """One batched period equals semi-implicit Euler on pin.aba sample by sample, on 1 or 2 threads."""
    import pickle

    import pinocchio as pin

    from ohio_core.inverse.state_matching import PinocchioDynamics

    rng = np.random.default_rng(7)
    q = Q_HOME + rng.normal(0, 0.3, (9, 7))
    qd, tau = rng.normal(0, 1.0, (9, 7)), rng.uniform(-10, 10, (9, 7))
    m, d = model.model, model.model.createData()
    dt, damping = 0.02 / 4, np.asarray(model.model.damping)
    q_ref, qd_ref = q.copy(), qd.copy()
    given = q.copy(), qd.copy(), tau.copy()
    for _ in range(4):
        for i in range(len(q)):
            qd_ref[i] += dt * pin.aba(m, d, q_ref[i], qd_ref[i], tau[i] - damping * qd_ref[i])
            q_ref[i] += dt * qd_ref[i]
    for threads in (1, 2):
        dyn = PinocchioDynamics(model, 0.02, substeps=4, threads=threads)
        q1, qd1 = dyn.step(q, qd, tau)
        np.testing.assert_allclose(q1, q_ref, atol=1e-9)
        np.testing.assert_allclose(qd1, qd_ref, atol=1e-7)
        q2, qd2 = pickle.loads(pickle.dumps(dyn)).step(q, qd, tau)
        np.testing.assert_array_equal(q2, q1)
    for before, after in zip(given, (q, qd, tau)):               # inputs untouched
        np.testing.assert_array_equal(before, after)
    with pytest.raises(ValueError, match="threads"):
        PinocchioDynamics(model, 0.02, threads=0)


def test_batch_kinematics_equals_the_models_one_state_kinematics(model):
    """The batch (CRBA's WORLD pass for the TCP Jacobian and pose, batched RNEA for h) against
    ``ArmModel.kinematics`` state by state, drift included; an empty batch keeps its shapes."""
    from ohio_core.inverse.terms import batch_kinematics

    rng = np.random.default_rng(9)
    q, qd = random_states(model, 40, rng, velocity_std=1.0)
    batch = batch_kinematics(model, q, qd, drift=True)
    for i in range(len(q)):
        one = model.kinematics(q[i], qd[i], drift=True)
        for name in ("p", "R", "J", "M", "h", "dJqd"):
            np.testing.assert_allclose(getattr(batch, name)[i], getattr(one, name), rtol=0, atol=1e-12, err_msg=name)
    empty = batch_kinematics(model, q[:0], qd[:0])
    assert empty.M.shape == (0, 7, 7) and empty.h.shape == (0, 7) and empty.p.shape == (0, 3)


def test_batch_gravity_equals_the_models_gravity_and_a_gravity_free_copy_has_none(model):
    from ohio_core.inverse.terms import batch_gravity

    q, _ = random_states(model, 30, np.random.default_rng(4))
    np.testing.assert_allclose(batch_gravity(model, q), [model.gravity(x) for x in q], rtol=0, atol=1e-12)
    assert np.all(batch_gravity(model.without_gravity(), q) == 0.0)
    assert batch_gravity(model, q[:0]).shape == (0, 7)


def test_parallel_workers_exit_without_being_terminated(model, capfd):
    """The forked workers finish on their own: a SIGTERM handler of the caller (the CLI stops a command
    on SIGTERM by raising) is never run in them on the way out."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt("terminated")

    ctl = OSC(model, LAW)
    seg, *_ = one_step_segments(ctl, 60, np.random.default_rng(3))
    big = Segments(*(np.repeat(a, 200, axis=0) for a in (seg.q, seg.qd, seg.tau)))
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        res = invert("analytical", big, ctl, workers=2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(res.status) == len(big)
    assert "terminated" not in capfd.readouterr().err


@pytest.mark.parametrize("method", ["analytical", "numerical"])
def test_a_recovered_goal_outside_the_workspace_is_clamped_and_counted_as_clipped(model, method):
    """A goal the deployment controller would have clamped into its workspace is clamped into it and
    marked ``clipped``, as an action beyond [-1, 1] is; the goals inside come back unchanged."""
    source = OSC(model, LAW)
    seg, gp, gR, _, sat = one_step_segments(source, 200, np.random.default_rng(7), rotation_scale=0.3)
    keep = ~sat.any(1)
    seg, gp = seg.take(keep), gp[keep]
    centre = np.median(gp, axis=0)
    box = LAW.replace(goal_box_min=centre - [2.0, 2.0, 0.0], goal_box_max=centre + [2.0, 2.0, 2.0])
    free, boxed = invert(method, seg, source), invert(method, seg, OSC(model, box))
    outside = free.goal_p[:, 2] < centre[2]
    assert 0.3 < outside.mean() < 0.7
    assert np.all(free.ok) and np.all(boxed.ok)
    np.testing.assert_array_equal(boxed.clipped, free.clipped | outside)
    assert boxed.clipped.sum() > free.clipped.sum()
    np.testing.assert_allclose(boxed.goal_p[outside, 2], centre[2])
    np.testing.assert_allclose(boxed.goal_p[outside, :2], free.goal_p[outside, :2])
    np.testing.assert_array_equal(boxed.goal_p[~outside], free.goal_p[~outside])
