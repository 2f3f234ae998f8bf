"""
The arm's messages <-> numpy arrays: pure functions, no middleware (unit-tested without DDS).

Conventions follow ``ohio_core.data.topics``: joints are matched by name, effort commands carry
one torque per arm joint in the configured order (the names travel in ``layout.dim[0].label``),
goals are ``PoseStamped`` in the ``world`` frame with quaternions (x, y, z, w), and the task
state is a ``Float64MultiArray`` whose ``layout.dim[0].label`` names its fields.
"""

from array import array

from builtin_interfaces.msg import Time
from controllers.goals import matrix_to_quat, NonFiniteInputError, PoseGoal
from geometry_msgs.msg import PoseStamped
import numpy as np
from ohio_core.data import topics as tp
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray, MultiArrayDimension, MultiArrayLayout

_NS = 10**9


class MessageError(ValueError):
    """A message cannot be converted (missing joints, wrong sizes, wrong frame, bad layout)."""


# -- time ------------------------------------------------------------------------------------


def time_msg(ns: int) -> Time:
    """builtin_interfaces/Time from nanoseconds."""
    ns = int(ns)
    return Time(sec=ns // _NS, nanosec=ns % _NS)


def stamp_ns(stamp: Time) -> int:
    """Nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def clock_msg(ns: int) -> Clock:
    """rosgraph_msgs/Clock at ``ns``."""
    return Clock(clock=time_msg(ns))


# -- joint states ----------------------------------------------------------------------------


class JointIndex:
    """Where each of ``joints`` sits in a JointState's name list (cached per name list)."""

    def __init__(self, joints):
        self.joints = tuple(joints)
        if len(set(self.joints)) != len(self.joints) or not all(self.joints):
            raise ValueError(f'joint names must be distinct and non-empty, got {list(joints)}')
        self._cache = {}

    def __call__(self, names) -> np.ndarray:
        names = tuple(names)
        idx = self._cache.get(names)
        if idx is None:
            missing = [j for j in self.joints if j not in names]
            if missing:
                raise MessageError(f'joint state lacks joint(s) {missing}; it names {list(names)}')
            idx = self._cache[names] = np.array([names.index(j) for j in self.joints])
        return idx


def _float_array(values) -> np.ndarray:
    """View a message's ``float64[]`` field (an ``array('d')``) as floats; copy anything else."""
    if isinstance(values, array) and values.typecode == 'd':
        return np.frombuffer(values, dtype=float) if len(values) else np.empty(0)
    return np.asarray(values, dtype=float)


def joint_state_arrays(msg: JointState, index: JointIndex,
                       check_finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """
    (q, qd) of the indexed joints (new arrays); MessageError or NonFiniteInputError if unusable.

    ``check_finite=False`` leaves NaN/inf for the caller to reject (the controller node's
    ``ControlLoop.on_state`` checks every state against the physical bounds, NaN included).
    """
    idx = index(msg.name)
    n = len(msg.name)
    if len(msg.position) != n or len(msg.velocity) != n:
        raise MessageError(f'joint state has {n} names but {len(msg.position)} positions and '
                           f'{len(msg.velocity)} velocities')
    q = _float_array(msg.position)[idx]
    qd = _float_array(msg.velocity)[idx]
    if check_finite and not (np.isfinite(q).all() and np.isfinite(qd).all()):
        raise NonFiniteInputError(f'joint state is not finite: q={q}, qd={qd}')
    return q, qd


def joint_state_msg(names, position, velocity, effort, stamp: int) -> JointState:
    """sensor_msgs/JointState stamped ``stamp`` (ns)."""
    msg = JointState()
    msg.header.stamp = time_msg(stamp)
    msg.name = list(names)
    msg.position = np.asarray(position, dtype=float).tolist()
    msg.velocity = np.asarray(velocity, dtype=float).tolist()
    msg.effort = np.asarray(effort, dtype=float).tolist()
    return msg


# -- goals -----------------------------------------------------------------------------------


def pose_goal_from_msg(msg: PoseStamped, frame: str) -> PoseGoal:
    """
    Convert a PoseStamped in ``frame`` into a PoseGoal.

    Raises NonFiniteInputError for NaN/inf and MessageError for another frame or a quaternion
    that is not of unit norm.
    """
    if msg.header.frame_id != frame:
        raise MessageError(f'goal frame is {msg.header.frame_id!r}, expected {frame!r}')
    p, o = msg.pose.position, msg.pose.orientation
    try:
        return PoseGoal.from_pos_quat([p.x, p.y, p.z], [o.x, o.y, o.z, o.w])
    except NonFiniteInputError:
        raise
    except ValueError as exc:
        raise MessageError(str(exc)) from None


def pose_stamped_msg(goal: PoseGoal, stamp: int, frame: str) -> PoseStamped:
    """geometry_msgs/PoseStamped of a PoseGoal."""
    msg = PoseStamped()
    msg.header.stamp = time_msg(stamp)
    msg.header.frame_id = frame
    quat = matrix_to_quat(goal.R)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in goal.p)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in quat)
    return msg


