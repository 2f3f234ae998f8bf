"""Behavior policies for fleet rebalancing, by name.

=======================  ======  ==================================================================
name                     level   what it does
=======================  ======  ==================================================================
``uniform``              goal    the same share of idle vehicles in every region
``demand_proportional``  goal    desired share of region i proportional to its expected requests at
                                 the next step, ``sum_j demand[t+1, i, j]`` (uniform if none)
``random_distribution``  goal    a fresh ``Dirichlet(concentration * 1)`` draw every step, from the
                                 generator given to ``reset``
``greedy_dispatcher``    flows   no LP: with ``e_i`` the expected requests at the next step,
                                 surplus ``s_i = max(0, a_i - ceil(e_i))`` and deficit ``q_j = max(0,
                                 ceil(e_j) - a_j)``, visit the (surplus, deficit) pairs by increasing
                                 travel time and move ``min(s_i, q_j)`` each; per-edge flows for
                                 ``FlatRoutingEnv``
=======================  ======  ==================================================================

Goal-level policies output weights for ``RoutingEnv``; all read the observation only (``ObsLayout``),
the dispatcher also the scenario's travel times. Every policy has ``name``, ``level``,
``reset(rng)`` and ``__call__(obs)``.
"""

from __future__ import annotations

import numpy as np

from ohio_core.routing.env import DEFAULT_LOOKAHEAD, LEVEL_FLOWS, LEVEL_GOAL, ObsLayout
from ohio_core.routing.scenario import Scenario


class _Policy:
    name = ""
    level = LEVEL_GOAL

    def __init__(self, scenario: Scenario, lookahead: int = DEFAULT_LOOKAHEAD):
        self.scenario = scenario
        self.layout = ObsLayout(scenario.regions, lookahead)
        self.rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def counts(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(idle vehicles (n,) int, expected requests at the next step (n,)) from an observation."""
        blocks = self.layout.split(obs)
        V = self.scenario.vehicles
        return np.rint(blocks["idle"] * V).astype(np.int64), blocks["demand"] * V

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scenario.name!r})"


class Uniform(_Policy):
    name = "uniform"

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.full(self.scenario.regions, 1.0 / self.scenario.regions)


class DemandProportional(_Policy):
    name = "demand_proportional"

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        e = np.asarray(obs)[self.layout.demand]
        total = e.sum()
        return e / total if total > 0 else np.full(e.shape, 1.0 / e.size)


class RandomDistribution(_Policy):
    name = "random_distribution"

    def __init__(self, scenario: Scenario, lookahead: int = DEFAULT_LOOKAHEAD, concentration: float = 1.0):
        super().__init__(scenario, lookahead)
        if not np.isfinite(concentration) or concentration <= 0:
            raise ValueError(f"concentration must be > 0, got {concentration!r}")
        self.concentration = float(concentration)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.dirichlet(np.full(self.scenario.regions, self.concentration))


class GreedyDispatcher(_Policy):
    name = "greedy_dispatcher"
    level = LEVEL_FLOWS

    def __init__(self, scenario: Scenario, lookahead: int = DEFAULT_LOOKAHEAD):
        super().__init__(scenario, lookahead)
        tt = scenario.travel_time
        n = scenario.regions
        order = np.argsort(tt, axis=None, kind="stable")            # all pairs by travel time, then index
        src, dst = np.unravel_index(order, tt.shape)
        keep = src != dst
        self._src, self._dst = src[keep], dst[keep]
        self._n = n

    def flows(self, idle: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """Greedy nearest moves from surplus to deficit regions (module docstring), (n, n) int."""
        need = np.ceil(expected - 1e-9).astype(np.int64)
        surplus = np.maximum(idle - need, 0)
        deficit = np.maximum(need - idle, 0)
        x = np.zeros((self._n, self._n), dtype=np.int64)
        if not surplus.any() or not deficit.any():
            return x
        left = min(surplus.sum(), deficit.sum())
        pairs = (surplus[self._src] > 0) & (deficit[self._dst] > 0)
        for i, j in zip(self._src[pairs], self._dst[pairs]):
            m = min(surplus[i], deficit[j])
            if m > 0:
                x[i, j] += m
                surplus[i] -= m
                deficit[j] -= m
                left -= m
                if left == 0:
                    break
        return x

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        idle, expected = self.counts(obs)
        return self.flows(idle, expected).ravel().astype(float)


POLICIES = {p.name: p for p in (Uniform, DemandProportional, RandomDistribution, GreedyDispatcher)}


def uniform(scenario: Scenario, lookahead: int = DEFAULT_LOOKAHEAD) -> Uniform:
    return Uniform(scenario, lookahead)


def demand_proportional(scenario: Scenario, lookahead: int = DEFAULT_LOOKAHEAD) -> DemandProportional:
    return DemandProportional(scenario, lookahead)


def random_distribution(scenario: Scenario, lookahead: int = DEFAULT_LOOKAHEAD,
                        concentration: float = 1.0) -> RandomDistribution:
    return RandomDistribution(scenario, lookahead, concentration)


def greedy_dispatcher(scenario: Scenario, lookahead: int = DEFAULT_LOOKAHEAD) -> GreedyDispatcher:
    return GreedyDispatcher(scenario, lookahead)


def make_routing_policy(name: str, scenario: Scenario, lookahead: int = DEFAULT_LOOKAHEAD, **options):
    """The behavior policy called ``name`` (module docstring) for ``scenario``."""
    if name not in POLICIES:
        raise ValueError(f"unknown routing policy {name!r}; available: {sorted(POLICIES)}")
    return POLICIES[name](scenario, lookahead, **options)
