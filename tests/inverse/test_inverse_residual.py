"""The residual every inverse reports covers all k periods of its segment.

One definition for every torque-matching method: the RMS over the k periods and 7 joints of
clip(pi_LL(s_j, g*)) - tau_j, the recovered goal pushed through the deployment controller at each
logged state against the logged torques. Here it is evaluated state by state through the
controllers' public ``act`` and compared with what each method reports; a wrong k, a wrong
controller config and a corrupted last period must show in it, and relabeling must drop such
segments by ``max_residual``.
"""

import numpy as np
import pytest

from controllers.config import OSCConfig
from controllers.goals import PoseGoal
from controllers.osc import OSC
from controllers.qp import QP
from controllers.robot import ArmModel
from ohio_core.data.collect import collect
from ohio_core.inverse import Segments, Status, invert
from ohio_core.inverse.synthetic import simulate_segments
from ohio_core.pipeline.relabel import relabel

#: torque added to one joint in the last period of every segment (N m)
BUMP = 3.0


@pytest.fixture(scope="module")
def model():
    return ArmModel()


@pytest.fixture(scope="module")
def osc(model):
    return OSC(model)


@pytest.fixture(scope="module")
def traj(model):
    """Two reach episodes, a goal held for k = 5 control periods."""
    return collect("reach", "noisy0.3", OSCConfig(), episodes=2, seed=0, horizon=70, k=5, model=model)


def by_hand(controller, seg: Segments, res) -> np.ndarray:
    """sqrt(mean_{j, i} (act(s_j, g*) - tau_j)_i^2) per segment, one state at a time."""
    out = []
    for i in range(len(seg)):
        goal = PoseGoal(res.goal_p[i], res.goal_R[i])
        pred = np.array([controller.act(seg.q[i, j], seg.qd[i, j], goal) for j in range(seg.k)])
        out.append(np.sqrt(np.mean((pred - seg.tau[i]) ** 2)))
    return np.array(out)


def bumped_last_period(seg: Segments) -> Segments:
    tau = seg.tau.copy()
    tau[:, -1, 0] += BUMP
    return Segments(seg.q, seg.qd, tau, seg.q_next, seg.qd_next)


@pytest.mark.parametrize("method, options", [("analytical", {}), ("auto", {}), ("numerical", {}),
                                             ("ml", {"sigma": 1.0}), ("cem", {"seed": 0})])
def test_every_method_reports_the_residual_over_all_k_periods(osc, method, options):
    data = simulate_segments(osc, 8, k=5, seed=8, action_scale=0.3)
    assert not data.saturated[:, :, 0].any()            # the bumped entry stays inside the limits
    clean = invert(method, data.segments, osc, **options)
    np.testing.assert_allclose(clean.residual, by_hand(osc, data.segments, clean), rtol=1e-9, atol=1e-12)
    seg = bumped_last_period(data.segments)
    res = invert(method, seg, osc, **options)
    np.testing.assert_allclose(res.residual, by_hand(osc, seg, res), rtol=1e-9, atol=1e-12)
    if method in ("analytical", "auto"):
        # the goal is solved at the first period, unaffected by the last: exactly the bump's share
        assert clean.residual.max() < 1e-10 and res.ok.all()
        np.testing.assert_allclose(res.residual, BUMP / np.sqrt(5 * 7), rtol=1e-9)
    else:
        # a fit over all periods shares the bump out, it cannot remove it
        assert res.residual.min() > 0.2 * BUMP / np.sqrt(5 * 7)


def test_qp_residual_is_the_qp_controllers_own_solve_at_every_period(model):
    qp = QP(model)
    data = simulate_segments(qp, 5, k=5, seed=1, action_scale=0.3)
    clean = invert("qp", data.segments, qp)
    assert clean.ok.all() and clean.residual.max() < 1e-6
    np.testing.assert_allclose(clean.residual, by_hand(qp, data.segments, clean), rtol=1e-9, atol=1e-12)
    seg = bumped_last_period(data.segments)
    res = invert("qp", seg, qp)
    np.testing.assert_allclose(res.residual, by_hand(qp, seg, res), rtol=1e-9, atol=1e-12)
    assert res.residual.min() > 0.2 * BUMP / np.sqrt(5 * 7)


@pytest.mark.parametrize("method", ["analytical", "auto", "numerical"])
def test_a_wrong_k_or_controller_shows_in_the_residual_and_drops_segments(osc, traj, method):
    right = relabel(traj, osc, 5, method, max_residual=1.0)
    assert right.residual.max() < 1e-10
    assert right.account["segments_written"] == right.account["segments_built"]
    # recorded with k = 5, relabeled with k = 7: the goal changes inside most segments
    wrong_k = relabel(traj, osc, 7, method, max_residual=np.inf)
    assert np.median(wrong_k.residual) > 1.0
    dropped = relabel(traj, osc, 7, method, max_residual=1.0).account
    by_residual = dropped["segments_dropped"]["residual above 1 N m"]
    # (Levenberg-Marquardt also gives up on some: no goal fits, a NOT_CONVERGED drop)
    assert by_residual >= (0.3 if method == "numerical" else 0.9) * dropped["segments_built"]
    assert dropped["segments_written"] <= 0.1 * dropped["segments_built"]
    # the data's controller has kp 150; relabeling for kp 100 cannot reproduce k periods of its torques
    other = OSC(osc.model, OSCConfig(kp=100.0))
    wrong_kp = relabel(traj, other, 5, method, max_residual=np.inf)
    assert np.median(wrong_kp.residual) > 0.1
    strict = relabel(traj, other, 5, method, max_residual=0.1).account
    assert strict["segments_dropped"]["residual above 0.1 N m"] >= 0.5 * strict["segments_built"]


def test_state_matching_residual_covers_every_period(osc):
    """Its goal matches the state after the segment; the residual it reports compares the rollout with
    the logged state after every period, so a corrupted intermediate state shows."""
    data = simulate_segments(osc, 4, k=5, seed=4)
    s = data.segments
    clean = invert("state_matching", Segments(s.q, s.qd, None, s.q_next, s.qd_next), osc)
    q = s.q.copy()
    q[:, 2, 0] += 0.01                                  # the state after the second period
    res = invert("state_matching", Segments(q, s.qd, None, s.q_next, s.qd_next), osc)
    np.testing.assert_array_equal(res.goal_p, clean.goal_p)          # the fit does not read it
    assert (res.status == Status.OK).all() and clean.residual.max() < 1e-4
    # one entry of the 5 x 14 compared is off by 0.01 rad
    np.testing.assert_allclose(res.residual, np.sqrt(clean.residual ** 2 + 0.01 ** 2 / 70), rtol=1e-2)


def test_a_period_the_law_cannot_be_evaluated_at_is_an_infinite_residual(osc):
    """A finite but absurd state inside the segment (not the first): the OSC terms there are NaN; the
    residual is inf, never a NaN that a threshold would let through."""
    data = simulate_segments(osc, 3, k=5, seed=8, action_scale=0.3)
    qd = data.segments.qd.copy()
    qd[0, 2] = 1e200
    seg = Segments(data.segments.q, qd, data.segments.tau)
    for method in ("analytical", "numerical"):
        res = invert(method, seg, osc)
        assert res.residual[0] == np.inf and res.residual[1:].max() < 1e-10
