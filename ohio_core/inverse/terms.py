"""Goal-independent controller terms for many states at once.

Pinocchio evaluates one state per call; this loops over states in C-speed-sized steps (about
5 us each) and stacks the results, so that the controller laws (``controllers.osc.osc_terms``,
written for leading batch dimensions) run once, vectorized, over the whole batch.
"""

from __future__ import annotations

import weakref

import numpy as np
import pinocchio as pin

from controllers.robot import Kinematics, ArmModel


def batch_kinematics(model: ArmModel, q: np.ndarray, qd: np.ndarray, drift: bool = False) -> Kinematics:
    """``ArmModel.kinematics`` for q, qd of shape (N, n): every field gains a leading N axis.

    Per state, CRBA in the WORLD convention also leaves the joint Jacobians and placements in ``data``,
    from which the TCP frame's placement and Jacobian are read without another kinematics pass;
    h = RNEA(q, qd, 0) runs over the whole batch in Pinocchio's C++ (``rneaInParallel``)."""
    q = np.ascontiguousarray(q, dtype=float).reshape(-1, q.shape[-1])
    qd = np.ascontiguousarray(qd, dtype=float).reshape(-1, q.shape[-1])
    n, nj = q.shape
    m, d, fid = model.model, model.data, model.tcp_id
    H, J, M = np.empty((n, 4, 4)), np.empty((n, 6, nj)), np.empty((n, nj, nj))
    dJqd = np.empty((n, 6)) if drift else None
    frame, world = pin.LOCAL_WORLD_ALIGNED, pin.Convention.WORLD
    crba, place, jacobian = pin.crba, pin.updateFramePlacement, pin.getFrameJacobian
    zero = np.zeros(nj)
    for i in range(n):
        qi = q[i]
        M[i] = crba(m, d, qi, world)
        H[i] = place(m, d, fid).homogeneous
        J[i] = jacobian(m, d, fid, frame)
        if drift:
            pin.forwardKinematics(m, d, qi, qd[i], zero)
            dJqd[i] = pin.getFrameClassicalAcceleration(m, d, fid, frame).vector
    h = pin.rneaInParallel(1, _pool(model), q.T.copy(), qd.T.copy(), np.zeros((nj, n))).T if n else np.empty((0, nj))
    return Kinematics(p=H[:, :3, 3].copy(), R=H[:, :3, :3].copy(), J=J, M=M, Minv=None, h=np.ascontiguousarray(h),
                      dJqd=dJqd)


def batch_gravity(model: ArmModel, q: np.ndarray) -> np.ndarray:
    """g(q) = RNEA(q, 0, 0) for q of shape (N, n), over the whole batch in Pinocchio's C++."""
    q = np.ascontiguousarray(q, dtype=float).reshape(-1, q.shape[-1])
    if not len(q):
        return np.empty((0, q.shape[-1]))
    zero = np.zeros((q.shape[-1], len(q)))
    return np.ascontiguousarray(pin.rneaInParallel(1, _pool(model), q.T.copy(), zero, zero).T)


_POOLS: "weakref.WeakKeyDictionary[ArmModel, pin.ModelPool]" = weakref.WeakKeyDictionary()


def _pool(model: ArmModel) -> pin.ModelPool:
    """One Pinocchio ``ModelPool`` (one thread) per robot model, built on first use."""
    pool = _POOLS.get(model)
    if pool is None:
        pool = _POOLS[model] = pin.ModelPool(model.model, 1)
    return pool


def batch_tcp_pose(model: ArmModel, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TCP position (N, 3) and rotation (N, 3, 3) for q of shape (N, n)."""
    q = np.ascontiguousarray(q, dtype=float).reshape(-1, q.shape[-1])
    m, d, fid = model.model, model.data, model.tcp_id
    P, Rm = np.empty((len(q), 3)), np.empty((len(q), 3, 3))
    for i in range(len(q)):
        pin.framesForwardKinematics(m, d, q[i])
        oMf = d.oMf[fid]
        P[i] = oMf.translation
        Rm[i] = oMf.rotation
    return P, Rm
