"""End-effector goals and their conventions.

A goal is an absolute TCP pose ``(p, R)`` in the world frame. A policy's normalized action
``a`` in [-1, 1]^6 maps onto it as a delta from the TCP pose ``(p0, R0)`` at the time the goal is
set, scaled by the controller's ``output_max`` (position m, orientation rad axis-angle)::

    p_goal = p0 + s_p * a[:3]            R_goal = exp([s_o * a[3:]]x) R0

All functions accept leading batch dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


#: m, bound on each coordinate of a goal position (world frame, the robot's base at the origin).
#: The Panda reaches 0.86 m; a goal beyond 10 m is a unit or frame error, and near 1e307 the
#: task force overflows to NaN torques.
GOAL_POSITION_BOUND = 10.0
#: bound on max |R R^T - I| and |det R - 1| of a goal orientation (a rotation rounded to float32
#: is within 1e-6)
ROTATION_TOLERANCE = 1e-5


class NonFiniteInputError(ValueError):
    """A state, goal or action holds NaN or inf."""


class ImplausibleInputError(NonFiniteInputError):
    """A finite state or goal beyond a stated physical bound (``GOAL_POSITION_BOUND``,
    ``controllers.robot.VELOCITY_BOUND``, ``POSITION_BOUND``): refused like NaN (a subclass, so
    every caller that refuses non-finite input refuses it too), for it can only be a corrupt
    reading or a unit error, and its arithmetic overflows to NaN torques."""


def require_finite(name: str, value: np.ndarray) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if not np.isfinite(arr).all():
        raise NonFiniteInputError(f"{name} is not finite: {np.array2string(arr, precision=4)}")
    return arr


def require_within(name: str, value: np.ndarray, low, high, bound: str) -> np.ndarray:
    """``value`` (finite, else ``NonFiniteInputError``) with low <= value <= high elementwise, else
    ``ImplausibleInputError`` naming ``bound`` (the stated limit, in words)."""
    arr = require_finite(name, value)
    if not ((arr >= low) & (arr <= high)).all():
        raise ImplausibleInputError(f"{name} is beyond the physical bound ({bound}): "
                                    f"{np.array2string(arr, precision=4)}")
    return arr


def require_rotation(name: str, R: np.ndarray) -> np.ndarray:
    """``R`` (..., 3, 3) orthonormal with det 1 within ``ROTATION_TOLERANCE``, else ``ValueError``."""
    with np.errstate(over="ignore", invalid="ignore"):      # a huge finite matrix: inf, refused below
        off = np.abs(R @ np.swapaxes(R, -1, -2) - np.eye(3)).max(axis=(-2, -1))
        det = np.linalg.det(R)
    if not ((off <= ROTATION_TOLERANCE) & (np.abs(det - 1.0) <= ROTATION_TOLERANCE)).all():
        raise ValueError(f"{name} is not a rotation matrix (orthonormal, det 1, within {ROTATION_TOLERANCE:g}): "
                         f"max |R R^T - I| = {off.max():.3g}, det = {np.array2string(det, precision=6)}")
    return R


@dataclass(frozen=True)
class PoseGoal:
    """Absolute TCP pose goal: position ``p`` (..., 3) within ``GOAL_POSITION_BOUND`` and rotation
    matrix ``R`` (..., 3, 3) (``require_rotation``)."""

    p: np.ndarray
    R: np.ndarray

    def __post_init__(self):
        b = GOAL_POSITION_BOUND
        object.__setattr__(self, "p", require_within("goal position", self.p, -b, b, f"|p_i| <= {b:g} m"))
        object.__setattr__(self, "R", require_finite("goal orientation", self.R))
        if self.p.shape[-1:] != (3,) or self.R.shape[-2:] != (3, 3):
            raise ValueError(f"PoseGoal needs p (..., 3) and R (..., 3, 3), got {self.p.shape}, {self.R.shape}")
        require_rotation("goal orientation", self.R)

    @classmethod
    def unchecked(cls, p: np.ndarray, R: np.ndarray) -> "PoseGoal":
        """A goal over arrays without validation: for batches inside the inverse problems, where
        failed entries are carried along (and flagged) rather than raised."""
        goal = object.__new__(cls)
        object.__setattr__(goal, "p", p)
        object.__setattr__(goal, "R", R)
        return goal

    @classmethod
    def from_pos_quat(cls, p, quat_xyzw) -> "PoseGoal":
        """From a position and a unit quaternion (x, y, z, w), as in geometry_msgs/Pose."""
        q = require_finite("goal quaternion", quat_xyzw)
        n = np.linalg.norm(q, axis=-1, keepdims=True)
        if np.any(np.abs(n - 1.0) > 1e-3):
            raise ValueError(f"goal quaternion must have unit norm, got norm {np.squeeze(n)}")
        return cls(np.asarray(p, float), quat_to_matrix(q / n))


def skew(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, float)
    z = np.zeros(w.shape[:-1])
    return np.stack([
        np.stack([z, -w[..., 2], w[..., 1]], -1),
        np.stack([w[..., 2], z, -w[..., 0]], -1),
        np.stack([-w[..., 1], w[..., 0], z], -1),
    ], -2)


def so3_exp(w: np.ndarray) -> np.ndarray:
    """Rodrigues: exp([w]x) = I + sin(t)/t [w]x + (1 - cos t)/t^2 [w]x^2, t = |w|."""
    w = np.asarray(w, float)
    t = np.linalg.norm(w, axis=-1)[..., None, None]
    K = skew(w)
    small = t < 1e-8
    ts = np.where(small, 1.0, t)
    a = np.where(small, 1.0 - t**2 / 6.0, np.sin(ts) / ts)
    b = np.where(small, 0.5 - t**2 / 24.0, (1.0 - np.cos(ts)) / ts**2)
    return np.eye(3) + a * K + b * (K @ K)


def so3_log(R: np.ndarray) -> np.ndarray:
    """Axis-angle vector w with exp([w]x) = R (angle in [0, pi])."""
    R = np.asarray(R, float)
    cos = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    t = np.arccos(cos)
    vee = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    small = t < 1e-6
    near_pi = np.pi - t < 1e-4
    scale = np.where(small, 0.5 + t**2 / 12.0, t / (2.0 * np.sin(np.where(small | near_pi, 1.0, t))))
    w = scale[..., None] * vee
    if np.any(near_pi):
        # (R + R^T)/4 + I/2 -> u u^T as theta -> pi: the axis is its largest column, normalized,
        # oriented along vee(R - R^T) = 2 sin(theta) u
        B = (R + np.swapaxes(R, -1, -2)) / 4.0 + np.eye(3) / 2.0
        i = np.argmax(np.diagonal(B, axis1=-2, axis2=-1), axis=-1)
        col = np.take_along_axis(B, i[..., None, None].repeat(3, -1), -2)[..., 0, :]
        u = col / np.maximum(np.linalg.norm(col, axis=-1, keepdims=True), 1e-300)
        u = np.where((u * vee).sum(-1, keepdims=True) < 0.0, -u, u)
        w = np.where(near_pi[..., None], u * t[..., None], w)
    return w


def quat_to_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    x, y, z, w = np.moveaxis(np.asarray(q_xyzw, float), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0."""
    w = so3_log(R)
    t = np.linalg.norm(w, axis=-1, keepdims=True)
    axis = np.where(t > 1e-12, w / np.where(t > 1e-12, t, 1.0), np.array([1.0, 0.0, 0.0]))
    return np.concatenate([axis * np.sin(t / 2), np.cos(t / 2)], -1)


