"""The goal workspace: a box in the world frame and a floor above the table, shared by the OSC and
the QP (``goal_box_min``/``goal_box_max``, ``table_height`` + ``goal_table_clearance`` in their configs).

A goal position outside is clamped into it, elementwise::

    lo = (box_min_x, box_min_y, max(box_min_z, table_height + clearance)),   hi = box_max
    p_clamped = min(max(p, lo), hi)

Unset bounds are -inf / +inf, so the default config clamps nothing. All functions accept leading
batch dimensions.
"""

from __future__ import annotations

import numpy as np

from controllers.goals import PoseGoal


def goal_bounds(config) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi), each (3,): the box of the module docstring (+-inf where a bound is unset)."""
    lo, hi = np.full(3, -np.inf), np.full(3, np.inf)
    if config.goal_box_min is not None:
        lo, hi = config.array("goal_box_min").copy(), config.array("goal_box_max").copy()
    if config.table_height is not None:
        lo[2] = max(lo[2], config.table_height + config.goal_table_clearance)
    return lo, hi


def has_goal_bounds(config) -> bool:
    return config.goal_box_min is not None or config.table_height is not None


def clamp_position(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min(max(p, lo), hi), whether each position (leading dimensions) was moved)."""
    clamped = np.minimum(np.maximum(p, lo), hi)
    return clamped, np.any(clamped != p, axis=-1)


def clamp_goal(goal: PoseGoal, config) -> tuple[PoseGoal, bool]:
    """One goal with its position clamped into the config's workspace, and whether it was moved."""
    if not has_goal_bounds(config):
        return goal, False
    p, moved = clamp_position(goal.p, *goal_bounds(config))
    return (PoseGoal.unchecked(p, goal.R), True) if moved else (goal, False)
