"""Scripted experts for the arm tasks, acting through the normalized goal interface.

They read only the observation vector (``envs.arm.tasks.OBS_LAYOUT``) and return an action in
[-1, 1]^6 (+ gripper): a proportional step toward a waypoint, scaled by the controller's
``output_max`` so the commanded delta is the remaining error, at a moderate pace: the position
and the rotation parts are each scaled down so that no component exceeds ``pace`` (default
``PACE`` = 0.3 of the output range).

Why a pace: a controller that is more damped than the one the data were collected with (damping
ratio 3 instead of 1 needs about 3x the goal offset for the same speed, kd v / kp) can only
reproduce motions that used at most about a third of the output range. At full range, no
high-level policy under such a controller can match the expert (``README``: measured).
"""

from __future__ import annotations

import numpy as np

from ohio_core.envs.arm.tasks import obs_slices, rot6_matrix

_S = obs_slices()
#: TCP pointing down, fingers closing along world y
R_DOWN = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def _rz(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _log(R: np.ndarray) -> np.ndarray:
    cos = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    t = np.arccos(cos)
    v = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return v * (0.5 if t < 1e-6 else t / (2.0 * np.sin(t)))


PACE = 0.3


def _paced(a: np.ndarray, pace: float) -> np.ndarray:
    """a * min(1, pace / max_i |a_i|): the direction kept, the largest component at most ``pace``."""
    m = float(np.max(np.abs(a)))
    return a * (pace / m) if m > pace else a


def pose_action(p: np.ndarray, R: np.ndarray, p_des: np.ndarray, R_des: np.ndarray, output_max,
                pace: float = 1.0) -> np.ndarray:
    """[(p_des - p) / s_p, log(R_des R^T) / s_R], each part paced (see ``_paced``), in [-1, 1]."""
    s = np.asarray(output_max, float)
    a = np.concatenate([_paced((p_des - p) / s[:3], pace), _paced(_log(R_des @ R.T) / s[3:], pace)])
    return np.clip(a, -1.0, 1.0)


class Expert:
    """A scripted expert: actions normalized by ``output_max``, paced (``pose_action``); experts with
    phases start each episode in their first (``reset``)."""

    def __init__(self, output_max=(0.05, 0.05, 0.05, 0.5, 0.5, 0.5), pace: float = PACE):
        if not 0 < pace <= 1:
            raise ValueError(f"pace must be in (0, 1], got {pace}")
        self.output_max, self.pace = output_max, pace
        self.reset()

    def reset(self) -> None:
        self.phase, self.closed_for = "approach", 0


class ReachExpert(Expert):
    """Go straight to the target, keep the orientation the TCP has (pointing down)."""

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        p, R = obs[_S["tcp_pos"]], rot6_matrix(obs[_S["tcp_rot6"]])
        return pose_action(p, R, obs[_S["target_pos"]], R_DOWN, self.output_max, self.pace)


class LiftExpert(Expert):
    """Above the cube, yaw aligned with a cube face -> down -> close -> lift to the target."""

    above, close_steps = 0.08, 6

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        p, R = obs[_S["tcp_pos"]], rot6_matrix(obs[_S["tcp_rot6"]])
        cube, cR = obs[_S["object_pos"]], rot6_matrix(obs[_S["object_rot6"]])
        yaw = np.arctan2(cR[1, 0], cR[0, 0])
        yaw = (yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4          # the face closest to the hand's yaw
        R_des = _rz(yaw) @ R_DOWN
        grip = -1.0
        if self.phase == "approach":
            target = cube + np.array([0.0, 0.0, self.above])
            if np.linalg.norm(target - p) < 0.01:
                self.phase = "descend"
        if self.phase == "descend":
            target = cube.copy()
            if np.linalg.norm(target - p) < 0.008:
                self.phase = "grasp"
        if self.phase == "grasp":
            target, grip = cube.copy(), 1.0
            self.closed_for += 1
            if self.closed_for >= self.close_steps:
                self.phase = "lift"
        if self.phase == "lift":
            target, grip = obs[_S["target_pos"]] + np.array([0.0, 0.0, 0.03]), 1.0
        return np.r_[pose_action(p, R, target, R_des, self.output_max, self.pace), grip]


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: the rotation by ``angle`` about the unit vector ``axis``."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * K + (1.0 - np.cos(angle)) * K @ K


class DoorExpert(Expert):
    """Above the handle -> down onto it -> grasp -> turn it past the latch -> pull the door open.

    The hand points down with its fingers across the handle's flat faces (the handle's frame times
    ``R_DOWN``). Turning rolls the hand about the handle's axis (the panel's normal: the handle's
    -x), the grasp point staying where it is; pulling carries the grasp point, and the hand's yaw,
    around the hinge axis (vertical, through ``target_pos``), the handle held turned. Each target is
    ``step`` rad ahead of where the handle or door is, so the motion goes on until the task is done.
    """

    above, close_steps, step = 0.08, 6, 0.3
    turn_to, unlatched = 0.7, 0.45        # rad: handle angle aimed at, and reached before pulling

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        p, R = obs[_S["tcp_pos"]], rot6_matrix(obs[_S["tcp_rot6"]])
        grasp, Rh = obs[_S["object_pos"]], rot6_matrix(obs[_S["object_rot6"]])
        hinge, handle = obs[_S["target_pos"]], float(obs[_S["handle_angle"]][0])
        axis = -Rh[:, 0]                                   # the handle's turning axis, toward the robot
        R_grasp = Rh @ R_DOWN
        target, R_des, grip = grasp.copy(), R_grasp, -1.0
        if self.phase == "approach":
            target = grasp + np.array([0.0, 0.0, self.above])
            if np.linalg.norm(target - p) < 0.01 and np.linalg.norm(_log(R_des @ R.T)) < 0.1:
                self.phase = "descend"
        if self.phase == "descend":
            if np.linalg.norm(grasp - p) < 0.006:
                self.phase = "grasp"
        if self.phase == "grasp":
            grip = 1.0
            self.closed_for += 1
            if self.closed_for >= self.close_steps:
                self.phase = "turn"
        if self.phase == "turn":
            grip = 1.0
            R_des = _axis_rotation(axis, float(np.clip(self.turn_to - handle, 0.0, self.step))) @ R_grasp
            if handle > self.unlatched:
                self.phase = "pull"
        if self.phase == "pull":
            grip = 1.0
            around = _axis_rotation(np.array([0.0, 0.0, -1.0]), self.step)   # the door opens about -z
            pivot = np.array([hinge[0], hinge[1], grasp[2]])
            held = _axis_rotation(axis, max(0.0, self.turn_to - handle)) @ R_grasp
            target, R_des = pivot + around @ (grasp - pivot), around @ held
        return np.r_[pose_action(p, R, target, R_des, self.output_max, self.pace), grip]


EXPERTS = {"reach": ReachExpert, "lift": LiftExpert, "door": DoorExpert}
