"""Online fine-tuning: curves with the expected points, fine-tuned models that reload and act,
violation counters that count constructed violations (and nothing else), and the commands end to end."""

import json

import numpy as np
import pytest

from controllers.base import make_controller
from controllers.config import OSCConfig
from controllers.rebalancing import RebalancingConfig, Rebalancer
from controllers.robot import ArmModel
from ohio_core.cli.main import main
from ohio_core.data.collect import collect
from ohio_core.envs.arm.env import TorqueArmEnv
from ohio_core.envs.arm.tasks import TaskConfig
from ohio_core.learning.algos import TrainConfig
from ohio_core.learning.finetune import FinetuneConfig, finetune
from ohio_core.learning.online_env import OnlineEnv
from ohio_core.learning.policy import load_policy
from ohio_core.learning.train import train
from ohio_core.learning.violations import ArmLimits, arm_violations, arm_worst, routing_violations
from ohio_core.pipeline.baselines import flat_transitions
from ohio_core.pipeline.dataset import load_dataset, save_dataset
from ohio_core.pipeline.relabel import relabel
from ohio_core.routing.env import FlatRoutingEnv, RoutingEnv
from ohio_core.routing.scenario import synthetic

TINY = dict(eval_episodes=1, warmup=5, horizon=30)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny IQL models (goal level through the OSC, and flat torques) with their datasets."""
    root = tmp_path_factory.mktemp("ft")
    traj = collect("reach", "noisy0.1", OSCConfig(), episodes=2, seed=3, horizon=60)
    osc = make_controller(OSCConfig())
    out = {}
    for name, data, meta in (
            ("ohio", relabel(traj, osc, 5, "analytical"),
             {"task": "reach", "k": 5, "controller": OSCConfig().to_dict(), "method": "analytical"}),
            ("flat", flat_transitions(traj, osc.tau_max),
             {"task": "reach", "level": "torque", "k": 1, "controller": None, "method": "flat"})):
        h5, _ = save_dataset(data, root / "datasets" / name, meta)
        buffer, m = load_dataset(h5)
        out[name] = train(buffer, m, TrainConfig(algo="iql", steps=40, epochs=1, batch_size=32), root / "models" / name,
                          progress=False, extra_meta={"dataset": str(h5)}).model
    return out


@pytest.fixture(scope="module")
def limits():
    return ArmLimits.from_model(ArmModel())


def test_goal_model_curve_has_a_point_per_eval_and_the_model_reloads_changed(models, tmp_path, rng):
    res = finetune(models["ohio"], FinetuneConfig(steps=25, eval_every=10, **TINY), tmp_path, progress=False)
    assert [p["step"] for p in res.curve] == [0, 10, 20, 25]
    assert res.curve[0]["periods"] == 0 and sum(p["periods"] for p in res.curve) == 25 * 5   # k = 5 periods a step
    assert res.totals["online_transitions"] > 0 and res.totals["offline_transitions"] > 0
    assert res.plot.stat().st_size > 0 and json.loads((tmp_path / "result.json").read_text())["curve"]
    tuned, before = load_policy(res.model), load_policy(models["ohio"])
    assert tuned.meta["finetune"]["algo"] == "iql" and tuned.level == "goal" and tuned.k == 5
    obs = rng.normal(size=(5, tuned.obs_dim))
    acts = np.array([tuned.act(o) for o in obs])
    assert acts.shape == (5, 6) and np.all(np.abs(acts) <= 1.0)
    assert not np.allclose(acts, [before.act(o) for o in obs])          # the online updates changed the policy


def test_flat_model_counts_one_period_per_step(models, tmp_path):
    res = finetune(models["flat"], FinetuneConfig(steps=12, eval_every=6, **TINY), tmp_path, progress=False)
    assert [p["step"] for p in res.curve] == [0, 6, 12]
    assert res.totals["periods"] == 12
    assert set(res.totals["violations"]) == {"joint_position", "joint_velocity", "torque", "torque_at_limit", "any"}


def test_finetuning_refuses_another_algorithm(models, tmp_path):
    with pytest.raises(ValueError, match="trained with 'iql', not 'calql'"):
        finetune(models["ohio"], FinetuneConfig(steps=5, algo="calql", **TINY), tmp_path, progress=False)


def test_arm_counter_counts_what_is_beyond_the_limits_only(limits):
    q, qd = np.tile((limits.q_min + limits.q_max) / 2, (4, 1)), np.zeros((4, 7))
    tau = np.tile(0.5 * limits.tau_max, (4, 1))
    assert arm_violations(q, qd, tau, limits) == {"joint_position": 0, "joint_velocity": 0, "torque": 0,
                                                  "any": 0, "torque_at_limit": 0}
    tau[1, 2] = 1.2 * limits.tau_max[2]          # beyond: a violation
    tau[2, 0] = -limits.tau_max[0]               # at the limit: saturated, not a violation
    q[3, 6] = limits.q_max[6] + 0.01
    qd[3, 1] = -1.5 * limits.qd_max[1]
    got = arm_violations(q, qd, tau, limits)
    assert got == {"joint_position": 1, "joint_velocity": 1, "torque": 1, "any": 2, "torque_at_limit": 2}
    worst = arm_worst(q, qd, tau, limits)
    assert worst["joint_position_rad"] == pytest.approx(0.01) and worst["joint_velocity_ratio"] == pytest.approx(1.5)
    assert worst["torque_ratio"] == pytest.approx(1.2)


def test_flat_torque_beyond_the_limit_is_counted_in_range_is_not(limits):
    env = OnlineEnv(TorqueArmEnv(TaskConfig(name="reach", k=1, horizon=10)), "arm", "torque", 7, seed=0,
                    limits=limits)
    env.reset()
    env.step(np.full(7, 0.3))
    assert env.violations["torque"] == 0 and env.periods == 1
    a = np.zeros(7)
    a[3] = 1.4                                  # the raw action: 1.4 tau_max on joint 4, clipped by the actuator
    env.step(a)
    counts, periods, worst = env.take_counts()
    assert counts["torque"] == 1 and periods == 2 and worst["torque_ratio"] == pytest.approx(1.4)
    assert env.take_counts()[1] == 0            # the counters restart


def test_routing_counter_flows_over_idle_and_negative():
    idle = np.array([[3, 0, 2]])
    ok = np.array([[[0, 2, 1], [0, 0, 0], [1, 0, 0]]])
    assert routing_violations(ok, idle) == {"flow_over_idle": 0, "negative_flow": 0, "any": 0}
    over = ok.copy()
    over[0, 0, 1] = 3                           # 4 vehicles leave a region with 3
    neg = ok.astype(float)
    neg[0, 2, 1] = -1.0
    assert routing_violations(over, idle)["flow_over_idle"] == 1
    assert routing_violations(neg, idle) == {"flow_over_idle": 0, "negative_flow": 1, "any": 1}
    stay = ok.copy()
    stay[0, 2, 2] = 9                           # the diagonal (staying) is not a flow
    assert routing_violations(stay, idle)["any"] == 0


def test_routing_envs_count_the_flat_raw_flows_and_not_the_lp(rng):
    city = synthetic(4, horizon=6, seed=1)
    flat = OnlineEnv(FlatRoutingEnv(city), "routing", "flows", 16, seed=0)
    flat.reset()
    flat.step(-np.ones(16))                     # x = 0: feasible
    assert flat.violations["any"] == 0
    assert flat.inner.sim.idle.sum() > 0
    flat.step(np.ones(16))                      # x_ij = idle_i to every j: 3 idle_i leave region i
    assert flat.violations["flow_over_idle"] == 1 and flat.worst["over_idle_vehicles"] > 0
    ohio = OnlineEnv(RoutingEnv(city, Rebalancer(RebalancingConfig())), "routing", "goal", 4, seed=0)
    ohio.reset()
    for _ in range(6):
        _, r, _, _, info = ohio.step(rng.uniform(-1, 1, 4))
        assert r == pytest.approx(info["raw_reward"] * ohio.reward_scale)
    assert ohio.violations["any"] == 0 and ohio.periods == 6


def test_cli_finetune_end_to_end(models, tmp_path, capsys):
    out = tmp_path / "ft"
    assert main(["finetune", str(models["ohio"]), "--task", "reach", "--steps", "12", "--eval-every", "6",
                 "--eval-episodes", "1", "--horizon", "30", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [p["step"] for p in summary["curve"]] == [0, 6, 12]
    assert (out / "model.d3").is_file() and (out / "curve.png").is_file()
    load_policy(out / "model.d3").act(np.zeros(38))
    with pytest.raises(SystemExit, match="task 'reach', not 'lift'"):
        main(["finetune", str(models["ohio"]), "--task", "lift", "--steps", "5", "--out", str(out)])


def test_cli_experiment_finetune_routing_tiny(tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["experiment", "finetune", "--domain", "routing", "--regions", "4", "--routing-episodes", "2",
            "--routing-offline-steps", "30", "--steps", "12", "--eval-every", "6", "--eval-episodes", "1",
            "--out", str(out), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = summary["domains"]["routing"]
    assert set(rows) == {"ohio", "flat"} and rows["ohio"]["violations"]["any"] == 0
    assert rows["flat"]["periods"] == rows["ohio"]["periods"] == 12
    assert (out / "routing.png").is_file()
    networks = {m: json.loads((out / "routing" / "models" / f"{m}.json").read_text())["train"]["network"]
                for m in ("ohio", "flat")}
    assert networks == {"ohio": "region", "flat": "mlp"}
    assert main(args) == 0                      # the offline models are reused
    assert "reusing the offline models" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_experiment_finetune_arm_tiny(tmp_path, capsys):
    assert main(["experiment", "finetune", "--domain", "arm", "--episodes", "3", "--offline-steps", "30",
                 "--steps", "10", "--eval-every", "5", "--eval-episodes", "1", "--horizon", "30",
                 "--out", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["domains"]["arm"]
    assert set(rows) == {"ohio_qp", "ohio_original", "flat"}
    assert rows["flat"]["periods"] == 10 and rows["ohio_qp"]["periods"] == rows["ohio_original"]["periods"] == 50
    assert all(r["violations"]["torque"] == 0 for r in rows.values())     # no command passes the torque limits
    assert (tmp_path / "arm.png").is_file()


def test_calql_model_finetunes_with_its_own_algorithm(models, tmp_path):
    h5 = load_policy(models["ohio"]).meta["dataset"]
    buffer, meta = load_dataset(h5)
    model = train(buffer, meta, TrainConfig(algo="calql", steps=20, epochs=1, batch_size=32), tmp_path / "calql",
                  progress=False, extra_meta={"dataset": h5}).model
    res = finetune(model, FinetuneConfig(steps=10, algo="calql", eval_every=10, **TINY), tmp_path / "ft",
                   progress=False)
    assert [p["step"] for p in res.curve] == [0, 10]
    assert load_policy(res.model).meta["finetune"]["algo"] == "calql"
