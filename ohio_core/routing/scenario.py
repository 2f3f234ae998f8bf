"""Routing scenarios: regions, travel times, trip demand and prices over time, and a fleet.

A ``Scenario`` is discrete in time (steps of ``step_minutes``) and space (``n`` regions):

- ``travel_time[i, j]``: steps a vehicle needs from region i to j (int >= 1), for trips and for
  rebalancing alike; the diagonal is the duration of trips inside a region.
- ``demand[t, i, j]``: Poisson rate of trip requests from i to j issued at step t.
- ``price[t, i, j]``: revenue of one served trip from i to j requested at step t.
- ``vehicles`` (fleet size), ``horizon`` (steps per episode, <= T), ``op_cost`` (cost per
  vehicle-step of travel, with or without a passenger), ``start_hour`` (clock hour of step 0),
  ``positions`` (for plots).

The public AMoD JSON format of scenario files is read and written by ``routing.scenario_io``
(``load_scenario``, ``save_scenario``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from controllers.validate import array, number, signed_number

#: Cost of travel per vehicle-minute when a file gives none (the public simulators' default).
DEFAULT_BETA = 0.5
DEFAULT_STEP_MINUTES = 3.0
FLEET_FACTOR = 1.2

# Synthetic cities: a unit square; driving 1 unit takes MINUTES_PER_UNIT minutes, plus an access
# time per trip. Fares grow with the trip's minutes; travel costs COST_PER_MINUTE per vehicle.
MINUTES_PER_UNIT = 20.0
ACCESS_MINUTES = 2.0
FARE_BASE = 2.5
FARE_PER_MINUTE = 0.6
COST_PER_MINUTE = 0.2
LAYOUTS = ("grid", "geometric")


class ScenarioError(ValueError):
    """A scenario is malformed (bad shape, range or type; a scenario file with a bad key)."""


# --- the scenario ----------------------------------------------------------------------------


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _float_array(name: str, value: Any, ndim: int) -> np.ndarray:
    return array(f"Scenario.{name}", value, ndim, ScenarioError)


def _integer(name: str, value: Any, low: int) -> int:
    return number(f"Scenario.{name}", value, ScenarioError, low=low, integer=True)


def _number(name: str, value: Any, positive: bool) -> float:
    return signed_number(f"Scenario.{name}", value, ScenarioError, "positive" if positive else "nonnegative")


@dataclass(frozen=True, eq=False)
class Scenario:
    """A city for fleet rebalancing; arrays are copied and read-only. See the module docstring."""

    name: str
    travel_time: np.ndarray            # (n, n) int steps >= 1
    demand: np.ndarray                 # (T, n, n) Poisson rate of requests per step
    price: np.ndarray                  # (T, n, n) revenue per served trip
    vehicles: int
    horizon: int                       # steps per episode, <= T
    step_minutes: float = DEFAULT_STEP_MINUTES
    op_cost: float = DEFAULT_BETA * DEFAULT_STEP_MINUTES   # per vehicle-step of travel
    positions: np.ndarray | None = None   # (n, 2)
    start_hour: int = 7                # clock hour of step 0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ScenarioError(f"Scenario.name must be a non-empty string, got {self.name!r}")
        tt = _float_array("travel_time", self.travel_time, 2)
        n = tt.shape[0]
        if tt.shape != (n, n) or n < 2:
            raise ScenarioError(f"Scenario.travel_time must be square (n, n) with n >= 2, got shape {tt.shape}")
        if (tt != np.rint(tt)).any() or (tt < 1).any():
            bad = np.argwhere((tt != np.rint(tt)) | (tt < 1))[0]
            raise ScenarioError(f"Scenario.travel_time must hold integers >= 1 (steps); "
                                f"entry {tuple(bad.tolist())} is {tt[tuple(bad)]}")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("travel_time", _frozen(tt.astype(np.int64)))
        for key in ("demand", "price"):
            a = _float_array(key, getattr(self, key), 3)
            if a.shape[1:] != (n, n) or a.shape[0] < 1:
                raise ScenarioError(f"Scenario.{key} must have shape (T, {n}, {n}), got {a.shape}")
            if (a < 0).any():
                raise ScenarioError(f"Scenario.{key} must be >= 0; min is {a.min()}")
            set_(key, _frozen(a))
        if self.price.shape != self.demand.shape:
            raise ScenarioError(f"Scenario.price shape {self.price.shape} != demand shape {self.demand.shape}")
        set_("vehicles", _integer("vehicles", self.vehicles, 1))
        set_("horizon", _integer("horizon", self.horizon, 1))
        if self.horizon > self.demand.shape[0]:
            raise ScenarioError(f"Scenario.horizon ({self.horizon}) exceeds the steps with demand "
                                f"(T = {self.demand.shape[0]})")
        set_("step_minutes", _number("step_minutes", self.step_minutes, positive=True))
        set_("op_cost", _number("op_cost", self.op_cost, positive=False))
        set_("start_hour", _integer("start_hour", self.start_hour, 0))
        if self.start_hour > 23:
            raise ScenarioError(f"Scenario.start_hour must be in 0..23, got {self.start_hour}")
        if self.positions is not None:
            pos = _float_array("positions", self.positions, 2)
            if pos.shape != (n, 2):
                raise ScenarioError(f"Scenario.positions must have shape ({n}, 2), got {pos.shape}")
            set_("positions", _frozen(pos))

    @property
    def regions(self) -> int:
        return self.travel_time.shape[0]

    @property
    def steps(self) -> int:
        """T, the steps with demand (>= horizon)."""
        return self.demand.shape[0]

    def replace(self, **changes) -> "Scenario":
        return dataclasses.replace(self, **changes)


def fleet_for(demand: np.ndarray, travel_time: np.ndarray, factor: float = FLEET_FACTOR) -> int:
    """Fleet size from Little's law: ``ceil(factor * mean_t sum_ij demand[t,i,j] t_ij)``, at least 1."""
    return max(1, int(math.ceil(factor * float((demand * travel_time).sum((1, 2)).mean()))))


