"""The HIRO-style baselines deployed: a high-level policy that picks a target state every k control
periods and a goal-conditioned low-level policy that outputs the arm's torques every period
(``pipeline.hiro``: the datasets and the goal spaces). No known controller is involved, so the
pair acts like a torque-level policy and is evaluated as one.

Every k periods: g = scale * pi_hi(obs); target = phi(s) + g. Every period:
a = pi_lo([obs, (phi(target) - phi(s)) / scale]) (normalized torques, and the gripper).

On disk: ``NAME.json`` (``FORMAT``) names the two models (paths relative to it), the goal space,
k and the goal scale.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from controllers.goals import so3_exp
from ohio_core.envs.arm.tasks import OBS_LAYOUT, obs_slices, rot6, rot6_matrix
from ohio_core.learning.policy import LEVEL_TORQUE, Policy, PolicyMismatchError, load_policy
from ohio_core.pipeline.hiro import GOAL_DIMS, goal_from_states, goal_layout
from ohio_core.pipeline.sidecar import InputError

FORMAT = "ohio_hierarchical_v1"
_S = obs_slices()


def _target_obs(space: str, obs: np.ndarray, g: np.ndarray) -> np.ndarray:
    """An observation whose phi is phi(obs) + g (only the goal space's fields are meaningful)."""
    target = np.array(obs, float)
    if space == "joint":
        target[_S["q"]] += g
    else:
        target[_S["tcp_pos"]] += g[:3]
        target[_S["tcp_rot6"]] = rot6(so3_exp(g[3:]) @ rot6_matrix(obs[_S["tcp_rot6"]]))
    return target


class HierarchicalPolicy:
    """The pair of policies acting as one torque-level policy: ``reset()``, then ``act(obs)`` every
    control period (module docstring)."""

    level = LEVEL_TORQUE
    k = 1

    def __init__(self, high: Policy, low: Policy, space: str, k: int, scale, path: Path | None = None):
        if high.task != low.task:
            raise PolicyMismatchError(f"high level of task {high.task!r}, low level of {low.task!r}")
        self.high, self.low, self.space, self.high_k = high, low, space, int(k)
        self.scale = np.asarray(scale, float)
        if self.scale.shape != (GOAL_DIMS[space],):
            raise PolicyMismatchError(f"goal scale of shape {self.scale.shape} for the {space} goal space")
        self.task, self.path, self.robot = high.task, path, high.robot
        self.meta = {"task": self.task, "level": self.level, "method": f"hiro_{space}", "k": self.high_k}
        self.reset()

    def reset(self) -> None:
        self._t, self._target = 0, None

    def check(self, task: str, obs_layout, k: int | None = None, controller=None,
              allow_controller_change: bool = False) -> None:
        """The high level fits the task's observation, the low level it plus the goal."""
        self.high.check(task, obs_layout)
        if [list(x) for x in self.low.meta["obs_layout"]] != goal_layout(self.space):
            raise PolicyMismatchError(f"the low level's observation layout is not the task's plus the "
                                      f"{self.space} goal")

    def controller_config(self):
        return None

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, float)
        if self._t % self.high_k == 0:
            g = self.scale * self.high.act(obs)[:GOAL_DIMS[self.space]]
            self._target = _target_obs(self.space, obs, g)
        self._t += 1
        remaining = goal_from_states(self.space, obs, self._target) / self.scale
        return self.low.act(np.concatenate([obs, remaining]))

    __call__ = act


def save_hierarchical(path: str | Path, high: str | Path, low: str | Path, space: str, k: int, scale) -> Path:
    """Write ``path`` (.json): the two models' paths relative to it, the goal space, k and scale."""
    path = Path(path).with_suffix(".json")
    rel = {name: os.path.relpath(Path(p).with_suffix(".d3"), path.parent) for name, p in (("high", high), ("low", low))}
    meta = {"format": FORMAT, **rel, "space": space, "k": int(k), "scale": np.asarray(scale, float).tolist()}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, path)
    return path


def load_hierarchical(path: str | Path) -> HierarchicalPolicy:
    """The pair ``save_hierarchical`` wrote; ``InputError`` naming the file when it is not one."""
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the hierarchical policy ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{path}: not a hierarchical policy (format {FORMAT})")
    high, low = (load_policy(path.parent / meta[name]) for name in ("high", "low"))
    policy = HierarchicalPolicy(high, low, meta["space"], meta["k"], meta["scale"], path)
    policy.check(policy.task, OBS_LAYOUT)
    return policy
