"""Fleet rebalancing core: scenarios and their JSON format, the rebalancing LP, its inverse, the
simulator and envs, and the behavior heuristics."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from controllers.config import ConfigError
from controllers.rebalancing import (RebalancingConfig, Rebalancer, desired_counts, flow_cost, project_flows,
                                     rebalance)
from ohio_core.routing.env import FlatRoutingEnv, ObsLayout, RoutingEnv, RoutingLog, rollout
from ohio_core.routing.inverse import (FlowStatus, desired_from_flows, distribution_from_flows, invert_flows)
from ohio_core.routing.policies import POLICIES, make_routing_policy
from ohio_core.routing.scenario import Scenario, ScenarioError, synthetic
from ohio_core.routing.scenario_io import load_scenario, save_scenario
from ohio_core.routing.sim import match

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "routing" / "example_4x4.json"


def tiny_scenario(**changes) -> dict:
    n, T = 3, 4
    fields = dict(name="tiny", travel_time=np.array([[1, 2, 3], [2, 1, 2], [3, 2, 1]]),
                  demand=np.full((T, n, n), 0.5), price=np.full((T, n, n), 4.0), vehicles=12, horizon=T)
    fields.update(changes)
    return fields


# --- scenarios ---------------------------------------------------------------------------------


@pytest.mark.parametrize("changes, match_text", [
    ({"name": ""}, "name"),
    ({"travel_time": np.ones((3, 2))}, "square"),
    ({"travel_time": np.array([[1, 0, 1], [1, 1, 1], [1, 1, 1]])}, "integers >= 1"),
    ({"travel_time": np.array([[1, 1.5, 1], [1, 1, 1], [1, 1, 1]])}, "integers >= 1"),
    ({"demand": -np.ones((4, 3, 3))}, "demand must be >= 0"),
    ({"demand": np.ones((4, 2, 2))}, "demand must have shape"),
    ({"price": np.ones((3, 3, 3))}, "price shape"),
    ({"price": np.full((4, 3, 3), np.nan)}, "finite"),
    ({"vehicles": 0}, "vehicles"),
    ({"vehicles": 2.5}, "vehicles"),
    ({"vehicles": True}, "vehicles"),
    ({"horizon": 5}, "horizon"),
    ({"step_minutes": 0.0}, "step_minutes"),
    ({"op_cost": -1.0}, "op_cost"),
    ({"positions": np.zeros((2, 2))}, "positions"),
    ({"start_hour": 24}, "start_hour"),
])
def test_scenario_validation(changes, match_text):
    with pytest.raises(ScenarioError, match=match_text):
        Scenario(**tiny_scenario(**changes))


def test_scenario_is_immutable():
    s = Scenario(**tiny_scenario())
    assert s.regions == 3 and s.steps == 4 and s.travel_time.dtype == np.int64
    with pytest.raises(ValueError):
        s.demand[0, 0, 0] = 1.0
    with pytest.raises(AttributeError):
        s.vehicles = 3


@pytest.mark.parametrize("regions, layout", [(10, "grid"), (10, "geometric"), (200, "grid"), (200, "geometric")])
def test_synthetic_sizes_and_seeds(regions, layout):
    s = synthetic(regions, layout=layout, horizon=30, seed=3)
    n = regions
    assert s.travel_time.shape == (n, n) and s.demand.shape == (30, n, n) and s.price.shape == (30, n, n)
    assert (s.travel_time >= 1).all() and (np.diagonal(s.travel_time) == 1).all()
    assert (s.demand > 0).all() and (s.price > 0).all() and s.positions.shape == (n, 2)
    assert 100 <= s.vehicles <= 20000
    # a served trip pays more than it costs to drive
    assert (s.price > s.op_cost * s.travel_time).all()
    again = synthetic(regions, layout=layout, horizon=30, seed=3)
    other = synthetic(regions, layout=layout, horizon=30, seed=4)
    for key in ("travel_time", "demand", "price", "positions"):
        assert np.array_equal(getattr(s, key), getattr(again, key)), key
    assert not np.array_equal(s.price, other.price)


def test_synthetic_peaks_point_in_then_out():
    s = synthetic(25, horizon=40, seed=0)
    r = np.linalg.norm(s.positions - 0.5, axis=1)
    central = r <= np.quantile(r, 0.3)
    into = lambda t: s.demand[t][:, central].sum() / s.demand[t].sum()      # noqa: E731
    out_of = lambda t: s.demand[t][central].sum() / s.demand[t].sum()      # noqa: E731
    morning, evening = int(0.3 * 40), int(0.75 * 40)
    assert into(morning) > into(evening) + 0.05 and out_of(evening) > out_of(morning) + 0.05
    flat = synthetic(25, horizon=40, seed=0, peaks=False)
    assert np.allclose(flat.demand, flat.demand[0])
    assert s.demand[morning].sum() > 1.5 * flat.demand[morning].sum()


def test_synthetic_builds_a_200_region_city():
    s = synthetic(200, layout="geometric", horizon=60)
    assert s.regions == 200 and s.travel_time.shape == (200, 200) and s.positions.shape == (200, 2)
    assert s.demand.shape[1:] == (200, 200) and s.demand.shape[0] >= 60 and s.price.shape == s.demand.shape
    off = ~np.eye(200, dtype=bool)
    assert (s.travel_time[off] >= 1).all() and (s.travel_time == s.travel_time.T).all()
    assert s.demand.sum(axis=(1, 2)).min() > 0 and s.vehicles >= 1000


def assert_same_scenario(a: Scenario, b: Scenario) -> None:
    for key in ("name", "vehicles", "horizon", "step_minutes", "op_cost", "start_hour"):
        assert getattr(a, key) == getattr(b, key), key
    for key in ("travel_time", "demand", "price", "positions"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key


@pytest.mark.parametrize("layout, step", [("grid", 3.0), ("geometric", 2.5)])
def test_json_round_trip(tmp_path, layout, step):
    s = synthetic(9, layout=layout, horizon=12, step_minutes=step, seed=7)
    back = load_scenario(save_scenario(s, tmp_path / "s.json"))
    assert_same_scenario(s, back)
    data = json.loads((tmp_path / "s.json").read_text())
    assert {"demand", "rebTime", "totalAcc", "region", "nlat", "nlon"} <= set(data)
    rec = data["demand"][0]
    assert set(rec) == {"time_stamp", "origin", "destination", "demand", "travel_time", "price"}


def test_shipped_example_is_the_synthetic_grid():
    s = load_scenario(EXAMPLE)
    ref = synthetic(16, horizon=10, name="example_4x4")
    assert s.name == "example_4x4" and s.regions == 16 and s.horizon == 10 and s.vehicles == ref.vehicles
    assert np.array_equal(s.travel_time, ref.travel_time) and np.array_equal(s.positions, ref.positions)
    assert np.abs(s.demand - ref.demand).max() <= 5e-4 and np.abs(s.price - ref.price).max() <= 5e-4


def public_file(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "scenario_test.json"
    path.write_text(json.dumps(data))
    return path


PUBLIC = {
    "nlat": 2, "nlon": 2,
    "demand": [
        # step 0 (07:00-07:03): two records on 0 -> 1, aggregated
        {"time_stamp": 420, "origin": 0, "destination": 1, "demand": 1.0, "travel_time": 6, "price": 10.0},
        {"time_stamp": 421, "origin": 0, "destination": 1, "demand": 3.0, "travel_time": 6, "price": 20.0},
        {"time_stamp": 423, "origin": 2, "destination": 3, "demand": 2.0, "travel_time": 9, "price": 7.0},
        {"time_stamp": 426, "origin": 3, "destination": 0, "demand": 0.5, "travel_time": 3, "price": 5.0},
        {"time_stamp": 300, "origin": 1, "destination": 2, "demand": 9.0, "travel_time": 3, "price": 5.0},
    ],
    "rebTime": [
        {"time_stamp": 6, "origin": 0, "destination": 1, "reb_time": 30},
        {"time_stamp": 7, "origin": 0, "destination": 1, "reb_time": 6},
        {"time_stamp": 7, "origin": 1, "destination": 0, "reb_time": 6},
        {"time_stamp": 7, "origin": 1, "destination": 2, "reb_time": 3},
        {"time_stamp": 7, "origin": 2, "destination": 1, "reb_time": 3},
        {"time_stamp": 7, "origin": 2, "destination": 3, "reb_time": 12},
        {"time_stamp": 7, "origin": 3, "destination": 2, "reb_time": 12},
    ],
    "totalAcc": [{"hour": 6, "acc": 100}, {"hour": 7, "acc": 200}, {"hour": 9, "acc": 300}],
}


def test_loader_reads_the_public_format(tmp_path):
    data = copy.deepcopy(PUBLIC)
    data["json_hr"] = 7          # the simulators' argument; without it the earliest record (05:00) starts
    s = load_scenario(public_file(tmp_path, data))
    assert s.name == "scenario_test" and s.regions == 4 and s.start_hour == 7 and s.step_minutes == 3.0
    assert s.steps == 3 and s.horizon == 3                   # the record at 05:00 is before the start
    assert s.demand[0, 0, 1] == 4.0 and s.price[0, 0, 1] == pytest.approx(17.5)   # (1*10 + 3*20) / 4
    assert s.demand[1, 2, 3] == 2.0 and s.demand[2, 3, 0] == 0.5 and s.demand.sum() == 6.5
    assert s.price[0, 1, 0] == 0.0                            # no demand there: never requested
    tt = s.travel_time
    assert tt[0, 1] == 2 and tt[1, 2] == 1 and tt[2, 3] == 4     # rebTime of hour 7, minutes / 3
    assert tt[3, 0] == 1                                     # from the demand record (3 min)
    assert tt[0, 2] == 3 and tt[0, 3] == 7                   # shortest paths over known pairs: 6+3, 6+3+12 min
    assert s.vehicles == 200                                 # totalAcc at json_hr + round(3/2 * 3/60) = 7
    assert s.op_cost == pytest.approx(1.5) and s.positions.shape == (4, 2)
    early = load_scenario(public_file(tmp_path, PUBLIC))
    assert early.start_hour == 5 and early.demand[0, 1, 2] == 9.0
    assert load_scenario(public_file(tmp_path, data), horizon=10, vehicles=50).horizon == 10


def _mutate(path: str, value):
    def apply(data):
        target = data
        keys = path.split(".")
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        last = keys[-1]
        if value is KeyError:
            del target[last]
        else:
            target[int(last) if isinstance(target, list) else last] = value
    return apply


@pytest.mark.parametrize("mutate, match_text", [
    (_mutate("demand", KeyError), "missing key 'demand'"),
    (_mutate("demand.2.price", KeyError), r"demand\[2\]: missing key 'price'"),
    (_mutate("demand.1.demand", "many"), r"demand\[1\]: 'demand' must be a finite number"),
    (_mutate("demand.0.demand", -1.0), r"demand\[0\]: 'demand' must be >= 0"),
    (_mutate("demand.3.origin", 1.5), r"demand\[3\]: 'origin' must be an integer"),
    (_mutate("demand.3.origin", 9), r"demand\[3\]: region 9 out of range"),
    (_mutate("rebTime.1", "x"), r"rebTime\[1\] must be an object"),
    (_mutate("totalAcc", {"hour": 7}), "'totalAcc' must be a list"),
    (_mutate("region", 1), "'region' must be an integer >= 2"),
    (_mutate("json_tstep", 0), "'json_tstep' must be >= 0|minutes per step must be > 0"),
])
def test_loader_errors_name_file_and_key(tmp_path, mutate, match_text):
    data = copy.deepcopy(PUBLIC)
    data["json_hr"] = 7
    mutate(data)
    path = public_file(tmp_path, data)
    with pytest.raises(ScenarioError, match=match_text) as err:
        load_scenario(path)
    assert str(path) in str(err.value)


def test_loader_file_errors(tmp_path):
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"demand\": [")
    with pytest.raises(ScenarioError, match="invalid JSON") as err:
        load_scenario(bad)
    assert str(bad) in str(err.value)
    bad.write_text("[1, 2]")
    with pytest.raises(ScenarioError, match="expected a JSON object"):
        load_scenario(bad)
    data = copy.deepcopy(PUBLIC)
    data["json_hr"] = 7
    data["rebTime"] = [r for r in data["rebTime"] if r["destination"] != 3]
    data["demand"] = [r for r in data["demand"] if r["destination"] != 3]
    with pytest.raises(ScenarioError, match=r"no travel time from region \d to 3"):
        load_scenario(public_file(tmp_path, data))


# --- the rebalancing LP ------------------------------------------------------------------------


def test_rebalancing_config():
    assert RebalancingConfig.from_dict({"type": "rebalancing", "cost_weight": 2}).cost_weight == 2.0
    assert RebalancingConfig.from_dict(RebalancingConfig().to_dict()) == RebalancingConfig()
    for bad in ({"cost_weight": 0.0}, {"cost_weight": float("nan")}, {"cost_weight": "1"}, {"solver": "glpk"}):
        with pytest.raises(ConfigError):
            RebalancingConfig(**bad)
    with pytest.raises(ConfigError, match="unknown key"):
        RebalancingConfig.from_dict({"solvr": "highs"})


def test_desired_counts(rng):
    w = rng.random((500, 12)) * (rng.random((500, 12)) < 0.7)
    w[:, 0] += 1e-3
    totals = rng.integers(0, 400, 500)
    d = desired_counts(w, totals)
    p = w / w.sum(1, keepdims=True)
    assert d.dtype == np.int64 and np.array_equal(d.sum(1), totals) and (d >= 0).all()
    assert (np.abs(d - p * totals[:, None]) < 1).all()
    assert np.array_equal(desired_counts(w[0], totals[0]), d[0])
    assert np.array_equal(desired_counts([1, 1, 1, 1], 6), [2, 2, 1, 1])       # ties: lower index first
    for bad, text in (([0, 0, 0], "positive sum"), ([1, -1, 1], ">= 0"), ([1, np.nan], "finite"),
                      (np.ones((2, 2, 2)), "shape")):
        with pytest.raises(ValueError, match=text):
            desired_counts(bad, 5)
    with pytest.raises(ValueError, match="idle_total"):
        desired_counts([1, 1], 2.5)


def brute_force(idle, desired, tt):
    """Least-cost feasible integer flows by enumeration (tiny n)."""
    n = len(idle)
    edges = [(i, j) for i in range(n) for j in range(n) if i != j]
    best = None
    for values in itertools.product(*[range(idle[i] + 1) for i, _ in edges]):
        x = np.zeros((n, n), dtype=int)
        for (i, j), v in zip(edges, values):
            x[i, j] = v
        if (x.sum(1) > idle).any() or (idle + x.sum(0) - x.sum(1) < desired).any():
            continue
        c = (tt * x).sum()
        best = c if best is None else min(best, c)
    return best


def check_feasible(x, idle, desired):
    assert x.dtype == np.int64 and (x >= 0).all() and not np.diagonal(x).any()
    assert (x.sum(1) <= idle).all() and (idle + x.sum(0) - x.sum(1) >= desired).all()


def test_lp_is_optimal_on_tiny_cases(rng):
    for _ in range(25):
        n = 3
        tt = rng.integers(1, 6, (n, n))       # often not a metric: detours can be cheaper
        idle = rng.integers(0, 4, n)
        desired = desired_counts(rng.random(n) + 1e-3, idle.sum() - rng.integers(0, 2) * (idle.sum() > 0))
        x = rebalance(idle, desired, tt)
        check_feasible(x, idle, desired)
        assert flow_cost(x, tt) == brute_force(idle, desired, tt)


def test_lp_integral_and_feasible_at_scale(rng):
    for n in (20, 60):
        pos = rng.random((n, 2))
        tt = np.maximum(1, np.rint(10 * np.abs(pos[:, None] - pos[None]).sum(-1))).astype(int)
        for _ in range(3):
            idle = rng.integers(0, 40, n)
            desired = desired_counts(rng.dirichlet(np.ones(n)), idle.sum())
            x = rebalance(idle, desired, tt, RebalancingConfig(solver="highs-ds"))
            check_feasible(x, idle, desired)
            # every unit leaving a surplus region pays at least its cheapest move
            assert flow_cost(x, tt) >= np.maximum(desired - idle, 0).sum() * tt[~np.eye(n, dtype=bool)].min()


def test_lp_errors():
    tt = np.array([[1, 2], [2, 1]])
    with pytest.raises(ValueError, match="infeasible"):
        rebalance([1, 1], [2, 1], tt)
    with pytest.raises(ValueError, match="idle"):
        rebalance([1, -1], [0, 0], tt)
    with pytest.raises(ValueError, match="desired"):
        rebalance([1, 1], [1, 0.5], tt)
    with pytest.raises(ValueError, match="travel_time"):
        rebalance([1, 1], [1, 1], np.ones((3, 3)))
    assert not rebalance([3, 1], [2, 1], tt).any()           # nobody short: nothing moves


def test_project_flows(rng):
    for _ in range(200):
        n = int(rng.integers(2, 8))
        idle = rng.integers(0, 10, n)
        raw = rng.normal(0, 1, (n, n)) * rng.choice([0.3, 3.0, 30.0])
        x = project_flows(raw, idle)
        assert x.dtype == np.int64 and (x >= 0).all() and not np.diagonal(x).any()
        assert (x.sum(1) <= idle).all()
        assert (x[raw <= 0] == 0).all()
        y = np.clip(raw, 0, None)
        np.fill_diagonal(y, 0)
        fits = y.sum(1) <= idle
        assert np.array_equal(x.sum(1)[fits], np.rint(y.sum(1))[fits])     # rows that fit keep their rounded total
        assert np.array_equal(project_flows(x, idle), x)                    # feasible integer flows unchanged
    batch = project_flows(rng.random((5, 4, 4)) * 3, rng.integers(0, 5, (5, 4)))
    assert batch.shape == (5, 4, 4)
    with pytest.raises(ValueError, match="finite"):
        project_flows(np.full((2, 2), np.nan), np.array([1, 1]))


# --- the inverse -------------------------------------------------------------------------------


def test_inverse_round_trip_is_exact(rng):
    N, n = 150, 8
    pos = rng.random((n, 2))
    tt = np.maximum(1, np.rint(8 * np.abs(pos[:, None] - pos[None]).sum(-1))).astype(int)
    idle = rng.integers(0, 30, (N, n)) * (rng.random((N, n)) < 0.8)
    idle[:, 0] += 1
    p = rng.dirichlet(np.full(n, 0.7), N)
    desired = desired_counts(p, idle.sum(1))
    flows = np.stack([rebalance(a, d, tt) for a, d in zip(idle, desired)])
    assert np.array_equal(desired_from_flows(idle, flows), desired)
    q = distribution_from_flows(idle, flows)
    assert np.allclose(q.sum(1), 1.0) and np.array_equal(desired_counts(q, idle.sum(1)), desired)
    res = invert_flows(idle, flows, tt)
    assert res.counts()["ok"] == N and np.array_equal(res.desired, desired) and (res.residual == 0).all()
    assert res.info["solves"] == 0


def test_kkt_inverse_flags_a_detour_and_a_swap():
    tt = np.full((3, 3), 2)
    np.fill_diagonal(tt, 1)
    idle = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0]])
    detour = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])       # 0 -> 1 -> 2 where 0 -> 2 would do
    direct = np.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]])
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]])         # two vehicles trade places
    res = invert_flows(idle, np.stack([detour, direct, swap]), tt)
    assert res.status.tolist() == [FlowStatus.NOT_OPTIMAL, FlowStatus.OK, FlowStatus.NOT_OPTIMAL]
    assert res.desired.tolist() == [[0, 1, 1], [0, 1, 1], [1, 1, 0]]
    assert res.residual.tolist() == [2.0, 0.0, 4.0]
    assert res.cost.tolist() == [4.0, 2.0, 4.0] and res.optimal_cost.tolist() == [2.0, 2.0, 0.0]


@pytest.mark.parametrize("method", ["certificate", "resolve"])
def test_inverse_in_chunks_equals_the_inverse_in_one_piece(rng, monkeypatch, method):
    """invert_flows bounds its memory by chunks of samples; the chunks change nothing."""
    import ohio_core.routing.inverse as inverse_routing

    s = synthetic(10, layout="geometric", horizon=20, seed=2)
    greedy = rollout(FlatRoutingEnv(s), make_routing_policy("greedy_dispatcher", s), 2, seed=5)
    idle = np.r_[greedy.idle, rng.integers(0, 25, (30, 10)), np.zeros((2, 10), int)]
    flows = np.r_[greedy.flows, project_flows(rng.random((30, 10, 10)) * 4, idle[len(greedy):-2]),
                  np.zeros((2, 10, 10), int)]
    flows[-5, 0, 1] = -1                                              # one infeasible sample
    whole = invert_flows(idle, flows, s.travel_time, method=method)
    monkeypatch.setattr(inverse_routing, "CHUNK_ENTRIES", 7 * 100)   # 7 samples per chunk
    chunked = invert_flows(idle, flows, s.travel_time, method=method)
    assert whole.info == chunked.info and whole.info["solves"] > 0
    for key in ("desired", "distribution", "cost", "optimal_cost", "residual", "status"):
        np.testing.assert_array_equal(getattr(chunked, key), getattr(whole, key), err_msg=key)
    assert set(whole.counts()) >= {"not_optimal", "ill_posed", "infeasible"}
    assert whole.counts()["not_optimal"] > 0 and whole.counts()["ill_posed"] == 2 and whole.counts()["infeasible"] == 1
    empty = invert_flows(idle[:0], flows[:0], s.travel_time, method=method)
    assert empty.status.shape == (0,) and empty.desired.shape == (0, 10)


def test_kkt_certificate_agrees_with_resolving(rng):
    s = synthetic(10, layout="geometric", horizon=20, seed=2)
    greedy = rollout(FlatRoutingEnv(s), make_routing_policy("greedy_dispatcher", s), 2, seed=5)
    idle = rng.integers(0, 25, (60, 10))
    noisy = project_flows(rng.random((60, 10, 10)) * 4, idle)
    for a, x in ((greedy.idle, greedy.flows), (idle, noisy)):
        cert = invert_flows(a, x, s.travel_time)
        full = invert_flows(a, x, s.travel_time, method="resolve")
        assert np.array_equal(cert.status, full.status) and np.allclose(cert.residual, full.residual)
        not_optimal = cert.status == FlowStatus.NOT_OPTIMAL
        assert cert.info["certificate_disagreements"] == 0 and cert.info["solves"] == not_optimal.sum()
        # the excess cost of a flagged flow against the LP's own flows to the same counts
        for k in np.flatnonzero(not_optimal)[:10]:
            best = rebalance(a[k], cert.desired[k], s.travel_time)
            assert cert.residual[k] == pytest.approx(flow_cost(x[k], s.travel_time) - flow_cost(best, s.travel_time))
    assert 0 < (invert_flows(greedy.idle, greedy.flows, s.travel_time).status == FlowStatus.NOT_OPTIMAL).sum() < len(greedy)
    assert (invert_flows(idle, noisy, s.travel_time).status == FlowStatus.NOT_OPTIMAL).sum() > 30


def test_negative_cycle_test_bellman_ford_rounds_agree_with_floyd_warshall_alone(rng, monkeypatch):
    """The Bellman-Ford rounds only settle samples early: the same answers as Floyd-Warshall on every
    sample (rounds = 0), on LP-optimal, greedy and noisy plans, non-metric float costs included; the
    LP's own plans settle without Floyd-Warshall."""
    from ohio_core.routing import inverse as inv

    s = synthetic(12, layout="geometric", horizon=20, seed=3)
    n = s.regions
    greedy = rollout(FlatRoutingEnv(s), make_routing_policy("greedy_dispatcher", s), 2, seed=1)
    lp = rollout(RoutingEnv(s, Rebalancer(RebalancingConfig())), make_routing_policy("random_distribution", s), 2, seed=1)
    idle = rng.integers(0, 20, (80, n))
    noisy = project_flows(rng.random((80, n, n)) * 3, idle)
    odd_costs = rng.uniform(0.5, 9.0, (n, n))                      # no triangle inequality, not integral
    sent = []
    fw = inv._floyd_warshall_negative
    monkeypatch.setattr(inv, "_floyd_warshall_negative", lambda W, tol: sent.append(len(W)) or fw(W, tol))
    for a, x in ((greedy.idle, greedy.flows), (lp.idle, lp.flows), (idle, noisy)):
        for tt in (s.travel_time, odd_costs):
            plan = inv.transport_plan(a, x)
            quick = inv.has_negative_cycle(plan, tt)
            assert np.array_equal(quick, inv.has_negative_cycle(plan, tt, bellman_ford_rounds=0))
    sent.clear()
    assert not inv.has_negative_cycle(inv.transport_plan(lp.idle, lp.flows), s.travel_time).any()
    assert sum(sent) < len(lp) // 10


