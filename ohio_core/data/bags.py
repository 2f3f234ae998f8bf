"""Writing rosbag2 files of this stack, with ``rosbags`` (no ROS 2 installation needed); the
timing convention the writer produces and ``data.bag_read`` relies on for bags with a task state.

Topics, types and the task-state layout: ``ohio_core.data.topics``. A bag is one rosbag2 folder
(``metadata.yaml`` + one ``.mcap`` or ``.db3`` file), written with format version 9, readable by
``ros2 bag`` (Jazzy) and by ``rosbags``.

Timing convention (what the writer produces, and what the reader assumes)
--------------------------------------------------------------------------
An episode of T control periods has states 0..T at sim times t_0 < t_1 < ... < t_T
(t_{i+1} = t_i + control period). For state j the collector publishes, all stamped t_j:

- ``/joint_states``: arm joints (+ the finger joints) by name, position, velocity, and as effort the
  torque applied over the period that ended at t_j (0 at t_0; the fingers' effort is 0);
- for j < T, ``effort_controller/commands``: the n torques commanded for period j (held over it);
- for j < T, when a new high-level goal starts (every k periods; never for torque-level
  policies), ``ohio/ee_goal`` (frame ``world``) and ``ohio/gripper_command`` (lift task only; a
  torque-level policy publishes its gripper command every period);
- ``ohio/task_state``: ``step = j``, the world at t_j (object pose, target, finger opening, door
  angles) and the reward/success of period j - 1 (NaN/0 at j = 0); the message of j = T has ``last = 1`` and says
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
forward kinematics (Pinocchio, ``controllers.robot.ArmModel``) and the start task-state
(finger opening, object pose, target, door angles); the in-memory collector builds it with the
same function (``task_observation``), so bag and memory agree exactly. Times in the returned ``Trajectories``
are seconds since the episode's first task-state message.

Reading (``data.bag_read``) streams: messages are deserialized one at a time into per-topic columns,
turned into rows a few episodes at a time. Every read returns an account: messages read per topic,
rows built, rows dropped and why, messages left unused.

MCAP bags are zstd chunk-compressed by default (``ros2 bag`` reads them natively); the collector's
settings are in ``metadata.yaml`` ``custom_data`` (``ohio.collect``, ``ohio.task_state_layout``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

from controllers.goals import matrix_to_quat
from ohio_core.data import topics as tp
from ohio_core.data.bag_common import NS as _NS
from ohio_core.data.bag_common import BagError, default_model, task_observation, typestore
from ohio_core.data.bag_read import iter_bag, read_bag
from ohio_core.data.topics import TS, TopicMap
from ohio_core.data.trajectory import Trajectories
from ohio_core.envs.arm.tasks import OBS_DIM, obs_slices, rot6_matrix

__all__ = ["BagError", "BagWriter", "EpisodeLog", "bag_size", "default_model", "iter_bag", "logs_from_trajectories",
           "logs_to_trajectories", "read_bag", "task_observation", "typestore", "write_bag"]

BASE_TIME_NS = 1_700_000_000 * 10**9
EPISODE_GAP_S = 1.0
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


# --------------------------------------------------------------------------------------------


@dataclass
class EpisodeLog:
    """One episode of T control periods, as the topics carry it (see the module docstring).

    State arrays have T + 1 rows (states 0..T; the final state may be NaN where unknown, then
    no final ``/joint_states`` is written); per-period arrays have T rows.
    """

    episode: int
    t: np.ndarray                 # (T+1,) s, sim time of each state
    q: np.ndarray                 # (T+1, n) arm joint positions
    qd: np.ndarray                # (T+1, n)
    effort: np.ndarray            # (T+1, n) torque applied over the period before each state (0 at 0)
    tau: np.ndarray               # (T, n) torque commanded for each period
    reward: np.ndarray            # (T,) reward of each period
    success: np.ndarray           # (T,) bool, at the end of each period
    object_pos: np.ndarray        # (T+1, 3) the task's object (the cube; the door handle's grasp point)
    object_quat: np.ndarray       # (T+1, 4) x, y, z, w
    target: np.ndarray            # (T+1, 3)
    finger_opening: np.ndarray    # (T+1,) m
    timeout: bool = True          # the episode ended by its horizon
    terminal: bool = False        # the episode ended in a terminal state
    finger_q: np.ndarray | None = None     # (T+1, fingers) finger joint positions, if known
    finger_qd: np.ndarray | None = None    # (T+1, fingers)
    goal: np.ndarray | None = None         # (T, 7) goal in force over each period (p, quat xyzw)
    goal_new: np.ndarray | None = None     # (T,) bool: a goal message starts at this period
    gripper: np.ndarray | None = None      # (T,) gripper command in force (0 open .. 1 closed)
    gripper_new: np.ndarray | None = None  # (T,) bool: a gripper message at this period
    step0: int = 0                         # step index of state 0
    policy: str = ""                       # behavior policy of the episode (not written per message)
    env_obs: np.ndarray | None = None      # (T, OBS_DIM) observation the policy saw (not written)
    angles: np.ndarray | None = None       # (T+1, 2) door and handle angles (rad; None: no door, 0)

    def __post_init__(self):
        T = len(self.tau)
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, np.ndarray):
                continue
            want = T + 1 if f.name in ("t", "q", "qd", "effort", "object_pos", "object_quat", "target",
                                       "finger_opening", "finger_q", "finger_qd", "angles") else T
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
            obs=task_observation(lg.q[:T], lg.qd[:T], lg.finger_opening[:T], lg.object_pos[:T], lg.object_quat[:T],
                                 lg.target[:T], None if lg.angles is None else lg.angles[:T],
                                 model).reshape(T, OBS_DIM),
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
        R = rot6_matrix(obs[:, s["object_rot6"]])
        last_row = b - 1
        closed = bool(traj.timeout[last_row] or traj.terminal[last_row])
        goal = traj.goal[r] if traj.goal is not None and np.isfinite(traj.goal[r]).any() else None
        grip = traj.gripper[r] if traj.gripper is not None and np.isfinite(traj.gripper[r]).any() else None
        logs.append(EpisodeLog(
            episode=int(traj.episode[a]), t=np.r_[t, t[-1] + dt], q=_nan_row(traj.q[r]), qd=_nan_row(traj.qd[r]),
            effort=np.vstack([np.zeros((1, traj.tau.shape[1])), traj.tau[r]]), tau=traj.tau[r], reward=traj.reward[r],
            success=traj.success[r], object_pos=_nan_row(obs[:, s["object_pos"]]),
            object_quat=_nan_row(matrix_to_quat(R)), target=_nan_row(obs[:, s["target_pos"]]),
            finger_opening=_nan_row(obs[:, s["finger_opening"]][:, 0]),
            angles=_nan_row(np.concatenate([obs[:, s["door_angle"]], obs[:, s["handle_angle"]]], 1)),
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
        lacking = [r for r in tp.WRITER_ROLES if self.topic_map.topic(r) is None]
        if lacking:
            raise BagError(f"{self.path}: the topic map names no topic for {lacking}; the writer needs them")
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
        nj = len(self.arm_joints)
        self._cmd_layout = Layout(dim=[Dim(label=",".join(self.arm_joints), size=nj, stride=nj)], data_offset=0)

    # -- lifecycle -----------------------------------------------------------------------------
    def open(self) -> "BagWriter":
        try:
            self._writer.open()
        except Exception as exc:
            raise BagError(f"{self.path}: cannot create the bag: {exc}") from None
        self._open = True
        for role in tp.WRITER_ROLES:
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
        has_fingers = log.finger_q is not None and np.shape(log.finger_q)[-1] > 0
        if has_fingers:
            names += list(self.topic_map.finger_joints)
        ts_rows = self._task_state_rows(log)
        for j in range(T + 1):
            stamp = int(ns[j])
            if np.isfinite(log.q[j]).all():
                pos, vel, eff = log.q[j], log.qd[j], log.effort[j]
                if has_fingers:
                    fq = log.finger_q[j]
                    fqd = log.finger_qd[j] if log.finger_qd is not None else np.zeros_like(fq)
                    pos, vel, eff = np.r_[pos, fq], np.r_[vel, fqd], np.r_[eff, np.zeros_like(fq)]
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
        rows[:, TS["object_x"]:TS["object_z"] + 1] = log.object_pos
        rows[:, TS["object_qx"]:TS["object_qw"] + 1] = log.object_quat
        rows[:, TS["target_x"]:TS["target_z"] + 1] = log.target
        rows[:, TS["finger_opening"]] = log.finger_opening
        if log.angles is not None:
            rows[:, [TS["door_angle"], TS["handle_angle"]]] = log.angles
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
