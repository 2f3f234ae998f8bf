"""Model error: scaled link inertias, simulator-only friction, and what each does to each inverse."""

import json

import numpy as np
import pytest

from controllers.osc import OSC
from controllers.robot import ArmModel
from ohio_core.cli.main import main
from ohio_core.envs.arm.scene import SceneConfig, build_model
from ohio_core.envs.arm.sim import ArmSim
from ohio_core.experiments.model_error import ModelErrorConfig, mass_factors
from ohio_core.experiments.recovery import goal_errors
from ohio_core.inverse import Segments, invert
from ohio_core.inverse.synthetic import simulate_segments


@pytest.fixture(scope="module")
def model():
    return ArmModel()


def test_scaled_model_changes_masses_and_inertias_by_the_factors(model):
    f = mass_factors(0.3, seed=0)
    assert np.allclose(np.abs(f - 1.0), 0.3) and len(set(np.sign(f - 1.0))) == 2      # both signs drawn
    assert np.array_equal(f, mass_factors(0.3, seed=0)) and not np.array_equal(f, mass_factors(0.3, seed=1))
    scaled = model.scaled(f)
    np.testing.assert_allclose(scaled.link_masses(), f * model.link_masses(), rtol=1e-15)
    for i in range(1, 8):
        a, b = model.model.inertias[i], scaled.model.inertias[i]
        np.testing.assert_allclose(b.inertia, f[i - 1] * a.inertia, rtol=1e-15)
        np.testing.assert_array_equal(b.lever, a.lever)
    q = model.random_configuration(np.random.default_rng(0))
    assert not np.allclose(scaled.mass_matrix(q), model.mass_matrix(q))
    assert np.array_equal(model.link_masses(), ArmModel().link_masses())            # the nominal is untouched
    p, R = scaled.tcp_pose(q)
    p0, R0 = model.tcp_pose(q)
    np.testing.assert_array_equal(p, p0)                                               # kinematics unchanged


def test_zero_error_is_the_nominal_model(model):
    same = model.scaled(mass_factors(0.0, seed=3))
    rng = np.random.default_rng(1)
    for _ in range(5):
        q, qd = model.random_configuration(rng), rng.normal(0, 0.5, 7)
        a, b = model.kinematics(q, qd), same.kinematics(q, qd)
        for name in ("M", "h", "J", "p", "R"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    with pytest.raises(ValueError, match="positive"):
        model.scaled(np.r_[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])


def test_simulator_friction_is_added_to_the_arm_joints_only():
    base, rough = build_model(), build_model(SceneConfig(arm_damping=0.5, arm_frictionloss=0.2))
    arm = slice(0, 7)
    np.testing.assert_allclose(rough.dof_damping[arm], base.dof_damping[arm] + 0.5)
    np.testing.assert_allclose(rough.dof_frictionloss[arm], base.dof_frictionloss[arm] + 0.2)
    np.testing.assert_array_equal(rough.dof_damping[7:], base.dof_damping[7:])
    # viscous damping only: MuJoCo's higher-order (quadratic, cubic) damping coefficients stay zero
    np.testing.assert_array_equal(rough.dof_dampingpoly, base.dof_dampingpoly)
    assert not base.dof_dampingpoly.any()
    with pytest.raises(ValueError, match="arm_damping"):
        SceneConfig(arm_frictionloss=-1.0)


def _median_errors(res, data):
    perr, oerr = goal_errors(res.goal_p, res.goal_R, data.goal_p, data.goal_R)
    return np.median(perr), np.median(oerr)


def test_action_matching_is_exact_with_the_nominal_model_and_degrades_with_mass_error(model):
    data = simulate_segments(OSC(model), 30, k=5, seed=2, action_scale=0.3)
    assert not data.saturated.any()
    errors = {}
    for level in (0.0, 0.05, 0.3):
        ctl = OSC(model.scaled(mass_factors(level, seed=0)))
        errors[level] = {m: _median_errors(invert(m, data.segments, ctl), data) for m in ("analytical", "numerical")}
    for m in ("analytical", "numerical"):
        assert errors[0.0][m][0] < 1e-9 and errors[0.0][m][1] < 1e-8
        assert 1e-4 < errors[0.05][m][0] < errors[0.3][m][0]             # grows with the error
        assert errors[0.3][m][0] > 5e-3


def test_simulator_friction_degrades_state_matching_but_not_action_matching(model):
    ctl = OSC(model)
    sim = ArmSim(SceneConfig(arm_damping=0.6, arm_frictionloss=0.6))
    clean = simulate_segments(ctl, 12, k=5, seed=4, action_scale=0.3)
    rough = simulate_segments(ctl, 12, k=5, seed=4, action_scale=0.3, sim=sim)
    s = rough.segments
    assert _median_errors(invert("analytical", s, ctl), rough)[0] < 1e-9            # torques still match exactly
    sm = lambda d: invert("state_matching", Segments(d.segments.q, d.segments.qd, None, d.segments.q_next,  # noqa: E731
                                                     d.segments.qd_next), ctl)
    assert _median_errors(sm(clean), clean)[0] < 1e-5
    assert _median_errors(sm(rough), rough)[0] > 1e-3


def test_config_validation():
    with pytest.raises(ValueError, match="levels"):
        ModelErrorConfig(levels=(1.5,))
    with pytest.raises(ValueError, match="method"):
        ModelErrorConfig(methods=("cem",))
    with pytest.raises(ValueError, match="condition"):
        ModelErrorConfig(conditions=("weather",))
    cells = ModelErrorConfig(levels=(0.3, 0.0, 0.05), conditions=("model", "plant")).cells()
    assert cells == [("none", 0.0), ("model", 0.05), ("model", 0.3), ("plant", 0.05), ("plant", 0.3)]


@pytest.mark.slow
def test_experiment_model_error_cli(tmp_path, capsys):
    out_json = tmp_path / "me.json"
    argv = ["experiment", "model-error", "--episodes", "3", "--levels", "0", "0.3", "--conditions", "model", "plant",
            "--methods", "analytical", "state_matching", "--steps", "20", "--eval-episodes", "1", "--workers", "1",
            "--out", str(tmp_path / "run"), "--json", str(out_json)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    out = json.loads(text.strip().splitlines()[-1])
    assert out == json.loads(out_json.read_text())
    assert [(c["condition"], c["level"]) for c in out["cells"]] == [("none", 0.0), ("model", 0.3), ("plant", 0.3)]
    none, mass, plant = out["cells"]
    assert none["methods"]["analytical"]["recovered"] == 1.0
    assert mass["methods"]["analytical"]["pos_median_m"] > 1e-3                       # mass error hurts action matching
    assert plant["methods"]["analytical"]["recovered"] == 1.0                          # friction does not
    assert plant["methods"]["state_matching"]["pos_median_m"] > 1e-3                   # but hurts state matching
    assert "(true goals)" in text and (tmp_path / "run" / "model_error.png").stat().st_size > 0
    names = sorted(p.name for p in (tmp_path / "run" / "datasets").glob("*.h5"))
    assert names == ["analytical-model-30pct.h5", "analytical-none-0pct.h5", "analytical-plant-30pct.h5",
                     "logged-plant-0pct.h5", "logged-plant-30pct.h5", "state_matching-model-30pct.h5",
                     "state_matching-none-0pct.h5", "state_matching-plant-30pct.h5"]     # one file per cell
