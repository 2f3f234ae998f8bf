"""Goal-independent controller terms for many states at once.

Pinocchio evaluates one state per call; this loops over states in C-speed-sized steps (about
5 us each) and stacks the results, so that the controller laws (``controllers.osc.osc_terms``,
written for leading batch dimensions) run once, vectorized, over the whole batch.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin

from controllers.robot import Kinematics, PandaModel


def batch_kinematics(model: PandaModel, q: np.ndarray, qd: np.ndarray, drift: bool = False) -> Kinematics:
    """``PandaModel.kinematics`` for q, qd of shape (N, 7): every field gains a leading N axis."""
    q = np.ascontiguousarray(q, dtype=float).reshape(-1, 7)
    qd = np.ascontiguousarray(qd, dtype=float).reshape(-1, 7)
    n = len(q)
    m, d, fid = model.model, model.data, model.tcp_id
    P, Rm = np.empty((n, 3)), np.empty((n, 3, 3))
    J, M, h = np.empty((n, 6, 7)), np.empty((n, 7, 7)), np.empty((n, 7))
    dJqd = np.empty((n, 6)) if drift else None
    frame = pin.LOCAL_WORLD_ALIGNED
    zero = np.zeros(7)
    for i in range(n):
        qi, vi = q[i], qd[i]
        M[i] = pin.crba(m, d, qi)
        h[i] = pin.nonLinearEffects(m, d, qi, vi)
        if drift:
            pin.forwardKinematics(m, d, qi, vi, zero)
            dJqd[i] = pin.getFrameClassicalAcceleration(m, d, fid, frame).vector
        J[i] = pin.computeFrameJacobian(m, d, qi, fid, frame)
        oMf = d.oMf[fid]
        P[i] = oMf.translation
        Rm[i] = oMf.rotation
    return Kinematics(p=P, R=Rm, J=J, M=M, Minv=None, h=h, dJqd=dJqd)


def batch_tcp_pose(model: PandaModel, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TCP position (N, 3) and rotation (N, 3, 3) for q of shape (N, 7)."""
    q = np.ascontiguousarray(q, dtype=float).reshape(-1, 7)
    m, d, fid = model.model, model.data, model.tcp_id
    P, Rm = np.empty((len(q), 3)), np.empty((len(q), 3, 3))
    for i in range(len(q)):
        pin.framesForwardKinematics(m, d, q[i])
        oMf = d.oMf[fid]
        P[i] = oMf.translation
        Rm[i] = oMf.rotation
    return P, Rm
