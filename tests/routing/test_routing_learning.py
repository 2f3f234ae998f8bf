"""Routing: relabeling logged flows into high-level datasets, and the experiment end to end.

The logs come from real rollouts of the heuristics through the LP (``RoutingEnv``) and through the
flows interface (the greedy dispatcher, ``FlatRoutingEnv``). The recovered distributions must
give the logged desired counts back exactly, and the experiment must run (tiny budgets) and
report its JSON shape.
"""

import json
from dataclasses import replace

import numpy as np
import pytest
import routing_cities

from controllers.rebalancing import RebalancingConfig, Rebalancer, desired_counts, flow_cost, project_flows, rebalance
from ohio_core.cli.main import main
from ohio_core.learning.online_env import routing_scenario
from ohio_core.routing.datasets import (decode_distribution, decode_flows, encode_distribution, encode_flows,
                                        idle_distribution, relabel_routing)
from ohio_core.routing.env import FlatRoutingEnv, RoutingEnv, rollout
from ohio_core.routing.experiment import RoutingExperimentConfig, run
from ohio_core.routing.inverse import FlowStatus, invert_flows
from ohio_core.routing.policies import make_routing_policy
from ohio_core.routing.scenario import synthetic


@pytest.fixture(scope="module")
def city():
    return synthetic(9, horizon=12, seed=3)


@pytest.fixture(scope="module")
def lp_log(city):
    env = RoutingEnv(city, Rebalancer(RebalancingConfig()))
    log = rollout(env, make_routing_policy("demand_proportional", city), 3, seed=5)
    log.meta["obs_layout"] = env.layout.as_list()
    return log


def test_action_encodings_round_trip(rng=np.random.default_rng(0)):
    q = rng.dirichlet(np.ones(7), size=20)
    p = np.clip(q + rng.normal(0, 0.05, q.shape), 0, None)
    p /= p.sum(1, keepdims=True)
    a = encode_distribution(p, q)
    w = decode_distribution(a, q)
    np.testing.assert_allclose(w / w.sum(1, keepdims=True), p, atol=1e-12)
    assert np.abs(a).max() <= 1.0 and (decode_distribution(np.zeros(7), q[0]) == q[0]).all()   # a = 0: stay
    idle = rng.integers(0, 30, size=(20, 4))
    flows = np.stack([project_flows(rng.uniform(0, 10, (4, 4)), a) for a in idle])
    raw = decode_flows(encode_flows(flows, idle), idle)
    back = np.stack([project_flows(r.reshape(4, 4), a) for r, a in zip(raw, idle)])
    np.testing.assert_array_equal(back, flows)


def test_ohio_relabel_recovers_the_logged_goals_exactly(city, lp_log):
    data = relabel_routing(lp_log, city.travel_time, "ohio")
    assert data.account["transitions_written"] == len(lp_log) == 36 and data.account["dropped"] == {}
    w = decode_distribution(data.actions.astype(np.float64), idle_distribution(lp_log.idle))
    recovered = desired_counts(w / w.sum(1, keepdims=True), lp_log.idle.sum(1))
    assert data.account["goals_clipped_to_span"] == 0
    np.testing.assert_array_equal(recovered, lp_log.desired)
    np.testing.assert_array_equal(data.rewards, lp_log.reward.astype(np.float32))
    assert data.account["flows_not_lp_optimal_kept"] == 0 and data.obs_layout[0] == ["idle", 9]


def test_dispatcher_flows_are_relabeled_and_their_extra_cost_counted():
    city = synthetic(10, layout="geometric", horizon=20, seed=2)     # where the dispatcher is not LP-optimal
    log = rollout(FlatRoutingEnv(city), make_routing_policy("greedy_dispatcher", city), 2, seed=5)
    ohio = relabel_routing(log, city.travel_time, "ohio")
    flat = relabel_routing(log, city.travel_time, "flat")
    assert ohio.account["transitions_written"] == flat.account["transitions_written"] == len(log)
    assert flat.actions.shape == (len(log), 100) and ohio.actions.shape == (len(log), 10)
    # flows the LP would not have sent are kept and counted, their residual the extra cost over the
    # LP's own flows to the same counts
    inverse = invert_flows(log.idle, log.flows, city.travel_time)
    flagged = np.flatnonzero(inverse.status == FlowStatus.NOT_OPTIMAL)
    assert ohio.account["flows_not_lp_optimal_kept"] == len(flagged) > 0
    for k in flagged[:5]:
        best = rebalance(log.idle[k], inverse.desired[k], city.travel_time)
        extra = flow_cost(log.flows[k], city.travel_time) - flow_cost(best, city.travel_time)
        assert extra > 0 and ohio.residual[k] == pytest.approx(extra)
    # an inverse already run is used as it is, and rewards are scaled as asked
    again = relabel_routing(log, city.travel_time, "ohio", reward_scale=0.5, result=inverse)
    np.testing.assert_array_equal(again.actions, ohio.actions)
    np.testing.assert_array_equal(again.rewards, ohio.rewards * 0.5)
    with pytest.raises(ValueError, match="result holds"):
        relabel_routing(log, city.travel_time, "ohio", result=invert_flows(log.idle[:3], log.flows[:3],
                                                                         city.travel_time))


