"""Datasets of the baselines OHIO is measured against, built from the same trajectories.

- ``logged_actions`` ("standard" offline RL): the high-level action the behavior policy logged,
  a_t = ((p_g - p_t) / s_p, log(R_g R_t^T) / s_R) with the COLLECTION controller's output scale,
  i.e. the normalized action it sent; deployed unchanged under another controller.
- ``flat_transitions`` (flat end-to-end): one transition per control period,
  (s_t, tau_t / tau_max (+ gripper), r_t), for a torque-level policy.

The naive relabeling baseline (the pose k steps later as the goal) is the ``naive`` inverse
method of ``pipeline.relabel``.
"""

from __future__ import annotations

import numpy as np

from controllers.goals import quat_to_matrix
from ohio_core.data.trajectory import Trajectories
from ohio_core.inverse import Status
from ohio_core.inverse.base import finish
from ohio_core.inverse.terms import batch_tcp_pose
from ohio_core.pipeline.relabel import HighLevelData, assemble
from ohio_core.pipeline.segments import segment_starts


def logged_actions(traj: Trajectories, controller, k: int) -> HighLevelData:
    """Transitions with the logged goals as normalized actions of ``controller`` (the one that
    collected the data); segments whose goal was not logged, or changed inside the segment, are
    dropped and counted."""
    if traj.goal is None:
        raise ValueError("the trajectories hold no logged goals (ee_goal): the standard baseline needs them; "
                         "data from a flat (torque-level) policy have none")
    index = segment_starts(traj, k)
    starts = index.start
    goals = traj.goal[starts[:, None] + np.arange(k)]                     # (N, k, 7)
    finite = np.isfinite(goals).all((1, 2))
    held = np.all(np.abs(goals - goals[:, :1]) < 1e-9, axis=(1, 2))
    g = np.nan_to_num(goals[:, 0])
    goal_R = quat_to_matrix(g[:, 3:]) if len(g) else np.zeros((0, 3, 3))
    p0, R0 = batch_tcp_pose(controller.model, traj.q[starts])
    status = np.where(finite & held, Status.OK, Status.NON_FINITE)
    res = finish(g[:, :3], goal_R, p0, R0, controller.config.output_max, np.zeros(len(starts)), status,
                 np.ones(len(starts)))
    keep = res.ok
    reasons = {"goal not logged": int(np.sum(~finite)), "goal changed inside the segment": int(np.sum(finite & ~held))}
    return assemble(traj, starts, index.dropped, k, res.action, keep, reasons, res.residual, res.clipped, "logged")


def flat_transitions(traj: Trajectories, tau_max: np.ndarray) -> HighLevelData:
    """Per-period transitions with normalized torques (clipped to [-1, 1]) as actions."""
    starts = np.arange(len(traj))
    tau = np.asarray(traj.tau, float) / np.asarray(tau_max, float)
    finite = np.isfinite(tau).all(1) & np.isfinite(traj.obs).all(1)
    clipped = np.any(np.abs(tau) > 1.0 + 1e-9, axis=1) & finite
    actions = np.clip(np.nan_to_num(tau), -1.0, 1.0)
    reasons = {"non-finite torque or observation": int(np.sum(~finite))}
    return assemble(traj, starts, {}, 1, actions, finite, reasons, np.zeros(len(traj)), clipped, "flat")
