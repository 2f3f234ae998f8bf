"""The learned dynamics model: fits held-out episodes, keeps its best checkpoint, reloads exactly,
and drives state matching in place of Pinocchio."""

import json

import numpy as np
import pytest
import torch

from controllers.osc import OSC
from controllers.robot import ArmModel
from ohio_core.cli.main import main
from ohio_core.data.collect import collect
from ohio_core.experiments.configs import ORIGINAL
from ohio_core.inverse import Segments, Status, invert
from ohio_core.inverse.state_matching import PinocchioDynamics
from ohio_core.inverse.synthetic import simulate_segments
from ohio_core.learning.dynamics import (DynamicsConfig, load_dynamics, prediction_error, split_by_episode,
                                         train_dynamics, transitions)


@pytest.fixture(scope="module")
def data():
    return transitions(collect("reach", "noisy0.3", ORIGINAL, episodes=4, seed=0, horizon=60))


@pytest.fixture(scope="module")
def fitted(data):
    return train_dynamics(data, DynamicsConfig(hidden=(32, 32), epochs=25, batch_size=64, lr=3e-3, patience=25))


def test_transitions_stay_inside_episodes(data):
    assert len(data) == 4 * 59                      # 60 rows per episode, the last has no successor in the log
    assert np.all(data.q_next != data.q)
    val = split_by_episode(data.episode, 0.25, seed=0)
    assert val.sum() == 59                          # one whole episode
    assert len(np.unique(data.episode[val])) == 1 and not np.isin(data.episode[~val], data.episode[val]).any()


def test_validation_loss_decreases_and_the_best_checkpoint_is_kept(data, fitted):
    h = fitted.history
    assert h["val"][h["best_epoch"] - 1] == min(h["val"]) == h["best_val"]
    assert h["best_val"] < 0.6 * h["val"][0]        # it learned something that holds on unseen episodes
    val = data.take(split_by_episode(data.episode, DynamicsConfig().val_fraction, 0))
    # the returned weights are the best epoch's: its validation loss, recomputed in float64
    s = fitted.stats
    q, qd = fitted.step(val.q, val.qd, val.tau)
    y = (np.concatenate([q - val.q, qd - val.qd], -1) - s["y_mean"]) / s["y_std"]
    target = (np.concatenate([val.q_next - val.q, val.qd_next - val.qd], -1) - s["y_mean"]) / s["y_std"]
    assert np.mean((y - target) ** 2) == pytest.approx(h["best_val"], rel=1e-3)
    err = prediction_error(fitted, val)
    assert err["qd_rms"] < np.sqrt(np.mean((val.qd_next - val.qd) ** 2))        # better than "no change"


def test_training_is_seeded_and_reload_gives_identical_predictions(data, fitted, tmp_path):
    path = fitted.save(tmp_path / "dyn")
    again = load_dynamics(path)
    q, qd = fitted.step(data.q, data.qd, data.tau)
    q2, qd2 = again.step(data.q, data.qd, data.tau)
    np.testing.assert_array_equal(q, q2)
    np.testing.assert_array_equal(qd, qd2)
    assert again.history == fitted.history and again.config == fitted.config
    cfg = DynamicsConfig(hidden=(16,), epochs=3, batch_size=64, seed=5)
    outer = torch.get_num_threads()
    torch.set_num_threads(cfg.threads + 2)
    try:
        a, b = train_dynamics(data, cfg), train_dynamics(data, cfg)
        assert torch.get_num_threads() == cfg.threads + 2      # training leaves the caller's thread count
    finally:
        torch.set_num_threads(outer)
    np.testing.assert_array_equal(a.step(data.q, data.qd, data.tau)[1], b.step(data.q, data.qd, data.tau)[1])


def test_affine_kind_is_linear_in_the_torque(data):
    m = train_dynamics(data, DynamicsConfig(kind="affine", hidden=(16,), epochs=2, batch_size=64))
    q, qd, tau = data.q[:5], data.qd[:5], data.tau[:5]
    f = lambda t: np.concatenate(m.step(q, qd, t), -1)  # noqa: E731
    np.testing.assert_allclose(f(tau + 2.0) - f(tau), f(tau + 4.0) - f(tau + 2.0), atol=1e-12)


def test_state_matching_runs_with_the_learned_model(fitted):
    model = ArmModel()
    ctl = OSC(model)
    sim = simulate_segments(ctl, 6, k=5, seed=1, action_scale=0.3)
    s = sim.segments
    segs = Segments(s.q, s.qd, None, s.q_next, s.qd_next)
    res = invert("state_matching", segs, ctl, dynamics=fitted, iterations=2)
    assert res.goal_p.shape == (6, 3) and np.isfinite(res.goal_p).all() and np.isfinite(res.residual).all()
    assert res.info["dynamics"] == "LearnedDynamics"
    assert set(np.unique(res.status)) <= {Status.OK, Status.NOT_CONVERGED}
    # the Pinocchio default, passed explicitly, is the default exactly
    a = invert("state_matching", segs, ctl, iterations=2)
    b = invert("state_matching", segs, ctl, iterations=2, dynamics=PinocchioDynamics(model, 0.02, 10))
    np.testing.assert_array_equal(a.goal_p, b.goal_p)


def test_config_validation():
    with pytest.raises(ValueError, match="kind"):
        DynamicsConfig(kind="gp")
    with pytest.raises(ValueError, match="val_fraction"):
        DynamicsConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="2 episodes"):
        split_by_episode(np.zeros(10, int), 0.2, 0)


@pytest.mark.slow
def test_experiment_learned_dynamics_cli(tmp_path, capsys):
    argv = ["experiment", "learned-dynamics", "--episodes", "3", "--plants", "nominal", "--dynamics-epochs", "2",
            "--steps", "20", "--eval-episodes", "1", "--workers", "1", "--out", str(tmp_path / "run"), "--json"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    out = json.loads(text.strip().splitlines()[-1])
    nominal = out["plants"]["nominal"]
    assert set(nominal["methods"]) == {"known", "learned"} and nominal["logged"] is not None
    assert nominal["methods"]["known"]["recovered"] > 0.9
    for f in ("result.json", "dynamics.png", "learned_dynamics.png", "dynamics/nominal.pt"):
        assert (tmp_path / "run" / f).stat().st_size > 0, f
