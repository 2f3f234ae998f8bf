"""Routing logs -> high-level datasets: OHIO goals recovered from the flows, and the flat baseline.

A ``RoutingLog`` holds, per step, what the policy saw, the idle vehicles a_t and the flows x_t the
low level sent, never the goal. OHIO recovers the desired distribution the rebalancing LP needed
(``routing.inverse.invert_flows``: d = a + inflow - outflow, p = d / sum a) whatever produced the
flows (the LP under any goal, a greedy dispatcher, a flat policy); the flat baseline keeps the
flows as per-edge actions.

Actions for d3rlpy live in [-1, 1]. A goal is the change of the idle distribution q = a / sum a the
policy asks for (so "keep the vehicles where they are", which costs nothing, is a = 0):

    goal:  a_i = clip((p_i - q_i) / S, -1, 1)        decoded as w = max(q + S a, 0) (the env normalizes)
    flows: a_ij = 2 x_ij / max(a_i, 1) - 1           decoded as x_ij = (a_ij + 1) / 2 * a_i (then projected)

with S = ``GOAL_SPAN`` = 1, so every change of a share (at most 1) is representable and a = p - q;
``goals_clipped_to_span`` in the account stays 0 unless S is lowered.

Samples the inverse cannot use are dropped and counted: no idle vehicles (every goal gives the
same empty flows), infeasible or non-finite flows; a step left alone between such drops (or an
episode of one step) has no next state in the data and is dropped under ``SINGLE_STEP_PIECE``.
Flows the LP would not have chosen (NOT_OPTIMAL: it reaches the same distribution at lower cost)
are kept and counted, with their excess cost as the residual.
"""

from __future__ import annotations

import numpy as np

from ohio_core.data.account import Drops
from ohio_core.pipeline.relabel import SINGLE_STEP_PIECE, HighLevelData, residual_stats
from ohio_core.routing.inverse import FlowStatus, invert_flows

METHODS = ("ohio", "flat")
GOAL_SPAN = 1.0


def idle_distribution(idle: np.ndarray) -> np.ndarray:
    """q = a / sum a per row (uniform where no vehicle is idle); ``idle`` in vehicles or fleet fractions."""
    idle = np.asarray(idle, float)
    total = idle.sum(-1, keepdims=True)
    return np.where(total > 0, idle / np.where(total > 0, total, 1.0), 1.0 / idle.shape[-1])


