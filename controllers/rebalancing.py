"""The fleet-rebalancing low level: pure functions of (idle vehicles, desired counts, travel times).

The high level chooses a desired distribution ``p`` of idle vehicles over the n regions; the low
level turns it into integer counts (``desired_counts``) and moves vehicles at least travel cost
(``rebalance``), the linear program

    min_x  sum_ij t_ij x_ij
    s.t.   sum_j (x_ji - x_ij) >= d_i - a_i    (region i ends with at least d_i vehicles)
           sum_j x_ij <= a_i                   (it sends at most its a_i idle vehicles)
           x >= 0,  x_ii = 0

with a = idle counts, d = desired counts (sum d <= sum a). It is a min-cost network flow (as a
transportation problem from a_i vehicles to d_j slots with the stays x_ii = a_i - sum_j x_ij its
constraint matrix is totally unimodular), so integer data give an integral optimal vertex.

Formulations (``RebalancingConfig.formulation``):

- ``edges`` (default): the LP above over all n (n - 1) edges.
- ``transport``: when the travel times satisfy the triangle inequality (t_ij <= t_ik + t_kj for
  distinct i, j, k; ``is_metric``), the same optimal cost from the surplus regions S (a_i > d_i) to
  the deficit regions D (d_j > a_j) only,

      min sum_{i in S, j in D} t_ij y_ij  s.t.  sum_j y_ij <= a_i - d_i,  sum_i y_ij = d_j - a_j,  y >= 0,

  with |S| |D| variables: a feasible x decomposes into paths that end in deficit regions (and
  cycles of cost >= 0, dropped), and shortcutting each path to its end points costs no more and
  sends no more from any region. Where several flows are optimal, the two formulations may return
  different ones. Non-metric travel times are refused.

Also here: ``project_flows``, the feasibility projection of flat policies' per-edge flows, and the
largest-remainder rounding both use (``round_to_total``); the simulator and the routing environment
import them from here.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from controllers import validate
from controllers.config import ConfigError, config_fields

__all__ = ["RebalancingConfig", "RebalancingError", "Rebalancer", "desired_counts", "rebalance", "flow_cost",
           "project_flows", "round_to_total", "is_metric", "triangle_violation", "cost_tolerance", "transport_flows",
           "SOLVERS", "FORMULATIONS"]

SOLVERS = ("highs", "highs-ds", "highs-ipm")
FORMULATIONS = ("edges", "transport")
INTEGRALITY_TOL = 1e-6


class RebalancingError(RuntimeError):
    """The rebalancing LP failed (solver status not optimal, or a non-integral optimum)."""


@dataclass(frozen=True)
class RebalancingConfig:
    """Rebalancing LP settings.

    ``cost_weight`` scales the objective ``w sum_ij t_ij x_ij`` (the reported LP cost; a positive
    scale leaves the optimal flows unchanged). ``solver``: a HiGHS method of
    ``scipy.optimize.linprog``: ``highs`` (HiGHS chooses), ``highs-ds`` (dual simplex) or
    ``highs-ipm`` (interior point with crossover to a vertex). ``formulation``: ``edges`` (every
    edge) or ``transport`` (surplus to deficit regions only, for metric travel times; module docstring).
    """

    kind = "rebalancing"
    cost_weight: float = 1.0
    solver: str = "highs"
    formulation: str = "edges"

    def __post_init__(self):
        object.__setattr__(self, "cost_weight", validate.number("RebalancingConfig.cost_weight", self.cost_weight,
                                                                ConfigError, low=0, low_open=True))
        validate.choice("RebalancingConfig.solver", self.solver, SOLVERS, ConfigError)
        validate.choice("RebalancingConfig.formulation", self.formulation, FORMULATIONS, ConfigError)

    @classmethod
    def from_dict(cls, data: dict | None) -> "RebalancingConfig":
        return cls(**config_fields(cls, data))

    def to_dict(self) -> dict:
        return {"type": self.kind, **dataclasses.asdict(self)}

    def replace(self, **changes) -> "RebalancingConfig":
        return dataclasses.replace(self, **changes)


def desired_counts(distribution, idle_total) -> np.ndarray:
    """Integer desired counts from a distribution over regions, (n,) or (N, n).

    ``d = round_to_total(p * A, A)`` with ``p = w / sum(w)`` and A = ``idle_total`` (scalar or (N,)):
    largest-remainder rounding, so ``sum d = A`` exactly and ``|d - p A| < 1``. ``w`` must be finite,
    >= 0, with a positive sum per row (a ValueError otherwise).
    """
    w = np.asarray(distribution, dtype=float)
    if w.ndim not in (1, 2) or w.shape[-1] < 1:
        raise ValueError(f"distribution must have shape (n,) or (N, n), got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("distribution must be finite")
    if (w < 0).any():
        raise ValueError(f"distribution must be >= 0; min is {w.min()}")
    total = w.sum(-1)
    if (total <= 0).any():
        raise ValueError("distribution must have a positive sum (got all zeros)")
    a = np.asarray(idle_total)
    af = a.astype(float)
    if not np.isfinite(af).all() or (af != np.rint(af)).any() or (af < 0).any():
        raise ValueError(f"idle_total must hold integers >= 0, got {a.tolist()}")
    a = np.broadcast_to(a.astype(np.int64), total.shape)
    return round_to_total(w / total[..., None] * a[..., None], a)


def round_to_total(x: np.ndarray, totals) -> np.ndarray:
    """Largest-remainder rounding along the last axis: ``floor(x)`` plus 1 on the ``totals - sum
    floor(x)`` entries of largest remainder ``x - floor(x)`` (ties: lower index first), so every row
    sums to its total and ``|c - x| < 1``. Needs ``sum floor(x) <= totals <= sum floor(x) + n``."""
    x = np.asarray(x, dtype=float)
    low = np.floor(x)
    extra = np.asarray(totals) - low.sum(-1)
    if (extra < -1e-9).any() or (extra > x.shape[-1] + 1e-9).any():
        raise ValueError(f"totals {np.asarray(totals).tolist()} cannot be reached by rounding {x.tolist()}")
    order = np.argsort(low - x, axis=-1, kind="stable")            # largest remainder first
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(x.shape[-1]), x.shape), axis=-1)
    return (low + (rank < np.rint(extra)[..., None])).astype(np.int64)


def project_flows(raw: np.ndarray, idle: np.ndarray) -> np.ndarray:
    """Feasible integer flows nearest in spirit to a flat policy's raw per-edge flows (..., n, n).

    ``y = max(raw, 0)`` with a zero diagonal, each origin scaled to ``y_i. <= idle_i``
    (``y_ij *= min(1, idle_i / sum_j y_ij)``), then per origin ``round_to_total(y_i, min(idle_i,
    round(sum_j y_ij)))``. Feasible integer flows come back unchanged.
    """
    y = np.asarray(raw, dtype=float)
    idle = np.asarray(idle)
    n = y.shape[-1]
    if y.shape[-2:] != (n, n) or idle.shape != y.shape[:-1]:
        raise ValueError(f"raw flows (..., n, n) and idle (..., n) disagree: {y.shape}, {idle.shape}")
    if not np.isfinite(y).all():
        raise ValueError("raw flows must be finite")
    y = np.clip(y, 0.0, None)
    y[..., np.arange(n), np.arange(n)] = 0.0
    out = y.sum(-1)
    y *= np.where(out > idle, idle / np.where(out > 0, out, 1.0), 1.0)[..., None]
    return round_to_total(y, np.minimum(np.rint(y.sum(-1)), idle))


@functools.lru_cache(maxsize=32)
def lp_structure(n: int) -> tuple[np.ndarray, np.ndarray, sparse.csr_array]:
    """(src, dst, A) of the LP over the n (n - 1) off-diagonal edges: rows 0..n-1 hold
    ``sum_j x_ij - sum_j x_ji`` (outflow - inflow), rows n..2n-1 the outflow ``sum_j x_ij``."""
    src, dst = np.nonzero(~np.eye(n, dtype=bool))
    m = src.size
    cols = np.tile(np.arange(m), 3)
    rows = np.concatenate([src, dst, n + src])
    vals = np.concatenate([np.ones(m), -np.ones(m), np.ones(m)])
    A = sparse.csr_array((vals, (rows, cols)), shape=(2 * n, m))
    src.flags.writeable = dst.flags.writeable = False
    return src, dst, A


def flow_cost(flows: np.ndarray, travel_time: np.ndarray) -> np.ndarray:
    """``sum_ij t_ij x_ij`` (vehicle-steps) of flows (..., n, n)."""
    return (np.asarray(flows) * travel_time).sum((-2, -1))


def _counts(name: str, value, n: int | None = None) -> np.ndarray:
    a = np.asarray(value)
    af = a.astype(float)
    if a.ndim != 1 or (n is not None and a.shape != (n,)):
        raise ValueError(f"{name} must have shape ({n if n is not None else 'n'},), got {a.shape}")
    if not np.isfinite(af).all() or (af != np.rint(af)).any() or (af < 0).any():
        raise ValueError(f"{name} must hold integers >= 0, got {a.tolist()}")
    return a.astype(np.int64)


def cost_tolerance(travel_time: np.ndarray) -> float:
    """Tolerance on travel-time sums and costs: 1e-9 of the largest travel time (at least 1e-9)."""
    return 1e-9 * max(1.0, float(np.asarray(travel_time, dtype=float).max(initial=0.0)))


def is_metric(travel_time: np.ndarray) -> bool:
    """Whether t_ij <= t_ik + t_kj for all distinct i, j, k (the diagonal plays no part); O(n^3), so
    the answer is kept for the last few matrices seen."""
    t = np.ascontiguousarray(travel_time, dtype=float)
    return _is_metric(t.shape, t.tobytes())


@functools.lru_cache(maxsize=8)
def _is_metric(shape: tuple, data: bytes) -> bool:
    t = np.frombuffer(data, dtype=float).reshape(shape)
    off = ~np.eye(shape[0], dtype=bool)
    t_via = t.copy()
    np.fill_diagonal(t_via, np.inf)                                    # no stop at i or j itself
    two_legs = np.full(shape, np.inf)
    for k in range(shape[0]):
        np.minimum(two_legs, t_via[:, k, None] + t_via[None, k, :], out=two_legs)
    return bool((t[off] <= two_legs[off] + cost_tolerance(t)).all())


def triangle_violation(travel_time: np.ndarray) -> tuple[int, int, int] | None:
    """A triple (i, k, j) of distinct regions with t_ij > t_ik + t_kj (the worst one), or None when the
    travel times are metric (``is_metric``)."""
    t = np.asarray(travel_time, dtype=float)
    if is_metric(t):
        return None
    worst, found = -np.inf, None
    for k in range(t.shape[0]):
        excess = t - (t[:, k, None] + t[None, k, :])                    # t_ij - (t_ik + t_kj)
        excess[k, :] = excess[:, k] = -np.inf                           # k distinct from i and j
        np.fill_diagonal(excess, -np.inf)                               # i distinct from j
        i, j = np.unravel_index(int(np.argmax(excess)), excess.shape)
        if excess[i, j] > worst:
            worst, found = excess[i, j], (int(i), k, int(j))
    return found


def _integral_vertex(res, lp: str, solver: str) -> np.ndarray:
    """The rounded optimum of ``linprog``'s result ``res`` for the ``lp`` named in errors; a
    RebalancingError when the solve failed or the optimum is not integral (integer data give an
    integral vertex)."""
    if res.status != 0 or res.x is None:
        raise RebalancingError(f"{lp} LP failed ({solver}, status {res.status}): {res.message}")
    x = np.rint(res.x)
    gap = float(np.abs(res.x - x).max(initial=0.0))
    if gap > INTEGRALITY_TOL:
        raise RebalancingError(f"{lp} LP optimum is not integral (largest gap {gap:.3g}); "
                               "integer idle and desired counts give an integral vertex")
    return x


def transport_flows(idle, desired, travel_time, solver: str = "highs") -> tuple[np.ndarray, float]:
    """(flows (n, n) int, cost) of the surplus-to-deficit transportation LP (module docstring) for
    integer a, d with sum d <= sum a; optimal for the rebalancing LP when the travel times are metric.
    Validates nothing beyond the solver's result (``rebalance`` does)."""
    a, d = np.asarray(idle, dtype=np.int64), np.asarray(desired, dtype=np.int64)
    n = a.shape[0]
    delta = d - a
    S, D = np.flatnonzero(delta < 0), np.flatnonzero(delta > 0)
    flows = np.zeros((n, n), dtype=np.int64)
    if not len(D):
        return flows, 0.0
    m, k = len(S), len(D)
    t = np.asarray(travel_time, dtype=float)
    cols = np.arange(m * k)
    supply = sparse.csr_array((np.ones(m * k), (np.repeat(np.arange(m), k), cols)), shape=(m, m * k))
    demand = sparse.csr_array((np.ones(m * k), (np.tile(np.arange(k), m), cols)), shape=(k, m * k))
    res = linprog(t[np.ix_(S, D)].ravel(), A_ub=supply, b_ub=(-delta[S]).astype(float), A_eq=demand,
                  b_eq=delta[D].astype(float), bounds=(0, None), method=solver)
    flows[np.ix_(S, D)] = _integral_vertex(res, "transportation", solver).reshape(m, k).astype(np.int64)
    return flows, float(res.fun)


