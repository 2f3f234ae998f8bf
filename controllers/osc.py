"""Operational-space control (Khatib 1987), in the form of the reference work's controller.

With e = (p_g - p, 1/2 sum_i r_i x r_g,i) and task velocity v = J qd::

    Lambda = (J M^-1 J^T)^+                       task-space inertia (truncated pseudo-inverse,
                                                  singularity-robust below eps: ``task_inertia``)
    F      = Lambda (K_p e - K_d v)               K_d = 2 zeta sqrt(K_p), per axis
    N      = I - J^T Lambda J M^-1                dynamically consistent nullspace projector (N = Nbar^T)
    tau    = clip(J^T F + h + N M (k_n (q_rest - q) - 2 sqrt(k_n) qd),  -tau_max, tau_max)

h = C(q, qd) qd + g(q), or C qd where the robot driver adds g(q) to every command
(``gravity_compensation: driver``; the controller's model is then ``controlled_model``'s
gravity-free copy, so B, c and every inverse built on them leave g(q) out alike).

Joint-limit filter (``OSCConfig.joint_limits``, default on; the reference work's configs set it off).
With qdd_osc = M^-1 (tau - h) for the clipped torque tau, and the joint constraints C^T qdd >= b of
``controllers.limits`` (torque; speed within qd_max and slow enough to brake at ``braking_acceleration``
before ``position_margin`` inside a position limit; position at the end of the period inside the
margin), the QP controller's set::

    tau_out = tau                           if C^T qdd_osc >= b (velocity and position rows)
    tau_out = M qdd* + h,  qdd* = argmin (qdd - qdd_osc)^T M (qdd - qdd_osc)  s.t.  C^T qdd >= b
    tau_out = brake_torque(...)             where no qdd meets them

``limit_filter`` (status ok / filtered / brake in ``OSCOutput``; ``OSC.limit_filtered`` and
``OSC.limit_brakes`` count the steps). Where it returns tau the output is the law's bit for bit, so
the closed-form inverse holds there; a filtered step is, like a saturated one, outside the affine law
(the inverses' residual shows it). It never acts on the states the scripted experts visit (reach, lift
and door under the reference gains). The filter holds the joint limits, not the law's stability: with a
goal out of reach the plain law chatters at a straight-arm singularity that lies inside the limits;
the singularity-robust task inertia (``OSCConfig.singularity_damping``, ``task_inertia``) brings it to
rest there.

``osc_terms`` computes everything that does not depend on the goal; ``osc_law`` adds the goal.
Both accept leading batch dimensions, so the inverse problems call this very code. ``osc_step``,
what ``OSC.compute`` runs for one state, is the same law in one pass over 1-D arrays (about 12%
faster); a test holds it equal to the batched form, singular and saturated states included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import quadprog
from scipy.linalg.lapack import dlange, dpotrf, dpotrs

from controllers.base import ControlOutput, Controller, InverseCapability, clip_torque, register_controller
from controllers.config import OSCConfig
from controllers.goals import PoseGoal, orientation_error
from controllers.limits import brake_torque, joint_constraints, within_joint_limits
from controllers.robot import Kinematics, ArmModel

#: ``OSCOutput.status``: the law's torque as is; projected onto the joint limits; the brake (the
#: limits could not be met); the law's torque because the filter's solvers failed (numerical trouble)
STATUS_OK, STATUS_FILTERED, STATUS_BRAKE, STATUS_UNFILTERED = "ok", "filtered", "brake", "unfiltered"


@dataclass(frozen=True)
class OSCOutput(ControlOutput):
    status: str = STATUS_OK


@dataclass(frozen=True)
class OSCTerms:
    """Goal-independent part of the OSC law at a state; the law is affine in the task error::

        tau_unclipped = B e(g) + c,   B = J^T Lambda K_p,   c = h + tau_null - J^T Lambda K_d v
    """

    p: np.ndarray      # (..., 3) TCP position
    R: np.ndarray      # (..., 3, 3) TCP orientation
    B: np.ndarray      # (..., n, 6)
    c: np.ndarray      # (..., n)
    cond: np.ndarray   # (...,) condition number of J M^-1 J^T; NaN where the sample is not valid

    @property
    def valid(self) -> np.ndarray:
        """Per sample, whether its terms were computed (``osc_terms`` marks the others NaN)."""
        return ~np.isnan(self.cond)


_EYE6 = np.eye(6)


def _one_norm(A: np.ndarray) -> np.ndarray:
    return np.abs(A).sum(-2).max(-1)


def _pinv_eig(A: np.ndarray, rcond: float) -> tuple[np.ndarray, np.ndarray]:
    w, V = np.linalg.eigh(A)
    keep = w > rcond * w[..., -1:]
    w_inv = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)
    with np.errstate(over="ignore"):       # exactly singular: cond = inf
        cond = w[..., -1] / np.maximum(w[..., 0], np.finfo(float).tiny)
    return (V * w_inv[..., None, :]) @ np.swapaxes(V, -1, -2), cond


def near_singular(cond: np.ndarray, rcond: float, n: int = 6) -> np.ndarray:
    """Where ``task_inertia`` leaves the plain inverse for the truncated pseudo-inverse: n cond >= 1/rcond.

    ``cond``: an array or a number (a NumPy boolean either way)."""
    return ~(n * np.asarray(cond) < 1.0 / rcond)


def _robust_eig(A: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Lambda = V diag(g(w)) V^T for A = V diag(w) V^T, g(w) = 1/w for w >= eps, w / eps^2 below:
    the damped least-squares inverse w / (w^2 + l^2) with l^2 = eps^2 - w^2, continuous at eps,
    bounded by 1/eps, and zero in a direction the arm has lost (w = 0)."""
    w, V = np.linalg.eigh(A)
    w = np.maximum(w, 0.0)
    g = np.where(w >= eps, 1.0 / np.where(w >= eps, w, 1.0), w / (eps * eps))
    with np.errstate(over="ignore", divide="ignore"):
        cond = w[..., -1] / np.maximum(w[..., 0], np.finfo(float).tiny)
    return (V * g[..., None, :]) @ np.swapaxes(V, -1, -2), cond


