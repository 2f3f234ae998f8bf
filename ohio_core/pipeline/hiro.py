"""Datasets of the hierarchical baselines with a LEARNED low level (HIRO-style), from the same
trajectories as every other method.

A goal is a state k control periods ahead, in one of two spaces (``GOAL_SPACES``)::

    joint:        phi(s) = q                          g = q_target - q
    operational:  phi(s) = (p_tcp, R_tcp)             g = (p_target - p, log(R_target R^T))

For the segment of k periods starting at row s, the target is phi at row s + k, the state the
behavior reached (HIRO's relabeling with the state k steps later); a segment whose row s + k is
not in the same piece of episode is dropped and counted. Then

- high level: (obs_s, g_s / scale, sum of the k rewards), ``assemble`` as for every high-level
  dataset (``goal_scale``: per dimension, the 99th percentile of |g_s|; actions clipped to [-1, 1]);
- low level: per period t of the segment, (obs_t + [g_t / scale], tau_t / tau_max (+ gripper)),
  with the remaining goal g_t = phi(target) - phi(s_t) (HIRO's goal transition h(s, g, s') =
  s + g - s' keeps the target fixed); a goal-conditioned torque-level policy.

Deployed together (``learning.hierarchical``), the high level picks a target every k periods and
the low level drives the arm's torques toward it every period: no known controller is used.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from controllers.goals import so3_log
from ohio_core.data.trajectory import Trajectories
from ohio_core.envs.arm.tasks import OBS_LAYOUT, obs_slices, rot6_matrix
from ohio_core.pipeline.baselines import flat_transitions
from ohio_core.pipeline.relabel import HighLevelData, assemble
from ohio_core.pipeline.segments import segment_starts

GOAL_SPACES = ("joint", "operational")
GOAL_DIMS = {"joint": 7, "operational": 6}
#: drop reason of a segment whose target row is not in its piece of episode
NO_TARGET = "no state k periods later in the piece (the goal is that state)"
_S = obs_slices()


def goal_layout(space: str) -> list[list]:
    """The low level's observation layout: the task's, then the normalized remaining goal."""
    return [list(x) for x in OBS_LAYOUT] + [[f"goal_{space}", GOAL_DIMS[space]]]


def goal_from_states(space: str, obs: np.ndarray, target_obs: np.ndarray) -> np.ndarray:
    """(N, dims) goals g = phi(target) - phi(s) (module docstring) from task observations."""
    if space == "joint":
        return target_obs[..., _S["q"]] - obs[..., _S["q"]]
    R, R_target = rot6_matrix(obs[..., _S["tcp_rot6"]]), rot6_matrix(target_obs[..., _S["tcp_rot6"]])
    return np.concatenate([target_obs[..., _S["tcp_pos"]] - obs[..., _S["tcp_pos"]],
                           so3_log(R_target @ np.swapaxes(R, -1, -2))], -1)


def _check_space(space: str) -> None:
    if space not in GOAL_SPACES:
        raise ValueError(f"unknown goal space {space!r}; expected one of {list(GOAL_SPACES)}")


def goal_scale(goals: np.ndarray) -> np.ndarray:
    """Per goal dimension, the 99th percentile of |g| (at least 1e-6): normalized goals in about [-1, 1]."""
    return np.maximum(np.percentile(np.abs(goals), 99, axis=0), 1e-6) if len(goals) else np.ones(goals.shape[1])


def _targets(traj: Trajectories, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(segment starts, whether row start + k continues the same piece of episode)."""
    starts = segment_starts(traj, k).start
    target = starts + k
    inside = target < len(traj)
    t = np.minimum(target, len(traj) - 1)
    same = inside & (traj.episode[t] == traj.episode[starts]) & (traj.step[t] == traj.step[starts] + k)
    return starts, same & ~traj.last[starts + k - 1]


def hiro_datasets(traj: Trajectories, k: int, space: str, tau_max: np.ndarray) -> tuple[HighLevelData, HighLevelData,
                                                                                         np.ndarray]:
    """(high-level data, low-level data, goal scale) of the HIRO-style baseline in ``space``."""
    _check_space(space)
    index = segment_starts(traj, k)
    starts, has_target = _targets(traj, k)
    target_rows = np.minimum(starts + k, len(traj) - 1)
    g_high = goal_from_states(space, traj.obs[starts], traj.obs[target_rows])
    finite = np.isfinite(g_high).all(1) & has_target
    scale = goal_scale(g_high[finite])
    actions = np.clip(np.nan_to_num(g_high) / scale, -1.0, 1.0)
    clipped = np.any(np.abs(g_high / scale) > 1.0, axis=1) & finite
    reasons = {NO_TARGET: int(np.sum(~has_target)),
               "non-finite goal": int(np.sum(has_target & ~np.isfinite(g_high).all(1)))}
    high = assemble(traj, starts, index.dropped, k, actions, finite, reasons, np.zeros(len(starts)), clipped,
                    f"hiro_{space}", gripper=False)

    rows = (starts[finite][:, None] + np.arange(k)).ravel()          # ascending: segments do not overlap
    targets = np.repeat(target_rows[finite], k)
    g_low = goal_from_states(space, traj.obs[rows], traj.obs[targets]) / scale
    kept = np.zeros(len(traj), bool)
    kept[rows] = True
    low_traj = dataclasses.replace(traj.select(kept), meta={**traj.meta, "obs_layout": goal_layout(space)})
    low_traj.obs = np.concatenate([low_traj.obs, g_low], 1)
    # a piece of episode ends where the next kept row is not the next period of the same episode
    follows = np.r_[(np.diff(low_traj.step) == 1) & (np.diff(low_traj.episode) == 0), False]
    low_traj.timeout = low_traj.timeout | (~follows & ~low_traj.terminal)
    return high, _low_level(low_traj, tau_max), scale


def _low_level(traj: Trajectories, tau_max: np.ndarray) -> HighLevelData:
    """Per-period transitions (obs + goal, normalized torque (+ gripper)) of the segments kept:
    ``baselines.flat_transitions`` on the goal-augmented rows."""
    return flat_transitions(traj, tau_max)