def test_inverse_statuses():
    tt = np.array([[1, 2], [2, 1]])
    idle = np.array([[1, 1], [1, 1], [1, 1], [1, 1], [0, 0], [1, 1]])
    flows = np.array([[[0, 2], [0, 0]],          # more than region 0 holds
                      [[0, -1], [0, 0]],         # negative
                      [[0, 0.5], [0, 0]],        # fractional
                      [[1, 0], [0, 0]],          # diagonal
                      [[0, 0], [0, 0]],          # no idle vehicles
                      [[0, np.nan], [0, 0]]])
    res = invert_flows(idle, flows, tt)
    assert res.status.tolist() == [FlowStatus.INFEASIBLE] * 4 + [FlowStatus.ILL_POSED, FlowStatus.NON_FINITE]
    assert np.isnan(res.distribution[[0, 1, 2, 3, 5]]).all() and np.allclose(res.distribution[4], 0.5)
    assert res.counts() == {"ok": 0, "not_optimal": 0, "ill_posed": 1, "infeasible": 4, "non_finite": 1}


# --- simulator and envs ------------------------------------------------------------------------


def test_matching_maximizes_revenue(rng):
    for _ in range(20):
        n = 5
        requests = rng.poisson(2.0, (n, n))
        price = rng.integers(1, 6, (n, n)).astype(float)
        idle = rng.integers(0, 8, n)
        served = match(requests, price, idle)
        assert (served >= 0).all() and (served <= requests).all() and (served.sum(1) <= idle).all()
        # the LP of the assignment (integral: one constraint per origin plus bounds)
        A = np.kron(np.eye(n), np.ones(n))
        best = linprog(-price.ravel(), A_ub=A, b_ub=idle, bounds=list(zip(np.zeros(n * n), requests.ravel())),
                       method="highs")
        assert (served * price).sum() == pytest.approx(-best.fun)