def task_inertia(A: np.ndarray, rcond: float, eps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Lambda = A^+ for A = J M^-1 J^T (6x6, symmetric positive semi-definite), and cond(A).

    Where n cond_1(A) < 1/rcond (which bounds cond_2(A) < 1/rcond) the plain inverse; elsewhere,
    near kinematic singularities, the pseudo-inverse that drops eigenvalues below rcond * max.
    With ``eps`` > 0 (``OSCConfig.singularity_damping``), wherever an eigenvalue of A is below eps,
    the singularity-robust inverse ``_robust_eig`` instead (it is the plain inverse where every
    eigenvalue is at least eps; 1 / ||A^-1||_1 <= min eigenvalue tells which states need it).
    The same rules hold for one state (Cholesky through LAPACK) and for a batch.
    """
    n = A.shape[-1]
    if A.ndim == 2:
        U, info = dpotrf(A)
        if info == 0:
            Lam, info = dpotrs(U, _EYE6 if n == 6 else np.eye(n))
            if info == 0:
                lam_norm = dlange("1", Lam)
                cond = np.float64(dlange("1", A) * lam_norm)      # ||A||_1 ||A^-1||_1
                if eps > 0.0 and lam_norm * eps > 1.0:
                    return _robust_eig(A, eps)
                if not near_singular(cond, rcond, n):
                    return Lam, cond
        return _robust_eig(A, eps) if eps > 0.0 else _pinv_eig(A, rcond)
    try:
        Lam = np.linalg.inv(A)
    except np.linalg.LinAlgError:      # an exactly singular sample (rare): each sample by the one-state rule
        per = [task_inertia(a, rcond, eps) for a in A.reshape((-1,) + A.shape[-2:])]
        return (np.array([L for L, _ in per]).reshape(A.shape),
                np.array([c for _, c in per]).reshape(A.shape[:-2]))
    lam_norm = _one_norm(Lam)
    cond = _one_norm(A) * lam_norm
    bad = near_singular(cond, rcond, n)
    if eps > 0.0:
        robust = bad | (lam_norm * eps > 1.0)
        if np.any(robust):
            Lam[robust], cond[robust] = _robust_eig(A[robust], eps)
    elif np.any(bad):
        Lam[bad], cond[bad] = _pinv_eig(A[bad], rcond)
    return Lam, cond


def _finite_samples(*arrays: np.ndarray, batch: tuple) -> np.ndarray:
    """Per sample (leading ``batch`` dimensions), whether every array is finite there."""
    ok = np.ones(batch, bool)
    for a in arrays:
        ok &= np.isfinite(a).reshape(batch + (-1,)).all(-1)
    return ok


def osc_terms(kin: Kinematics, q: np.ndarray, qd: np.ndarray, config: OSCConfig) -> OSCTerms:
    """The goal-independent terms at a state or a batch of states (leading dimensions).

    A sample whose state or kinematics is not finite, or whose terms overflow (finite inputs far
    beyond ``controllers.robot``'s bounds), gets NaN in B, c and cond (``OSCTerms.valid`` False);
    every other sample is computed as in a batch without it."""
    batch = np.shape(q)[:-1]
    ok = _finite_samples(q, qd, kin.M, kin.h, kin.J, *(() if kin.Minv is None else (kin.Minv,)), batch=batch)
    if ok.all():
        terms = _osc_terms(kin, q, qd, config)
    else:
        n = np.shape(q)[-1]
        nan = np.full(batch + (n, 6), np.nan), np.full(batch + (n,), np.nan), np.full(batch, np.nan)
        terms = OSCTerms(p=kin.p, R=kin.R, B=nan[0], c=nan[1], cond=nan[2])
        if ok.any():
            part = _osc_terms(_samples(kin, ok), q[ok], qd[ok], config)
            terms.B[ok], terms.c[ok], terms.cond[ok] = part.B, part.c, part.cond
    overflow = ~_finite_samples(terms.B, terms.c, batch=batch)
    if overflow.any():
        terms = OSCTerms(p=terms.p, R=terms.R, B=np.where(overflow[..., None, None], np.nan, terms.B),
                         c=np.where(overflow[..., None], np.nan, terms.c), cond=np.where(overflow, np.nan, terms.cond))
    return terms


def _samples(kin: Kinematics, ok: np.ndarray) -> Kinematics:
    return Kinematics(**{f: None if getattr(kin, f) is None else getattr(kin, f)[ok]
                         for f in ("p", "R", "J", "M", "Minv", "h", "dJqd")})


def _osc_terms(kin: Kinematics, q: np.ndarray, qd: np.ndarray, config: OSCConfig) -> OSCTerms:
    J, Jt = kin.J, np.swapaxes(kin.J, -1, -2)
    # J M^-1, from M^-1 when the caller has it (Pinocchio, one state) or by a solve (batches)
    JMinv = J @ kin.Minv if kin.Minv is not None else np.swapaxes(np.linalg.solve(kin.M, Jt), -1, -2)
    Lam, cond = task_inertia(JMinv @ Jt, config.lambda_rcond, config.singularity_damping)
    JtLam = Jt @ Lam
    kn = config.nullspace_kp
    qdd_post = kn * (config.array("rest_posture") - q) - (2.0 * math.sqrt(kn)) * qd
    tau_post = kin.M @ qdd_post[..., None]
    # J^T Lambda (K_p e - K_d v) + h + N tau_post, with N = I - J^T Lambda J M^-1, regrouped as
    # J^T Lambda K_p e + h + tau_post - J^T Lambda (K_d v + J M^-1 tau_post)
    c = kin.h + (tau_post - JtLam @ (config.kd[:, None] * (J @ qd[..., None]) + JMinv @ tau_post))[..., 0]
    return OSCTerms(p=kin.p, R=kin.R, B=JtLam * config.array("kp"), c=c, cond=cond)


def task_error(goal: PoseGoal, p: np.ndarray, R: np.ndarray) -> np.ndarray:
    return np.concatenate([goal.p - p, orientation_error(goal.R, R)], -1)


def osc_law(terms: OSCTerms, goal: PoseGoal) -> np.ndarray:
    """Unclipped torque B e(g) + c."""
    return (terms.B @ task_error(goal, terms.p, terms.R)[..., None])[..., 0] + terms.c


def osc_step(kin: Kinematics, q: np.ndarray, qd: np.ndarray, goal: PoseGoal, config: OSCConfig,
             tau_max: np.ndarray) -> ControlOutput:
    """One state's torque: ``clip_torque(osc_law(osc_terms(kin, q, qd, config), goal), tau_max)`` in one
    pass over 1-D arrays, without forming B and c (a test holds the two equal)::

        tau = clip(h + tau_post + J^T Lambda (K_p e - K_d J qd - J M^-1 tau_post))

    ``kin`` must hold M^-1 (``ArmModel.kinematics`` does)."""
    J, Jt = kin.J, kin.J.T
    JMinv = J @ kin.Minv
    Lam, _ = task_inertia(JMinv @ Jt, config.lambda_rcond, config.singularity_damping)
    kn = config.nullspace_kp
    tau_post = kin.M @ (kn * (config.array("rest_posture") - q) - (2.0 * math.sqrt(kn)) * qd)
    e = np.concatenate([goal.p - kin.p, orientation_error(goal.R, kin.R)])
    force = config.array("kp") * e - config.kd * (J @ qd) - JMinv @ tau_post
    return clip_torque(kin.h + tau_post + Jt @ (Lam @ force), tau_max)


def limit_filter(kin: Kinematics, q: np.ndarray, qd: np.ndarray, out: ControlOutput, config: OSCConfig,
                 tau_max: np.ndarray, q_min: np.ndarray, q_max: np.ndarray, qd_max: np.ndarray) -> OSCOutput:
    """The joint-limit filter (module docstring) on the law's output ``out`` at one state.

    With qdd_osc = M^-1 (clip(tau_osc) - h): if qdd_osc meets the joint constraints
    (``controllers.limits``) ``out`` is returned as is (status ``ok``); otherwise the torque is
    M qdd + h for the closest accelerations in the metric of M that meet them::

        min_qdd (qdd - qdd_osc)^T M (qdd - qdd_osc)   s.t.   C^T qdd >= b       (status ``filtered``)

    (the torque closest to the law's in the metric of M^-1), or where they cannot be met the QP
    controller's brake (``controllers.limits.brake_torque``, status ``brake``). ``kin`` must hold M^-1."""
    T, m, a_b = config.control_period, config.position_margin, config.braking_acceleration
    qdd_osc = kin.Minv @ (out.tau - kin.h)
    if within_joint_limits(qdd_osc, q, qd, T, m, a_b, q_min, q_max, qd_max):
        return OSCOutput(tau=out.tau, tau_unclipped=out.tau_unclipped, saturated=out.saturated)
    C, b = joint_constraints(kin, q, qd, T, m, a_b, q_min, q_max, qd_max, tau_max)
    try:
        qdd = quadprog.solve_qp(np.array(kin.M), out.tau - kin.h, C, b, 0)[0]
    except ValueError:
        qdd = None
    if qdd is not None and np.isfinite(qdd).all():
        filtered = clip_torque(kin.M @ qdd + kin.h, tau_max)
        return OSCOutput(tau=filtered.tau, tau_unclipped=filtered.tau_unclipped, saturated=filtered.saturated,
                         status=STATUS_FILTERED)
    tau = brake_torque(kin, q, qd, config, tau_max, q_min, q_max, qd_max)
    if tau is None:
        return OSCOutput(tau=out.tau, tau_unclipped=out.tau_unclipped, saturated=out.saturated,
                         status=STATUS_UNFILTERED)
    return OSCOutput(tau=tau, tau_unclipped=tau, saturated=np.zeros(len(q), bool), status=STATUS_BRAKE)


@register_controller
class OSC(Controller):
    """Stateless OSC bound to a robot model: ``act(q, qd, goal) -> tau`` (``Controller``). Batches:
    ``terms``/``law`` (``osc_terms``/``osc_law``)."""

    name = "osc"
    config_type = OSCConfig
    #: closed form before clipping, exact gradients of its batched twin
    capabilities = frozenset({InverseCapability.CLOSED_FORM, InverseCapability.DIFFERENTIABLE})
    batched_law = True

    def __init__(self, model: ArmModel, config: OSCConfig = OSCConfig()):
        super().__init__(model, config)
        self.steps = 0
        self.limit_filtered = 0     # steps whose torque the joint-limit filter changed (brakes included)
        self.limit_brakes = 0       # of those, steps where the limits could not be met (the brake)

    def compute(self, q: np.ndarray, qd: np.ndarray, goal: PoseGoal) -> OSCOutput:
        """One state's torque for the goal clamped into the workspace (``Controller.workspace_goal``),
        through the joint-limit filter where the config asks for it; a state that is not finite or
        beyond the physical bounds (``ArmModel.check_state``) raises ``NonFiniteInputError``. Batches:
        osc_terms, osc_law (goals as given, no filter)."""
        q, qd = self.model.check_state(q, qd)
        goal = self.workspace_goal(goal)
        kin = self.model.kinematics(q, qd)
        out = osc_step(kin, q, qd, goal, self.config, self.tau_max)
        self.steps += 1
        if not self.config.joint_limits:
            return OSCOutput(tau=out.tau, tau_unclipped=out.tau_unclipped, saturated=out.saturated)
        model = self.model
        out = limit_filter(kin, q, qd, out, self.config, self.tau_max, model.q_min, model.q_max, model.qd_max)
        self.limit_filtered += out.status != STATUS_OK
        self.limit_brakes += out.status == STATUS_BRAKE
        return out

    def terms(self, kin: Kinematics, q: np.ndarray, qd: np.ndarray) -> OSCTerms:
        return osc_terms(kin, q, qd, self.config)

    def law(self, terms: OSCTerms, goal: PoseGoal) -> np.ndarray:
        return osc_law(terms, goal)
