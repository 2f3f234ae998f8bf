"""An arm as Pinocchio sees it: the n arm joints of a robot description (``controllers.description``),
every other joint locked (the gripper at its lock opening), a TCP frame and an optional payload.

The same URDF is compiled by MuJoCo for the simulator (``ohio_core.envs.arm.scene``); a test holds
the two equal for every shipped robot.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pinocchio as pin

from controllers.description import (MIN_JOINTS, RobotConfigError, RobotDescription, load_robot, panda,
                                     rpy_matrix)
from controllers.goals import ImplausibleInputError, require_finite

#: |qd_i| <= VELOCITY_BOUND * qd_max_i: no joint turns at 100 times its rated speed (the Panda's
#: 2.2-2.6 rad/s), so a faster reading is corrupt; near 1e154 rad/s the Coriolis terms overflow.
VELOCITY_BOUND = 100.0
#: rad: q_min_i - POSITION_BOUND <= q_i <= q_max_i + POSITION_BOUND. A joint half a turn past its
#: limit is past its end stop; near 1e307 rad the kinematics are NaN.
POSITION_BOUND = np.pi


@dataclass(frozen=True)
class Kinematics:
    """Goal-independent quantities of one state, everything a task-space law needs.

    ``J`` is the 6xn TCP Jacobian in the LOCAL_WORLD_ALIGNED frame, rows (v, w).
    """

    p: np.ndarray      # (3,) TCP position, world
    R: np.ndarray      # (3, 3) TCP orientation, world
    J: np.ndarray      # (6, n)
    M: np.ndarray      # (n, n) joint-space mass matrix
    Minv: np.ndarray | None   # (n, n); None where only M was computed (batches solve with M instead)
    h: np.ndarray      # (n,) Coriolis + centrifugal + gravity, C(q, qd) qd + g(q)
    dJqd: np.ndarray | None = None   # (6,) TCP drift acceleration dJ/dt qd (classical, world-aligned)


def _reduced_model(robot: RobotDescription) -> pin.Model:
    """The URDF's model with every joint but the arm's locked (gripper joints at ``gripper.lock``,
    the rest at zero), the payload appended to the last arm joint and a TCP frame on ``tcp_link``."""
    where = robot.urdf
    try:
        full = pin.buildModelFromUrdf(str(robot.urdf))
    except (RuntimeError, ValueError) as e:
        raise RobotConfigError(f"{where}: not a readable URDF ({str(e).splitlines()[0][:160]})") from None
    missing = [j for j in robot.joints + robot.gripper_joints if not full.existJointName(j)]
    if missing:
        raise RobotConfigError(f"{where}: joints {missing} not in the description")
    q_ref = pin.neutral(full)
    lock = []
    for jid in range(1, full.njoints):
        name = full.names[jid]
        if name in robot.joints:
            continue
        if full.joints[jid].nq != 1:
            raise RobotConfigError(f"{where}: joint {name!r} is not a 1-DoF joint and not an arm joint")
        q_ref[full.joints[jid].idx_q] = robot.gripper.lock if name in robot.gripper_joints else 0.0
        lock.append(jid)
    model = pin.buildReducedModel(full, lock, q_ref) if lock else full
    order = [model.getJointId(j) for j in robot.joints]
    if order != list(range(1, model.njoints)):
        raise RobotConfigError(f"{where}: the arm joints {list(robot.joints)} are not one serial chain in the "
                               f"URDF's order")
    last = model.njoints - 1
    if robot.payload is not None:
        load = robot.payload
        model.appendBodyToJoint(last, pin.Inertia(load.mass, np.asarray(load.com, float), load.inertia * np.eye(3)),
                                pin.SE3.Identity())
    if robot.tcp_link is not None:
        if not model.existFrame(robot.tcp_link):
            raise RobotConfigError(f"{where}: link {robot.tcp_link!r} (tcp.link) not in the description")
        parent = model.frames[model.getFrameId(robot.tcp_link)]
        offset = pin.SE3(rpy_matrix(np.asarray(robot.tcp_rpy)), np.asarray(robot.tcp_xyz, float))
        model.addFrame(pin.Frame(robot.tcp_name, parent.parentJoint, parent.placement * offset,
                                 pin.FrameType.OP_FRAME))
    elif not model.existFrame(robot.tcp_frame):
        raise RobotConfigError(f"{where}: frame {robot.tcp_frame!r} (tcp.frame) not in the description")
    return model


class ArmModel:
    """Pinocchio model of a robot's n arm joints with a TCP frame (module docstring).

    ``robot``: a name (``config/robots``), a robot file, a ``RobotDescription``, or None (the Panda).
    Limits come from the URDF, overridden by the robot file's ``limits``: ``q_min``, ``q_max``,
    ``qd_max``, ``tau_max``. ``home`` is the robot's home pose.
    """

    def __init__(self, robot: str | Path | RobotDescription | None = None):
        robot = panda() if robot is None else load_robot(robot)
        if robot.n < MIN_JOINTS:
            raise RobotConfigError(f"{robot.label()}: {robot.n} arm joints; a 6-D pose task needs at least "
                                   f"{MIN_JOINTS} (the OSC and the QP control position and orientation)")
        self.robot = robot
        self.urdf = robot.urdf
        self.nq = robot.n
        self.joint_names = robot.joints
        self.model = _reduced_model(robot)
        self.data = self.model.createData()
        self.tcp_id = self.model.getFrameId(robot.tcp_name)
        self.finger_lock = robot.gripper.lock if robot.gripper is not None else 0.0
        self.home = np.asarray(robot.home, dtype=float)
        self.home.flags.writeable = False
        urdf_limits = {"q_min": self.model.lowerPositionLimit, "q_max": self.model.upperPositionLimit,
                       "qd_max": self.model.velocityLimit, "tau_max": self.model.effortLimit}
        for key, value in urdf_limits.items():
            setattr(self, key, np.array(robot.limits.get(key, value), dtype=float))
        bad = [k for k in ("qd_max", "tau_max") if not (np.isfinite(getattr(self, k)).all()
                                                         and (getattr(self, k) > 0).all())]
        if bad or not (np.isfinite(self.q_min).all() and np.isfinite(self.q_max).all()
                       and (self.q_min < self.q_max).all()):
            raise RobotConfigError(f"{robot.urdf}: the arm joints need finite position limits (lower < upper) and "
                                   f"positive velocity and effort limits; set them under limits: in "
                                   f"{robot.label()}")
        if not ((self.home >= self.q_min) & (self.home <= self.q_max)).all():
            raise RobotConfigError(f"{robot.label()}: home {list(robot.home)} is outside the joint limits")
        n = self.nq
        # (q, qd) is within bounds where lo <= (q, qd) <= hi, elementwise (NaN is not); a state exactly
        # on a bound is within it
        self._state_lo = np.concatenate([self.q_min - POSITION_BOUND, -VELOCITY_BOUND * self.qd_max])
        self._state_hi = np.concatenate([self.q_max + POSITION_BOUND, VELOCITY_BOUND * self.qd_max])

    def states_in_bounds(self, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        """Per state (leading dimensions of q, qd), whether both are within ``POSITION_BOUND`` and
        ``VELOCITY_BOUND`` (NaN is not)."""
        x = np.concatenate(np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(qd, dtype=float)), -1)
        return ((x >= self._state_lo) & (x <= self._state_hi)).all(-1)

    def check_state(self, q: np.ndarray, qd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One state's q, qd (n,) as float arrays; ``NonFiniteInputError`` where one holds NaN or inf,
        ``ImplausibleInputError`` where one is beyond ``POSITION_BOUND`` / ``VELOCITY_BOUND``."""
        q, qd = np.asarray(q, dtype=float), np.asarray(qd, dtype=float)
        n = self.nq
        if q.shape == qd.shape == (n,):
            x = np.concatenate((q, qd))
            if ((x >= self._state_lo) & (x <= self._state_hi)).all():
                return q, qd
        require_finite("q", q)
        require_finite("qd", qd)
        if not q.shape == qd.shape == (n,):
            raise ValueError(f"one state is q and qd of shape ({n},), got {q.shape} and {qd.shape}")
        if not ((q >= self._state_lo[:n]) & (q <= self._state_hi[:n])).all():
            raise ImplausibleInputError(f"q is beyond the physical bound (each joint within {POSITION_BOUND:.4g} rad "
                                        f"of its limits): {np.array2string(q, precision=4)}")
        raise ImplausibleInputError(f"qd is beyond the physical bound ({VELOCITY_BOUND:g} x each joint's velocity "
                                    f"limit): {np.array2string(qd, precision=4)}")

    def kinematics(self, q: np.ndarray, qd: np.ndarray, drift: bool = False) -> Kinematics:
        """Evaluate M(q), M(q)^-1, h(q, qd), the TCP pose, J(q) (and dJ qd if ``drift``) in one pass.

        Pinocchio's Python bindings return fresh arrays for M, M^-1, h, J and dJ qd; the frame
        placement's translation and rotation are views of ``data`` and are copied.
        """
        m, d = self.model, self.data
        M = pin.crba(m, d, q)
        h = pin.nonLinearEffects(m, d, q, qd)
        Minv = pin.computeMinverse(m, d, q)
        dJqd = None
        if drift:
            pin.forwardKinematics(m, d, q, qd, np.zeros(self.nq))
            dJqd = pin.getFrameClassicalAcceleration(m, d, self.tcp_id, pin.LOCAL_WORLD_ALIGNED).vector
        J = pin.computeFrameJacobian(m, d, q, self.tcp_id, pin.LOCAL_WORLD_ALIGNED)
        oMf = d.oMf[self.tcp_id]
        return Kinematics(p=oMf.translation.copy(), R=oMf.rotation.copy(), J=J, M=M, Minv=Minv, h=h, dJqd=dJqd)

    @property
    def has_gravity(self) -> bool:
        """Whether the model's dynamics hold gravity (False for ``without_gravity`` copies)."""
        return bool(np.any(self.model.gravity.linear != 0.0))

    def without_gravity(self) -> "ArmModel":
        """A copy with gravity zero: the arm as its controller sees it where the robot driver adds
        g(q) to every torque command. Then h = C(q, qd) qd, g = 0, and forward dynamics
        M qdd + C qd = tau hold for the commanded tau. Kinematics, inertias and limits are this model's."""
        out = copy.copy(self)
        out.model = pin.Model(self.model)
        out.model.gravity = pin.Motion.Zero()
        out.data = out.model.createData()
        return out

    def tcp_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward kinematics of the TCP: (p, R) in the world frame."""
        pin.framesForwardKinematics(self.model, self.data, q)
        oMf = self.data.oMf[self.tcp_id]
        return oMf.translation.copy(), oMf.rotation.copy()

    def gravity(self, q: np.ndarray) -> np.ndarray:
        return pin.computeGeneralizedGravity(self.model, self.data, q).copy()

    def mass_matrix(self, q: np.ndarray) -> np.ndarray:
        return pin.crba(self.model, self.data, q).copy()

    def link_masses(self) -> np.ndarray:
        """Mass (kg) of each of the n moving bodies (gripper and payload fused into the last one)."""
        return np.array([self.model.inertias[i].mass for i in range(1, self.model.njoints)])

    def scaled(self, factors) -> "ArmModel":
        """A copy whose body i has mass and rotational inertia (about its centre of mass) times
        ``factors[i]``, centre of mass unchanged: the spatial inertia scaled, I_i <- f_i I_i.
        Kinematics, limits and joint damping are those of this model."""
        f = np.asarray(factors, dtype=float)
        if f.shape != (self.nq,) or not np.all(np.isfinite(f)) or np.any(f <= 0):
            raise ValueError(f"factors must be {self.nq} positive finite numbers, got {factors}")
        out = copy.copy(self)
        out.model = pin.Model(self.model)
        for i, fi in enumerate(f, start=1):
            inertia = self.model.inertias[i]
            out.model.inertias[i] = pin.Inertia(fi * inertia.mass, inertia.lever.copy(), fi * inertia.inertia)
        out.data = out.model.createData()
        return out

    def random_configuration(self, rng: np.random.Generator, margin: float = 0.1) -> np.ndarray:
        """Uniform sample inside the joint limits shrunk by ``margin`` rad on each side."""
        return rng.uniform(self.q_min + margin, self.q_max - margin)


def controlled_model(model: ArmModel, gravity_compensation: str) -> ArmModel:
    """The model a controller's law runs on, by who compensates gravity (``config.GRAVITY_COMPENSATION``).

    ``controller``: ``model`` itself; h = C(q, qd) qd + g(q), so every command holds g(q).
    ``driver``: ``model.without_gravity()``; h = C qd, so every quantity built on h leaves g(q) to
    the driver alike: the OSC's bias term c, the QP's torque map M qdd + h, its brake and hold
    torques, the control loop's fallback, and the inverse problems (they evaluate ``controller.model``,
    so relabeling logs of such a controller stays consistent with what it commanded).
    """
    if gravity_compensation == "driver":
        return model.without_gravity() if model.has_gravity else model
    if gravity_compensation != "controller":
        raise ValueError(f"gravity_compensation must be 'controller' or 'driver', got {gravity_compensation!r}")
    if not model.has_gravity:
        raise ValueError("a model without gravity commands no g(q): use it with gravity_compensation 'driver'")
    return model
