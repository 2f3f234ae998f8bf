"""rosbag2 files <-> time-aligned trajectories, with ``rosbags`` (no ROS 2 installation needed).

Topics, types and the task-state layout: ``ohio_core.data.topics``. A bag is one rosbag2 folder
(``metadata.yaml`` + one ``.mcap`` or ``.db3`` file), written with format version 9, readable by
``ros2 bag`` (Jazzy) and by ``rosbags``.

Timing convention (what the writer produces, and what the reader assumes)
--------------------------------------------------------------------------
An episode of T control periods has states 0..T at sim times t_0 < t_1 < ... < t_T
(t_{i+1} = t_i + control period). For state j the collector publishes, all stamped t_j:

- ``/joint_states``: arm joints (+ the finger joints) by name, position, velocity, and as effort the
  torque applied over the period that ended at t_j (0 at t_0; the fingers' effort is 0);
- for j < T, ``effort_controller/commands``: the 7 torques commanded for period j (held over it);
- for j < T, when a new high-level goal starts (every k periods; never for torque-level
  policies), ``ohio/ee_goal`` (frame ``world``) and ``ohio/gripper_command`` (lift task only; a
  torque-level policy publishes its gripper command every period);
- ``ohio/task_state``: ``step = j``, the world at t_j (cube pose, target, finger opening) and the
  reward/success of period j - 1 (NaN/0 at j = 0); the message of j = T has ``last = 1`` and says
  whether the episode ended by timeout or in a terminal state.

So period i's reward and success arrive stamped t_{i+1}, after the period, with ``step = i + 1``.
Every bag timestamp (the rosbag2 receive time) equals the header stamp: a base time
(``BASE_TIME_NS``, 2023-11-14) + the episode's offset + round(t_j * 1e9) ns. Each episode starts on
a whole second at least ``episode_gap`` s after the previous one ended.

Episode boundaries and rewards in a bag
---------------------------------------
Episodes are told apart by the ``episode`` field of ``ohio/task_state`` (never by time gaps); an
episode's messages are contiguous in time with ``step`` increasing. Row i of an episode (control
period i) is built from:

- the task-state messages with ``step = i`` (start, stamp s_i) and ``step = i + 1`` (end);
  reward, success, timeout and terminal come from the end message;
- the first command with s_i <= stamp < s_{i+1} (further commands in the period are counted as
  unused);
- the latest ``/joint_states`` at or before that command (at most ``max_state_age`` older);
- the latest ``ee_goal``/gripper command at or before the command, within the episode
  (NaN where none).

Rows missing a part are dropped and counted. The last row of an episode, and the row before a gap
in its steps, always ends a piece: if the bag does not say how (a cut recording, a lost message),
it is marked ``timeout`` and the account lists it, so that no transition spans missing data.

The task observation (``envs.arm.tasks.OBS_LAYOUT``) is rebuilt from q, qd, the TCP pose by
forward kinematics (Pinocchio, ``controllers.robot.PandaModel``) and the start task-state
(finger opening, cube pose, target); the in-memory collector builds it with the same function
(``task_observation``), so bag and memory agree exactly. Times in the returned ``Trajectories``
are seconds since the episode's first task-state message.

Every read returns an account in ``Trajectories.meta["account"]``: messages read per topic, rows
built, rows dropped and why, messages left unused. Messages are deserialized one at a time into
per-topic columns; the whole bag's rows are held in memory.

MCAP bags are zstd chunk-compressed by default (``ros2 bag`` reads them natively); the collector's
settings are in ``metadata.yaml`` ``custom_data`` (``ohio.collect``, ``ohio.task_state_layout``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import yaml
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ohio_core.data import topics as tp
from ohio_core.data.topics import TS, TopicMap
from ohio_core.data.trajectory import Trajectories
from ohio_core.envs.arm.tasks import OBS_DIM, obs_slices, rot6

BASE_TIME_NS = 1_700_000_000 * 10**9
EPISODE_GAP_S = 1.0
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
_NS = 10**9
_TS_FLAGS = ("success", "last", "timeout", "terminal")


class BagError(ValueError):
    """A bag cannot be written or read as asked; the message names the file and the problem."""


_TYPESTORE = None
_MODEL = None


def typestore():
    """The ROS 2 Jazzy message types (shared, built once)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
    return _TYPESTORE


def default_model():
    """The Pinocchio Panda model used for forward kinematics (built once)."""
    global _MODEL
    if _MODEL is None:
        from controllers.robot import PandaModel
        _MODEL = PandaModel()
    return _MODEL


# --------------------------------------------------------------------------------------------
# The observation, as a robot computes it from its logs
# --------------------------------------------------------------------------------------------