def encode_distribution(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """a = clip((p - q) / S, -1, 1) (module docstring)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    return np.clip((p - q) / GOAL_SPAN, -1.0, 1.0)


def decode_distribution(a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Nonnegative weights w = max(q + S clip(a, -1, 1), 0) (``RoutingEnv`` normalizes them)."""
    a = np.clip(np.asarray(a, float), -1.0, 1.0)
    return np.maximum(np.asarray(q, float) + GOAL_SPAN * a, 0.0)


def encode_flows(flows: np.ndarray, idle: np.ndarray) -> np.ndarray:
    """a_ij = 2 x_ij / max(a_i, 1) - 1, flattened row-major to (N, n * n)."""
    flows, idle = np.asarray(flows, float), np.asarray(idle, float)
    frac = flows / np.maximum(idle, 1.0)[..., :, None]
    return (2.0 * frac - 1.0).reshape(flows.shape[:-2] + (-1,))


def reward_scale(scenario) -> float:
    """Rewards are divided by the fleet size for training (revenue per vehicle and step)."""
    return 1.0 / max(scenario.vehicles, 1)


def decode_flows(a: np.ndarray, idle: np.ndarray, clip: bool = True) -> np.ndarray:
    """Raw per-edge flows x_ij = (a_ij + 1) / 2 * a_i, (n * n,) row-major (``FlatRoutingEnv`` projects them).

    ``a`` is clipped to [-1, 1] first unless ``clip`` is False (to see what an unbounded action asks for)."""
    a = np.asarray(a, float)
    if clip:
        a = np.clip(a, -1.0, 1.0)
    n = int(round(np.sqrt(a.shape[-1])))
    idle = np.asarray(idle, float)
    return ((a.reshape(a.shape[:-1] + (n, n)) + 1.0) / 2.0 * idle[..., :, None]).reshape(a.shape)


class ModelRoutingPolicy:
    """A model trained on these encodings as a routing policy: obs -> its action decoded for the env.

    ``model`` has ``act(obs) -> a`` and ``level`` ("goal": a distribution change for ``RoutingEnv``;
    otherwise per-edge flows for ``FlatRoutingEnv``); the idle vehicles are read from ``obs[idle]``
    (shares of the fleet of ``vehicles``).
    """

    def __init__(self, model, idle: slice, vehicles: int):
        self.model, self.idle, self.vehicles = model, idle, vehicles

    def __call__(self, obs):
        a = self.model.act(obs)
        shares = np.asarray(obs)[self.idle]
        if self.model.level == "goal":
            return decode_distribution(a, idle_distribution(shares))
        return decode_flows(a, np.rint(shares * self.vehicles))


def relabel_routing(log, travel_time: np.ndarray, method: str = "ohio", reward_scale: float = 1.0,
                    result=None) -> HighLevelData:
    """High-level transitions (obs_t, a_t, r_t) of a routing log for ``method`` (module docstring).

    ``reward_scale``: rewards are multiplied by it (``reward_scale(scenario)`` for training);
    ``result``: ``invert_flows`` already run on the log's idle vehicles and flows (it is not run again)."""
    if method not in METHODS:
        raise ValueError(f"unknown routing relabel method {method!r}; expected one of {list(METHODS)}")
    n = log.idle.shape[1]
    drops = Drops()
    if method == "ohio":
        if result is not None and len(result.status) != len(log):
            raise ValueError(f"result holds {len(result.status)} steps, the log {len(log)}")
        res = result if result is not None else invert_flows(log.idle, log.flows, travel_time)
        keep = np.isin(res.status, (FlowStatus.OK, FlowStatus.NOT_OPTIMAL))
        for s in (FlowStatus.ILL_POSED, FlowStatus.INFEASIBLE, FlowStatus.NON_FINITE):
            drops.add(f"inverse: {s.name.lower()}", int(np.sum(res.status == s)))
        p, q = np.nan_to_num(res.distribution), idle_distribution(log.idle)
        actions = encode_distribution(p, q)
        clipped = (np.abs(p - q) > GOAL_SPAN + 1e-9).any(-1)
        residual = np.nan_to_num(res.residual)
        not_optimal = res.status == FlowStatus.NOT_OPTIMAL
    else:
        keep = np.ones(len(log), bool)
        clipped = not_optimal = np.zeros(len(log), bool)
        actions = encode_flows(log.flows, log.idle)
        residual = np.zeros(len(log))
    timeouts = log.timeout.astype(np.float32)
    ended = log.timeout | log.terminal
    linked = np.r_[log.episode[1:] == log.episode[:-1], False] & ~ended      # step i continues into step i + 1
    # a kept step with no kept step of its piece before or after it has no next state in the data
    to_next, from_prev = linked & np.r_[keep[1:], False], np.r_[False, (linked & keep)[:-1]]
    lone = keep & ~to_next & ~from_prev & ~log.terminal
    drops.add(SINGLE_STEP_PIECE, int(lone.sum()))
    keep = keep & ~lone
    # a dropped step ends its piece of episode: the step before it times out
    open_end = keep & ~(linked & np.r_[keep[1:], False]) & ~ended
    timeouts = np.where(open_end, 1.0, timeouts).astype(np.float32)
    account = {"steps_in": int(len(log)), "episodes_in": int(log.episodes), "transitions_written": int(keep.sum()),
               "dropped": dict(drops.counts), "flows_not_lp_optimal_kept": int(np.sum(keep & not_optimal)),
               "goals_clipped_to_span": int(np.sum(keep & clipped)),
               "pieces_ended_by_drop": int(open_end.sum()), "method": method, "regions": n,
               "residual_vehicle_steps": residual_stats(residual[keep])}
    layout = log.meta.get("obs_layout") or [["obs", int(log.obs.shape[1])]]
    return HighLevelData(observations=log.obs[keep].astype(np.float32), actions=actions[keep].astype(np.float32),
                         rewards=log.reward[keep].astype(np.float32) * reward_scale,
                         terminals=log.terminal[keep].astype(np.float32),
                         timeouts=timeouts[keep], episode=log.episode[keep], residual=residual[keep],
                         account=account, obs_layout=[list(x) for x in layout], drops=drops)