@pytest.fixture(scope="module")
def city():
    return synthetic(12, layout="grid", horizon=24, seed=1)


def test_env_conserves_vehicles_and_follows_the_step_order(city):
    env = RoutingEnv(city, Rebalancer())
    policy = make_routing_policy("random_distribution", city)
    policy.reset(np.random.default_rng(0))
    obs, info = env.reset(seed=0)
    lay, V = env.layout, city.vehicles
    assert obs.shape == env.observation_space.shape == (lay.size,)
    steps = 0
    while True:
        assert env.sim.idle.sum() + env.sim.in_transit() == V
        assert np.allclose(lay.split(obs)["idle"] * V, env.sim.idle)
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        steps += 1
        served, flows, idle = info["served"], info["flows"], info["idle_before"]
        assert (served <= info["requests"]).all()
        assert np.array_equal(flows, rebalance(idle, info["goal"], city.travel_time))
        assert np.array_equal(info["idle_after"], idle - flows.sum(1))
        assert np.array_equal(idle + flows.sum(0) - flows.sum(1), info["goal"])
        expected = (served * city.price[info["t"]]).sum() - city.op_cost * (
            (served * city.travel_time).sum() + (flows * city.travel_time).sum())
        assert reward == pytest.approx(expected) and not terminated
        if truncated:
            break
    assert steps == city.horizon and env.sim.idle.sum() + env.sim.in_transit() == V
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step(np.ones(city.regions))