def task_observation(q, qd, finger_opening, cube_pos, cube_quat, target, model=None) -> np.ndarray:
    """(N, OBS_DIM) task observations from logged quantities (rows: states).

    The TCP pose comes from forward kinematics of q (Pinocchio); the cube orientation from its
    quaternion (x, y, z, w). Layout: ``envs.arm.tasks.OBS_LAYOUT``.
    """
    from controllers.goals import quat_to_matrix

    q, qd = np.atleast_2d(np.asarray(q, float)), np.atleast_2d(np.asarray(qd, float))
    n = len(q)
    model = model or default_model()
    tcp_p, tcp_R = np.full((n, 3), np.nan), np.full((n, 3, 3), np.nan)
    for i in range(n):
        if np.isfinite(q[i]).all():
            tcp_p[i], tcp_R[i] = model.tcp_pose(q[i])
    s = obs_slices()
    obs = np.empty((n, OBS_DIM))
    obs[:, s["q"]] = q
    obs[:, s["qd"]] = qd
    obs[:, s["tcp_pos"]] = tcp_p
    obs[:, s["tcp_rot6"]] = rot6(tcp_R)
    obs[:, s["finger_opening"]] = np.asarray(finger_opening, float).reshape(n, 1)
    obs[:, s["cube_pos"]] = np.asarray(cube_pos, float).reshape(n, 3)
    obs[:, s["cube_rot6"]] = rot6(quat_to_matrix(np.asarray(cube_quat, float).reshape(n, 4)))
    obs[:, s["target_pos"]] = np.asarray(target, float).reshape(n, 3)
    return obs


# --------------------------------------------------------------------------------------------
# One episode as the topics carry it
# --------------------------------------------------------------------------------------------


@dataclass
class EpisodeLog:
    """One episode of T control periods, as the topics carry it (see the module docstring).

    State arrays have T + 1 rows (states 0..T; the final state may be NaN where unknown, then
    no final ``/joint_states`` is written); per-period arrays have T rows.
    """

    episode: int
    t: np.ndarray                 # (T+1,) s, sim time of each state
    q: np.ndarray                 # (T+1, 7) arm joint positions
    qd: np.ndarray                # (T+1, 7)
    effort: np.ndarray            # (T+1, 7) torque applied over the period before each state (0 at 0)
    tau: np.ndarray               # (T, 7) torque commanded for each period
    reward: np.ndarray            # (T,) reward of each period
    success: np.ndarray           # (T,) bool, at the end of each period
    cube_pos: np.ndarray          # (T+1, 3)
    cube_quat: np.ndarray         # (T+1, 4) x, y, z, w
    target: np.ndarray            # (T+1, 3)
    finger_opening: np.ndarray    # (T+1,) m
    timeout: bool = True          # the episode ended by its horizon
    terminal: bool = False        # the episode ended in a terminal state
    finger_q: np.ndarray | None = None     # (T+1, 2) finger joint positions, if known
    finger_qd: np.ndarray | None = None    # (T+1, 2)
    goal: np.ndarray | None = None         # (T, 7) goal in force over each period (p, quat xyzw)
    goal_new: np.ndarray | None = None     # (T,) bool: a goal message starts at this period
    gripper: np.ndarray | None = None      # (T,) gripper command in force (0 open .. 1 closed)
    gripper_new: np.ndarray | None = None  # (T,) bool: a gripper message at this period
    step0: int = 0                         # step index of state 0
    policy: str = ""                       # behavior policy of the episode (not written per message)
    env_obs: np.ndarray | None = None      # (T, OBS_DIM) observation the policy saw (not written)

    def __post_init__(self):
        T = len(self.tau)
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, np.ndarray):
                continue
            want = T + 1 if f.name in ("t", "q", "qd", "effort", "cube_pos", "cube_quat", "target",
                                       "finger_opening", "finger_q", "finger_qd") else T
            if len(v) != want:
                raise ValueError(f"EpisodeLog.{f.name} has {len(v)} rows, expected {want} (T = {T})")
        if (self.goal is None) != (self.goal_new is None) or (self.gripper is None) != (self.gripper_new is None):
            raise ValueError("EpisodeLog: goal/goal_new and gripper/gripper_new come in pairs")

    @property
    def periods(self) -> int:
        return len(self.tau)

    @property
    def any_success(self) -> bool:
        return bool(np.any(self.success))

    @property
    def episode_return(self) -> float:
        return float(np.sum(self.reward))


def _rel_ns(t: np.ndarray) -> np.ndarray:
    """Nanoseconds of each time since the first, as the bag stores them."""
    ns = np.round(np.asarray(t, float) * 1e9).astype(np.int64)
    return ns - ns[0]