# --- synthetic cities ------------------------------------------------------------------------


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    side = math.ceil(math.sqrt(n))
    idx = np.arange(n)
    pos = np.stack([(idx % side + 0.5) / side, (idx // side + 0.5) / side], axis=1)
    return pos, np.abs(pos[:, None, :] - pos[None, :, :]).sum(-1)          # Manhattan road distance


def _geometric(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    pos = rng.random((n, 2))
    euclid = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    radius = min(1.0, 1.5 * math.sqrt(math.log(max(n, 2)) / (math.pi * n)))
    roads = np.where(euclid <= radius, euclid, 0.0)
    tree = csgraph.minimum_spanning_tree(sparse.csr_array(euclid)).toarray()   # keeps the graph connected
    roads = np.maximum(roads, np.maximum(tree, tree.T))
    return pos, csgraph.shortest_path(sparse.csr_array(roads), method="D", directed=False)


def synthetic(regions: int, vehicles: int | None = None, layout: str = "grid", horizon: int = 60,
              step_minutes: float = DEFAULT_STEP_MINUTES, seed: int = 0, peaks: bool = True, *,
              trips_per_region: float = 3.0, name: str | None = None) -> Scenario:
    """A synthetic city on the unit square, deterministic in ``seed``.

    Regions lie on a grid (Manhattan roads) or at random points joined by a random geometric graph
    (roads between points closer than ``1.5 sqrt(ln n / (pi n))``, plus a spanning tree; road
    distance = shortest path). ``travel_time = max(1, round((2 + 20 d_ij) / step_minutes))``, diagonal 1.
    Demand is a gravity model with a morning and an evening peak over the episode (s = (t+0.5)/T):

        lambda_t = B + 1.5 (m(s) M + e(s) M^T),  B_ij = p_i p_j exp(-t_ij / tbar),
        M_ij = p_i (1 - c_i) c_j p_j exp(-t_ij / tbar),  m, e = Gaussians at s = 0.3, 0.75 (sd 0.08)

    with centrality ``c_i = exp(-(r_i / 0.5)^2)`` (r_i: distance to the centre over the largest one),
    populations ``p_i = (0.5 + c_i) LogNormal(0, 0.25)``, B scaled to ``trips_per_region`` requests per
    region and step and M to B's total (peaks: inbound in the morning, outbound in the evening).
    Prices ``(2.5 + 0.6 minutes_ij) LogNormal(0, 0.1)`` per OD pair; ``op_cost = 0.2 step_minutes``.
    ``vehicles`` defaults to ``fleet_for(demand, travel_time)``.
    """
    n = _integer("regions", regions, 2)
    if layout not in LAYOUTS:
        raise ScenarioError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    horizon = _integer("horizon", horizon, 1)
    step_minutes = _number("step_minutes", step_minutes, positive=True)
    rng = np.random.default_rng(seed)
    pos, dist = _grid(n) if layout == "grid" else _geometric(n, rng)
    minutes = ACCESS_MINUTES + MINUTES_PER_UNIT * dist
    tt = np.maximum(1, np.rint(minutes / step_minutes)).astype(np.int64)
    np.fill_diagonal(tt, 1)

    r = np.linalg.norm(pos - 0.5 * (pos.min(0) + pos.max(0)), axis=1)
    central = np.exp(-(r / max(r.max(), 1e-12) / 0.5) ** 2)
    pop = (0.5 + central) * rng.lognormal(0.0, 0.25, n)
    off = ~np.eye(n, dtype=bool)
    decay = np.exp(-tt / tt[off].mean())
    base = np.outer(pop, pop) * decay
    base[~off] *= 0.3                                   # fewer trips inside a region
    base *= n * trips_per_region / base.sum()
    inbound = np.outer(pop * (1.0 - central), pop * central) * decay
    inbound *= base.sum() / inbound.sum()
    s = (np.arange(horizon) + 0.5) / horizon
    bump = lambda mu: np.exp(-0.5 * ((s - mu) / 0.08) ** 2)[:, None, None]  # noqa: E731
    demand = np.broadcast_to(base, (horizon, n, n)).copy()
    if peaks:
        demand += 1.5 * (bump(0.3) * inbound + bump(0.75) * inbound.T)
    fare = (FARE_BASE + FARE_PER_MINUTE * tt * step_minutes) * rng.lognormal(0.0, 0.1, (n, n))
    price = np.broadcast_to(fare, (horizon, n, n))
    return Scenario(name=name or f"synthetic-{layout}{n}-seed{seed}", travel_time=tt, demand=demand, price=price,
                    vehicles=fleet_for(demand, tt) if vehicles is None else vehicles, horizon=horizon,
                    step_minutes=step_minutes, op_cost=round(COST_PER_MINUTE * step_minutes, 9), positions=pos)