def test_flat_env_conserves_vehicles(city, rng):
    env = FlatRoutingEnv(city)
    obs, _ = env.reset(seed=3)
    done = False
    while not done:
        raw = rng.normal(0, 5, city.regions ** 2)
        idle = env.sim.idle.copy()
        obs, reward, _, done, info = env.step(raw)
        assert np.array_equal(info["flows"], project_flows(raw.reshape(city.regions, -1), idle))
        assert env.sim.idle.sum() + env.sim.in_transit() == city.vehicles


def test_env_actions(city):
    env = RoutingEnv(city, Rebalancer())
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(city.regions))       # all zero: uniform
    assert np.allclose(info["distribution"], 1.0 / city.regions)
    for bad, text in ((-np.ones(city.regions), ">= 0"), (np.ones(3), "shape"), (np.full(city.regions, np.nan), "finite")):
        with pytest.raises(ValueError, match=text):
            env.step(bad)
    with pytest.raises(TypeError, match="goal_from_action"):
        RoutingEnv(city, RebalancingConfig())
    start = np.zeros(city.regions, dtype=int)
    start[0] = city.vehicles
    obs, _ = env.reset(seed=0, options={"idle": start})
    assert obs[env.layout.idle][1:].sum() == 0
    with pytest.raises(ValueError, match="summing to"):
        env.reset(seed=0, options={"idle": start + 1})


