"""Trained policies on disk and in use: a d3rlpy model plus a JSON sidecar of what it expects.

``MODEL.d3`` is the d3rlpy learnable (networks, observation scaler); ``MODEL.json`` records the
task, the level (``goal``: normalized end-effector goals every k control periods through a
controller; ``torque``: normalized joint torques every period), the controller config the goals
are normalized for, k, the observation layout and the action size. ``load_policy`` refuses a
model without its sidecar or a damaged one (``InputError`` naming the file), and ``Policy.check``
refuses an environment the model does not fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controllers.config import config_from_dict
from controllers.description import DEFAULT_ROBOT
from ohio_core import lazy
from ohio_core.pipeline.sidecar import pair_paths, read_data, read_sidecar, write_pair
from ohio_core.routing import region_net

FORMAT = "ohio_policy_v1"
LEVEL_GOAL, LEVEL_TORQUE = "goal", "torque"
#: routing: per-edge flows (the flat end-to-end policy); its goal level is LEVEL_GOAL (distributions)
LEVEL_FLOWS = "flows"


class PolicyMismatchError(ValueError):
    """A model was asked to act in an environment it was not trained for."""


def model_paths(path: str | Path) -> tuple[Path, Path]:
    return pair_paths(path, ".d3")


def save_policy(algo, meta: dict, path: str | Path) -> tuple[Path, Path]:
    """Write ``algo`` (a fitted d3rlpy algorithm) and ``meta`` atomically, the sidecar last."""
    d3, js = model_paths(path)
    write_pair(d3, js, lambda tmp: algo.save(str(tmp)), {"format": FORMAT, **meta})
    return d3, js


class Policy:
    """A trained policy: ``act(obs) -> action`` (deterministic), ``meta`` from the sidecar."""

    def __init__(self, algo, meta: dict, path: Path | None = None):
        self.algo, self.meta, self.path = algo, meta, path
        self.level = meta["level"]
        self.task = meta["task"]
        self.robot = meta.get("robot", DEFAULT_ROBOT)     # the arm it was trained for (config/robots)
        self.k = int(meta.get("k", 1))
        self.action_dim = int(meta["action_dim"])
        self.obs_dim = sum(n for _, n in meta["obs_layout"])

    def act(self, obs: np.ndarray) -> np.ndarray:
        """a = pi(obs): the greedy action, clipped to [-1, 1]."""
        x = np.asarray(obs, np.float32)
        if x.shape != (self.obs_dim,):
            raise PolicyMismatchError(f"observation has shape {x.shape}, the model expects ({self.obs_dim},)")
        if not np.isfinite(x).all():
            raise ValueError("observation is not finite")
        return np.clip(self.algo.predict(x[None])[0].astype(float), -1.0, 1.0)

    __call__ = act

    def controller_config(self):
        """The controller config the goals are normalized for (None for torque policies)."""
        c = self.meta.get("controller")
        return config_from_dict(c) if c else None

    def check(self, task: str, obs_layout, k: int | None = None, controller=None,
              allow_controller_change: bool = False) -> None:
        """Raise ``PolicyMismatchError`` naming what differs between the model and an environment."""
        problems = []
        if task != self.task:
            problems.append(f"task {task!r} (model: {self.task!r})")
        layout = [[str(n), int(s)] for n, s in obs_layout]
        if layout != [[str(n), int(s)] for n, s in self.meta["obs_layout"]]:
            problems.append(f"observation layout {layout} (model: {self.meta['obs_layout']})")
        if self.level == LEVEL_GOAL:
            if k is not None and int(k) != self.k:
                problems.append(f"k = {k} control periods per goal (model: {self.k})")
            if controller is not None and not allow_controller_change:
                mine, theirs = self.meta.get("controller") or {}, controller.to_dict()
                diff = [f"{key} {theirs.get(key)} (model: {mine.get(key)})" for key in sorted(set(mine) | set(theirs))
                        if mine.get(key) != theirs.get(key)]
                if diff:
                    problems.append("controller " + ", ".join(diff) + " (the model's goals were made for its own "
                                    "controller; allow a controller change to deploy it anyway)")
        if problems:
            where = f" {self.path}" if self.path else ""
            raise PolicyMismatchError(f"model{where} does not fit this environment: " + "; ".join(problems))


def load_policy(path: str | Path) -> Policy:
    d3rlpy = lazy.d3rlpy()
    region_net.networks()   # registers its encoder factory with d3rlpy

    d3, js = model_paths(path)
    meta = read_sidecar(d3, js, "model", FORMAT)
    algo = read_data(d3, "model", lambda: d3rlpy.load_learnable(str(d3), device="cpu:0"))
    continuous = algo.get_action_type() == d3rlpy.constants.ActionSpace.CONTINUOUS
    if not continuous or algo.action_size != int(meta["action_dim"]):
        kind = "continuous" if continuous else "discrete"
        raise PolicyMismatchError(f"model {d3} acts with {algo.action_size} {kind} actions, its sidecar says "
                                  f"{meta['action_dim']} continuous")
    return Policy(algo, meta, d3)
