"""The routing loop in ROS 2: simulator, rebalancing LP and routing policy nodes.

Without DDS: the messages and their layout labels, the typed parameters, the simulator session,
the rebalancing rules (stale goal -> zero flows, bad goals rejected) and the policy sources. In
this process over DDS: each node answers what it is sent. As subprocesses, started from
``launch/routing.launch.py`` as launch_ros would start them: the closed loop earns exactly the
rewards of ``rollout`` with the same heuristic and seed, conserves the vehicles and advances the
episodes; and a routing goal model trained here drives it.
"""

import json
import subprocess

import numpy as np
import pytest
import yaml
from controllers.rebalancing import RebalancingConfig, Rebalancer
from diagnostic_msgs.msg import DiagnosticArray
from ohio_core.routing.env import ObsLayout, RoutingEnv, rollout
from ohio_core.routing.policies import make_routing_policy
from ohio_core.routing.scenario import synthetic
from rclpy.parameter import Parameter
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, MultiArrayLayout

from ohio_ros import diagnostics, qos
from ohio_ros.config import ParameterError
from ohio_ros.routing import config as cfg
from ohio_ros.routing import convert as rc
from ohio_ros.routing import high_level as hl
from ohio_ros.routing import rebalancing_loop as rl
from ohio_ros.routing.session import RoutingSession, make_scenario
from ros_harness import Processes, Spinner, probe, wait_for
from ros_launch import LAUNCH_DIR, PACKAGE, REPO, LaunchReadError, command_line, read_launch

LAUNCH = LAUNCH_DIR / "routing.launch.py"
REGIONS, HORIZON = 8, 10
STATE, FLOWS, GOAL = "/routing/state", "/routing/flows", "/routing/desired_distribution"
INFO, TRAVEL = "/routing/step_info", "/routing/travel_time"


@pytest.fixture(scope="module")
def city():
    return synthetic(REGIONS, horizon=HORIZON, seed=0)


@pytest.fixture
def session(city):
    return RoutingSession(city, 4, seed=0)


def params(**values):
    return [Parameter(k, value=v) for k, v in values.items()]


# -- messages --------------------------------------------------------------------------------


def test_state_round_trip_and_its_label(session):
    state = session.state()
    msg = rc.state_msg(state)
    n = REGIONS
    assert msg.layout.dim[0].label == (f"ohio_routing_state_v1:episode=1,step=1,idle={n},obs.idle={n},"
                                       f"obs.arrivals={4 * n},obs.demand={n},obs.time=3")
    assert msg.layout.dim[0].size == len(msg.data) == 2 + n + ObsLayout(n, 4).size
    back = rc.state_from_msg(msg)
    assert back.stamp == (0, 0) and back.lookahead == 4 and back.regions == n
    np.testing.assert_array_equal(back.idle, state.idle)
    np.testing.assert_array_equal(back.obs, session.obs)
    assert back.obs_layout == ObsLayout(n, 4).as_list()
    # no lookahead is a layout too
    short = RoutingSession(synthetic(3, horizon=4), 0, 0).state()
    assert rc.state_from_msg(rc.state_msg(short)).lookahead == 0


def labelled(label, data):
    return Float64MultiArray(layout=MultiArrayLayout(dim=[MultiArrayDimension(label=label, size=len(data),
                                                                              stride=len(data))]), data=data)


def test_bad_states_are_refused(session):
    msg = rc.state_msg(session.state())
    label, data = msg.layout.dim[0].label, list(msg.data)
    for bad, match in (
            (labelled(label, data[:-1]), "layout names"),
            (labelled(label.replace("obs.time=3", "obs.time=2"), data[:-1]), "ObsLayout"),
            (labelled(label.replace("obs.arrivals=32", "obs.arrivals=30"), data[:-2]), "ObsLayout"),
            (labelled(label, [0.5] + data[1:]), "episode"),
            (labelled(label, data[:2] + [-1.0] + data[3:]), "idle"),
            (labelled(label, data[:-1] + [float("nan")]), "not finite"),
            (labelled("ohio_task_state_v1:episode,step", data), "routing layout label"),
            (labelled(label.replace("state", "flows"), data), "expected a ohio_routing_state"),
            (Float64MultiArray(data=data), "not a routing layout label")):
        with pytest.raises(rc.MessageError, match=match):
            rc.state_from_msg(bad)