# -- commands --------------------------------------------------------------------------------


def effort_layout(joints) -> MultiArrayLayout:
    """Return a layout whose one dimension names the joints (ros2_control ignores it)."""
    n = len(joints)
    return MultiArrayLayout(dim=[MultiArrayDimension(label=','.join(joints), size=n, stride=n)])


def effort_command_msg(tau, layout: MultiArrayLayout) -> Float64MultiArray:
    """Build a std_msgs/Float64MultiArray with one torque per joint."""
    return Float64MultiArray(layout=layout, data=np.asarray(tau, dtype=float).tolist())


class EffortCommand:
    """
    One preallocated effort command message, refilled per command (``msg(tau)``).

    The same as ``effort_command_msg`` without building a message and its layout every period;
    the data goes in as an ``array('d')``, which the message takes without checking each value.
    Publish the message before the next call (publishing serializes it).
    """

    def __init__(self, joints):
        self.n = len(joints)
        self.msg = Float64MultiArray(layout=effort_layout(joints))

    def __call__(self, tau) -> Float64MultiArray:
        tau = np.ascontiguousarray(tau, dtype=float)
        if tau.shape != (self.n,):
            raise ValueError(f'effort command needs {self.n} torques, got shape {tau.shape}')
        self.msg.data = array('d', tau.tobytes())
        return self.msg


def effort_from_msg(msg: Float64MultiArray, joints) -> np.ndarray:
    """Torques in the order of ``joints``; reordered when the label names the joints."""
    data = np.asarray(msg.data, dtype=float)
    if len(data) != len(joints):
        raise MessageError(f'effort command has {len(data)} values, expected {len(joints)}')
    label = msg.layout.dim[0].label if msg.layout.dim else ''
    if ',' in label:
        names = [s.strip() for s in label.split(',')]
        if sorted(names) != sorted(joints):
            raise MessageError(f'effort command names joints {names}, expected {list(joints)}')
        data = data[[names.index(j) for j in joints]]
    if not np.isfinite(data).all():
        raise NonFiniteInputError(f'effort command is not finite: {data}')
    return data


def gripper_msg(value: float) -> Float64:
    """Build a std_msgs/Float64 gripper command (0 open .. 1 closed)."""
    return Float64(data=float(value))


def gripper_from_msg(msg: Float64) -> float:
    """Gripper command in [0, 1]; NonFiniteInputError for NaN/inf, MessageError out of range."""
    v = float(msg.data)
    if not np.isfinite(v):
        raise NonFiniteInputError(f'gripper command is not finite: {v}')
    if not 0.0 <= v <= 1.0:
        raise MessageError(f'gripper command must be in [0, 1], got {v}')
    return v


# -- task state ------------------------------------------------------------------------------

_TS_LAYOUT = MultiArrayLayout(dim=[MultiArrayDimension(
    label=tp.TASK_STATE_LABEL, size=len(tp.TASK_STATE_FIELDS), stride=len(tp.TASK_STATE_FIELDS))])


def task_state_msg(row) -> Float64MultiArray:
    """ohio/task_state message (layout ohio_task_state_v2) of a row in TASK_STATE_FIELDS order."""
    row = np.asarray(row, dtype=float)
    if row.shape != (len(tp.TASK_STATE_FIELDS),):
        raise ValueError(f'task state row must have {len(tp.TASK_STATE_FIELDS)} values, '
                         f'got shape {row.shape}')
    return Float64MultiArray(layout=_TS_LAYOUT, data=row.tolist())


_TS_ZERO = [tp.TS[f] for f in tp.TASK_STATE_ZERO]


class TaskStateReader:
    """
    ohio/task_state messages -> rows in TASK_STATE_FIELDS order, by the fields' names.

    Fields a message does not carry are NaN, or 0 for those of ``TASK_STATE_ZERO`` (episode-end
    flags, door angles). Layout labels are parsed once and cached.
    """

    def __init__(self):
        self._cache = {}

    def __call__(self, msg: Float64MultiArray) -> np.ndarray:
        label = msg.layout.dim[0].label if msg.layout.dim else ''
        entry = self._cache.get(label)
        if entry is None:
            try:
                _, names = tp.parse_task_state_label(label)
            except ValueError as exc:
                raise MessageError(f'task state: {exc}') from None
            mine = np.array([tp.TS[f] for f in names if f in tp.TS], dtype=int)
            theirs = np.array([i for i, f in enumerate(names) if f in tp.TS], dtype=int)
            entry = self._cache[label] = (mine, theirs, len(names))
        mine, theirs, need = entry
        if len(msg.data) < need:
            raise MessageError(f'task state has {len(msg.data)} values, its layout names {need}')
        row = np.full(len(tp.TASK_STATE_FIELDS), np.nan)
        row[_TS_ZERO] = 0.0
        row[mine] = np.asarray(msg.data, dtype=float)[theirs]
        return row
