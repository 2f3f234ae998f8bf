"""Vehicle bookkeeping of the fleet-rebalancing simulator.

Every vehicle is idle in a region or on its way to one (with a passenger or rebalancing). Step t:

1. vehicles arriving at t become idle;
2. trip requests ``r_ij ~ Poisson(demand[t, i, j])``;
3. matching (``match``): each origin serves its requests highest price first, up to its idle
   vehicles; a served vehicle arrives at the destination at ``t + t_ij``;
4. (the high level observes, the low level decides) ``apply_flows(x)``: ``x_ij`` idle vehicles
   leave i now and arrive at j at ``t + t_ij``;
5. ``advance()``: t + 1, then 1-3 of the new step while t < horizon.

Costs: ``op_cost`` per vehicle-step of travel, for trips and rebalancing alike. The integer
rounding of the initial fleet is ``controllers.rebalancing.round_to_total``, the rounding of the
rebalancing low level.
"""

from __future__ import annotations

import numpy as np

from controllers.rebalancing import round_to_total
from ohio_core.routing.scenario import Scenario


def check_flows(flows: np.ndarray, idle: np.ndarray) -> np.ndarray:
    """``flows`` (n, n) as int64 if feasible for ``idle`` (n,): integer, >= 0, zero diagonal and
    ``sum_j x_ij <= idle_i``; a ValueError saying what is wrong otherwise."""
    x = np.asarray(flows)
    n = idle.shape[0]
    if x.shape != (n, n):
        raise ValueError(f"flows must have shape ({n}, {n}), got {x.shape}")
    xf = x.astype(float)
    if not np.isfinite(xf).all() or (xf != np.rint(xf)).any():
        raise ValueError("flows must be finite integers")
    x = x.astype(np.int64)
    if (x < 0).any():
        raise ValueError(f"flows must be >= 0; min is {x.min()}")
    if np.diagonal(x).any():
        raise ValueError("flows must have a zero diagonal (a vehicle staying is not a flow)")
    over = np.flatnonzero(x.sum(1) > idle)
    if over.size:
        i = over[0]
        raise ValueError(f"flows send {x[i].sum()} vehicles out of region {i}, which has {idle[i]} idle")
    return x


def match(requests: np.ndarray, price: np.ndarray, idle: np.ndarray) -> np.ndarray:
    """Trips served (n, n): per origin i, requests by decreasing price (ties: lower destination
    first) until its ``idle_i`` vehicles are used. With order k, cumulative requests ``R_k``:
    ``served_k = min(R_k, idle_i) - min(R_{k-1}, idle_i)``. Vehicles serve only their own region's
    requests, so this maximizes revenue exactly (unit weights: greedy by price is optimal)."""
    order = np.argsort(-price, axis=1, kind="stable")
    cum = np.cumsum(np.take_along_axis(requests, order, 1), axis=1)
    capped = np.minimum(cum, idle[:, None])
    served = np.empty_like(requests)
    np.put_along_axis(served, order, np.diff(capped, axis=1, prepend=0), 1)
    return served


class RoutingSim:
    """The fleet over one episode (steps 0..horizon-1); see the module docstring for a step.

    After ``reset`` or ``advance`` (t < horizon), ``requests``, ``served``, ``revenue`` and
    ``trip_cost`` describe step t's matching and ``idle`` the vehicles left to rebalance.
    Invariant: ``idle.sum() + in_transit() == vehicles``.
    """

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        n = scenario.regions
        self._dst = np.broadcast_to(np.arange(n), (n, n))
        self._steps = scenario.horizon + int(scenario.travel_time.max()) + 1
        self.initial_idle = round_to_total(np.full(n, scenario.vehicles / n), scenario.vehicles)
        self.rng = np.random.default_rng(0)
        self.t = 0
        self.idle = self.initial_idle.copy()
        self.arrivals = np.zeros((self._steps, n), dtype=np.int64)    # arrivals[s, j]: vehicles reaching j at s
        self.requests = self.served = np.zeros((n, n), dtype=np.int64)
        self.revenue = self.trip_cost = 0.0

    def reset(self, rng: np.random.Generator, idle: np.ndarray | None = None) -> None:
        """Start at t = 0 with ``idle`` (default: the fleet spread evenly) and match step 0."""
        self.rng, self.t = rng, 0
        self.idle = (self.initial_idle if idle is None else np.asarray(idle, dtype=np.int64)).copy()
        s = self.scenario
        if self.idle.shape != (s.regions,) or self.idle.sum() != s.vehicles or (self.idle < 0).any():
            raise ValueError(f"initial idle vehicles must be {self.scenario.regions} counts >= 0 summing to "
                             f"{self.scenario.vehicles}, got {self.idle.tolist()}")
        self.arrivals[:] = 0
        self._begin_step()

    @property
    def done(self) -> bool:
        return self.t >= self.scenario.horizon

    def in_transit(self) -> int:
        return int(self.arrivals[self.t + 1:].sum())

    def arrivals_ahead(self, steps: int) -> np.ndarray:
        """(steps, n): vehicles reaching each region at t+1 .. t+steps."""
        return self.arrivals[self.t + 1:self.t + 1 + steps]

    def _depart(self, counts: np.ndarray) -> None:
        np.add.at(self.arrivals, (self.t + self.scenario.travel_time, self._dst), counts)

    def _begin_step(self) -> None:
        s, t = self.scenario, self.t
        self.idle += self.arrivals[t]
        self.arrivals[t] = 0
        if t >= s.horizon:
            self.requests = self.served = np.zeros_like(self.served)
            self.revenue = self.trip_cost = 0.0
            return
        self.requests = self.rng.poisson(s.demand[t]).astype(np.int64)
        self.served = match(self.requests, s.price[t], self.idle)
        self.idle -= self.served.sum(1)
        self._depart(self.served)
        self.revenue = float((self.served * s.price[t]).sum())
        self.trip_cost = s.op_cost * float((self.served * s.travel_time).sum())

    def apply_flows(self, flows: np.ndarray) -> float:
        """Send ``flows`` (feasible, see ``check_flows``) now; returns their cost ``op_cost sum t_ij x_ij``."""
        if self.done:
            raise RuntimeError("episode is over (horizon reached): call reset()")
        x = check_flows(flows, self.idle)
        self.idle -= x.sum(1)
        self._depart(x)
        return self.scenario.op_cost * float((x * self.scenario.travel_time).sum())

    def advance(self) -> None:
        """Next step: arrivals, requests and matching (at the horizon only the arrivals)."""
        self.t += 1
        self._begin_step()
