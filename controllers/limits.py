"""Joint limits as linear constraints on the joint accelerations, for one control period.

With T the control period, m the position margin and a_b the braking acceleration, the joint
accelerations qdd held for one period keep the torque, the speed (with room to brake before a
position limit) and the position at the end of the period within the limits::

    -tau_max <= M qdd + h <= tau_max                                           (torque)
    -v_lo <= qd + T qdd <= v_hi,   v_hi = min(qd_max, sqrt(2 a_b max(q_max - m - q, 0)))
                                   v_lo = min(qd_max, sqrt(2 a_b max(q - q_min - m, 0)))   (velocity)
    q_min + m <= q + T qd + T^2/2 qdd <= q_max - m                             (position)

in quadprog's form C^T qdd >= b (``joint_constraints``). The QP controller (``controllers.qp``) solves
its task under them; the OSC's joint-limit filter (``controllers.osc.limit_filter``) projects its torque
onto them. Where they cannot be met (a joint beyond its margin, or moving too fast to stop), both
fall back to ``brake_torque``.
"""

from __future__ import annotations

import numpy as np
import quadprog

from controllers.robot import Kinematics


def speed_bounds(q: np.ndarray, margin: float, a_b: float, q_min: np.ndarray, q_max: np.ndarray,
                 qd_max: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, v_lo, v_hi): the position bounds q_min + m, q_max - m and the speed bounds of the
    module docstring."""
    lo, hi = q_min + margin, q_max - margin
    v_hi = np.minimum(qd_max, np.sqrt(2.0 * a_b * np.maximum(hi - q, 0.0)))
    v_lo = np.minimum(qd_max, np.sqrt(2.0 * a_b * np.maximum(q - lo, 0.0)))
    return lo, hi, v_lo, v_hi


def joint_constraints(kin: Kinematics, q: np.ndarray, qd: np.ndarray, T: float, margin: float, a_b: float,
                      q_min: np.ndarray, q_max: np.ndarray, qd_max: np.ndarray,
                      tau_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The torque, velocity and position constraints of the module docstring as C^T qdd >= b:
    C (n, 6n), b (6n,), in that order (lower then upper bound of each)."""
    lo, hi, v_lo, v_hi = speed_bounds(q, margin, a_b, q_min, q_max, qd_max)
    eye = np.eye(len(q))
    C = np.hstack([kin.M, -kin.M, T * eye, -T * eye, 0.5 * T * T * eye, -0.5 * T * T * eye])
    b = np.concatenate([
        -tau_max - kin.h, -tau_max + kin.h,                     # torque
        -v_lo - qd, -v_hi + qd,                                  # velocity and braking room
        lo - q - T * qd, -(hi - q - T * qd),                     # position at the end of the period
    ])
    return C, b


def within_joint_limits(qdd: np.ndarray, q: np.ndarray, qd: np.ndarray, T: float, margin: float, a_b: float,
                        q_min: np.ndarray, q_max: np.ndarray, qd_max: np.ndarray) -> bool:
    """Whether accelerations ``qdd`` meet the velocity and position constraints (the torque rows are
    left to the caller: a clipped torque meets them). The braking room is checked squared,
    v^2 <= 2 a_b (room) for a joint moving toward the limit, and the loop runs over Python floats:
    for 6 or 7 joints a quarter of the time of the same test over arrays."""
    two_ab, half_t2 = 2.0 * a_b, 0.5 * T * T
    for qi, vi, ai, lo, hi, vm in zip(q.tolist(), qd.tolist(), qdd.tolist(), q_min.tolist(), q_max.tolist(),
                                      qd_max.tolist()):
        lo, hi = lo + margin, hi - margin
        v = vi + T * ai
        x = qi + T * vi + half_t2 * ai
        if not (lo <= x <= hi and -vm <= v <= vm):
            return False
        if (v > 0.0 and v * v > two_ab * (hi - qi)) or (v < 0.0 and v * v > two_ab * (qi - lo)):
            return False
    return True


def safe_velocity(q: np.ndarray, config, q_min: np.ndarray, q_max: np.ndarray, qd_max: np.ndarray) -> np.ndarray:
    """v_safe of the brake: 0 within the joint limits (less the config's ``position_margin``), back
    inside beyond them, at up to qd_max::

        v_safe = clip(clip(0, (q_min + m - q) / T, (q_max - m - q) / T), -qd_max, qd_max)
    """
    T, m = config.control_period, config.position_margin
    return np.clip(np.clip(0.0, (q_min + m - q) / T, (q_max - m - q) / T), -qd_max, qd_max)


def brake_torque(kin: Kinematics, q: np.ndarray, qd: np.ndarray, config, tau_max: np.ndarray,
                 q_min: np.ndarray, q_max: np.ndarray, qd_max: np.ndarray) -> np.ndarray | None:
    """tau = M qdd + h for qdd = argmin 1/2 ||qd + T qdd - v_safe||^2 s.t. torque limits
    (``safe_velocity``): the arm slowed as hard as the torque limits allow, a joint beyond a limit sent
    back. None if quadprog fails (tau = 0 is feasible, so only numerical trouble does that).
    ``config``: a QP or OSC config (its ``control_period`` and ``position_margin``)."""
    T = config.control_period
    C = np.hstack([kin.M, -kin.M])
    b = np.concatenate([-tau_max - kin.h, -tau_max + kin.h])
    v_safe = safe_velocity(q, config, q_min, q_max, qd_max)
    try:
        qdd = quadprog.solve_qp(T * T * np.eye(len(q)), T * (v_safe - qd), C, b, 0)[0]
    except ValueError:
        return None
    tau = kin.M @ qdd + kin.h
    return np.clip(tau, -tau_max, tau_max) if np.isfinite(tau).all() else None