def test_steps_without_idle_vehicles_are_dropped_and_end_the_piece(city, lp_log):
    log = lp_log
    idle, flows = log.idle.copy(), log.flows.copy()
    idle[5], flows[5] = 0, 0
    broken = type(log)(**{**{k: getattr(log, k) for k in log.__dataclass_fields__}, "idle": idle, "flows": flows})
    data = relabel_routing(broken, city.travel_time, "ohio")
    assert data.account["dropped"] == {"inverse: ill_posed": 1} and data.account["pieces_ended_by_drop"] == 1
    assert data.timeouts[4] == 1.0 and len(data.rewards) == len(log) - 1
    with pytest.raises(ValueError, match="unknown routing relabel method"):
        relabel_routing(log, city.travel_time, "naive")


def test_experiment_runs_and_reports_every_method(tmp_path, capsys):
    config = RoutingExperimentConfig(regions=6, horizon=12, episodes=2, algo="bc", steps=30, eval_episodes=2,
                                     scaling=(5,), scaling_episodes=2)
    result = run(config, tmp_path / "exp", progress=False)
    assert list(result["datasets"]) == [*config.behaviors, "mixed"]
    pooled = result["accounts"]["mixed/ohio"]["parts"]
    assert len(pooled) == len(config.behaviors)
    assert sum(part["transitions_written"] for part in pooled) == sum(
        result["accounts"][f"{b}/ohio"]["transitions_written"] for b in config.behaviors)
    for name, scores in result["datasets"].items():
        assert set(scores) == {"ohio", "flat", "demand_proportional", "random_distribution", "greedy_dispatcher"}
        assert abs(scores["random_distribution"]["mean"]) < 1e-9
        assert max(scores[b]["mean"] for b in config.behaviors) == pytest.approx(100.0)
        for method, score in scores.items():      # every evaluation episode runs the whole horizon
            ops = score["operations"]
            assert ops["revenue"] - ops["trip_cost"] - ops["rebalancing_cost"] == pytest.approx(
                score["return_mean"] / (config.horizon * result["scenario"]["vehicles"])), (name, method)
    assert result["datasets"]["greedy_dispatcher"]["greedy_dispatcher"]["operations"] == \
        result["references"]["operations"]["greedy_dispatcher"]
    row = result["scaling"][0]
    assert row["regions"] == 5 and row["inverse_s"] > 0 and row["behavior"] == "greedy_dispatcher"
    assert np.isfinite(row["ohio_score"]) and np.isfinite(row["flat_score"]) and row["flat_train_s"] > 0
    assert row["train_s"] > 0 and "ohio_train_s" not in row
    assert max(row["behavior_scores"].values()) == pytest.approx(100.0)
    assert (tmp_path / "exp" / "scores.png").is_file() and (tmp_path / "exp" / "result.json").is_file()
    assert (tmp_path / "exp" / "scaling.png").is_file()
    model_meta = json.loads((tmp_path / "exp" / "models" / "mixed_ohio.json").read_text())
    assert routing_scenario(model_meta).regions == 6 and model_meta["scenario"]["horizon"] == 12
    with pytest.raises(ValueError, match="unknown behavior policies"):
        RoutingExperimentConfig(behaviors=("psychic",))


