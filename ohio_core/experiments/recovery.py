"""Pieces shared by the experiments that score goal recovery against known goals
(``model_error``, ``learned_dynamics``).

- Behavior data: the scripted expert and noisy versions of it act through the ORIGINAL controller
  (nominal Pinocchio model) in a simulated plant ``scene``; their goals are logged, so every
  segment has a ground-truth goal.
- Recovery: distance between recovered and true goals per segment, position (m) and rotation
  (rad, geodesic), summarized as median, p95 and the share within 1 mm and 0.01 rad.
- Score: BC (or another algorithm) trained on each relabeled dataset, evaluated in the same plant
  with the ORIGINAL controller, normalized (``learning.evaluate``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from controllers.base import make_controller
from controllers.goals import quat_to_matrix, so3_log
from ohio_core.data.collect import collect
from ohio_core.data.trajectory import Trajectories
from ohio_core.envs.arm.scene import SceneConfig
from ohio_core.experiments.configs import ORIGINAL
from ohio_core.inverse import Status
from ohio_core.inverse.base import InverseResult
from ohio_core.learning.algos import TrainConfig
from ohio_core.learning.evaluate import evaluate
from ohio_core.learning.policy import load_policy
from ohio_core.learning.train import train
from ohio_core.pipeline.baselines import logged_actions
from ohio_core.pipeline.dataset import load_dataset, save_dataset
from ohio_core.pipeline.relabel import relabel

BEHAVIOR = ("expert", "noisy0.1", "noisy0.3")
POS_TOL, ORI_TOL = 1e-3, 1e-2


def behavior_data(task: str, episodes: int, seed: int, k: int, scene, behavior=BEHAVIOR, progress: bool = False):
    """Trajectories of the goal-level behavior policies in equal shares, under the ORIGINAL controller."""
    shares = np.diff(np.linspace(0, episodes, len(behavior) + 1).round().astype(int))
    parts, first = [], 0
    for policy, n in zip(behavior, shares):
        if n:
            parts.append(collect(task, policy, ORIGINAL, int(n), seed, k, first_episode=first, progress=progress,
                                 scene=scene))
        first += int(n)
    return Trajectories.concatenate(parts)


def true_goals(traj, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The logged goal (position, rotation matrix) at each segment's first period."""
    if traj.goal is None:
        raise ValueError("the trajectories hold no logged goals (collect them with goal-level policies)")
    g = traj.goal[starts]
    return g[:, :3], quat_to_matrix(g[:, 3:])


def goal_errors(goal_p, goal_R, true_p, true_R) -> tuple[np.ndarray, np.ndarray]:
    """Position error (m) and geodesic rotation error (rad) per segment."""
    return (np.linalg.norm(goal_p - true_p, axis=-1),
            np.linalg.norm(so3_log(goal_R @ np.swapaxes(true_R, -1, -2)), axis=-1))


def recovery_stats(perr: np.ndarray, oerr: np.ndarray, status: np.ndarray | None = None) -> dict:
    """Median and p95 of the errors, the share within (1 mm, 0.01 rad), the share the inverse marked OK."""
    ok = np.isfinite(perr) & np.isfinite(oerr)
    p, o = perr[ok], oerr[ok]
    out = {"segments": int(len(perr)), "pos_median_m": float(np.median(p)), "pos_p95_m": float(np.percentile(p, 95)),
           "rot_median_rad": float(np.median(o)), "rot_p95_rad": float(np.percentile(o, 95)),
           "recovered": float(np.mean(ok & (perr < POS_TOL) & (oerr < ORI_TOL)))}
    if status is not None:
        out["status_ok"] = float(np.mean(status == Status.OK))
    return out


def accept_best_fit(res: InverseResult) -> InverseResult:
    """NOT_CONVERGED -> OK: under model error no goal reproduces the log exactly, so the best fit is
    used (its residual stays in the dataset's sidecar), as the mismatch experiment does with
    ``max_residual = inf``. Every other status still drops its segment."""
    status = np.where(res.status == Status.NOT_CONVERGED, Status.OK, res.status)
    return dataclasses.replace(res, status=status)


def write_dataset(traj, controller, k: int, method: str, res: InverseResult, path: Path, task: str,
                  extra: dict | None = None) -> str:
    """Relabel with the precomputed inverse result and write the dataset; returns the .h5 path."""
    data = relabel(traj, controller, k, method, max_residual=float("inf"), result=res)
    h5, _ = save_dataset(data, path, {"task": task, "level": "goal", "k": k, "controller": ORIGINAL.to_dict(),
                                      "method": method, **(extra or {})})
    return str(h5)


def write_logged_dataset(traj, k: int, path: Path, task: str) -> str:
    """The logged (true) goals as actions: the reference a perfect inverse would reach."""
    data = logged_actions(traj, make_controller(ORIGINAL), k)
    h5, _ = save_dataset(data, path, {"task": task, "level": "goal", "k": k, "controller": ORIGINAL.to_dict(),
                                      "method": "logged"})
    return str(h5)


def train_eval_job(args: tuple) -> tuple[tuple, dict, float]:
    """Train one policy on a dataset and evaluate it in the plant ``scene`` (a dict of SceneConfig)."""
    key, h5, model_path, train_cfg, scene, episodes, seed = args

    buffer, meta = load_dataset(h5)
    res = train(buffer, meta, TrainConfig(**train_cfg), model_path, progress=False, extra_meta={"dataset": h5})
    ev = evaluate(load_policy(res.model), ORIGINAL, episodes, seed, scene=SceneConfig(**scene))
    return key, {k: ev.summary[k] for k in ("mean", "se", "success_rate")}, res.seconds


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"
