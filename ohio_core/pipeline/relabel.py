"""OHIO relabeling: low-level trajectories -> high-level transitions for offline RL.

For every segment of k control periods: s_t = the observation at its start, g_t = the goal the
DEPLOYMENT controller would have needed (an inverse method, normalized to [-1, 1] by that
controller's output scale; for lift the logged gripper command is appended in [-1, 1]),
r_t = the sum of the k rewards. Segments are dropped and counted, per reason, when the inverse
could not solve them (non-finite data, singular, ...), their residual is above ``max_residual``,
a joint left its limits by more than ``joint_limit_margin`` (when given), or, with
``out_of_range="drop"``, the goal lies outside the deployment controller's range (else it is clipped
to [-1, 1] and counted). The transition before a dropped segment ends its piece of episode with a
timeout, so no transition spans missing data. A kept segment left alone in its piece (dropped or
missing neighbours on both sides, or an episode of one segment) that does not end in a terminal
state has no next state in the data: d3rlpy would not store it, so it is dropped here and counted
under ``SINGLE_STEP_PIECE``. Where the rows carry bag times, the account lists the time ranges of
each drop reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ohio_core.data.account import Drops
from ohio_core.data.trajectory import Trajectories
from ohio_core.envs.arm.tasks import OBS_LAYOUT
from ohio_core.inverse import Status, invert
from ohio_core.inverse.base import InverseResult
from ohio_core.pipeline.segments import build_segments, segment_starts


@dataclass
class HighLevelData:
    observations: np.ndarray   # (N, obs_dim)
    actions: np.ndarray        # (N, 6) or (N, 7) with the gripper
    rewards: np.ndarray        # (N,) sum of the k low-level rewards
    terminals: np.ndarray      # (N,)
    timeouts: np.ndarray       # (N,)
    episode: np.ndarray        # (N,) source episode id
    residual: np.ndarray       # (N,)
    account: dict = field(default_factory=dict)
    obs_layout: list = field(default_factory=lambda: [list(x) for x in OBS_LAYOUT])
    drops: Drops = field(default_factory=Drops)   # dropped segments per reason, with bag time ranges


def _gripper_action(traj: Trajectories, rows: np.ndarray) -> np.ndarray | None:
    if traj.gripper is None or np.all(np.isnan(traj.gripper)):
        return None
    g = np.nan_to_num(traj.gripper[rows], nan=0.0)
    return 2.0 * g - 1.0


OUT_OF_RANGE = ("clip", "drop")
#: drop reason of a segment that would form a piece of episode alone without a terminal state
SINGLE_STEP_PIECE = "single-step piece (its next state is not in the data)"
#: drop reason of a segment whose residual cannot be computed at one of its periods
RESIDUAL_NOT_FINITE = "residual not finite (the law cannot be evaluated at a period)"
#: inverse methods that compare with the state after the segment
NEEDS_NEXT_STATE = ("state_matching", "naive")


def relabel(traj: Trajectories, controller, k: int, method: str = "auto", max_residual: float = float("inf"),
            gripper: bool | None = None, workers: int = 1, out_of_range: str = "clip",
            joint_limit_margin: float | None = None, result: InverseResult | None = None,
            **options) -> HighLevelData:
    """Relabel ``traj`` for ``controller`` (the deployment controller) with inverse ``method``.
    ``result``: the inverse already run on ``segments_of(traj, k)`` (it is not run again).

    ``max_residual`` (N m) drops segments whose residual over the k periods is above it; the default
    keeps every solved one (the residual measures how far the deployment controller, holding one goal,
    is from the logged torques: large by nature when it is not the controller that recorded them).
    A segment whose residual is not finite (the law cannot be evaluated at one of its periods) is
    always dropped."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if out_of_range not in OUT_OF_RANGE:
        raise ValueError(f"out_of_range must be one of {OUT_OF_RANGE}, got {out_of_range!r}")
    index, segs = segments_of(traj, k)
    if result is not None and len(result.status) != len(segs):
        raise ValueError(f"result holds {len(result.status)} segments, the trajectories make {len(segs)}")
    res: InverseResult = result
    if res is None:
        res = invert(method, segs, controller, workers=workers, **options)
    drops = Drops()
    keep = np.ones(len(index.start), bool)
    period_ns = int(round(controller.config.control_period * 1e9))
    stamp = traj.stamp
    span = (lambda m: (stamp[index.start[m]], stamp[index.start[m] + k - 1] + period_ns)) if stamp is not None \
        else (lambda m: (None, None))

    def drop(reason: str, mask: np.ndarray) -> None:
        mask = mask & keep
        drops.add(reason, int(mask.sum()), *span(mask))
        keep[mask] = False

    if method in NEEDS_NEXT_STATE:
        drop("no state after the segment (the method needs it)", ~np.isfinite(segs.q_next).all(-1))
    for s in Status:
        if s != Status.OK:
            drop(f"inverse: {Status(s).name.lower()}", res.status == s)
    if joint_limit_margin is not None:
        model = controller.model
        q = segs.q
        beyond = ((q < model.q_min - joint_limit_margin) | (q > model.q_max + joint_limit_margin)).any((1, 2))
        drop(f"joint limit violation (beyond {joint_limit_margin:g} rad)", beyond)
    drop(RESIDUAL_NOT_FINITE, ~np.isfinite(res.residual))
    if np.isfinite(max_residual):
        drop(f"residual above {max_residual:g} N m", res.residual > max_residual)
    if out_of_range == "drop":
        drop("goal outside the deployment controller's range", res.clipped)
    ends = index.start + k - 1
    drop(SINGLE_STEP_PIECE, single_step_pieces(index.start, k, keep, traj.last[ends], traj.terminal[ends]))
    data = assemble(traj, index.start, index.dropped, k, res.action, keep, dict(drops.counts), res.residual,
                    res.clipped, method, gripper)
    data.drops = drops
    return data