def test_cli_prints_the_table_and_the_json(tmp_path, capsys):
    assert main(["experiment", "routing", "--regions", "5", "--episodes", "1", "--steps", "10", "--algo", "bc",
                 "--eval-episodes", "2", "--out", str(tmp_path / "o"), "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert set(summary) == {"datasets", "scaling"} and "ohio" in summary["datasets"]["demand_proportional"]
    assert set(summary["datasets"]["demand_proportional"]["ohio"]) == {"mean", "se"}
    assert "0 = random distribution, 100 = best heuristic" in out
    assert "How each policy ran the fleet" in out and "rebalancing cost" in out


def test_scaling_only_runs_no_dataset_and_reports_its_updates(tmp_path, capsys):
    assert main(["experiment", "routing", "--scaling-only", "--scaling", "4", "--scaling-episodes", "1",
                 "--scaling-steps", "5", "--algo", "bc", "--eval-episodes", "2", "--out", str(tmp_path / "s"),
                 "--scaling-behavior", "demand_proportional", "--flat-max-regions", "3", "--lp-formulation", "transport",
                 "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["datasets"] == {} and [row["regions"] for row in summary["scaling"]] == [4]
    assert summary["scaling"][0]["flat_score"] is None                 # 4 regions > --flat-max-regions 3
    saved = json.loads((tmp_path / "s" / "result.json").read_text())
    row = saved["scaling"][0]
    assert row["updates"] == 5 and row["behavior"] == "demand_proportional"
    assert saved["config"]["lp_formulation"] == "transport"
    assert "Scaling on demand_proportional data" in out
    assert "train s (5 updates)" in out and not (tmp_path / "s" / "scores.png").exists()
    with pytest.raises(ValueError, match="nothing to run"):
        RoutingExperimentConfig(datasets=False)
    with pytest.raises(ValueError, match="unknown behavior policies"):
        RoutingExperimentConfig(scaling=(4,), scaling_behavior="oracle")
    with pytest.raises(SystemExit, match=r"ohio experiment routing: unknown behavior policies \['oracle'\] for the "
                                         r"scaling study; known: .*'greedy_dispatcher'.* and 'mixed'"):
        main(["experiment", "routing", "--scaling-only", "--scaling", "4", "--scaling-behavior", "oracle"])


def test_scaling_on_the_pooled_behavior_data(tmp_path):
    config = RoutingExperimentConfig(regions=4, horizon=6, algo="bc", steps=5, eval_episodes=2, datasets=False,
                                     scaling=(4,), scaling_episodes=1, scaling_steps=5, scaling_behavior="mixed")
    row = run(config, tmp_path / "m", progress=False)["scaling"][0]
    assert row["behavior"] == "mixed" and row["transitions"] == 3 * 6       # one episode of each behavior
    account = json.loads((tmp_path / "m" / "scaling_4" / "datasets" / "ohio.json").read_text())["account"]
    assert [part["transitions_written"] for part in account["parts"]] == [6, 6, 6]
    assert np.isfinite(row["ohio_score"]) and np.isfinite(row["flat_score"])
    with pytest.raises(ValueError, match="flat_max_regions"):
        RoutingExperimentConfig(flat_max_regions=-1)


def test_lp_formulation_reaches_the_low_level(tmp_path, monkeypatch):
    from ohio_core.routing import experiment

    built = []
    real = experiment.routing_envs
    monkeypatch.setattr(experiment, "routing_envs",
                        lambda scenario, rebalancing=None: built.append(rebalancing) or real(scenario, rebalancing))
    config = RoutingExperimentConfig(regions=4, horizon=6, algo="bc", steps=5, eval_episodes=1, datasets=False,
                                     scaling=(4,), scaling_episodes=1, scaling_steps=5, flat_max_regions=0,
                                     lp_formulation="transport")
    row = run(config, tmp_path / "t", progress=False)["scaling"][0]
    assert [c.formulation for c in built] == ["transport"] and np.isfinite(row["ohio_score"])
    assert real(config.city(4).build(), config.rebalancing_config())[0].controller.config.formulation == "transport"
    with pytest.raises(ValueError, match="formulation"):
        RoutingExperimentConfig(lp_formulation="paths")


def test_a_scenario_file_config_builds_its_city_and_refuses_the_scaling_study(tmp_path):
    from ohio_core.routing.experiment import check_city

    town = routing_cities.peak_town(tmp_path / "town.json")
    config = RoutingExperimentConfig(scenario=str(town), demand_scale=2.0, vehicles=700)
    city = check_city(config)
    assert (city.name, city.regions, city.vehicles, city.horizon) == ("town", 5, 700, routing_cities.STEPS)
    assert config.city(8).build().regions == 8                     # the scaling study's cities stay synthetic
    with pytest.raises(ValueError, match="the scaling study builds synthetic cities"):
        RoutingExperimentConfig(scenario=str(town), scaling=(5,))
    with pytest.raises(ValueError, match="give a scenario file"):
        RoutingExperimentConfig(demand_scale=2.0)
    with pytest.raises(ValueError, match="town.json: travel times break the triangle inequality"):
        check_city(replace(config, lp_formulation="transport"))
