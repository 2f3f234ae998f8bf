"""Behavior policies and the collector: names, noise, seeding, controllers, and ``ohio collect``."""

import json
from pathlib import Path

import numpy as np
import pytest

from controllers.config import QPConfig
from ohio_core.cli.main import main
from ohio_core.data import topics as tp
from ohio_core.data.bags import BagError, read_bag
from ohio_core.data.collect import collect, collect_bag, iter_episodes
from ohio_core.policies.behavior import POLICY_NAMES, FlatPolicy, GoalPolicy, MixPolicy, make_policy, noise_of

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(episodes=2, horizon=20, k=5)


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_policy_names():
    assert POLICY_NAMES == ("expert", "noisy0.1", "noisy0.3", "noisy0.5", "flat", "mix")
    assert [noise_of(n) for n in POLICY_NAMES] == [0.0, 0.1, 0.3, 0.5, None, None]
    assert noise_of("noisy0.2") == 0.2
    for bad in ("noisy", "noisy-1", "noisyx", "random", "noisyinf"):
        with pytest.raises(ValueError, match="unknown policy"):
            noise_of(bad)


def test_make_policy_kinds():
    class Ctl:
        class config:  # noqa: N801
            output_max = (0.05, 0.05, 0.05, 0.5, 0.5, 0.5)

    tau_max = np.array([87.0] * 4 + [12.0] * 3)
    assert isinstance(make_policy("expert", "reach", Ctl, tau_max), GoalPolicy)
    assert make_policy("noisy0.3", "lift", Ctl, tau_max).noise_std == 0.3
    assert isinstance(make_policy("flat", "lift", Ctl, tau_max), FlatPolicy)
    mix = make_policy("mix", "reach", Ctl, tau_max)
    assert isinstance(mix, MixPolicy) and sorted(mix.members) == sorted(POLICY_NAMES[:-1])


def test_noisy_actions_are_clipped_and_seeded():
    obs = np.zeros(38)
    obs[17:23] = [1, 0, 0, 0, -1, 0]           # TCP pointing down
    obs[33:36] = [0.5, 0.0, 0.3]               # target
    p = GoalPolicy("reach", (0.05, 0.05, 0.05, 0.5, 0.5, 0.5), 0.5)
    p.reset(np.random.default_rng(1))
    a = np.array([p(obs) for _ in range(200)])
    assert np.all(np.abs(a) <= 1.0) and a.std(0).min() > 0.2
    p.reset(np.random.default_rng(1))
    np.testing.assert_array_equal(p(obs), a[0])


def test_episodes_depend_only_on_seed_and_index():
    three = collect("reach", "noisy0.3", episodes=3, seed=5, horizon=20)
    third = collect("reach", "noisy0.3", episodes=1, seed=5, horizon=20, first_episode=2)
    rows = three.episode == 2
    np.testing.assert_array_equal(third.q, three.q[rows])
    np.testing.assert_array_equal(third.tau, three.tau[rows])
    assert (third.episode == 2).all()
    other = collect("reach", "noisy0.3", episodes=1, seed=6, horizon=20)
    assert not np.array_equal(other.q, three.q[three.episode == 0])


def test_noise_levels_change_the_data():
    expert = collect("reach", "expert", episodes=1, seed=0, horizon=20)
    noisy = collect("reach", "noisy0.5", episodes=1, seed=0, horizon=20)
    np.testing.assert_array_equal(expert.q[0], noisy.q[0])             # same initial state
    assert np.abs(expert.goal - noisy.goal).max() > 1e-3


def test_mix_draws_a_policy_per_episode():
    traj = collect("lift", "mix", episodes=6, seed=1, horizon=10, k=5)
    chosen = traj.meta["episode_policy"]
    assert len(chosen) == 6 and len(set(chosen)) > 1 and set(chosen) <= set(POLICY_NAMES[:-1])
    again = collect("lift", "mix", episodes=6, seed=1, horizon=10, k=5)
    assert again.meta["episode_policy"] == chosen
    for e, name in enumerate(chosen):
        has_goal = np.isfinite(traj.goal[traj.episode == e]).all()
        assert has_goal == (name != "flat")


def test_flat_policy_torques_are_noisy_controller_torques():
    flat = list(iter_episodes("reach", "flat", episodes=1, seed=3, horizon=30))[0]
    assert flat.goal is None and flat.gripper is None
    limits = np.array([87.0] * 4 + [12.0] * 3)
    assert np.all(np.abs(flat.tau) <= limits)
    # the arm still moves toward the target: the controller's torque dominates the 5 % noise
    d0 = np.linalg.norm(flat.env_obs[0, 14:17] - flat.target[0])
    d1 = np.linalg.norm(flat.env_obs[-1, 14:17] - flat.target[0])
    assert d1 < d0


def test_qp_controller_from_yaml():
    traj = collect("reach", "expert", ROOT / "config" / "controllers" / "qp.yaml", episodes=1, horizon=10)
    assert traj.meta["controller"]["type"] == "qp" and len(traj) == 10
    traj = collect("reach", "expert", QPConfig(kp=100.0), episodes=1, horizon=10)
    assert traj.meta["controller"]["kp"] == [100.0] * 6


def test_collect_bag_refuses_a_non_empty_folder_and_reuses_an_empty_one(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(BagError, match="not an empty folder; refusing to overwrite"):
        collect_bag(tmp_path / "full", "reach", "expert", progress=False, **SMALL)
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    summary = collect_bag(tmp_path / "empty", "reach", "expert", progress=False, **SMALL)
    assert summary["episodes"] == 2 and (tmp_path / "empty" / "metadata.yaml").is_file()


def test_cli_collect_json(tmp_path, capsys):
    out = tmp_path / "bag"
    argv = ["collect", "--task", "lift", "--policy", "noisy0.1", "--controller",
            str(ROOT / "config" / "controllers" / "osc.yaml"), "--episodes", "2", "--horizon", "15",
            "--out", str(out), "--storage", "sqlite3", "--seed", "3", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    res = last_json(captured.out)
    assert res["bag"] == str(out) and res["episodes"] == 2 and res["control_steps"] == 30
    assert 0.0 <= res["success_rate"] <= 1.0 and res["return_mean"] > 0
    assert res["messages"] == {tp.JOINT_STATES: 32, tp.EFFORT_COMMANDS: 30, tp.TASK_STATE: 32,
                               tp.EE_GOAL: 6, tp.GRIPPER: 6}
    assert res["bytes"] > 0 and res["storage"] == "sqlite3" and res["controller"] == "osc"
    assert "success rate" in captured.out and "collect lift/noisy0.1" in captured.err   # table, progress bar
    bag = read_bag(out)
    assert len(bag) == 30 and bag.meta["custom_data"]["ohio.episode_policy"] == '{"noisy0.1": 2}'
    # a second run into the same folder is refused with a message
    with pytest.raises(SystemExit, match="refusing to overwrite"):
        main(argv)


def test_cli_collect_rejects_bad_arguments(tmp_path):
    base = ["collect", "--task", "reach", "--episodes", "1", "--out", str(tmp_path / "b")]
    with pytest.raises(SystemExit, match="unknown policy"):
        main(base + ["--policy", "greedy"])
    with pytest.raises(SystemExit, match="--episodes"):
        main(["collect", "--task", "reach", "--policy", "expert", "--episodes", "0", "--out", str(tmp_path / "b")])
    with pytest.raises(SystemExit, match="controller config not found"):
        main(base + ["--policy", "expert", "--controller", str(tmp_path / "none.yaml"), "--no-progress"])
    assert not (tmp_path / "b").exists()
