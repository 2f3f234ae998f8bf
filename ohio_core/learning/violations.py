"""Constraint violations of online exploration: counts of time steps, the unit being the control
period for the arm and the simulator step for routing; a step with several violated constraints
counts once in ``any`` and once under each kind.

- arm, per control period of exploration, with the URDF limits of ``controllers.robot.ArmModel``
  and the state at the start of the period:
  ``joint_position``: some q_i < q_min_i - 1e-9 or q_i > q_max_i + 1e-9;
  ``joint_velocity``: some |qd_i| > qd_max_i (1 + 1e-9);
  ``torque``: some commanded |tau_i| > tau_max_i (1 + 1e-9), the command being what reaches the
  actuator before it clips: the flat policy's raw action times tau_max, or the controller's output
  for the goal policy. Reported besides, not counted in ``any``: ``torque_at_limit``, periods with
  some |tau_i| >= tau_max_i (1 - 1e-9) (a command at the limit: a saturated controller output, or
  a flat action of +-1; d3rlpy clamps IQL's exploration samples to [-1, 1], so the flat policy's
  normalized torques reach the limits but cannot pass them).
- routing, per simulator step of exploration, on the flows x before the low level's feasibility
  step (raw decoded flat action before ``project_flows``; the LP's flows for OHIO), diagonal ignored:
  ``flow_over_idle``: some region sends sum_{j != i} x_ij > idle_i + 1e-6 vehicles;
  ``negative_flow``: some x_ij < -1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ARM_KINDS = ("joint_position", "joint_velocity", "torque", "torque_at_limit")
ROUTING_KINDS = ("flow_over_idle", "negative_flow")


@dataclass(frozen=True)
class ArmLimits:
    """Joint position, velocity and torque limits of the arm."""

    q_min: np.ndarray
    q_max: np.ndarray
    qd_max: np.ndarray
    tau_max: np.ndarray

    @classmethod
    def from_model(cls, model) -> "ArmLimits":
        """The URDF limits of a ``controllers.robot.ArmModel``."""
        return cls(model.q_min.copy(), model.q_max.copy(), model.qd_max.copy(), model.tau_max.copy())


def arm_violations(q: np.ndarray, qd: np.ndarray, tau_cmd: np.ndarray, limits: ArmLimits) -> dict[str, int]:
    """Control periods (rows of (N, 7) arrays) violating each arm constraint (module docstring)."""
    q, qd, tau = (np.atleast_2d(np.asarray(x, float)) for x in (q, qd, tau_cmd))
    kinds = {"joint_position": ((q < limits.q_min - 1e-9) | (q > limits.q_max + 1e-9)).any(-1),
             "joint_velocity": (np.abs(qd) > limits.qd_max * (1 + 1e-9)).any(-1),
             "torque": (np.abs(tau) > limits.tau_max * (1 + 1e-9)).any(-1)}
    at_limit = (np.abs(tau) >= limits.tau_max * (1 - 1e-9)).any(-1)
    return {**{k: int(v.sum()) for k, v in kinds.items()}, "any": int(np.any(list(kinds.values()), 0).sum()),
            "torque_at_limit": int(at_limit.sum())}


def arm_worst(q: np.ndarray, qd: np.ndarray, tau_cmd: np.ndarray, limits: ArmLimits) -> dict[str, float]:
    """How far the worst row goes: joint position beyond its limit (rad, 0 inside), max |qd_i| / qd_max_i,
    max |tau_i| / tau_max_i."""
    q, qd, tau = (np.atleast_2d(np.asarray(x, float)) for x in (q, qd, tau_cmd))
    beyond = np.maximum(np.maximum(limits.q_min - q, q - limits.q_max), 0.0)
    return {"joint_position_rad": float(beyond.max(initial=0.0)),
            "joint_velocity_ratio": float((np.abs(qd) / limits.qd_max).max(initial=0.0)),
            "torque_ratio": float((np.abs(tau) / limits.tau_max).max(initial=0.0))}


def routing_worst(flows: np.ndarray, idle: np.ndarray) -> dict[str, float]:
    """Vehicles sent beyond the idle ones by the worst region, and the most negative flow (as a positive number)."""
    x = np.asarray(flows, float)
    x = x.reshape((-1,) + x.shape[-2:])
    a = np.asarray(idle, float).reshape(x.shape[:2])
    off = ~np.eye(x.shape[-1], dtype=bool)
    return {"over_idle_vehicles": float(np.maximum(np.where(off, x, 0.0).sum(-1) - a, 0.0).max(initial=0.0)),
            "negative_flow_vehicles": float(np.maximum(-np.where(off, x, 0.0), 0.0).max(initial=0.0))}


def routing_violations(flows: np.ndarray, idle: np.ndarray) -> dict[str, int]:
    """Steps (leading axis of flows (N, n, n), idle (N, n)) whose flows break each routing
    constraint (module docstring); the diagonal (vehicles staying) is ignored."""
    x = np.asarray(flows, float)
    x = x.reshape((-1,) + x.shape[-2:])
    a = np.asarray(idle, float).reshape(x.shape[:2])
    off = ~np.eye(x.shape[-1], dtype=bool)
    kinds = {"flow_over_idle": (np.where(off, x, 0.0).sum(-1) > a + 1e-6).any(-1),
             "negative_flow": ((x < -1e-9) & off).any((-1, -2))}
    return {**{k: int(v.sum()) for k, v in kinds.items()}, "any": int(np.any(list(kinds.values()), 0).sum())}
