"""Gravity conventions of logged torques, made alike before goals are recovered.

A robot driver may add the gravity torque g(q) to every command itself (libfranka does; franka_ros
and franka_ros2 log the commanded torque ``tau_J_d`` without it), so a log's torques hold g(q) or
not, as its topic map says (``TopicMap.commanded_effort_includes_gravity``,
``measured_effort_includes_gravity``). Rows read from a bag always hold it:

    tau_row = tau_logged + (1 - l) g(q)          l = 1 if the log holds g(q), else 0

and relabeling compares them with the deployment controller's torque in its own convention
(``gravity_compensation``: ``controller`` holds g(q), ``driver`` leaves it to the driver):

    tau_controller = tau_row - d g(q)            d = 1 for ``driver``, else 0

g(q) is the Pinocchio Panda model's (``controllers.robot.ArmModel.gravity``), at each row's state
(the start of its control period, where the controller computes its command).
"""

from __future__ import annotations

import numpy as np

from ohio_core.data.bag_common import default_model
from ohio_core.inverse.terms import batch_gravity


def shift_gravity(tau: np.ndarray, q: np.ndarray, sign: int, model=None) -> np.ndarray:
    """``tau + sign g(q)`` row by row ((N, 7) each); rows whose q is not finite stay as they are
    (their torques are dropped later with the row's state)."""
    tau = np.array(tau, dtype=float)
    if sign == 0 or not len(tau):
        return tau
    q = np.asarray(q, float)
    finite = np.isfinite(q).all(-1)
    tau[finite] += sign * batch_gravity(model or default_model(), q[finite])
    return tau


def rows_with_gravity(tau: np.ndarray, q: np.ndarray, logged_includes_gravity: bool, model=None) -> np.ndarray:
    """The logged torques as rows hold them: with g(q) (module docstring)."""
    return shift_gravity(tau, q, 0 if logged_includes_gravity else 1, model)


def for_controller(tau: np.ndarray, q: np.ndarray, gravity_compensation: str, model=None) -> np.ndarray:
    """Rows' torques in the convention of a controller with ``gravity_compensation`` (module docstring)."""
    return shift_gravity(tau, q, -1 if gravity_compensation == "driver" else 0, model)