def rebalance(idle, desired, travel_time, config: RebalancingConfig = RebalancingConfig()) -> np.ndarray:
    """Optimal integer flows (n, n) of the rebalancing LP (module docstring), solved with HiGHS on a
    sparse constraint matrix. Regions already holding their desired count send nothing when no
    region lacks vehicles (no solve). Errors: ValueError for bad input or ``sum d > sum a``
    (infeasible), RebalancingError when the solver fails or its optimum is not integral."""
    a = _counts("idle", idle)
    n = a.shape[0]
    d = _counts("desired", desired, n)
    tt = np.asarray(travel_time, dtype=float)
    if tt.shape != (n, n) or not np.isfinite(tt).all() or (tt < 0).any():
        raise ValueError(f"travel_time must be a finite (n, n) = ({n}, {n}) array >= 0, got shape {tt.shape}")
    if d.sum() > a.sum():
        raise ValueError(f"infeasible: {d.sum()} vehicles desired but only {a.sum()} idle")
    flows = np.zeros((n, n), dtype=np.int64)
    if (d <= a).all():
        return flows
    if config.formulation == "transport":
        if not is_metric(tt):
            raise ValueError("formulation 'transport' needs metric travel times (t_ij <= t_ik + t_kj for "
                             "distinct i, j, k); these are not: use formulation 'edges'")
        return transport_flows(a, d, tt, config.solver)[0]
    src, dst, A = lp_structure(n)
    res = linprog(config.cost_weight * tt[src, dst], A_ub=A, b_ub=np.concatenate([a - d, a]).astype(float),
                  bounds=(0, None), method=config.solver)
    flows[src, dst] = _integral_vertex(res, "rebalancing", config.solver).astype(np.int64)
    return flows


class Rebalancer:
    """The low-level controller as an object, the interface ``RoutingEnv`` takes:
    ``goal_from_action(p, idle) -> desired counts`` and ``act(idle, desired, travel_time) -> flows``."""

    def __init__(self, config: RebalancingConfig = RebalancingConfig()):
        self.config = config

    def goal_from_action(self, distribution, idle) -> np.ndarray:
        return desired_counts(distribution, int(np.sum(idle)))

    def act(self, idle, desired, travel_time) -> np.ndarray:
        return rebalance(idle, desired, travel_time, self.config)