def test_goals_flows_step_info_and_travel_times_round_trip(city, rng):
    w = rng.random(REGIONS)
    weights, stamp = rc.distribution_from_msg(rc.distribution_msg(w, 2, 7))
    np.testing.assert_array_equal(weights, w)
    assert stamp == (2, 7)
    plain, stamp = rc.distribution_from_msg(Float64MultiArray(data=list(w)))   # `ros2 topic pub`
    np.testing.assert_array_equal(plain, w)
    assert stamp is None
    for bad, match in ((np.r_[w[:-1], np.nan], "not finite"), (np.r_[w[:-1], -0.1], "negative"),
                       (w[:1], "n >= 2")):
        with pytest.raises(rc.MessageError, match=match):
            rc.distribution_from_msg(rc.distribution_msg(bad, 0, 0))
    x = rng.integers(0, 5, (REGIONS, REGIONS))
    flows, stamp = rc.flows_from_msg(rc.flows_msg(x, 1, 3), REGIONS)
    np.testing.assert_array_equal(flows, x)
    assert stamp == (1, 3)
    flows, stamp = rc.flows_from_msg(Float64MultiArray(data=x.ravel().astype(float).tolist()), REGIONS)
    np.testing.assert_array_equal(flows, x)
    assert stamp is None
    with pytest.raises(rc.MessageError, match="expected 8 x 8"):
        rc.flows_from_msg(rc.flows_msg(x[:3, :3], 1, 3), REGIONS)
    info = {f: float(i) for i, f in enumerate(rc.STEP_INFO_FIELDS)}
    msg = rc.step_info_msg(info)
    assert msg.layout.dim[0].label.startswith("ohio_routing_step_v1:episode=1,step=1,reward=1,")
    assert rc.step_info_from_msg(msg) == info
    np.testing.assert_array_equal(rc.travel_time_from_msg(rc.travel_time_msg(city.travel_time)), city.travel_time)
    with pytest.raises(rc.MessageError, match="integers >= 1"):
        rc.travel_time_from_msg(rc.travel_time_msg(np.zeros((3, 3))))


# -- parameters ------------------------------------------------------------------------------

ROUTING_CONFIGS = [cfg.RoutingSimNodeConfig, cfg.RebalancingNodeConfig, cfg.RoutingPolicyNodeConfig]


@pytest.mark.parametrize("cls", ROUTING_CONFIGS, ids=lambda c: c.__name__)
def test_defaults_round_trip(cls):
    assert cls.from_params(cls.defaults()) == cls()