def logs_to_trajectories(logs: Iterable[EpisodeLog], model=None, meta: dict | None = None) -> Trajectories:
    """The rows ``read_bag`` returns for a bag holding these episodes (same arrays, in memory)."""
    logs = list(logs)
    if not logs:
        raise ValueError("no episodes")
    any_goal = any(lg.goal is not None for lg in logs)
    any_grip = any(lg.gripper is not None for lg in logs)
    parts = []
    for lg in logs:
        T = lg.periods
        timeout, terminal = np.zeros(T, bool), np.zeros(T, bool)
        if T:
            timeout[-1] = lg.timeout or not (lg.timeout or lg.terminal)   # an open end counts as timeout
            terminal[-1] = lg.terminal and not lg.timeout
        parts.append(Trajectories(
            t=_rel_ns(lg.t)[:T] * 1e-9, q=lg.q[:T].copy(), qd=lg.qd[:T].copy(), tau=np.asarray(lg.tau, float),
            reward=np.asarray(lg.reward, float), success=np.asarray(lg.success, bool),
            episode=np.full(T, lg.episode, np.int64), step=lg.step0 + np.arange(T, dtype=np.int64),
            obs=task_observation(lg.q[:T], lg.qd[:T], lg.finger_opening[:T], lg.cube_pos[:T],
                                 lg.cube_quat[:T], lg.target[:T], model).reshape(T, OBS_DIM),
            timeout=timeout, terminal=terminal,
            gripper=(lg.gripper.astype(float) if lg.gripper is not None else np.full(T, np.nan)) if any_grip else None,
            goal=(lg.goal.astype(float) if lg.goal is not None else np.full((T, 7), np.nan)) if any_goal else None))
    out = Trajectories.concatenate(parts)
    out.meta = dict(meta or {})
    return out


def _changed(x: np.ndarray) -> np.ndarray:
    """Rows that differ from the previous row (NaN-aware); the first finite row counts."""
    x = np.asarray(x, float).reshape(len(x), -1)
    finite = np.isfinite(x).all(1)
    prev = np.vstack([np.full((1, x.shape[1]), np.nan), x[:-1]])
    same = ((x == prev) | (np.isnan(x) & np.isnan(prev))).all(1)
    return finite & ~same


def _nan_row(x: np.ndarray) -> np.ndarray:
    """``x`` with one more row of NaN (an unknown final state)."""
    x = np.asarray(x, float)
    return np.concatenate([x, np.full((1,) + x.shape[1:], np.nan)])


def logs_from_trajectories(traj: Trajectories, control_period: float | None = None) -> list[EpisodeLog]:
    """Episodes to write a ``Trajectories`` back into a bag.

    What rows do not hold is approximated: effort = the previous row's commanded torque, no
    finger joints, and the state after an episode's last row (and after any gap in its steps)
    is unknown (no final ``/joint_states``; NaN world fields in the final task state).
    Goals and gripper commands are published where they change.
    """
    from controllers.goals import matrix_to_quat

    s = obs_slices()
    period = control_period or float(traj.meta.get("control_period", 0.0)) or None
    logs = []
    # split into runs of one episode with consecutive steps, in row order
    brk = np.ones(len(traj), bool)
    brk[1:] = (traj.episode[1:] != traj.episode[:-1]) | (traj.step[1:] != traj.step[:-1] + 1)
    starts = np.flatnonzero(brk)
    ends = np.r_[starts[1:], len(traj)]
    for a, b in zip(starts, ends):
        T = b - a
        r = slice(a, b)
        t = traj.t[r]
        dt = period or (float(np.median(np.diff(t))) if T > 1 else 0.02)
        obs = traj.obs[r]
        c6 = obs[:, s["cube_rot6"]]
        R = np.stack([c6[:, :3], c6[:, 3:], np.cross(c6[:, :3], c6[:, 3:])], axis=-1)
        last_row = b - 1
        closed = bool(traj.timeout[last_row] or traj.terminal[last_row])
        goal = traj.goal[r] if traj.goal is not None and np.isfinite(traj.goal[r]).any() else None
        grip = traj.gripper[r] if traj.gripper is not None and np.isfinite(traj.gripper[r]).any() else None
        logs.append(EpisodeLog(
            episode=int(traj.episode[a]), t=np.r_[t, t[-1] + dt], q=_nan_row(traj.q[r]), qd=_nan_row(traj.qd[r]),
            effort=np.vstack([np.zeros((1, 7)), traj.tau[r]]), tau=traj.tau[r], reward=traj.reward[r],
            success=traj.success[r], cube_pos=_nan_row(obs[:, s["cube_pos"]]), cube_quat=_nan_row(matrix_to_quat(R)),
            target=_nan_row(obs[:, s["target_pos"]]), finger_opening=_nan_row(obs[:, s["finger_opening"]][:, 0]),
            timeout=bool(traj.timeout[last_row]) if closed else False,
            terminal=bool(traj.terminal[last_row] and not traj.timeout[last_row]),
            goal=goal, goal_new=_changed(goal) if goal is not None else None,
            gripper=grip, gripper_new=_changed(grip) if grip is not None else None,
            step0=int(traj.step[a])))
    return logs


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


