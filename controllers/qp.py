"""Task-space QP controller on joint accelerations, solved with quadprog.

Same task PD as the OSC, xdd* = K_p e(g) - K_d v. With T the control period::

    min_qdd  1/2 || J qdd + dJ qd - xdd* ||^2_W + w_p/2 || qdd - qdd_post ||^2 + w_v/2 || qd + T qdd ||^2
    s.t.     -tau_max <= M qdd + h <= tau_max                                  (torque)
             |qd + T qdd| <= min(qd_max, sqrt(2 a_b (room)))                  (velocity, and braking room)
             q_min + m <= q + T qd + T^2/2 qdd <= q_max - m                   (position over the period)

then tau = M qdd + h. qdd_post = k_n (q_rest - q) - 2 sqrt(k_n) qd is the posture acceleration; the
w_v term damps joint motion the task leaves free (it vanishes at rest, so it does not bias the
steady state, and it stops the arm when a goal is out of reach instead of chattering). A
solve that fails (infeasible state, numerical trouble) never raises into the control loop; it
returns, with its status, the braking torque of a second QP that is always feasible,

    min_qdd  1/2 || qd + T qdd - v_safe ||^2   s.t.  -tau_max <= M qdd + h <= tau_max          ("brake")
    v_safe = clip(clip(0, (q_min + m - q) / T, (q_max - m - q) / T), -qd_max, qd_max)

(v_safe is 0 for a joint within its limits, so the arm is slowed as hard as the torque limits allow,
and a joint beyond a limit is sent back at up to qd_max: the joint position and velocity limits as
far as the torque limits allow), or, should that fail too, the hold torque clip(h - d qd) ("hold").

With ``table_height`` set, the TCP height z (row z of J) is held above the table plane like a joint
limit, z_min = table_height + table_margin::

    z + T vz + T^2/2 az >= z_min,   vz + T az >= -sqrt(2 a_b (z - z_min)),   az = J_z qdd + (dJ qd)_z
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import quadprog

from controllers.base import ControlOutput, Controller, InverseCapability, clip_torque, register_controller
from controllers.config import QPConfig
from controllers.goals import PoseGoal
from controllers.limits import brake_torque, joint_constraints, safe_velocity  # noqa: F401 (re-exported)
from controllers.osc import task_error
from controllers.robot import Kinematics, ArmModel

STATUS_OK, STATUS_BRAKE, STATUS_HOLD = "ok", "brake", "hold"


@dataclass(frozen=True)
class QPProblem:
    """quadprog's form: min 1/2 x^T G x - a^T x  s.t.  C^T x >= b."""

    G: np.ndarray   # (n, n)
    a: np.ndarray   # (n,)
    C: np.ndarray   # (n, m)
    b: np.ndarray   # (m,)


@dataclass(frozen=True)
class QPOutput(ControlOutput):
    status: str = STATUS_OK
    qdd: np.ndarray | None = None


def task_acceleration(goal: PoseGoal, kin: Kinematics, qd: np.ndarray, config: QPConfig) -> np.ndarray:
    """xdd* = K_p e(g) - K_d J qd."""
    return config.array("kp") * task_error(goal, kin.p, kin.R) - config.kd * (kin.J @ qd)


def qp_problem(kin: Kinematics, q: np.ndarray, qd: np.ndarray, xdd: np.ndarray, config: QPConfig,
               q_min: np.ndarray, q_max: np.ndarray, qd_max: np.ndarray, tau_max: np.ndarray) -> QPProblem:
    T, W, w_p = config.control_period, config.array("task_weight"), config.posture_weight
    kn = config.nullspace_kp
    qdd_post = kn * (config.array("rest_posture") - q) - 2.0 * np.sqrt(kn) * qd
    JtW = kin.J.T * W
    w_v = config.velocity_weight
    G = JtW @ kin.J + (w_p + w_v * T * T) * np.eye(len(q))
    a = JtW @ (xdd - kin.dJqd) + w_p * qdd_post - (w_v * T) * qd

    C, b = joint_constraints(kin, q, qd, T, config.position_margin, config.braking_acceleration,
                             q_min, q_max, qd_max, tau_max)
    if config.table_height is not None:
        C_z, b_z = table_constraint(kin, qd, config)
        C, b = np.hstack([C, C_z]), np.concatenate([b, b_z])
    return QPProblem(G=G, a=a, C=C, b=b)


def table_constraint(kin: Kinematics, qd: np.ndarray, config: QPConfig) -> tuple[np.ndarray, np.ndarray]:
    """The TCP height above the table plane (module docstring) as C^T qdd >= b, C (n, 2)."""
    T, a_b = config.control_period, config.braking_acceleration
    Jz, z = kin.J[2], kin.p[2]
    z_min = config.table_height + config.table_margin
    vz, drift = Jz @ qd, kin.dJqd[2]
    C = np.stack([0.5 * T * T * Jz, T * Jz], axis=1)
    b = np.array([z_min - z - T * vz - 0.5 * T * T * drift,
                  -np.sqrt(2.0 * a_b * max(z - z_min, 0.0)) - vz - T * drift])
    return C, b


def hold_torque(kin: Kinematics, qd: np.ndarray, config: QPConfig, tau_max: np.ndarray) -> np.ndarray:
    return np.clip(kin.h - config.hold_damping * qd, -tau_max, tau_max)


def qp_step(model: ArmModel, q: np.ndarray, qd: np.ndarray, goal: PoseGoal, config: QPConfig,
            tau_max: np.ndarray) -> QPOutput:
    kin = model.kinematics(q, qd, drift=True)
    prob = qp_problem(kin, q, qd, task_acceleration(goal, kin, qd, config), config,
                      model.q_min, model.q_max, model.qd_max, tau_max)
    try:
        qdd = quadprog.solve_qp(prob.G, prob.a, prob.C, prob.b, 0)[0]
    except ValueError:
        qdd = None
    if qdd is None or not np.isfinite(qdd).all():
        tau, status = brake_torque(kin, q, qd, config, tau_max, model.q_min, model.q_max, model.qd_max), STATUS_BRAKE
        if tau is None:
            tau, status = hold_torque(kin, qd, config, tau_max), STATUS_HOLD
        return QPOutput(tau=tau, tau_unclipped=tau, saturated=np.zeros(len(q), bool), status=status)
    out = clip_torque(kin.M @ qdd + kin.h, tau_max)
    return QPOutput(tau=out.tau, tau_unclipped=out.tau_unclipped, saturated=out.saturated, qdd=qdd)


@register_controller
class QP(Controller):
    """QP controller bound to a robot model: ``act(q, qd, goal) -> tau`` (``Controller``); counts fallbacks
    (and, as every controller, clamped goals).
    ``self.model`` is ``controlled_model(model, config.gravity_compensation)``: with ``driver``, h and
    so tau = M qdd + h, the torque constraints, the brake and the hold torque leave g(q) out.
    It has no batched law: an inverse solves its KKT conditions, or its QP state by state."""

    name = "qp"
    config_type = QPConfig
    #: the KKT conditions of the QP
    capabilities = frozenset({InverseCapability.KKT})

    def __init__(self, model: ArmModel, config: QPConfig = QPConfig()):
        super().__init__(model, config)
        self.solves = 0
        self.fallbacks = 0

    def compute(self, q: np.ndarray, qd: np.ndarray, goal: PoseGoal) -> QPOutput:
        q, qd = self.model.check_state(q, qd)
        goal = self.workspace_goal(goal)
        out = qp_step(self.model, q, qd, goal, self.config, self.tau_max)
        self.solves += 1
        self.fallbacks += out.status != STATUS_OK
        return out
