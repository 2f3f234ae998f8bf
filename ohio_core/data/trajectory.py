"""Low-level trajectories: what a robot logs, time-aligned at the control rate.

Row i is one control period: the state measured at its start, the torque commanded from that
state and held over the period, and what the task reported at its end::

    t[i], q[i], qd[i]   state at the start of period i          (joint_states)
    tau[i]              torque commanded for period i           (effort command)
    reward[i], success[i], task_state[i]  after period i        (task state)
    episode[i], step[i] episode id and control-step index within it

An episode's rows are contiguous, in time order; its last row carries ``last = True``
(``timeout[i]`` tells whether it ended by the horizon, ``terminal[i]`` by a terminal state).
``goal`` (absolute TCP pose goal, position + quaternion xyzw) and ``gripper`` are present when the
behavior policy had them; ``obs`` is the observation at the start of the period, in the layout
``meta["obs_layout"]`` (default ``envs.arm.tasks.OBS_LAYOUT``; a log without task state has the
arm's part only). ``stamp`` is the bag time of each row, when the rows were read from a bag.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


@dataclass
class Trajectories:
    t: np.ndarray            # (T,) s
    q: np.ndarray            # (T, n) arm joints
    qd: np.ndarray           # (T, n)
    tau: np.ndarray          # (T, n) commanded torque
    reward: np.ndarray       # (T,)
    success: np.ndarray      # (T,) bool
    episode: np.ndarray      # (T,) int
    step: np.ndarray         # (T,) int
    obs: np.ndarray          # (T, OBS_DIM) task observation at the start of the period
    timeout: np.ndarray      # (T,) bool: the episode ended by its horizon after this row
    terminal: np.ndarray     # (T,) bool
    gripper: np.ndarray | None = None    # (T,) gripper command 0 open .. 1 closed
    goal: np.ndarray | None = None       # (T, 7) logged goal (x, y, z, qx, qy, qz, qw), if any
    stamp: np.ndarray | None = None      # (T,) int64 bag time (ns) of the row's state, when read from a bag
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.t)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray) and len(v) != n:
                raise ValueError(f"Trajectories.{f.name} has {len(v)} rows, t has {n}")

    def __len__(self) -> int:
        return len(self.t)

    @property
    def last(self) -> np.ndarray:
        return self.timeout | self.terminal

    def episodes(self) -> np.ndarray:
        return np.unique(self.episode)

    def select(self, mask: np.ndarray) -> "Trajectories":
        kw = {f.name: (getattr(self, f.name)[mask] if isinstance(getattr(self, f.name), np.ndarray)
                       else getattr(self, f.name)) for f in fields(self)}
        return Trajectories(**kw)

    @staticmethod
    def concatenate(parts: list["Trajectories"]) -> "Trajectories":
        if not parts:
            raise ValueError("no trajectories to concatenate")
        kw = {}
        for f in fields(Trajectories):
            vals = [getattr(p, f.name) for p in parts]
            if f.name == "meta":
                kw[f.name] = dict(parts[0].meta)
            elif any(v is None for v in vals):
                kw[f.name] = None
            else:
                kw[f.name] = np.concatenate(vals)
        return Trajectories(**kw)