def segments_of(traj: Trajectories, k: int):
    """(segment index, segments) that ``relabel`` inverts."""
    index = segment_starts(traj, k)
    return index, build_segments(traj, index, k)


def piece_links(starts: np.ndarray, k: int, keep: np.ndarray, ended: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(to next, from previous) per segment: whether the segment starting at ``start + k`` (``start - k``)
    is kept and continues the same piece of episode; ``ended``: the segment's last row ends its episode."""
    n = len(starts)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, bool)
    order = np.argsort(starts, kind="stable")
    sorted_starts = starts[order]

    def kept_at(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        j = order[np.minimum(np.searchsorted(sorted_starts, rows), n - 1)]
        return (starts[j] == rows) & keep[j], j

    nxt, _ = kept_at(starts + k)
    prv, j = kept_at(starts - k)
    return nxt & ~ended, prv & ~ended[j]


def single_step_pieces(starts: np.ndarray, k: int, keep: np.ndarray, ended: np.ndarray,
                       terminal: np.ndarray) -> np.ndarray:
    """Kept segments that form a piece of episode alone and do not end in a terminal state (module
    docstring): their transition has no next state, and d3rlpy stores no such piece."""
    nxt, prv = piece_links(starts, k, keep, ended)
    return keep & ~nxt & ~prv & ~terminal


def assemble(traj: Trajectories, starts: np.ndarray, rows_dropped: dict, k: int, actions: np.ndarray,
             keep: np.ndarray, reasons: dict, residual: np.ndarray, clipped: np.ndarray, method: str,
             gripper: bool | None = None) -> HighLevelData:
    """High-level transitions (s_t, a_t, sum of k rewards) for the segments starting at ``starts``
    whose ``keep`` is set, with the account of the rest (``reasons``: dropped segments per reason;
    single-step pieces are dropped here under ``SINGLE_STEP_PIECE`` unless the caller already did)."""
    ends = starts + k - 1
    ended = traj.last[ends]
    lone = single_step_pieces(starts, k, keep, ended, traj.terminal[ends])
    keep = keep & ~lone
    reasons = dict(reasons)
    reasons[SINGLE_STEP_PIECE] = reasons.get(SINGLE_STEP_PIECE, 0) + int(lone.sum())
    reasons = {r: n for r, n in reasons.items() if n}
    rewards = traj.reward[starts[:, None] + np.arange(k)].sum(1)
    terminals = traj.terminal[ends].astype(np.float32)
    timeouts = traj.timeout[ends].astype(np.float32)
    # end a piece of episode where the next segment is missing
    nxt, _ = piece_links(starts, k, keep, ended)
    open_end = keep & ~nxt & ~ended
    timeouts = np.where(open_end, 1.0, timeouts).astype(np.float32)
    use_gripper = gripper if gripper is not None else _gripper_action(traj, starts) is not None
    if use_gripper:
        g = _gripper_action(traj, starts)
        if g is None:
            raise ValueError("gripper actions requested but the trajectories hold no gripper command")
        actions = np.concatenate([actions, g[:, None]], 1)
    account = {
        "control_steps_in": int(len(traj)),
        "episodes_in": int(len(np.unique(traj.episode))) if len(traj) else 0,
        "segments_built": int(len(starts)),
        "segments_written": int(keep.sum()),
        "segments_dropped": reasons,
        "rows_not_in_segments": rows_dropped,
        "actions_clipped": int(clipped[keep].sum()),
        "pieces_ended_by_drop": int(open_end.sum()),
        "residual_n_m": residual_stats(residual[keep]),
        "method": method,
        "k": k,
    }
    return HighLevelData(observations=traj.obs[starts][keep].astype(np.float32),
                         actions=actions[keep].astype(np.float32),
                         rewards=rewards[keep].astype(np.float32), terminals=terminals[keep], timeouts=timeouts[keep],
                         episode=traj.episode[starts][keep], residual=residual[keep], account=account,
                         obs_layout=[list(x) for x in traj.meta.get("obs_layout", OBS_LAYOUT)])


def residual_stats(x: np.ndarray) -> dict:
    """Count, mean, median, p95 and max of residuals (N m)."""
    if len(x) == 0:
        return {"count": 0}
    return {"count": int(len(x)), "mean": float(np.mean(x)), "median": float(np.median(x)),
            "p95": float(np.percentile(x, 95)), "max": float(np.max(x))}


def concat(parts: list[HighLevelData]) -> HighLevelData:
    """One ``HighLevelData`` from several (episode ids made distinct: each part's follow the previous)."""
    parts = [p for p in parts if len(p.rewards)]
    if not parts:
        raise ValueError("no transitions to concatenate")
    offset, episodes = 0, []
    for p in parts:
        uniq, inv = np.unique(p.episode, return_inverse=True)
        episodes.append(offset + inv)
        offset += len(uniq)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    layouts = {json.dumps(p.obs_layout) for p in parts}
    if len(layouts) != 1:
        raise ValueError(f"the parts have different observation layouts: {sorted(layouts)}")
    widths = {p.actions.shape[1] for p in parts}
    if len(widths) != 1:
        raise ValueError("some parts have a gripper action and some do not; relabel them separately")
    return HighLevelData(observations=cat("observations"), actions=cat("actions"), rewards=cat("rewards"),
                         terminals=cat("terminals"), timeouts=cat("timeouts"), episode=np.concatenate(episodes),
                         residual=cat("residual"), account={}, obs_layout=parts[0].obs_layout)
