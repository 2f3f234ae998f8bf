"""Stochastic low level (torque noise, the maximum-likelihood inverse) and mixed-controller datasets."""

import json

import numpy as np
import pytest

from controllers.config import OSCConfig
from controllers.description import Q_HOME
from controllers.osc import OSC
from controllers.robot import ArmModel
from ohio_core.cli.main import main
from ohio_core.data.collect import collect
from ohio_core.envs.arm.noise import NoisyController, torque_sigma
from ohio_core.experiments import mixed
from ohio_core.inverse import Status, invert
from ohio_core.inverse.synthetic import recovery, simulate_segments


@pytest.fixture(scope="module")
def controller():
    """The law the inverses model (the joint-limit filter off: fast start states reach the limits)."""
    return OSC(ArmModel(), OSCConfig(joint_limits=False, singularity_damping=0.0))


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_ml_equals_numerical_for_equal_weights(controller):
    # full-range goals: most segments have saturated torque entries (the censored ones)
    syn = simulate_segments(controller, 60, seed=4, velocity_std=2.5, action_scale=1.0, torque_sigma=0.5)
    assert syn.saturated.any((1, 2)).mean() > 0.3
    num = invert("numerical", syn.segments, controller)
    same = invert("ml", syn.segments, controller, sigma=1.0)
    np.testing.assert_array_equal(same.goal_p, num.goal_p)
    np.testing.assert_array_equal(same.goal_R, num.goal_R)
    np.testing.assert_array_equal(same.status, num.status)
    # a common scale does not move the minimum. Where Levenberg-Marquardt lost the goal (residual far
    # above the 0.5 N m noise: 4 of 60 here), its path, and where it stops, depends on that scale.
    scaled = invert("ml", syn.segments, controller, sigma=3.0)
    found = num.residual < 10 * 0.5
    assert found.sum() >= 50
    np.testing.assert_allclose(scaled.action[found], num.action[found], atol=1e-5)


def test_ml_recovers_goals_exactly_without_noise(controller):
    syn = simulate_segments(controller, 80, seed=5, action_scale=0.3)
    res = invert("ml", syn.segments, controller, sigma=torque_sigma(0.02, controller.tau_max))
    perr, oerr, _ = recovery(res, syn.goal_p, syn.goal_R)
    assert np.all(res.status == Status.OK)
    assert perr.max() < 1e-8 and oerr.max() < 1e-8
    np.testing.assert_allclose(res.action, syn.action * 1.0, atol=1e-7)


def test_ml_beats_single_step_and_unweighted_inverses_under_noise(controller):
    sigma = torque_sigma(0.02, controller.tau_max)
    syn = simulate_segments(controller, 200, seed=6, action_scale=0.3, torque_sigma=sigma)
    med = {}
    for method, opts in (("analytical", {}), ("numerical", {}), ("ml", {"sigma": sigma})):
        perr, oerr, _ = recovery(invert(method, syn.segments, controller, **opts), syn.goal_p, syn.goal_R)
        med[method] = (np.median(perr), np.median(oerr))
    assert med["ml"][0] < 0.6 * med["analytical"][0] and med["ml"][1] < 0.6 * med["analytical"][1]
    assert med["ml"][0] < med["numerical"][0] and med["ml"][1] < med["numerical"][1]
    assert med["ml"][0] > 1e-4            # noise does cost accuracy: errors are not at round-off


def test_noisy_controller_has_the_stated_noise_and_stays_within_limits(controller):
    sigma = torque_sigma(0.05, controller.tau_max)
    noisy = NoisyController(controller, sigma, np.random.default_rng(0))
    q, qd = Q_HOME, np.zeros(7)
    goal = controller.goal_from_action(np.zeros(6), q)
    clean = controller.act(q, qd, goal)
    taus = np.array([noisy.act(q, qd, goal) for _ in range(4000)])
    assert np.all(np.abs(taus) <= controller.tau_max)
    np.testing.assert_allclose(taus.mean(0), clean, atol=4 * sigma.max() / np.sqrt(4000))
    np.testing.assert_allclose(taus.std(0), sigma, rtol=0.08)


def test_torque_noise_in_collection_is_seeded_and_logged():
    kw = dict(episodes=2, seed=3, horizon=15)
    a = collect("reach", "expert", OSCConfig(), torque_noise=0.02, **kw)
    b = collect("reach", "expert", OSCConfig(), torque_noise=0.02, **kw)
    clean = collect("reach", "expert", OSCConfig(), **kw)
    np.testing.assert_array_equal(a.tau, b.tau)
    np.testing.assert_array_equal(a.q, b.q)
    assert a.meta["torque_noise"] == 0.02 and "torque_noise" not in clean.meta
    # same initial states and behavior randomness; the torques differ from the first period on
    first = np.flatnonzero(a.step == 0)
    np.testing.assert_array_equal(a.q[first], clean.q[first])
    assert np.all(np.abs(a.tau - clean.tau)[first].max(1) > 0)
    # the logged torque is the applied one: relabeling it with the noise-free law leaves a residual of
    # the noise's size, while the noise-free data are reproduced exactly
    ctl = OSC(ArmModel())
    from ohio_core.pipeline.relabel import relabel

    noisy_res = relabel(a, ctl, 5, "numerical", max_residual=np.inf).account["residual_n_m"]["median"]
    clean_res = relabel(clean, ctl, 5, "numerical", max_residual=np.inf).account["residual_n_m"]["median"]
    assert clean_res < 1e-6 and noisy_res > 0.05


