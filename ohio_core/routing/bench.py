"""Benchmark of the routing low level and its inverse against the city size.

Per city and behavior: a synthetic grid city per region count (as ``ohio experiment routing`` builds
it) or a city of a scenario file (``routing.city.CitySpec``), ``episodes`` episodes of the behavior
(goal-level heuristics through the rebalancing LP, the greedy dispatcher's flows directly; the LP in
the ``formulation`` given), then the inverse of the logged flows (``routing.inverse``), timed by part:

- closed form: d = a + inflow - outflow, p = d / sum a (``distribution_from_flows``);
- certificate: the test of LP optimality (``has_negative_cycle`` on the transport plans);
- ``invert_flows`` without and with the residual LPs (one rebalancing LP per flow that is not
  LP-optimal, for its cost gap), as the relabeling runs it.

Each part is the best of ``repeats`` runs, as ``timeit`` does.
"""

from __future__ import annotations

import time

import numpy as np

from controllers.rebalancing import Rebalancer, RebalancingConfig, cost_tolerance
from ohio_core.routing.env import FlatRoutingEnv, RoutingEnv, rollout
from ohio_core.routing.inverse import (FlowStatus, distribution_from_flows, has_negative_cycle, invert_flows,
                                       transport_plan)
from ohio_core.routing.policies import make_routing_policy
from ohio_core.routing.scenario import Scenario, synthetic

DEFAULT_REGIONS = (10, 50, 100, 200)
DEFAULT_BEHAVIORS = ("greedy_dispatcher", "demand_proportional")


def _best(fn, repeats: int):
    """(best wall time over ``repeats`` calls, the last result)."""
    seconds, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        seconds = min(seconds, time.perf_counter() - t0)
    return seconds, out


def city(regions: int, seed: int = 0) -> Scenario:
    """The synthetic city of ``regions`` regions the benchmark times by default."""
    return synthetic(regions, layout="grid", horizon=60, seed=seed)


def measure(scenario: Scenario, behavior: str, episodes: int = 2, seed: int = 0, repeats: int = 3,
            formulation: str = "edges") -> dict:
    """One row of the benchmark (module docstring) on ``scenario``: times in seconds, per-transition times
    in ms; ``formulation``: the rebalancing LP's (``RebalancingConfig.formulation``) for goal-level behaviors."""
    policy = make_routing_policy(behavior, scenario)
    low_level = Rebalancer(RebalancingConfig(formulation=formulation))
    env = FlatRoutingEnv(scenario) if policy.level == "flows" else RoutingEnv(scenario, low_level)
    t0 = time.perf_counter()
    log = rollout(env, policy, episodes, seed)
    rollout_s = time.perf_counter() - t0
    idle, flows, tt = log.idle, log.flows, scenario.travel_time
    n = len(idle)
    tol = cost_tolerance(tt)
    closed_s, _ = _best(lambda: distribution_from_flows(idle, flows), repeats)
    plan = transport_plan(idle.astype(float), flows.astype(float))
    cert_s, negative = _best(lambda: has_negative_cycle(plan, tt, tol), repeats)
    plain_s, _ = _best(lambda: invert_flows(idle, flows, tt, residuals=False), repeats)
    full_s, res = _best(lambda: invert_flows(idle, flows, tt), 1)
    solves = res.info["solves"]
    lp_s = max(full_s - plain_s, 0.0)
    return {"scenario": scenario.name, "regions": scenario.regions, "vehicles": scenario.vehicles,
            "behavior": behavior, "level": policy.level,
            "formulation": formulation if policy.level != "flows" else None,
            "transitions": n, "rollout_s": rollout_s, "step_ms": 1e3 * rollout_s / n,
            "closed_form_s": closed_s, "closed_form_us_per_transition": 1e6 * closed_s / n,
            "certificate_s": cert_s, "certificate_ms_per_transition": 1e3 * cert_s / n,
            "not_lp_optimal": int((res.status == FlowStatus.NOT_OPTIMAL).sum()),
            "negative_cycles": int(negative.sum()), "inverse_s": plain_s, "inverse_with_residuals_s": full_s,
            "residual_lp_solves": solves, "residual_lp_ms_per_solve": 1e3 * lp_s / solves if solves else None,
            "statuses": res.counts()}


def run(regions=DEFAULT_REGIONS, behaviors=DEFAULT_BEHAVIORS, episodes: int = 2, seed: int = 0,
        repeats: int = 3, progress=None, formulation: str = "edges", scenarios=()) -> dict:
    """Rows for every (city, behavior): the synthetic cities of ``regions``, then ``scenarios`` (built
    ``Scenario`` objects); ``progress(row)`` is called after each."""
    rows = []
    for scenario in [*(city(n, seed) for n in regions), *scenarios]:
        for behavior in behaviors:
            rows.append(measure(scenario, behavior, episodes, seed, repeats, formulation))
            if progress is not None:
                progress(rows[-1])
    return {"rows": rows, "episodes": episodes, "seed": seed, "repeats": repeats, "formulation": formulation}