class BagWriter:
    """Write episodes into a new rosbag2 folder, one episode at a time::

        with BagWriter(path, storage="mcap") as w:
            for log in episodes:
                w.write_episode(log)
        w.counts   # messages per topic

    ``joint_names`` overrides the arm joint names written (default ``topic_map.arm_joints``).
    ``compress`` (default: for MCAP only) compresses with zstd: MCAP chunks, or sqlite3 messages.
    """

    def __init__(self, path: str | Path, topic_map: TopicMap | None = None, storage: str = "mcap",
                 base_time_ns: int = BASE_TIME_NS, episode_gap: float = EPISODE_GAP_S,
                 custom_data: dict[str, str] | None = None, joint_names: Iterable[str] | None = None,
                 compress: bool | None = None):
        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(f"{self.path}: unknown storage {storage!r}; expected one of {sorted(STORAGES)}")
        if self.path.exists():
            raise BagError(f"{self.path}: exists already; a bag is written into a new folder (not overwriting)")
        self.topic_map = topic_map or TopicMap()
        self.storage = storage
        self.arm_joints = tuple(joint_names) if joint_names is not None else self.topic_map.arm_joints
        self.custom_data = dict(custom_data or {})
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self.compress = (storage == "mcap") if compress is None else bool(compress)
        if self.compress:   # zstd MCAP chunks, or zstd per message in sqlite3 (both read by ros2 bag)
            mode = CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE
            self._writer.set_compression(mode, CompressionFormat.ZSTD)
        self._conns: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        self._next_start = int(base_time_ns)
        self._last = None        # (episode, its base stamp, its time reference in ns, last stamp written)
        self._gap_ns = int(round(episode_gap * 1e9))
        self._open = False
        ts = typestore()
        T = ts.types
        self._JS, self._F64MA, self._F64 = T[tp.JOINT_STATE_TYPE], T[tp.FLOAT64_MULTI_ARRAY], T[tp.FLOAT64]
        self._PS, self._Pose = T[tp.POSE_STAMPED], T["geometry_msgs/msg/Pose"]
        self._Point, self._Quat = T["geometry_msgs/msg/Point"], T["geometry_msgs/msg/Quaternion"]
        self._Header, self._Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
        Layout, Dim = T["std_msgs/msg/MultiArrayLayout"], T["std_msgs/msg/MultiArrayDimension"]
        n = len(tp.TASK_STATE_FIELDS)
        self._ts_layout = Layout(dim=[Dim(label=tp.TASK_STATE_LABEL, size=n, stride=n)], data_offset=0)
        self._cmd_layout = Layout(dim=[Dim(label=",".join(self.arm_joints), size=7, stride=7)], data_offset=0)

    # -- lifecycle -----------------------------------------------------------------------------
    def open(self) -> "BagWriter":
        try:
            self._writer.open()
        except Exception as exc:
            raise BagError(f"{self.path}: cannot create the bag: {exc}") from None
        self._open = True
        for role in tp.REQUIRED_ROLES:
            self._conn(role)
        return self

    def close(self) -> dict[str, int]:
        if self._open:
            self._open = False
            self.custom_data.setdefault("ohio.task_state_layout", tp.TASK_STATE_LABEL)
            for k, v in self.custom_data.items():
                self._writer.set_custom_data(k, str(v))
            self._writer.close()
        return dict(self.counts)

    def __enter__(self) -> "BagWriter":
        return self.open()

    def __exit__(self, exc_type, exc, tb):
        # episodes are written whole, so the bag is consistent even after an error: close it
        self.close()
        return False

    def _conn(self, role: str):
        topic = self.topic_map.topic(role)
        if topic not in self._conns:
            self._conns[topic] = self._writer.add_connection(topic, tp.ROLE_TYPES[role], typestore=typestore())
            self.counts[topic] = 0
        return self._conns[topic]

    def write_raw(self, topic: str, msgtype: str, ns: int, data: bytes) -> None:
        """Write one already serialized (CDR) message, e.g. as a ROS subscription received it.

        ``ns`` is the bag timestamp (receive time). The topic's connection is made on first use;
        a topic keeps one message type."""
        if not self._open:
            raise BagError(f"{self.path}: writer is not open")
        conn = self._conns.get(topic)
        if conn is None:
            conn = self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self.counts[topic] = 0
        elif conn.msgtype != msgtype:
            raise BagError(f"{self.path}: topic {topic!r} has type {conn.msgtype}, not {msgtype}")
        self._writer.write(conn, int(ns), bytes(data))
        self.counts[topic] += 1

    def _write(self, role: str, ns: int, msg) -> None:
        conn = self._conn(role)
        self._writer.write(conn, ns, typestore().serialize_cdr(msg, msg.__msgtype__))
        self.counts[conn.topic] += 1

    def _header(self, ns: int, frame: str = ""):
        return self._Header(stamp=self._Time(sec=ns // _NS, nanosec=ns % _NS), frame_id=frame)

    # -- episodes ------------------------------------------------------------------------------
    def write_episode(self, log: EpisodeLog) -> None:
        if not self._open:
            raise BagError(f"{self.path}: writer is not open")
        if log.goal is not None and self.topic_map.ee_goal is None:
            raise BagError(f"{self.path}: episode {log.episode} has goals but the topic map has no ee_goal topic")
        if log.gripper is not None and self.topic_map.gripper is None:
            raise BagError(f"{self.path}: episode {log.episode} has gripper commands but the topic map has no "
                           f"gripper topic")
        T = log.periods
        t_ns = np.round(np.asarray(log.t, float) * 1e9).astype(np.int64)
        if self._last is not None and self._last[0] == log.episode:
            # a further piece of the same episode (after a gap): same time base
            base, ref = self._last[1], self._last[2]
            if base + t_ns[0] - ref <= self._last[3]:
                raise BagError(f"{self.path}: episode {log.episode} continues at t = {log.t[0]} s, "
                               f"not after its previous piece")
        else:
            base, ref = self._next_start, int(t_ns[0])
        ns = base + t_ns - ref
        if np.any(np.diff(ns) <= 0):
            raise BagError(f"{self.path}: episode {log.episode}: state times must increase (t = {log.t[:5]}...)")
        names = list(self.arm_joints)
        has_fingers = log.finger_q is not None
        if has_fingers:
            names += list(self.topic_map.finger_joints)
        ts_rows = self._task_state_rows(log)
        for j in range(T + 1):
            stamp = int(ns[j])
            if np.isfinite(log.q[j]).all():
                pos, vel, eff = log.q[j], log.qd[j], log.effort[j]
                if has_fingers:
                    fqd = log.finger_qd[j] if log.finger_qd is not None else np.zeros(2)
                    pos, vel, eff = np.r_[pos, log.finger_q[j]], np.r_[vel, fqd], np.r_[eff, 0.0, 0.0]
                self._write("joint_states", stamp, self._JS(
                    header=self._header(stamp), name=names, position=np.asarray(pos, float),
                    velocity=np.asarray(vel, float), effort=np.asarray(eff, float)))
            if j < T:
                if log.goal is not None and log.goal_new[j] and np.isfinite(log.goal[j]).all():
                    g = log.goal[j]
                    self._write("ee_goal", stamp, self._PS(
                        header=self._header(stamp, tp.GOAL_FRAME),
                        pose=self._Pose(position=self._Point(x=float(g[0]), y=float(g[1]), z=float(g[2])),
                                        orientation=self._Quat(x=float(g[3]), y=float(g[4]), z=float(g[5]),
                                                               w=float(g[6])))))
                if log.gripper is not None and log.gripper_new[j] and np.isfinite(log.gripper[j]):
                    self._write("gripper", stamp, self._F64(data=float(log.gripper[j])))
                self._write("commands", stamp, self._F64MA(layout=self._cmd_layout,
                                                           data=np.asarray(log.tau[j], float)))
            self._write("task_state", stamp, self._F64MA(layout=self._ts_layout, data=ts_rows[j]))
        self._last = (log.episode, base, ref, int(ns[-1]))
        end = int(ns[-1]) + self._gap_ns
        self._next_start = -(-end // _NS) * _NS     # next whole second

    @staticmethod
    def _task_state_rows(log: EpisodeLog) -> np.ndarray:
        T = log.periods
        rows = np.zeros((T + 1, len(tp.TASK_STATE_FIELDS)))
        rows[:, TS["episode"]] = log.episode
        rows[:, TS["step"]] = log.step0 + np.arange(T + 1)
        rows[0, TS["reward"]] = np.nan
        rows[1:, TS["reward"]] = log.reward
        rows[1:, TS["success"]] = np.asarray(log.success, float)
        if log.timeout or log.terminal:
            rows[T, TS["last"]] = 1.0
            rows[T, TS["timeout"]] = float(log.timeout)
            rows[T, TS["terminal"]] = float(log.terminal and not log.timeout)
        rows[:, TS["cube_x"]:TS["cube_z"] + 1] = log.cube_pos
        rows[:, TS["cube_qx"]:TS["cube_qw"] + 1] = log.cube_quat
        rows[:, TS["target_x"]:TS["target_z"] + 1] = log.target
        rows[:, TS["finger_opening"]] = log.finger_opening
        return rows


def write_bag(path: str | Path, data: Trajectories | Iterable[EpisodeLog], topic_map: TopicMap | None = None,
              storage: str = "mcap", **kwargs) -> dict[str, int]:
    """Write episodes (``EpisodeLog``s, or a ``Trajectories`` via ``logs_from_trajectories``) into
    a new rosbag2 folder ``path``; returns the messages written per topic. ``kwargs`` go to
    ``BagWriter`` (base_time_ns, episode_gap, custom_data, joint_names, compress)."""
    logs = logs_from_trajectories(data) if isinstance(data, Trajectories) else data
    with BagWriter(path, topic_map, storage, **kwargs) as w:
        for log in logs:
            w.write_episode(log)
    return dict(w.counts)


def bag_size(path: str | Path) -> int:
    """Bytes on disk of a bag folder (or file)."""
    p = Path(path)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class _Columns:
    """Growing per-topic columns (Python lists), turned into arrays once at the end."""

    def __init__(self, *names):
        self.cols = {n: [] for n in names}

    def add(self, **vals):
        for k, v in vals.items():
            self.cols[k].append(v)

    def array(self, name, dtype=float, width=None):
        v = self.cols[name]
        if not v:
            return np.zeros((0,) if width is None else (0, width), dtype)
        return np.asarray(v, dtype)

    def __len__(self):
        return len(next(iter(self.cols.values())))


def _open_reader(path: Path):
    from rosbags.highlevel import AnyReader

    if not path.exists():
        raise BagError(f"{path}: no such bag (file or folder not found)")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagError(f"{path}: not a rosbag2 folder (no metadata.yaml)")
    if path.is_file() and path.suffix not in (".mcap", ".db3", ".bag"):
        raise BagError(f"{path}: not a rosbag2 bag: expected a folder with metadata.yaml, "
                       f"a .mcap or a .db3 file")
    try:
        reader = AnyReader([path], default_typestore=typestore())
        reader.open()
    except BagError:
        raise
    except Exception as exc:
        raise BagError(f"{path}: cannot open the bag (truncated or corrupt?): "
                       f"{type(exc).__name__}: {exc}") from None
    return reader


def _custom_data(path: Path) -> dict:
    meta = path / "metadata.yaml"
    if not meta.is_file():
        return {}
    try:
        info = yaml.safe_load(meta.read_text()).get("rosbag2_bagfile_information", {})
        return dict(info.get("custom_data") or {})
    except Exception:
        return {}


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * _NS + int(header.stamp.nanosec)


def read_bag(path: str | Path, topic_map: TopicMap | None = None, *, model=None,
             max_state_age: float = 0.01) -> Trajectories:
    """Read a rosbag2 bag (folder, ``.mcap`` or ``.db3``) into time-aligned rows (module docstring).

    ``topic_map`` names the topics and joints (default: this stack's). ``max_state_age`` (s) is
    how much older than a command its joint state may be. Raises ``BagError`` naming the file for
    a missing/unreadable/corrupt bag, a missing topic, a topic of the wrong type, missing joints,
    time going backwards, or malformed task-state messages. The account of the read is in
    ``meta["account"]``.
    """
    path = Path(path)
    tm = topic_map or TopicMap()
    reader = _open_reader(path)
    try:
        return _read(reader, path, tm, model, max_state_age)
    finally:
        try:
            reader.close()
        except Exception:
            pass


def _read(reader, path: Path, tm: TopicMap, model, max_state_age: float) -> Trajectories:
    in_bag: dict[str, set] = {}
    for c in reader.connections:
        in_bag.setdefault(c.topic, set()).add(c.msgtype)
    listing = ", ".join(f"{t} ({'/'.join(sorted(ty))})" for t, ty in sorted(in_bag.items())) or "none"
    role_of, conns = {}, []
    for role, topic in tm.roles().items():
        if topic not in in_bag:
            if role in tp.REQUIRED_ROLES:
                raise BagError(f"{path}: topic {topic!r} ({role}) is not in the bag; topics in the bag: {listing}")
            continue
        want = tp.ROLE_TYPES[role]
        if in_bag[topic] != {want}:
            raise BagError(f"{path}: topic {topic!r} ({role}) has message type {'/'.join(sorted(in_bag[topic]))}, "
                           f"expected {want}")
        role_of[topic] = role
        conns += [c for c in reader.connections if c.topic == topic]

    js = _Columns("ns", "pos", "vel")
    cmd = _Columns("ns", "data")
    ts = _Columns("ns", "row")
    goal = _Columns("ns", "pose")
    grip = _Columns("ns", "value")
    counts = {t: 0 for t in role_of}
    dropped: dict[str, int] = {}
    goal_frames: set[str] = set()
    js_index: dict[tuple, np.ndarray] = {}
    cmd_index: dict[str, np.ndarray | None] = {}
    ts_index: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    last_log = {t: -1 for t in role_of}
    last_header = -1
    arm = tm.arm_joints

    def drop(reason: str, n: int = 1):
        dropped[reason] = dropped.get(reason, 0) + n

    try:
        for conn, ns, raw in reader.messages(connections=conns):
            topic = conn.topic
            role = role_of[topic]
            counts[topic] += 1
            if ns < last_log[topic]:
                raise BagError(f"{path}: time goes backwards on {topic!r}: message {counts[topic]} received at "
                               f"{ns} ns, after one at {last_log[topic]} ns")
            last_log[topic] = ns
            msg = reader.deserialize(raw, conn.msgtype)
            if role == "joint_states":
                names = tuple(msg.name)
                idx = js_index.get(names)
                if idx is None:
                    missing = [j for j in arm if j not in names]
                    if missing:
                        raise BagError(f"{path}: {topic!r} lacks the arm joint(s) {missing}; its messages name "
                                       f"{list(names)} (set arm_joints in the topic map)")
                    idx = js_index[names] = np.array([names.index(j) for j in arm])
                if len(msg.position) != len(names) or len(msg.velocity) != len(names):
                    raise BagError(f"{path}: {topic!r} message {counts[topic]} has {len(names)} names but "
                                   f"{len(msg.position)} positions and {len(msg.velocity)} velocities")
                stamp = _stamp_ns(msg.header)
                if stamp < last_header:
                    raise BagError(f"{path}: time goes backwards on {topic!r}: header stamp {stamp} ns of message "
                                   f"{counts[topic]} is before the previous one ({last_header} ns)")
                last_header = stamp
                js.add(ns=ns, pos=msg.position[idx], vel=msg.velocity[idx])
            elif role == "commands":
                dims = msg.layout.dim
                label = dims[0].label if dims else ""
                if label not in cmd_index:
                    order = None
                    names = [s.strip() for s in label.split(",")] if "," in label else None
                    if names is not None:
                        if sorted(names) != sorted(arm):
                            raise BagError(f"{path}: {topic!r} names joints {names}, expected {list(arm)} "
                                           f"(set arm_joints in the topic map)")
                        order = np.array([names.index(j) for j in arm])
                    cmd_index[label] = order
                order = cmd_index[label]
                if len(msg.data) != 7:
                    drop(f"malformed command ({topic}: not 7 values)")
                    continue
                cmd.add(ns=ns, data=msg.data if order is None else msg.data[order])
            elif role == "task_state":
                dims = msg.layout.dim
                label = dims[0].label if dims else ""
                if label not in ts_index:
                    ts_index[label] = _task_state_index(path, topic, label, tm)
                mine, theirs, need = ts_index[label]
                if len(msg.data) < need:
                    drop(f"malformed task_state ({topic}: {len(msg.data)} values, layout needs {need})")
                    continue
                row = np.full(len(tp.TASK_STATE_FIELDS), np.nan)
                row[[TS[f] for f in _TS_FLAGS]] = 0.0
                row[mine] = msg.data[theirs]
                ts.add(ns=ns, row=row)
            elif role == "ee_goal":
                p, o = msg.pose.position, msg.pose.orientation
                goal_frames.add(msg.header.frame_id)
                goal.add(ns=ns, pose=(p.x, p.y, p.z, o.x, o.y, o.z, o.w))
            elif role == "gripper":
                grip.add(ns=ns, value=float(msg.data))
    except BagError:
        raise
    except Exception as exc:
        raise BagError(f"{path}: cannot read the bag's messages (truncated or corrupt?): "
                       f"{type(exc).__name__}: {exc}") from None

    account = {
        "bag": str(path),
        "messages": counts,
        "topics_in_bag": {t: "/".join(sorted(ty)) for t, ty in sorted(in_bag.items())},
        "rows": 0, "episodes": 0, "dropped": dropped,
    }
    rows = _assemble(path, tm, js, cmd, ts, goal, grip, account, max_state_age)
    if goal_frames - {tp.GOAL_FRAME, ""}:
        account["goal_frames"] = sorted(goal_frames)
    meta = {"source": str(path), "topic_map": tm.to_dict(), "account": account,
            "custom_data": _custom_data(path) if path.is_dir() else {},
            "episode_start_ns": rows.pop("episode_start_ns")}
    obs = task_observation(rows["q"], rows["qd"], rows.pop("finger_opening"), rows.pop("cube_pos"),
                           rows.pop("cube_quat"), rows.pop("target"), model)
    return Trajectories(obs=obs.reshape(len(rows["t"]), OBS_DIM), meta=meta, **rows)


def _task_state_index(path: Path, topic: str, label: str, tm: TopicMap):
    """(indices into our field order, indices into the message, values needed) for a layout label."""
    if label:
        try:
            _, names = tp.parse_task_state_label(label)
        except ValueError as exc:
            raise BagError(f"{path}: {topic!r}: {exc}") from None
    elif tm.task_state_fields is not None:
        names = tm.task_state_fields
    else:
        raise BagError(f"{path}: {topic!r} messages carry no layout label; give the field names as "
                       f"task_state_fields in the topic map")
    missing = [f for f in tp.TASK_STATE_REQUIRED if f not in names]
    if missing:
        raise BagError(f"{path}: {topic!r} layout lacks the field(s) {missing} (label {label[:120]!r})")
    mine = [TS[f] for f in names if f in TS]
    theirs = [i for i, f in enumerate(names) if f in TS]
    return np.array(mine), np.array(theirs), max(theirs) + 1


def _assemble(path, tm, js, cmd, ts, goal, grip, account, max_state_age) -> dict:
    """Pair the messages into rows (module docstring); fills the account."""
    dropped = account["dropped"]

    def drop(reason, n):
        if n:
            dropped[reason] = dropped.get(reason, 0) + int(n)

    ts_ns, TSV = ts.array("ns", np.int64), ts.array("row", width=len(tp.TASK_STATE_FIELDS))
    js_ns, js_pos, js_vel = js.array("ns", np.int64), js.array("pos", width=7), js.array("vel", width=7)
    cmd_ns, cmd_data = cmd.array("ns", np.int64), cmd.array("data", width=7)
    ep_f, st_f = TSV[:, TS["episode"]], TSV[:, TS["step"]]
    bad = ~np.isfinite(ep_f) | ~np.isfinite(st_f) | (ep_f != np.round(ep_f)) | (st_f != np.round(st_f))
    if bad.any():
        m = int(np.flatnonzero(bad)[0])
        raise BagError(f"{path}: {tm.task_state!r} message {m + 1}: episode/step must be integers, "
                       f"got {ep_f[m]}, {st_f[m]}")
    ep, st = ep_f.astype(np.int64), st_f.astype(np.int64)
    # episodes: contiguous runs in time, steps increasing within each
    run_start = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]]) if len(ep) else np.zeros(0, np.int64)
    run_ep = ep[run_start]
    uniq, first = np.unique(run_ep, return_index=True)
    if len(uniq) != len(run_ep):
        r = int(np.setdiff1d(np.arange(len(run_ep)), first)[0])
        raise BagError(f"{path}: {tm.task_state!r}: episode {run_ep[r]} resumes at {ts_ns[run_start[r]]} ns "
                       f"after episode {run_ep[r - 1]}: episodes interleave in time")
    same = ep[1:] == ep[:-1]
    back = np.flatnonzero(same & (st[1:] <= st[:-1]))
    if back.size:
        m = int(back[0])
        raise BagError(f"{path}: time goes backwards on {tm.task_state!r}: episode {ep[m]} step {st[m + 1]} at "
                       f"{ts_ns[m + 1]} ns comes after step {st[m]} at {ts_ns[m]} ns")
    run_id = np.cumsum(np.r_[True, ~same]) - 1 if len(ep) else np.zeros(0, np.int64)
    ep_start_ns = ts_ns[run_start][run_id] if len(ep) else np.zeros(0, np.int64)
    jump = st[1:] - st[:-1]
    drop("task_state missing (step skipped)", np.sum(np.where(same & (jump > 1), jump, 0)))
    s_idx = np.flatnonzero(same & (jump == 1))
    e_idx = s_idx + 1
    # the command of each period: first in [start, end)
    i0 = np.searchsorted(cmd_ns, ts_ns[s_idx], "left")
    i1 = np.searchsorted(cmd_ns, ts_ns[e_idx], "left")
    n_cmd = i1 - i0
    ok = n_cmd >= 1
    drop("no command in the period", np.sum(~ok))
    c = np.minimum(i0, max(len(cmd_ns) - 1, 0))
    c_ns = cmd_ns[c] if len(cmd_ns) else np.zeros(len(s_idx), np.int64)
    # the joint state: latest at or before the command, not older than max_state_age
    j = np.searchsorted(js_ns, c_ns, "right") - 1
    jj = np.maximum(j, 0)
    ok_js = (j >= 0) & (c_ns - (js_ns[jj] if len(js_ns) else 0) <= int(round(max_state_age * 1e9)))
    drop("no joint_states within max_state_age at or before the command", np.sum(ok & ~ok_js))
    keep = ok & ok_js
    s_idx, e_idx, c, jj, c_ns = s_idx[keep], e_idx[keep], c[keep], jj[keep], c_ns[keep]
    account["commands_unused"] = int(len(cmd_ns) - len(np.unique(c)))
    account["joint_states_unused"] = int(len(js_ns) - len(np.unique(jj)))
    start_ns = ep_start_ns[s_idx]

    def held(col: _Columns, name: str, width: int):
        if len(col) == 0:
            return None
        ns, val = col.array("ns", np.int64), col.array(name, width=width if width > 1 else None)
        g = np.searchsorted(ns, c_ns, "right") - 1
        valid = (g >= 0) & (ns[np.maximum(g, 0)] >= start_ns)
        out = np.where(valid.reshape(-1, *([1] * (val.ndim - 1))), val[np.maximum(g, 0)], np.nan)
        return out

    END = TSV[e_idx]
    START = TSV[s_idx]
    timeout, terminal = END[:, TS["timeout"]] > 0.5, END[:, TS["terminal"]] > 0.5
    timeout |= (END[:, TS["last"]] > 0.5) & ~terminal & ~timeout
    rep = ep[s_idx]
    step = st[s_idx]
    # episode ends and gaps: the last row of each run of consecutive steps must close it
    n = len(s_idx)
    run_end = np.ones(n, bool)
    if n > 1:
        run_end[:-1] = (rep[1:] != rep[:-1]) | (step[1:] != step[:-1] + 1)
    open_end = run_end & ~(timeout | terminal)
    if open_end.any():
        is_ep_end = np.r_[rep[1:] != rep[:-1], True] if n else np.zeros(0, bool)
        account["episodes_not_closed"] = sorted(int(e) for e in rep[open_end & is_ep_end])
        account["gaps_closed_by_timeout"] = int(np.sum(open_end & ~is_ep_end))
        timeout |= open_end
    account["rows"] = n
    account["episodes"] = int(len(np.unique(rep)))
    eps_start = {int(e): int(s) for e, s in zip(run_ep, ts_ns[run_start])}
    return {
        "t": (js_ns[jj] - start_ns) * 1e-9,
        "q": js_pos[jj], "qd": js_vel[jj], "tau": cmd_data[c],
        "reward": END[:, TS["reward"]], "success": END[:, TS["success"]] > 0.5,
        "episode": rep, "step": step, "timeout": timeout, "terminal": terminal,
        "finger_opening": START[:, TS["finger_opening"]],
        "cube_pos": START[:, TS["cube_x"]:TS["cube_z"] + 1], "cube_quat": START[:, TS["cube_qx"]:TS["cube_qw"] + 1],
        "target": START[:, TS["target_x"]:TS["target_z"] + 1],
        "goal": held(goal, "pose", 7), "gripper": held(grip, "value", 1),
        "episode_start_ns": eps_start,
    }