def test_rollouts_are_seeded(city, tmp_path):
    env = RoutingEnv(city, Rebalancer())
    policy = make_routing_policy("random_distribution", city)
    a, b = rollout(env, policy, 2, seed=11), rollout(env, policy, 2, seed=11)
    c = rollout(env, policy, 2, seed=12)
    for key in ("obs", "idle", "flows", "reward", "action", "desired"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert not np.array_equal(a.reward, c.reward)
    assert len(a) == 2 * city.horizon and a.episodes == 2 and a.timeout.sum() == 2 and not a.terminal.any()
    assert np.array_equal(a.obs[1:city.horizon], a.next_obs[:city.horizon - 1])
    assert np.allclose(a.returns(), [a.reward[:city.horizon].sum(), a.reward[city.horizon:].sum()])
    back = RoutingLog.load(a.save(tmp_path / "log.npz"))
    assert back.meta == a.meta and all(np.array_equal(getattr(a, k), getattr(back, k)) for k in ("obs", "flows"))
    both = RoutingLog.concatenate([a, c])
    assert both.episodes == 4 and len(both) == 4 * city.horizon


def test_operations_summarize_the_log_and_add_up_to_its_reward(city):
    env = RoutingEnv(city, Rebalancer())
    log = rollout(env, make_routing_policy("random_distribution", city), 2, seed=4)
    ops = log.operations()
    V = city.vehicles
    moved = [int(np.sum(f)) for f in log.flows]
    assert ops["moved"] == pytest.approx(np.mean(moved)) and max(moved) > 0
    assert ops["rebalancing_cost"] == pytest.approx(
        np.mean([city.op_cost * np.sum(f * city.travel_time) for f in log.flows]) / V)
    assert ops["revenue"] - ops["trip_cost"] - ops["rebalancing_cost"] == pytest.approx(log.reward.mean() / V)
    assert ops["served_share"] == pytest.approx(log.served.sum() / log.requests.sum()) and 0 < ops["served_share"] <= 1
    assert ops["idle"] == pytest.approx(log.idle.sum(1).mean())
    with pytest.raises(ValueError, match="empty log"):
        rollout(env, make_routing_policy("uniform", city), 0).operations()
    # a concatenation of logs of one fleet keeps its size: the operations are those of all steps
    other = rollout(env, make_routing_policy("uniform", city), 1, seed=5)
    both = RoutingLog.concatenate([log, other]).operations()
    assert both["revenue"] == pytest.approx(np.r_[log.revenue, other.revenue].mean() / V)
    assert both["moved"] == pytest.approx(np.mean(moved + [int(np.sum(f)) for f in other.flows]))
    del other.meta["vehicles"]
    with pytest.raises(ValueError, match="fleet size"):
        RoutingLog.concatenate([log, other]).operations()


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_each_heuristic_runs_an_episode(city, name):
    policy = make_routing_policy(name, city)
    env = RoutingEnv(city, Rebalancer()) if policy.level == "goal" else FlatRoutingEnv(city)
    log = rollout(env, policy, 1, seed=0)
    assert len(log) == city.horizon and log.meta["policy"] == name
    assert log.served.sum() > 0.5 * log.requests.sum() and np.isfinite(log.reward).all()
    other = FlatRoutingEnv(city) if policy.level == "goal" else RoutingEnv(city, Rebalancer())
    with pytest.raises(ValueError, match="acts at level"):
        rollout(other, policy, 1)


def test_greedy_dispatcher_moves_surplus_to_the_nearest_deficit():
    tt = np.array([[1, 1, 3], [1, 1, 2], [3, 2, 1]])
    s = Scenario(name="line", travel_time=tt, demand=np.zeros((2, 3, 3)), price=np.zeros((2, 3, 3)),
                 vehicles=10, horizon=2)
    policy = make_routing_policy("greedy_dispatcher", s)
    x = policy.flows(np.array([6, 4, 0]), np.array([1.0, 2.0, 3.5]))
    # surplus (5, 2, 0), deficit (0, 0, 4): region 1 (2 steps) first, then region 0 (3 steps)
    assert x.tolist() == [[0, 0, 2], [0, 0, 2], [0, 0, 0]]
    lay = ObsLayout(3)
    obs = np.zeros(lay.size)
    obs[lay.idle], obs[lay.demand] = np.array([6, 4, 0]) / 10, np.array([1.0, 2.0, 3.5]) / 10
    assert np.array_equal(policy(obs).reshape(3, 3), x)


@pytest.mark.parametrize("regions,lookahead", [(1, 0), (5, 3), (16, 4)])
def test_obs_layout_is_read_back_from_its_list(regions, lookahead):
    layout = ObsLayout(regions, lookahead)
    assert ObsLayout.from_list(layout.as_list()) == layout
    assert ObsLayout.from_list([(name, str(size)) for name, size in layout.as_list()]) == layout


@pytest.mark.parametrize("bad,match", [
    ([["q", 7], ["qd", 7]], "not a routing ObsLayout"),
    ([["idle", 4], ["arrivals", 9], ["demand", 4], ["time", 3]], "not a routing ObsLayout"),   # 9 = no L * n
    ([["idle", 4], ["arrivals", 8], ["demand", 4]], "not a routing ObsLayout"),
    ([["idle", 0], ["arrivals", 0], ["demand", 0], ["time", 3]], "not a routing ObsLayout"),
    (5, "not a list of \\[block, size\\]"),
    ([["idle", "four"]], "not a list of \\[block, size\\]"),
])
def test_obs_layout_refuses_lists_that_are_not_routing_layouts(bad, match):
    with pytest.raises(ValueError, match=match):
        ObsLayout.from_list(bad)


def test_transport_formulation_is_optimal_for_the_rebalancing_lp_on_metric_travel_times(rng):
    """Surplus-to-deficit transportation: feasible integral flows of the full LP's optimal cost on
    metric cities (sum d = sum a and sum d < sum a); non-metric travel times are detected, refused
    by the transport formulation, and ``invert_flows`` then prices flows with the full LP (agreeing
    with ``resolve``)."""
    from controllers.rebalancing import is_metric, transport_flows

    transport = RebalancingConfig(formulation="transport")
    for layout, n in (("grid", 9), ("geometric", 14)):
        tt = synthetic(n, layout=layout, horizon=10, seed=n).travel_time
        assert is_metric(tt)
        for spare in (0, 3) * 12:
            a = rng.integers(0, 12, n)
            d = desired_counts(rng.dirichlet(np.ones(n)), max(a.sum() - spare, 0))
            lp = float(flow_cost(rebalance(a, d, tt), tt))
            x = rebalance(a, d, tt, transport)
            assert x.dtype == np.int64 and (x >= 0).all() and (np.diagonal(x) == 0).all()
            assert (x.sum(1) <= a).all() and (a + x.sum(0) - x.sum(1) >= d).all()
            assert float(flow_cost(x, tt)) == pytest.approx(lp, abs=1e-9)
            assert transport_flows(a, d, tt)[1] == pytest.approx(lp, abs=1e-9)
    shortcut = np.array([[1.0, 1.0, 5.0], [1.0, 1.0, 1.0], [5.0, 1.0, 1.0]])   # 0 -> 2 costs 5, via 1 costs 2
    assert not is_metric(shortcut) and is_metric(np.minimum(shortcut, 2.0))
    a, d = np.array([3, 3, 0]), np.array([0, 3, 3])               # 1's own vehicles relay: 0 -> 1, 1 -> 2
    assert float(flow_cost(rebalance(a, d, shortcut), shortcut)) == 6.0
    assert transport_flows(a, d, shortcut)[1] == 15.0               # why non-metric times need the full LP
    with pytest.raises(ValueError, match="needs metric travel times"):
        rebalance(a, d, shortcut, transport)
    with pytest.raises(ConfigError, match="formulation"):
        RebalancingConfig(formulation="shortest")
    odd = rng.uniform(0.5, 9.0, (8, 8))
    idle = rng.integers(0, 15, (40, 8))
    noisy = project_flows(rng.random((40, 8, 8)) * 3, idle)
    cert = invert_flows(idle, noisy, odd)
    full = invert_flows(idle, noisy, odd, method="resolve")
    assert not is_metric(odd) and (cert.status == FlowStatus.NOT_OPTIMAL).sum() > 20
    assert np.array_equal(cert.status, full.status) and np.allclose(cert.residual, full.residual)