@pytest.mark.parametrize("cls, values, name", [
    (cfg.RoutingSimNodeConfig, {"regions": 1}, "regions"),
    (cfg.RoutingSimNodeConfig, {"regions": 8.5}, "regions"),
    (cfg.RoutingSimNodeConfig, {"layout": "ring"}, "layout"),
    (cfg.RoutingSimNodeConfig, {"horizon": -1}, "horizon"),
    (cfg.RoutingSimNodeConfig, {"step_timeout": 0.0}, "step_timeout"),
    (cfg.RoutingSimNodeConfig, {"wait_for_flows": "yes"}, "wait_for_flows"),
    (cfg.RoutingSimNodeConfig, {"scenario_file": 3}, "scenario_file"),
    (cfg.RoutingSimNodeConfig, {"region": 8}, "region"),
    (cfg.RebalancingNodeConfig, {"max_goal_age_steps": -1}, "max_goal_age_steps"),
    (cfg.RebalancingNodeConfig, {"goal_wait": float("inf")}, "goal_wait"),
    (cfg.RoutingPolicyNodeConfig, {"policy": "model"}, "model_path"),
    (cfg.RoutingPolicyNodeConfig, {"model_path": "m.d3"}, "model_path"),
    (cfg.RoutingPolicyNodeConfig, {"heuristic": "greedy_dispatcher"}, "heuristic"),
    (cfg.RoutingPolicyNodeConfig, {"policy": "oracle"}, "policy"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_errors_name_the_parameter(cls, values, name):
    with pytest.raises(ParameterError, match=name):
        cls.from_params(values)


@pytest.mark.parametrize("values, name", [({"rebalancing.cost_weight": 0.0}, r"rebalancing\.cost_weight"),
                                          ({"rebalancing.solver": "glpk"}, r"rebalancing\.solver"),
                                          ({"rebalancing.formulation": "paths"}, r"rebalancing\.formulation"),
                                          ({"rebalancing.method": "x"}, r"rebalancing\.method")])
def test_rebalancing_parameters(values, name):
    assert cfg.rebalancing_config({"rebalancing.cost_weight": 2}) == RebalancingConfig(cost_weight=2.0)
    assert cfg.rebalancing_config({"rebalancing.formulation": "transport"}).formulation == "transport"
    with pytest.raises(ParameterError, match=name):
        cfg.rebalancing_config(values)


def test_shipped_routing_params_build_valid_configs():
    data = yaml.safe_load((PACKAGE / "config" / "routing.yaml").read_text())
    assert list(data) == ["/**/routing_sim", "/**/rebalancing", "/**/routing_policy"]
    sim = cfg.RoutingSimNodeConfig.from_params(data["/**/routing_sim"]["ros__parameters"])
    assert sim == cfg.RoutingSimNodeConfig()
    reb = dict(data["/**/rebalancing"]["ros__parameters"])
    lp = {f"rebalancing.{k}": v for k, v in reb.pop("rebalancing").items()}
    assert cfg.RebalancingNodeConfig.from_params(reb) == cfg.RebalancingNodeConfig()
    assert cfg.rebalancing_config(lp) == RebalancingConfig()
    assert cfg.RoutingPolicyNodeConfig.from_params(data["/**/routing_policy"]["ros__parameters"]) == \
        cfg.RoutingPolicyNodeConfig()


def test_scenario_from_parameters(tmp_path):
    s = make_scenario(cfg.RoutingSimNodeConfig(regions=5, horizon=7, vehicles=40, seed=2))
    assert (s.regions, s.horizon, s.vehicles, s.name) == (5, 7, 40, "synthetic-grid5-seed2")
    assert make_scenario(cfg.RoutingSimNodeConfig()).horizon == 60
    example = REPO / "config" / "routing" / "example_4x4.json"
    s = make_scenario(cfg.RoutingSimNodeConfig(scenario_file=str(example)))
    assert (s.name, s.regions, s.horizon) == ("example_4x4", 16, 10)
    with pytest.raises(ParameterError, match="scenario_file.*not found"):
        make_scenario(cfg.RoutingSimNodeConfig(scenario_file=str(tmp_path / "none.json")))
    broken = tmp_path / "broken.json"
    broken.write_text('{"demand": [{"time_stamp": 420, "origin": 0}]}')
    with pytest.raises(ParameterError, match="scenario_file.*demand\\[0\\].*destination"):
        make_scenario(cfg.RoutingSimNodeConfig(scenario_file=str(broken)))


# -- the pure loop ---------------------------------------------------------------------------


def test_session_checks_flows_holds_and_starts_episodes(city, session):
    idle = session.state().idle
    with pytest.raises(ValueError, match="finite integers"):
        session.check(np.full((REGIONS, REGIONS), np.nan))
    too_many = np.zeros((REGIONS, REGIONS))
    too_many[0, 1] = idle[0] + 1
    with pytest.raises(ValueError, match="out of region 0"):
        session.check(too_many)
    infos = []
    while not session.episode_done:
        infos.append(session.step(None, rc.HOLD_TIMEOUT))
    assert [i["step"] for i in infos] == list(range(HORIZON)) and all(i["moved"] == 0 for i in infos)
    assert all(i["idle_next"] + i["in_transit_next"] == city.vehicles for i in infos)
    assert session.records[0].held == HORIZON
    session.next_episode()
    assert session.state().stamp == (1, 0)


def test_pure_loop_equals_rollout(city):
    """Session + rebalancing loop + heuristic, through the messages: the rewards of rollout."""
    for name in ("demand_proportional", "random_distribution"):
        expected = rollout(RoutingEnv(city, Rebalancer()), make_routing_policy(name, city), 2, seed=3).returns()
        sess = RoutingSession(city, 4, seed=3)
        loop = rl.RebalancingLoop(Rebalancer(), max_goal_age_steps=0)
        loop.set_travel_time(rc.travel_time_from_msg(rc.travel_time_msg(city.travel_time)))
        policy = hl.HeuristicPolicy(name, seed=3)
        returns = []
        for episode in range(2):
            if episode:
                sess.next_episode()
            policy.reset(episode)
            while not sess.episode_done:
                state = rc.state_from_msg(rc.state_msg(sess.state()))
                loop.on_state(state)
                loop.on_goal(*rc.distribution_from_msg(rc.distribution_msg(policy.decide(state), *state.stamp)))
                flows, status = loop.flows(state)
                assert status == rl.CURRENT
                sess.step(rc.flows_from_msg(rc.flows_msg(flows, *state.stamp), REGIONS)[0])
            returns.append(sess.records[-1].return_)
        np.testing.assert_allclose(returns, expected, rtol=1e-12, err_msg=name)


def test_rebalancing_rules(city, session):
    loop = rl.RebalancingLoop(Rebalancer(), max_goal_age_steps=2)
    state = session.state()
    loop.on_state(state)
    assert loop.flows(state) == (None, "no_travel_time")
    loop.set_travel_time(city.travel_time)
    assert loop.flows(state) == (None, rl.NO_GOAL)               # no goal yet: no flows at all
    w = np.arange(1.0, REGIONS + 1)
    loop.on_goal(w, (0, 0))
    expected = Rebalancer().act(state.idle, Rebalancer().goal_from_action(w / w.sum(), state.idle), city.travel_time)
    flows, status = loop.flows(state)
    assert status == rl.CURRENT and flows.any()
    np.testing.assert_array_equal(flows, expected)
    # NaN, negative, wrong size: rejected, counted, the goal stays
    for bad, match in ((np.r_[w[:-1], np.nan], "not finite"), (-w, ">= 0"), (w[:-1], "7 weights for 8")):
        with pytest.raises(rl.GoalError, match=match):
            loop.on_goal(bad, (0, 1))
    assert loop.counters.goals_rejected == 3 and loop.goal.step == 0
    # age in steps: within max_goal_age_steps the goal is used, beyond it the fleet holds
    for step, status in ((1, rl.OLDER), (2, rl.OLDER), (3, rl.STALE)):
        later = rc.RoutingState(0, step, state.idle, state.obs, 4)
        assert loop.goal_status(later) == status
    flows, status = loop.flows(rc.RoutingState(0, 3, state.idle, state.obs, 4))
    assert status == rl.STALE and not flows.any()
    assert loop.goal_status(rc.RoutingState(1, 0, state.idle, state.obs, 4)) == rl.STALE   # another episode
    assert loop.counters.by_status == {rl.NO_GOAL: 1, rl.CURRENT: 1, rl.STALE: 1}
    # a goal without a step is taken for the latest state
    loop.on_goal(np.zeros(REGIONS), None)                    # all zero: uniform
    assert (loop.goal.episode, loop.goal.step) == (0, 0) and np.allclose(loop.goal.distribution, 1 / REGIONS)


class StandIn:
    """A model with the interface of ``ohio_core.learning.policy.Policy``."""

    def __init__(self, **meta):
        layout = ObsLayout(REGIONS, 4).as_list()
        self.meta = {"task": "routing", "level": "goal", "obs_layout": layout, "action_dim": REGIONS, **meta}

    def act(self, obs):
        return np.linspace(-0.5, 0.5, REGIONS)


@pytest.mark.parametrize("meta, match", [
    ({"task": "reach"}, "task is 'reach'"),
    ({"level": "flows"}, "level is 'flows'"),
    ({"obs_layout": [["obs", 36]]}, "not a routing ObsLayout"),
    ({"obs_layout": ObsLayout(REGIONS, 4).as_list()[:3]}, "not a routing ObsLayout"),
    ({"action_dim": REGIONS * REGIONS}, "one weight per region"),
])
def test_models_that_do_not_fit_are_refused(meta, match):
    with pytest.raises(ParameterError, match=match):
        hl.ModelPolicy(StandIn(**meta), "m.d3")


def test_model_policy_decodes_and_refuses_other_layouts(session):
    policy = hl.ModelPolicy(StandIn(), "m.d3")
    state = session.state()
    q = state.idle / state.idle.sum()                # the action changes the idle distribution
    np.testing.assert_allclose(policy.decide(state), np.maximum(q + np.linspace(-0.5, 0.5, REGIONS), 0.0))
    other = RoutingSession(synthetic(5, horizon=3), 4, 0).state()
    with pytest.raises(hl.PolicyMismatch, match="expects"):
        policy.decide(other)
    with pytest.raises(ParameterError, match="model_path"):
        hl.load_model("/nonexistent/model")


# -- nodes in this process over DDS ----------------------------------------------------------


@pytest.fixture
def spinner():
    s = Spinner()
    yield s
    s.close()


def discovered(node, publishers=(), topics=()):
    """Wait until the probe's publishers and its subscriptions (``topics``) are matched."""
    wait_for(lambda: all(p.get_subscription_count() for p in publishers)
             and all(node.count_publishers(t) for t in topics), what="discovery")


@pytest.mark.ros
def test_rebalancing_node_flows_stale_goal_and_nan_goal(spinner, city, session):
    from ohio_ros.routing.rebalancing_node import RebalancingNode

    node = spinner.add(RebalancingNode(context=spinner.context, parameter_overrides=params(
        max_goal_age_steps=1, goal_wait=0.2, diagnostics_period=0.2)))
    pnode, inbox, pubs = probe(spinner, subscriptions=[(Float64MultiArray, FLOWS), (DiagnosticArray, "/diagnostics")],
                               publishers=[(Float64MultiArray, STATE), (Float64MultiArray, GOAL)])
    tt_pub = pnode.create_publisher(Float64MultiArray, TRAVEL, qos.LATCHED)
    tt_pub.publish(rc.travel_time_msg(city.travel_time))
    wait_for(lambda: node.loop.travel_time is not None, what="travel times (latched)")
    state = session.state()
    w = np.arange(1.0, REGIONS + 1)
    expected = Rebalancer().act(state.idle, Rebalancer().goal_from_action(w / w.sum(), state.idle), city.travel_time)
    discovered(pnode, [pubs[GOAL], pubs[STATE]], [FLOWS])

    def flows_for(s):
        inbox[FLOWS].clear()
        pubs[STATE].publish(rc.state_msg(s))
        msg = wait_for(inbox[FLOWS].last, what=f"flows for step {s.step}")
        return rc.flows_from_msg(msg, REGIONS)

    # before the first goal: no flows at all (the simulator would offer the state again)
    pubs[STATE].publish(rc.state_msg(state))
    wait_for(lambda: node.loop.counters.by_status.get(rl.NO_GOAL) == 1, what="a state without a goal")
    assert node.loop.counters.flows_published == 0 and len(inbox[FLOWS]) == 0
    pubs[GOAL].publish(rc.distribution_msg(w, 0, 0))
    wait_for(lambda: node.loop.goal is not None, what="the goal")
    flows, stamp = flows_for(state)                           # the state offered again
    assert stamp == (0, 0)
    np.testing.assert_array_equal(flows, expected)
    # a NaN goal is rejected and counted; the last good goal is still used one step later
    bad = w.copy()
    bad[2] = np.nan
    pubs[GOAL].publish(Float64MultiArray(data=bad.tolist()))
    wait_for(lambda: node.loop.counters.goals_rejected == 1, what="the NaN goal rejected")
    flows, stamp = flows_for(rc.RoutingState(0, 1, state.idle, state.obs, 4))
    assert stamp == (0, 1)
    np.testing.assert_array_equal(flows, expected)
    # two steps after its state the goal is stale (max_goal_age_steps 1): zero flows, counted
    flows, stamp = flows_for(rc.RoutingState(0, 2, state.idle, state.obs, 4))
    assert stamp == (0, 2) and not flows.any()
    assert node.loop.counters.by_status == {rl.NO_GOAL: 1, rl.CURRENT: 1, rl.OLDER: 1, rl.STALE: 1}
    d = wait_for(lambda: (m := inbox["/diagnostics"].last()) and diagnostics.diagnostic_values(m)
                 ["rebalancing: rebalancing"].get("stale_goal") == "1" and m, what="diagnostics")
    assert diagnostics.diagnostic_values(d)["rebalancing: rebalancing"]["goals_rejected"] == "1"


@pytest.mark.ros
def test_sim_node_applies_flows_rejects_infeasible_ones_and_ignores_late_ones(spinner, city):
    from ohio_ros.routing.sim_node import RoutingSimNode

    node = spinner.add(RoutingSimNode(context=spinner.context, parameter_overrides=params(
        regions=REGIONS, horizon=HORIZON, step_timeout=60.0, start_subscribers=1)))
    pnode, inbox, pubs = probe(spinner, subscriptions=[(Float64MultiArray, STATE), (Float64MultiArray, INFO)],
                               publishers=[(Float64MultiArray, FLOWS)])
    discovered(pnode, [pubs[FLOWS]], [INFO])
    first = rc.state_from_msg(wait_for(inbox[STATE].last, what="the first state"))
    assert first.stamp == (0, 0)
    x = np.zeros((REGIONS, REGIONS), dtype=int)
    x[0, 1] = 1
    pubs[FLOWS].publish(rc.flows_msg(x, 0, 0))
    info = rc.step_info_from_msg(wait_for(inbox[INFO].last, what="step info"))
    assert (info["episode"], info["step"], info["moved"], info["hold"]) == (0, 0, 1, rc.HOLD_NONE)
    assert info["idle_next"] + info["in_transit_next"] == city.vehicles
    wait_for(lambda: rc.state_from_msg(inbox[STATE].last()).step == 1, what="the state of step 1")
    pubs[FLOWS].publish(rc.flows_msg(x, 0, 0))                # late: made for step 0
    x[0, 1] = 10 ** 6                                         # more vehicles than idle: rejected, held
    pubs[FLOWS].publish(rc.flows_msg(x, 0, 1))
    wait_for(lambda: node.counts["held_rejected"] == 1, what="infeasible flows rejected")
    nan = np.zeros(REGIONS * REGIONS)
    nan[3] = np.nan
    pubs[FLOWS].publish(Float64MultiArray(data=nan.tolist()))  # plain flows, for the current step
    wait_for(lambda: node.counts["held_rejected"] == 2, what="NaN flows rejected")
    assert node.counts["flows_late"] == 1 and node.counts["flows_applied"] == 1
    infos = [rc.step_info_from_msg(m) for m in wait_for(lambda: len(inbox[INFO]) == 3 and inbox[INFO].all(),
                                                        what="three step infos")]
    assert [(i["step"], i["hold"], i["moved"]) for i in infos] == [
        (0, rc.HOLD_NONE, 1), (1, rc.HOLD_REJECTED, 0), (2, rc.HOLD_REJECTED, 0)]
    assert all(i["idle_next"] + i["in_transit_next"] == city.vehicles for i in infos)


@pytest.mark.ros
def test_sim_node_offers_the_first_state_again_then_holds_without_flows(spinner, city):
    from ohio_ros.routing.sim_node import RoutingSimNode

    node = spinner.add(RoutingSimNode(context=spinner.context, parameter_overrides=params(
        regions=REGIONS, horizon=3, step_timeout=0.2, start_subscribers=1, max_episodes=2)))
    pnode, inbox, pubs = probe(spinner, subscriptions=[(Float64MultiArray, STATE), (Float64MultiArray, INFO)],
                               publishers=[(Float64MultiArray, FLOWS)])
    discovered(pnode, [pubs[FLOWS]], [INFO])
    # wait_for_flows: until flows come, the first state is offered again and nothing advances
    wait_for(lambda: node.counts["states_republished"] >= 2, what="the first state again")
    assert {rc.state_from_msg(m).stamp for m in inbox[STATE].all()} == {(0, 0)} and len(inbox[INFO]) == 0
    pubs[FLOWS].publish(rc.flows_msg(np.zeros((REGIONS, REGIONS)), 0, 0))
    # then no more flows: every step times out, the fleet holds, the episodes go on
    wait_for(lambda: node.finished, what="two episodes of stale steps")
    # the node counts a step when it publishes its info; the probe receives it a little later
    infos = [rc.step_info_from_msg(m) for m in wait_for(lambda: len(inbox[INFO]) >= node.counts["steps"] and
                                                        inbox[INFO].all(), what="every step's info")]
    assert [(i["episode"], i["step"], i["hold"]) for i in infos] == [
        (0, 0, rc.HOLD_NONE), (0, 1, rc.HOLD_TIMEOUT), (0, 2, rc.HOLD_TIMEOUT),
        (1, 0, rc.HOLD_TIMEOUT), (1, 1, rc.HOLD_TIMEOUT), (1, 2, rc.HOLD_TIMEOUT)]
    assert node.report()["episodes"][1]["held"] == 3 and node.counts["held_timeout"] == 5


@pytest.mark.ros
def test_policy_node_publishes_the_heuristic_for_each_state(spinner, session, city):
    from ohio_ros.routing.policy_node import RoutingPolicyNode

    node = spinner.add(RoutingPolicyNode(context=spinner.context, parameter_overrides=params(
        heuristic="random_distribution", seed=4)))
    pnode, inbox, pubs = probe(spinner, subscriptions=[(Float64MultiArray, GOAL)],
                               publishers=[(Float64MultiArray, STATE)])
    discovered(pnode, [pubs[STATE]], [GOAL])
    state = session.state()
    pubs[STATE].publish(rc.state_msg(state))
    weights, stamp = rc.distribution_from_msg(wait_for(inbox[GOAL].last, what="a distribution"))
    expected = make_routing_policy("random_distribution", city)
    expected.reset(np.random.default_rng(np.random.SeedSequence([4, 0, 1])))
    assert stamp == (0, 0)
    np.testing.assert_array_equal(weights, expected(state.obs))
    pubs[STATE].publish(rc.state_msg(state))                 # the same state again: the same goal
    wait_for(lambda: len(inbox[GOAL]) == 2, what="the goal again")
    np.testing.assert_array_equal(rc.distribution_from_msg(inbox[GOAL].last())[0], weights)
    pubs[STATE].publish(rc.state_msg(RoutingSession(synthetic(3, horizon=2), 0, 0).state()))   # other n: fine
    wait_for(lambda: len(inbox[GOAL]) == 3, what="a distribution for 3 regions")
    assert node.goals_published == 2


# -- the launch file and its nodes as subprocesses -------------------------------------------


def test_launch_file_arguments_and_remappings():
    launch = read_launch(LAUNCH, {"policy": "model", "model_path": "/m", "state": "/fleet/state"})
    nodes = {n.name: n for n in launch.nodes}
    assert [n.executable for n in launch.nodes] == ["routing_sim_node", "rebalancing_node", "routing_policy_node"]
    assert nodes["routing_policy"].parameters[1] == {"policy": "model", "heuristic": "demand_proportional",
                                                     "model_path": "/m"}
    assert all(n.parameters[0] == PACKAGE / "config" / "routing.yaml" for n in launch.nodes)
    assert dict(nodes["routing_policy"].remappings) == {"routing/state": "/fleet/state",
                                                        "routing/desired_distribution": "routing/desired_distribution"}
    assert dict(nodes["rebalancing"].remappings)["routing/state"] == "/fleet/state"
    assert set(dict(nodes["routing_sim"].remappings)) == {"routing/state", "routing/flows", "routing/travel_time",
                                                          "routing/step_info"}
    with pytest.raises(LaunchReadError, match="no launch argument"):
        read_launch(LAUNCH, {"regions": "4"})


def start_loop(procs, tmp_path, overrides, sim_extra, report, probe_node, probe_topics):
    """The launch file's nodes: policy and rebalancing first, then the simulator once they (and the
    probe's subscriptions) are up; it starts when they subscribe its states. Generous waits: a
    stale step would change the rewards."""
    nodes = {n.name: n for n in read_launch(LAUNCH, overrides).nodes}
    procs.start("rebalancing", command_line(nodes["rebalancing"], tmp_path) + ["-p", "goal_wait:=3.0"])
    procs.start("routing_policy", command_line(nodes["routing_policy"], tmp_path))
    if GOAL in probe_topics:
        wait_for(lambda: procs.alive("routing_policy") and probe_node.count_publishers(GOAL),
                 what=f"the policy node up {procs.report()}")
    procs.start("routing_sim", command_line(nodes["routing_sim"], tmp_path) + [
        "-p", f"regions:={REGIONS}", "-p", f"horizon:={HORIZON}", "-p", "step_timeout:=6.0",
        "-p", f"report_path:={report}", "-p", "start_subscribers:=3", *sim_extra])
    wait_for(lambda: all(probe_node.count_publishers(t) for t in probe_topics), what="the probe's topics")


@pytest.mark.ros
def test_closed_loop_earns_the_rewards_of_rollout(tmp_path, city):
    """demand_proportional through three processes over DDS = rollout of the same policy and seed."""
    report = tmp_path / "report.json"
    procs = Processes(tmp_path)
    spinner = Spinner()
    try:
        pnode, inbox, _ = probe(spinner, subscriptions=[(Float64MultiArray, STATE), (Float64MultiArray, INFO)])
        start_loop(procs, tmp_path, {}, ["-p", "max_episodes:=2", "-p", "seed:=5"], report, pnode, [STATE, INFO])

        def two_episodes():
            assert all(procs.alive(n) for n in procs.procs), procs.report()
            return len(inbox[INFO]) >= 2 * HORIZON
        wait_for(two_episodes, what="two episodes of step info")
    finally:
        spinner.close()
        codes = procs.stop()
    assert codes == {"rebalancing": 0, "routing_policy": 0, "routing_sim": 0}, procs.report()
    city5 = synthetic(REGIONS, horizon=HORIZON, seed=5)
    infos = [rc.step_info_from_msg(m) for m in inbox[INFO].all()]
    states = [rc.state_from_msg(m) for m in inbox[STATE].all()]
    assert [(i["episode"], i["step"]) for i in infos] == [(e, t) for e in range(2) for t in range(HORIZON)]
    # the first state comes again if the loop was not complete when it was offered (wait_for_flows)
    again = sum(1 for a, b in zip(states, states[1:]) if a.stamp == b.stamp)
    assert [s.stamp for s in states][again:] == [(e, t) for e in range(2) for t in range(HORIZON)]
    assert all(i["hold"] == rc.HOLD_NONE for i in infos), procs.report()
    assert all(i["idle_next"] + i["in_transit_next"] == city5.vehicles for i in infos)
    assert all(s.idle.sum() <= city5.vehicles for s in states) and sum(i["moved"] for i in infos) > 0
    returns = [sum(i["reward"] for i in infos if i["episode"] == e) for e in range(2)]
    expected = rollout(RoutingEnv(city5, Rebalancer()), make_routing_policy("demand_proportional", city5), 2,
                       seed=5).returns()
    np.testing.assert_allclose(returns, expected, rtol=1e-9, err_msg=procs.report() + str(infos))
    data = json.loads(report.read_text())
    assert data["flows_applied"] == 2 * HORIZON and data["held_timeout"] == data["held_rejected"] == 0
    assert data["states_republished"] == again
    assert [e["return"] for e in data["episodes"]] == pytest.approx(list(expected), rel=1e-9)
    assert "current_goal': 20" in procs.output("rebalancing")


@pytest.fixture(scope="module")
def routing_model(tmp_path_factory, city):
    """A routing goal model trained here on OHIO-relabeled flows (behavior cloning, 20 updates)."""
    from ohio_core.learning.algos import TrainConfig
    from ohio_core.learning.train import train
    from ohio_core.pipeline.dataset import load_dataset, save_dataset
    from ohio_core.routing.datasets import relabel_routing

    out = tmp_path_factory.mktemp("routing_model")
    env = RoutingEnv(city, Rebalancer())
    log = rollout(env, make_routing_policy("demand_proportional", city), 2, seed=1)
    log.meta["obs_layout"] = env.layout.as_list()
    data = relabel_routing(log, city.travel_time, "ohio")
    save_dataset(data, out / "data", {"task": "routing", "level": "goal", "k": 1, "regions": REGIONS,
                                      "method": "ohio"})
    buffer, meta = load_dataset(out / "data")
    res = train(buffer, meta, TrainConfig(algo="bc", steps=20, epochs=1, batch_size=16), out / "model",
                progress=False)
    return res.model


@pytest.mark.ros
def test_a_trained_model_drives_the_loop(tmp_path, routing_model):
    from ohio_core.learning.policy import load_policy
    from ohio_core.routing.datasets import decode_distribution, idle_distribution

    procs = Processes(tmp_path)
    spinner = Spinner()
    report = tmp_path / "report.json"
    try:
        pnode, inbox, _ = probe(spinner, subscriptions=[(Float64MultiArray, STATE), (Float64MultiArray, GOAL),
                                                        (Float64MultiArray, INFO)])
        start_loop(procs, tmp_path, {"policy": "model", "model_path": str(routing_model)},
                   ["-p", "max_episodes:=1"], report, pnode, [STATE, GOAL, INFO])

        def one_episode():
            assert all(procs.alive(n) for n in procs.procs), procs.report()
            return len(inbox[INFO]) >= HORIZON and len(inbox[GOAL]) >= HORIZON
        wait_for(one_episode, what="an episode driven by the model")
    finally:
        spinner.close()
        codes = procs.stop()
    assert set(codes.values()) == {0}, procs.report()
    assert f"model {routing_model}" in procs.output("routing_policy")
    model = load_policy(routing_model)
    states = {rc.state_from_msg(m).stamp: rc.state_from_msg(m) for m in inbox[STATE].all()}
    goals = [rc.distribution_from_msg(m) for m in inbox[GOAL].all()]
    stamps = [stamp for _, stamp in goals]           # (a goal for a state offered again comes again)
    assert sorted(set(stamps)) == [(0, t) for t in range(HORIZON)] and stamps == sorted(stamps)
    for weights, stamp in goals:
        s = states[stamp]
        expected = decode_distribution(model.act(s.obs), idle_distribution(s.obs[s.layout.idle]))
        np.testing.assert_allclose(weights, expected, atol=1e-6)
    infos = [rc.step_info_from_msg(m) for m in inbox[INFO].all()]
    assert all(i["hold"] == rc.HOLD_NONE for i in infos) and sum(i["moved"] for i in infos) > 0
    assert "current_goal': 10" in procs.output("rebalancing")


@pytest.mark.ros
def test_invalid_parameters_and_models_stop_the_node_with_the_reason(tmp_path, routing_model):
    nodes = {n.name: n for n in read_launch(LAUNCH).nodes}
    reach_model = tmp_path / "reach"
    meta = json.loads(routing_model.with_suffix(".json").read_text())
    reach_model.with_suffix(".json").write_text(json.dumps(dict(meta, task="reach")))
    reach_model.with_suffix(".d3").write_bytes(routing_model.read_bytes())
    for node, extra, reason in (
            ("routing_sim", ["-p", "regions:=1"], "regions"),
            ("routing_sim", ["-p", "scenario_file:=/nonexistent.json"], "scenario_file"),
            ("rebalancing", ["-p", "rebalancing.solver:=glpk"], "rebalancing.solver"),
            ("rebalancing", ["-p", "max_goal_age:=3"], "max_goal_age"),
            ("routing_policy", ["-p", "policy:=model"], "model_path"),
            ("routing_policy", ["-p", "policy:=model", "-p", f"model_path:={reach_model}"], "task is 'reach'")):
        r = subprocess.run(command_line(nodes[node], tmp_path) + extra, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (node, extra, r.stderr[-2000:])
        assert reason in r.stderr, (reason, r.stderr[-2000:])
