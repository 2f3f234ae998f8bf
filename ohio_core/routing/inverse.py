"""Inverse of the rebalancing LP (``controllers.rebalancing``): the desired counts behind logged flows.

Closed form (flow conservation). For idle counts a (N, n) and flows x (N, n, n):

    d_i = a_i + sum_j x_ji - sum_j x_ij        (idle + inflow - outflow),   p = d / sum_i a_i

Round trip: if x = rebalance(a, d) with sum d = sum a, the recovered d equals the given one.
Proof: every feasible x has sum_i (inflow_i - outflow_i) = 0 (each flow leaves one region and
enters another) = sum_i (d_i - a_i); the n constraints inflow_i - outflow_i >= d_i - a_i then sum
to an equality, so each holds with equality: inflow_i - outflow_i = d_i - a_i, i.e. d_i = a_i +
inflow_i - outflow_i. ``desired_counts`` rounds with the sum fixed, so a distribution-level action
is recovered up to the rounding: ``desired_counts(p, sum a)`` gives d back exactly.

Optimality (KKT) for flows from any source (a greedy dispatcher, a flat policy). With the recovered
d (sum d = sum a, so all conservation constraints are tight), the LP is the transportation problem
from a_i vehicles at i to d_j slots at j with plan X (X_ij = x_ij, X_ii = a_i - sum_j x_ij >= 0 the
vehicles that stay) and costs C (C_ij = t_ij, C_ii = 0). X is optimal iff its residual network has
no negative cycle (min-cost-flow optimality; equivalently potentials u with u_j - u_i <= C_ij and
equality where X_ij > 0, the LP dual). A cycle alternates "i takes one more unit to j" and "k, which
sends to j, takes one less", so on the senders it has arc weights

    W_ik = min_{j : X_kj > 0} (C_ij - C_kj)

and X is optimal iff W has no negative cycle (``has_negative_cycle``: W from the support of X,
batched Bellman-Ford rounds that settle most optimal plans in O(n^2) each, Floyd-Warshall, O(n^3),
for the rest).
Flows that fail get status NOT_OPTIMAL and residual = cost(x) - LP optimum > 0 (vehicle-steps
``sum t_ij x_ij``; one LP per such sample); optimal ones have residual 0 without a solve.
``method="resolve"`` re-solves the LP (``rebalance``) for every sample instead (the check of the check).

The optimum of a NOT_OPTIMAL sample needs only the cost: for metric travel times it comes from the
surplus-to-deficit transportation LP (``controllers.rebalancing.transport_flows``, |S| |D| variables
instead of n (n - 1)), otherwise from the full LP (``rebalance``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from controllers.rebalancing import (RebalancingConfig, cost_tolerance, flow_cost, is_metric, rebalance,
                                     transport_flows)

#: ``invert_flows`` and the negative-cycle test work on chunks of at most this many n^2 entries, so
#: their memory does not grow with the log (a 300-region log of 6,000 steps holds 540 M flow entries).
CHUNK_ENTRIES = 1 << 21


class FlowStatus(enum.IntEnum):
    """Per-sample outcome; anything but OK is reported and counted."""

    OK = 0
    NOT_OPTIMAL = 1      # feasible flows that the LP would not choose for the recovered desired counts
    ILL_POSED = 2        # no idle vehicles: every distribution gives the same (empty) flows
    INFEASIBLE = 3       # flows negative, fractional, on the diagonal or sending more than the idle vehicles
    NON_FINITE = 4


@dataclass
class FlowInverseResult:
    """Per sample: recovered desired counts and distribution, the flows' cost, the LP optimum for
    the recovered counts, ``residual = cost - optimal_cost`` (0 when certified optimal, NaN when not
    computed) and a ``FlowStatus``."""

    desired: np.ndarray         # (N, n) int
    distribution: np.ndarray    # (N, n)
    cost: np.ndarray            # (N,) sum t_ij x_ij
    optimal_cost: np.ndarray    # (N,)
    residual: np.ndarray        # (N,)
    status: np.ndarray          # (N,) FlowStatus values
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> np.ndarray:
        return self.status == FlowStatus.OK

    def counts(self) -> dict[str, int]:
        return {s.name.lower(): int(np.sum(self.status == s)) for s in FlowStatus}


def desired_from_flows(idle: np.ndarray, flows: np.ndarray) -> np.ndarray:
    """``d = a + inflow - outflow``, ``d_i = a_i + sum_j x_ji - sum_j x_ij``, for (..., n), (..., n, n)."""
    x = np.asarray(flows)
    return np.asarray(idle) + x.sum(-2) - x.sum(-1)


def distribution_from_desired(desired: np.ndarray) -> np.ndarray:
    """``p = d / sum(d)`` per row (uniform where the sum is 0)."""
    d = np.asarray(desired, dtype=float)
    total = d.sum(-1, keepdims=True)
    return np.where(total > 0, d / np.where(total > 0, total, 1.0), 1.0 / d.shape[-1])


def distribution_from_flows(idle: np.ndarray, flows: np.ndarray) -> np.ndarray:
    """The distribution the flows realize: ``(a + inflow - outflow) / sum(a)``."""
    return distribution_from_desired(desired_from_flows(idle, flows))


def _as_batch(idle, flows) -> tuple[np.ndarray, np.ndarray]:
    """(idle (N, n), flows (N, n, n)) in their own dtypes (a single sample gets N = 1), shapes checked."""
    a, x = np.asarray(idle), np.asarray(flows)
    if a.ndim == 1:
        a = a[None]
    if x.ndim == 2:
        x = x[None]
    n = a.shape[-1]
    if a.ndim != 2 or x.shape != (a.shape[0], n, n):
        raise ValueError(f"idle (N, n) and flows (N, n, n) disagree: {np.shape(idle)}, {np.shape(flows)}")
    return a, x


def transport_plan(idle: np.ndarray, flows: np.ndarray) -> np.ndarray:
    """X (N, n, n): the flows with the stays ``X_ii = a_i - sum_j x_ij`` on the diagonal."""
    X = np.array(flows, dtype=float)
    n = X.shape[-1]
    X[..., np.arange(n), np.arange(n)] = idle - X.sum(-1)
    return X


def _sender_weights(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """W (B, n, n) with ``W_ik = min_{j: X_kj > 0} (C_ij - C_kj)`` (inf where k sends nowhere), built
    from the support of X only: O(nnz * n) per sample, and a plan has about n to 2n nonzeros."""
    B, n = X.shape[0], X.shape[-1]
    b, k, j = np.nonzero(X > 0)
    W_t = np.full((B, n, n), np.inf)                                   # W_t[b, k, i] = W[b, i, k]
    np.minimum.at(W_t, (b, k), C[:, j].T - C[k, j][:, None])
    return W_t.transpose(0, 2, 1).copy()


def _floyd_warshall_negative(W: np.ndarray, tol: float) -> np.ndarray:
    """(B,) bool: a cycle of weight < -tol in W (B, n, n); W is overwritten with path lengths."""
    n = W.shape[-1]
    for k in range(n):
        np.minimum(W, W[:, :, k:k + 1] + W[:, k:k + 1, :], out=W)
    idx = np.arange(n)
    return (W[:, idx, idx] < -tol).any(-1)


def has_negative_cycle(plan: np.ndarray, travel_time: np.ndarray, tol: float = 1e-9,
                       bellman_ford_rounds: int = 8) -> np.ndarray:
    """(N,) bool: whether transport plans X (N, n, n) admit a cheaper plan with the same row and column
    sums under costs C (``travel_time`` with a zero diagonal), i.e. ``W_ik = min_{j: X_kj > 0}
    (C_ij - C_kj)`` has a cycle of weight < -tol.

    Per chunk of samples: up to ``bellman_ford_rounds`` batched Bellman-Ford rounds from a virtual
    source, ``d_k <- min(d_k, min_i d_i + W_ik)``; a sample whose d stops changing has potentials, so
    no negative cycle (optimal plans mostly settle in a few rounds, O(n^2) each). Only the samples
    still changing get Floyd-Warshall (O(n^3)), which decides with the tolerance."""
    X = np.asarray(plan, dtype=float)
    N, n = X.shape[0], X.shape[-1]
    C = np.array(travel_time, dtype=float)
    np.fill_diagonal(C, 0.0)
    out = np.zeros(N, dtype=bool)
    chunk = max(1, CHUNK_ENTRIES // n ** 2)
    idx = np.arange(n)
    for lo in range(0, N, chunk):
        W = _sender_weights(X[lo:lo + chunk], C)
        W[:, idx, idx] = 0.0
        d = np.zeros(W.shape[:2])
        live = np.arange(len(W))
        for _ in range(bellman_ford_rounds):
            relaxed = np.minimum(d[live], (d[live, :, None] + W[live]).min(1))
            changed = (relaxed < d[live]).any(-1)
            d[live] = relaxed
            live = live[changed]
            if not len(live):
                break
        if len(live):
            out[lo + live] = _floyd_warshall_negative(W[live], tol)
    return out


def invert_flows(idle, flows, travel_time, config: RebalancingConfig = RebalancingConfig(),
                 method: str = "certificate", residuals: bool = True) -> FlowInverseResult:
    """Desired counts, distribution, optimality and residual for logged (idle (N, n), flows (N, n, n)).

    ``method``: ``certificate`` (negative-cycle test, batched; LPs only for the NOT_OPTIMAL samples
    when ``residuals``) or ``resolve`` (an LP per sample). See the module docstring. Samples are
    independent: they are inverted in chunks of ``CHUNK_ENTRIES`` flow entries.
    """
    if method not in ("certificate", "resolve"):
        raise ValueError(f"unknown method {method!r}; expected 'certificate' or 'resolve'")
    idle, flows = _as_batch(idle, flows)
    N, n = idle.shape
    tt = np.asarray(travel_time, dtype=float)
    if tt.shape != (n, n):
        raise ValueError(f"travel_time must have shape ({n}, {n}), got {tt.shape}")
    chunk = max(1, CHUNK_ENTRIES // n ** 2)
    parts = [_invert_chunk(np.asarray(idle[lo:lo + chunk], dtype=float),
                           np.asarray(flows[lo:lo + chunk], dtype=float), tt, config, method, residuals)
             for lo in range(0, max(N, 1), chunk)]
    if len(parts) == 1:
        return parts[0]
    cat = {k: np.concatenate([getattr(r, k) for r in parts])
           for k in ("desired", "distribution", "cost", "optimal_cost", "residual", "status")}
    info = {"method": method, **{k: sum(r.info[k] for r in parts) for k in ("solves", "certificate_disagreements")}}
    return FlowInverseResult(**cat, info=info)


def _invert_chunk(a: np.ndarray, x: np.ndarray, tt: np.ndarray, config: RebalancingConfig, method: str,
                  residuals: bool) -> FlowInverseResult:
    """``invert_flows`` on one chunk of float samples (a (N, n), x (N, n, n))."""
    N = len(a)
    finite = np.isfinite(a).all(-1) & np.isfinite(x).all((-2, -1))
    a, x = np.where(finite[:, None], a, 0.0), np.where(finite[:, None, None], x, 0.0)
    integral = (a == np.rint(a)).all(-1) & (x == np.rint(x)).all((-2, -1))
    feasible = (integral & (a >= 0).all(-1) & (x >= 0).all((-2, -1))
                & (np.diagonal(x, axis1=-2, axis2=-1) == 0).all(-1) & (x.sum(-1) <= a).all(-1))
    desired = desired_from_flows(a, x)
    cost = flow_cost(x, tt)
    status = np.full(N, FlowStatus.OK, dtype=np.int64)
    status[a.sum(-1) == 0] = FlowStatus.ILL_POSED
    status[~feasible] = FlowStatus.INFEASIBLE
    status[~finite] = FlowStatus.NON_FINITE
    optimal_cost = np.where(status == FlowStatus.OK, cost, np.nan)
    optimal_cost[status == FlowStatus.ILL_POSED] = 0.0
    tol = cost_tolerance(tt)
    check = np.flatnonzero(status == FlowStatus.OK)
    if method == "certificate":
        bad = check[has_negative_cycle(transport_plan(a[check], x[check]), tt, tol)]
        status[bad] = FlowStatus.NOT_OPTIMAL
        optimal_cost[bad] = np.nan
        solve = bad if residuals else np.zeros(0, dtype=np.int64)
    else:
        solve = check
    disagree = 0
    metric = method == "certificate" and len(solve) > 0 and is_metric(tt)     # resolve: the LP itself
    for s in solve:
        if metric:
            best = transport_flows(a[s], desired[s], tt)[1]
        else:
            best = float(flow_cost(rebalance(a[s].astype(np.int64), desired[s].astype(np.int64), tt, config), tt))
        optimal_cost[s] = best
        worse = cost[s] - best > tol
        disagree += int(method == "certificate" and not worse)
        status[s] = FlowStatus.NOT_OPTIMAL if worse else FlowStatus.OK
    residual = cost - optimal_cost
    residual[status == FlowStatus.OK] = np.maximum(residual[status == FlowStatus.OK], 0.0)
    distribution = distribution_from_desired(desired)
    distribution[status >= FlowStatus.INFEASIBLE] = np.nan
    return FlowInverseResult(desired=desired.astype(np.int64), distribution=distribution, cost=cost,
                             optimal_cost=optimal_cost, residual=residual, status=status,
                             info={"method": method, "solves": int(len(solve)), "certificate_disagreements": disagree})
