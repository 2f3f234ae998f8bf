"""What the bag writer and reader share: the error type, the message types, and the observation
a robot computes from its logs (forward kinematics of the logged joint positions)."""

from __future__ import annotations

import numpy as np
from rosbags.typesys import Stores, get_typestore

from controllers.goals import quat_to_matrix
from controllers.robot import ArmModel
from ohio_core.envs.arm.tasks import JOINT_SLOTS, OBS_DIM, OBS_LAYOUT, obs_slices, rot6

NS = 10**9
#: observation of a log without a task state: the arm's own part of ``OBS_LAYOUT``
ARM_OBS_LAYOUT: tuple[tuple[str, int], ...] = OBS_LAYOUT[:4]
ARM_OBS_DIM = sum(n for _, n in ARM_OBS_LAYOUT)


class BagError(ValueError):
    """A bag cannot be written or read as asked; the message names the file and the problem."""


def one_line(text: object, limit: int = 160) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


_TYPESTORE = None
_MODEL = None



def unparsable_definition(msgtype: str, exc: BaseException) -> str:
    """Why a topic of type ``msgtype`` is unreadable: rosbags could not parse the definition the bag
    stores for it (the first line of its error)."""
    first = next((x for x in str(exc).splitlines() if x.strip()), type(exc).__name__)
    return f"rosbags cannot parse the definition of {msgtype} the bag stores ({one_line(first, 80)})"


def opened(bag):
    """``bag`` after its ``_open()``; closed again, and the error passed on, when that fails."""
    try:
        bag._open()
    except BaseException:
        bag.close()
        raise
    return bag


def typestore():
    """The ROS 2 Jazzy message types (shared, built once)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
    return _TYPESTORE


def default_model():
    """The Pinocchio Panda model used for forward kinematics (built once per process)."""
    global _MODEL
    if _MODEL is None:
        _MODEL = ArmModel()
    return _MODEL


def stamp_ns(header) -> int:
    """A message header's stamp in nanoseconds."""
    return int(header.stamp.sec) * NS + int(header.stamp.nanosec)


def arm_observation(q, qd, model=None) -> np.ndarray:
    """(N, ARM_OBS_DIM) = [q, qd, p_tcp(q), rot6(R_tcp(q))] (Pinocchio forward kinematics; NaN
    where q is not finite); q and qd padded with zeros to ``JOINT_SLOTS``."""
    q, qd = np.atleast_2d(np.asarray(q, float)), np.atleast_2d(np.asarray(qd, float))
    n = len(q)
    model = model or default_model()
    tcp_p, tcp_R = np.full((n, 3), np.nan), np.full((n, 3, 3), np.nan)
    for i in range(n):
        if np.isfinite(q[i]).all():
            tcp_p[i], tcp_R[i] = model.tcp_pose(q[i])
    pad = np.zeros((n, JOINT_SLOTS - q.shape[1]))
    return np.concatenate([q, pad, qd, pad, tcp_p, rot6(tcp_R)], 1)


def task_observation(q, qd, finger_opening, object_pos, object_quat, target, angles=None, model=None) -> np.ndarray:
    """(N, OBS_DIM) task observations from logged quantities (rows: states).

    The TCP pose comes from forward kinematics of q (Pinocchio); the object's orientation from its
    quaternion (x, y, z, w); ``angles``: (N, 2) door and handle angles (None: 0, no door). Layout:
    ``envs.arm.tasks.OBS_LAYOUT``.
    """
    arm = arm_observation(q, qd, model)
    n = len(arm)
    s = obs_slices()
    obs = np.empty((n, OBS_DIM))
    obs[:, :ARM_OBS_DIM] = arm
    obs[:, s["finger_opening"]] = np.asarray(finger_opening, float).reshape(n, 1)
    obs[:, s["object_pos"]] = np.asarray(object_pos, float).reshape(n, 3)
    obs[:, s["object_rot6"]] = rot6(quat_to_matrix(np.asarray(object_quat, float).reshape(n, 4)))
    obs[:, s["target_pos"]] = np.asarray(target, float).reshape(n, 3)
    angles = np.zeros((n, 2)) if angles is None else np.asarray(angles, float).reshape(n, 2)
    obs[:, s["door_angle"]], obs[:, s["handle_angle"]] = angles[:, :1], angles[:, 1:]
    return obs