def test_torque_noise_reaches_the_bag(tmp_path):
    from ohio_core.data.bags import read_bag
    from ohio_core.data.collect import collect_bag

    collect_bag(tmp_path / "bag", "reach", "expert", OSCConfig(), 1, seed=2, horizon=10, progress=False,
                torque_noise=0.02)
    mem = collect("reach", "expert", OSCConfig(), 1, seed=2, horizon=10, torque_noise=0.02)
    np.testing.assert_allclose(read_bag(tmp_path / "bag").tau, mem.tau, atol=1e-12)


def test_mixed_dataset_accounts_for_every_part():
    cfg = mixed.MixedConfig(episodes=5, shares=(2, 2, 1), deploy=("damping3",))
    assert mixed.part_episodes(cfg) == {"osc": 2, "qp": 2, "flat": 1}
    parts = mixed.collect_parts(cfg, progress=False)
    episodes = np.concatenate([np.unique(t.episode) for t in parts.values()])
    assert len(episodes) == len(np.unique(episodes)) == 5
    assert parts["flat"].goal is None and parts["qp"].goal is not None
    deploy = mixed.deployment_configs(["damping3"])["damping3"]
    steps = sum(len(t) for t in parts.values())
    for relabeling in ("source", "deployment"):
        data, used = mixed.relabel_parts(parts, relabeling, deploy, cfg)
        acc = data.account
        assert acc["segments_built"] == steps // cfg.k
        assert acc["segments_built"] == sum(p["segments_built"] for p in acc["parts"].values())
        dropped = sum(acc["segments_dropped"].values())
        assert acc["segments_written"] == len(data.rewards) == acc["segments_built"] - dropped
        assert set(used) == set(mixed.PARTS)
    _, used = mixed.relabel_parts(parts, "source", deploy, cfg)
    assert "source config (qp)" in used["qp"] and "source config (osc)" in used["osc"]
    assert "deployment config" in used["flat"]
    std, used = mixed.relabel_parts(parts, "standard", deploy, cfg)
    assert used["flat"].startswith("dropped") and set(std.account["parts"]) == {"osc", "qp"}
    assert std.account["segments_built"] == (len(parts["osc"]) + len(parts["qp"])) // cfg.k
    flat, _ = mixed.relabel_parts(parts, "flat", deploy, cfg)
    assert len(flat.rewards) == steps
    # the source relabeling of the osc part returns the goals its controller was given
    osc_std, _ = mixed.relabel_parts({"osc": parts["osc"]}, "standard", deploy, cfg)
    osc_src, _ = mixed.relabel_parts({"osc": parts["osc"]}, "source", deploy, cfg)
    np.testing.assert_allclose(osc_src.actions, osc_std.actions, atol=1e-5)


def test_mixed_config_refuses_bad_settings():
    with pytest.raises(ValueError, match="shares"):
        mixed.MixedConfig(shares=(1, 1))
    with pytest.raises(ValueError, match="output scale"):
        mixed.MixedConfig(deploy=("ori_scale",))
    with pytest.raises(ValueError, match="relabeling"):
        mixed.MixedConfig(relabelings=("nope",))


@pytest.mark.slow
def test_experiment_noise_cli(tmp_path, capsys):
    argv = ["experiment", "noise", "--levels", "0", "0.02", "--segments", "20", "--bc-levels", "0", "0.02",
            "--episodes", "3", "--steps", "10", "--eval-episodes", "1", "--workers", "1",
            "--out", str(tmp_path / "run"), "--json"]
    assert main(argv) == 0
    out = last_json(capsys.readouterr().out)
    assert set(out["recovery"]) == {"0", "0.02"} and set(out["scores"]) == {"0", "0.02"}
    assert set(out["scores"]["0.02"]) == {"analytical", "numerical", "ml", "standard"}
    assert out["recovery"]["0"]["ml"]["pos_median"] < 1e-8 < out["recovery"]["0.02"]["ml"]["pos_median"]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    # one dataset and one model per level: the noisy level's relabel leaves a residual, the clean one none
    assert len(set(result["models"].values())) == 8
    assert result["accounts"]["ml-f0"]["residual_n_m"]["median"] < 1e-6
    assert result["accounts"]["ml-f0p02"]["residual_n_m"]["median"] > 0.05
    sidecar = json.loads((tmp_path / "run" / "datasets" / "ml-f0p02.json").read_text())
    assert sidecar["torque_noise"] == 0.02
    for name in ("result.json", "recovery.png", "scores.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0


def test_experiment_mixed_cli(tmp_path, capsys):
    argv = ["experiment", "mixed", "--episodes", "3", "--steps", "10", "--eval-episodes", "1", "--workers", "1",
            "--deploy", "damping3", "--out", str(tmp_path / "run"), "--json"]
    assert main(argv) == 0
    out = last_json(capsys.readouterr().out)
    assert set(out["configs"]["damping3"]) == set(mixed.RELABELINGS)
    assert sum(p["episodes"] for p in out["parts"].values()) == 3
    assert (tmp_path / "run" / "scores.png").stat().st_size > 0