def orientation_error(R_goal: np.ndarray, R: np.ndarray) -> np.ndarray:
    """e_o = 1/2 sum_i r_i x r_goal_i (columns of R and R_goal) = 1/2 vee(A - A^T), A = R_goal R^T.

    For the world-frame rotation A = exp(theta [u]x) this is sin(theta) u."""
    A = R_goal @ np.swapaxes(R, -1, -2)
    A = A.reshape(A.shape[:-2] + (9,))
    return 0.5 * (A[..., _VEE_PLUS] - A[..., _VEE_MINUS])


# flat indices of (A21, A02, A10) and (A12, A20, A01) in a row-major 3x3 matrix
_VEE_PLUS, _VEE_MINUS = np.array([7, 2, 3]), np.array([5, 6, 1])


def goal_from_action(action: np.ndarray, p0: np.ndarray, R0: np.ndarray, output_max) -> PoseGoal:
    """Map a normalized action in [-1, 1]^6 (clipped) onto an absolute pose goal."""
    a = np.clip(require_finite("action", action), -1.0, 1.0)
    delta = a * np.asarray(output_max, float)
    return PoseGoal(np.asarray(p0, float) + delta[..., :3], so3_exp(delta[..., 3:]) @ np.asarray(R0, float))


def gripper_command(action_value: float) -> float:
    """The binary gripper command (1 grasp, 0 open) of a normalized gripper action in [-1, 1]: grasp
    where it is >= 0. The hand's command is binary, as the Franka hand's grasp and move actions are."""
    return 1.0 if float(require_finite("gripper action", action_value)) >= 0.0 else 0.0


def action_from_goal(goal: PoseGoal, p0: np.ndarray, R0: np.ndarray, output_max) -> np.ndarray:
    """Inverse of ``goal_from_action`` before clipping: the normalized action (may leave [-1, 1])."""
    return action_from_pose(goal.p, goal.R, p0, R0, output_max)


def action_from_pose(goal_p: np.ndarray, goal_R: np.ndarray, p0: np.ndarray, R0: np.ndarray,
                     output_max) -> np.ndarray:
    """a = ((p_g - p0) / s_p, log(R_g R0^T) / s_o) on raw arrays (NaN propagates, no validation)."""
    s = np.asarray(output_max, float)
    dp = np.asarray(goal_p, float) - np.asarray(p0, float)
    dw = so3_log(np.asarray(goal_R, float) @ np.swapaxes(np.asarray(R0, float), -1, -2))
    return np.concatenate([dp / s[:3], dw / s[3:]], -1)
