"""Read rosbag2 bags into time-aligned rows (``Trajectories``), streaming, with a full account.

Takes MCAP and sqlite3 storage, split bags (several files, as ``ros2 bag record --max-bag-*``
writes; also without their metadata.yaml), zstd compression (file or message), and the metadata
versions rosbag2 releases wrote (read by ``rosbags``; how a bag is opened, and which topics it
cannot read: ``data.bag_source``; ROS 1 ``.bag`` files: ``data.bag_ros1``). Which topic holds what:
``data.topics.TopicMap``. Topics the map does not use are never read; one it uses that cannot be read is an error naming it.

Two row rules, each in its own module:

- **with a task state** (this stack's bags, ``data.rows_episodic``): rows are the control periods
  the task state counts; episodes, rewards and the pairing of commands and joint states are
  described in ``data.bags``;
- **without** (a robot driver's log, ``data.rows_resampled``): rows on a control-period grid by the
  rules of ``data.resample`` (interpolated states, held commands), one episode piece per stretch
  without a gap longer than ``max_gap`` (cut every ``max_piece`` s at a whole number of rows),
  reward 0, observation = the arm's own state (``bag_common.ARM_OBS_LAYOUT``).

Missing velocities are differentiated (``resample.VELOCITY_RULE``); with ``effort_source: none``
(or empty measured efforts) the torques are NaN and the goals must come from state matching.

Streaming: ``BagStream`` (the driver) deserializes messages one at a time into per-topic columns
(``data.rows_common.ReadState``) and hands them to the row rule, which turns them into rows chunk
by chunk, so memory holds one chunk: whole episodes until ``chunk_rows`` rows are buffered (task
state), or one piece of at most ``max_piece`` s (no task state). ``BagStream`` yields the chunks;
``read_bag`` concatenates them.

Errors name the file and the problem (``BagError``): missing or unreadable file, not a bag,
truncated or corrupt storage, a topic missing, of another message type or unreadable (another
serialization format, a definition that cannot be parsed), joint names that do not match, time
going backwards, malformed task-state messages. Everything else that cannot become a
row is counted in the account, per reason, with the bag time ranges it covers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ohio_core.data import resample as rs
from ohio_core.data import topics as tp
from ohio_core.data.account import ReadAccount, stats_ms
from ohio_core.data.bag_common import ARM_OBS_LAYOUT, BagError, one_line, stamp_ns
from ohio_core.data.bag_storage import StoredBag, open_bag
from ohio_core.data.rows_common import ReadOptions, ReadState
from ohio_core.data.rows_episodic import EpisodicRows, task_state_index
from ohio_core.data.rows_resampled import ResampledRows
from ohio_core.data.topics import TS, TopicMap
from ohio_core.data.trajectory import Trajectories
from ohio_core.envs.arm.tasks import OBS_DIM, OBS_LAYOUT

_TS_ZERO = [TS[f] for f in tp.TASK_STATE_ZERO]


def read_messages(path: Path, reader: StoredBag, connections) -> Iterator[tuple]:
    """(connection, log time ns, message) of ``reader``; what the storage or the decoder cannot read is a
    ``BagError`` naming the bag (errors of the caller's own processing are not caught here)."""
    messages = iter(reader.messages(connections))
    while True:
        try:
            conn, ns, raw = next(messages)
            msg = reader.deserialize(raw, conn.msgtype)
        except StopIteration:
            return
        except Exception as exc:
            raise BagError(f"{path}: cannot read the bag's messages (truncated or corrupt?): "
                           f"{type(exc).__name__}: {one_line(exc)}") from None
        yield conn, ns, msg


def match_roles(bag: StoredBag, tm: TopicMap) -> tuple[dict[str, tuple[str, ...]], list[tuple[str, str, str]],
                                                      dict[str, set]]:
    """Which topic of the bag serves which roles of the topic map: (topic -> its roles, the problems
    as (role, topic, what is wrong) in the order of the roles, topic -> message types in the bag).
    A role's topic must be in the bag (optional roles: when present), of one of the role's types
    (``topics.READ_TYPES``) and readable (``StoredBag.unreadable``); ``commands`` only counts with
    ``effort_source: commands``, and shares a topic with ``joint_states`` only as a robot-state
    message (``topics.STATE_MESSAGE_FIELDS``)."""
    in_bag: dict[str, set] = {}
    for c in bag.connections:
        in_bag.setdefault(c.topic, set()).add(c.msgtype)
    listing = ", ".join(f"{t} ({'/'.join(sorted(ty))})" for t, ty in sorted(in_bag.items())) or "none"
    roles_of, problems = {}, []
    for role, topic in tm.roles().items():
        if role == "commands" and tm.effort_source != "commands":
            continue
        if topic not in in_bag:
            if role in tp.REQUIRED_ROLES:
                problems.append((role, topic, f"topic {topic!r} ({role}) is not in the bag; topics in the bag: "
                                              f"{listing}"))
            continue
        want = tp.READ_TYPES[role]
        shared = topic in roles_of
        if len(in_bag[topic]) != 1 or not in_bag[topic] <= set(want):
            problems.append((role, topic, f"topic {topic!r} ({role}) has message type "
                                          f"{'/'.join(sorted(in_bag[topic]))}, expected {' or '.join(want)}"))
        elif shared and not in_bag[topic] <= set(tp.STATE_MESSAGE_FIELDS):
            problems.append((role, topic, f"topic {topic!r} serves joint_states and commands, but its type "
                                          f"{'/'.join(in_bag[topic])} is not a robot-state message "
                                          f"({' or '.join(tp.STATE_MESSAGE_FIELDS)})"))
        elif topic in bag.unreadable:
            hint = f" (optional: set {role} to null in the topic map to read the bag without it)" \
                if role in tp.OPTIONAL_ROLES else ""
            problems.append((role, topic, f"topic {topic!r} ({role}) cannot be read: {bag.unreadable[topic]}{hint}"))
        else:
            roles_of[topic] = roles_of.get(topic, ()) + (role,)
    return roles_of, problems, in_bag


class BagStream:
    """A bag's rows, chunk by chunk::

        stream = BagStream(path, topic_map, options)
        for traj in stream:          # Trajectories with stamp (ns) and meta["obs_layout"]
            ...
        stream.account               # a ReadAccount, complete once the loop ends

    Episode ids are those of the task state, or numbered pieces (0, 1, ...) without one.
    """

    def __init__(self, path: str | Path, topic_map: TopicMap | None = None, options: ReadOptions | None = None,
                 model=None):
        self.path = Path(path)
        self.tm = topic_map or TopicMap()
        self.opt = options or ReadOptions()
        self.model = model
        self.account: ReadAccount | None = None
        self.custom_data: dict = {}

    def __iter__(self) -> Iterator[Trajectories]:
        reader = open_bag(self.path)
        try:
            yield from self._chunks(reader)
        finally:
            try:
                reader.close()
            except Exception:
                pass

    def _chunks(self, reader: StoredBag) -> Iterator[Trajectories]:
        path, tm = self.path, self.tm
        roles_of, problems, in_bag = match_roles(reader, tm)
        if problems:
            raise BagError(f"{path}: {problems[0][2]}")
        conns = reader.use({t: " and ".join(r) for t, r in roles_of.items()})
        start_ns = int(reader.start_time) if reader.message_count else 0
        counts = {t: 0 for t in roles_of}
        self.state = state = ReadState(path, tm, self.opt, self.model)
        self.rule = rule = EpisodicRows(state) if tm.task_state is not None else ResampledRows(state)
        self.account = ReadAccount(
            bag=str(path), info=dict(reader.info), messages=counts,
            topics_in_bag={t: "/".join(sorted(ty)) for t, ty in sorted(in_bag.items())}, start_ns=start_ns,
            duration_s=round((int(reader.end_time) - start_ns) * 1e-9, 3) if reader.message_count else 0.0,
            rows=0, episodes=0, dropped={}, row_rule=rule.row_rule,
            topics_not_read=dict(sorted(reader.unreadable.items())) or None)
        self.custom_data = reader.custom_data
        # decoding: arm-joint order per joint-name tuple and command label, task-state layout per label
        self._js_index, self._cmd_index, self._ts_index = {}, {}, {}
        self._nan_row = np.full(len(self.tm.arm_joints), np.nan)
        self._last_header, self._goal_frames = -1, set()
        last_log = {t: -1 for t in roles_of}
        for conn, ns, msg in read_messages(path, reader, conns):
            topic = conn.topic
            counts[topic] += 1
            if ns < last_log[topic]:
                raise BagError(f"{path}: time goes backwards on {topic!r}: message {counts[topic]} received at "
                               f"{ns} ns, after one at {last_log[topic]} ns")
            last_log[topic] = ns
            for role in roles_of[topic]:
                self._add(role, topic, conn.msgtype, ns, msg, counts[topic])
                yield from rule.after(role, ns)
        self._check_counts(conns, counts)
        yield from rule.finish()
        self._finish()

    def _check_counts(self, conns, counts: dict) -> None:
        """Messages read against the counts the bag's metadata states: a topic the metadata says
        has messages but that yields none is an error; fewer than stated is counted."""
        stated: dict[str, int] = {}
        for c in conns:
            stated[c.topic] = stated.get(c.topic, 0) + int(getattr(c, "msgcount", 0) or 0)
        short = {t: n - counts.get(t, 0) for t, n in stated.items() if counts.get(t, 0) < n}
        for topic, n in short.items():
            if counts.get(topic, 0) == 0:
                raise BagError(f"{self.path}: the bag's metadata states {n} messages on {topic!r} but none could "
                               f"be read (offered QoS or type in metadata.yaml differs from the data file?)")
        if short:
            self.account.messages_missing_vs_metadata = short

    def _joint_index(self, topic: str, names: tuple) -> np.ndarray:
        """Where each arm joint is in a message naming ``names``."""
        key = (topic, names)
        if key not in self._js_index:
            missing = [j for j in self.tm.arm_joints if j not in names]
            if missing:
                raise BagError(f"{self.path}: {topic!r} lacks the arm joint(s) {missing}; its messages name "
                               f"{list(names)} (pass --robot for another arm, or set arm_joints in the topic map)")
            self._js_index[key] = np.array([names.index(j) for j in self.tm.arm_joints])
        return self._js_index[key]

    def _state_message(self, topic: str, msgtype: str, msg, n: int, role: str) -> dict[str, np.ndarray]:
        """The arm's fields of a robot-state message (``topics.STATE_MESSAGE_FIELDS``), n values each."""
        out = {}
        for key, name in tp.STATE_MESSAGE_FIELDS[msgtype].items():
            v = np.asarray(getattr(msg, name, ()), float)
            if v.shape != self._nan_row.shape:
                raise BagError(f"{self.path}: {topic!r} ({role}) message {n}: {msgtype} field {name!r} has "
                               f"{v.size} values, expected {self._nan_row.size} (one per arm joint)")
            out[key] = v
        return out

    def _add(self, role: str, topic: str, msgtype: str, ns: int, msg, n: int) -> None:
        """Decode message ``n`` of ``topic`` (received at ``ns``) into the read's columns."""
        path, s, arm = self.path, self.state, self.tm.arm_joints
        if role == "joint_states" and msgtype in tp.STATE_MESSAGE_FIELDS:
            fields = self._state_message(topic, msgtype, msg, n, role)
            self._check_stamp(topic, msg, n)
            s.js_read += 1
            s.js.add(ns=ns, pos=fields["position"], vel=fields["velocity"], eff=fields["effort"])
        elif role == "commands" and msgtype in tp.STATE_MESSAGE_FIELDS:
            s.cmd.add(ns=ns, data=self._state_message(topic, msgtype, msg, n, role)["command"])
        elif role == "commands" and msgtype == tp.JOINT_STATE_TYPE:
            idx = self._joint_index(topic, tuple(msg.name))
            if len(msg.effort) != len(msg.name):
                s.drops.add(f"malformed command ({topic}: {len(msg.effort)} efforts for {len(msg.name)} names)", 1, ns)
                return
            s.cmd.add(ns=ns, data=msg.effort[idx])
        elif role == "joint_states":
            names = tuple(msg.name)
            idx = self._joint_index(topic, names)
            if len(msg.position) != len(names):
                raise BagError(f"{path}: {topic!r} message {n} has {len(names)} names but "
                               f"{len(msg.position)} positions")
            for field in ("velocity", "effort"):
                k = len(getattr(msg, field))
                if k not in (0, len(names)):
                    raise BagError(f"{path}: {topic!r} message {n} has {len(names)} names but {k} {field} values "
                                   f"(ROS: one per name, or none)")
            self._check_stamp(topic, msg, n)
            vel = msg.velocity[idx] if len(msg.velocity) else self._nan_row
            eff = msg.effort[idx] if len(msg.effort) else self._nan_row
            s.js_read += 1
            s.vel_missing += not len(msg.velocity)
            s.eff_missing += not len(msg.effort)
            s.js.add(ns=ns, pos=msg.position[idx], vel=vel, eff=eff)
        elif role == "commands":
            dims = msg.layout.dim
            label = dims[0].label if dims else ""
            if label not in self._cmd_index:
                order = None
                names = [x.strip() for x in label.split(",")] if "," in label else None
                if names is not None:
                    if sorted(names) != sorted(arm):
                        raise BagError(f"{path}: {topic!r} names joints {names}, expected {list(arm)} "
                                       f"(pass --robot for another arm, or set arm_joints in the topic map)")
                    order = np.array([names.index(j) for j in arm])
                self._cmd_index[label] = order
            order = self._cmd_index[label]
            if len(msg.data) != len(arm):
                s.drops.add(f"malformed command ({topic}: not {len(arm)} values)", 1, ns)
                return
            s.cmd.add(ns=ns, data=msg.data if order is None else msg.data[order])
        elif role == "task_state":
            dims = msg.layout.dim
            label = dims[0].label if dims else ""
            if label not in self._ts_index:
                self._ts_index[label] = task_state_index(path, topic, label, self.tm)
            mine, theirs, need = self._ts_index[label]
            if len(msg.data) < need:
                s.drops.add(f"malformed task_state ({topic}: {len(msg.data)} values, layout needs {need})", 1, ns)
                return
            row = np.full(len(tp.TASK_STATE_FIELDS), np.nan)
            row[_TS_ZERO] = 0.0
            row[mine] = msg.data[theirs]
            s.ts.add(ns=ns, row=row)
        elif role == "ee_goal":
            p, o = msg.pose.position, msg.pose.orientation
            self._goal_frames.add(msg.header.frame_id)
            s.goal.add(ns=ns, pose=(p.x, p.y, p.z, o.x, o.y, o.z, o.w))
        elif role == "gripper":
            s.grip.add(ns=ns, value=float(msg.data))

    def _check_stamp(self, topic: str, msg, n: int) -> None:
        """Joint-state header stamps never go backwards."""
        stamp = stamp_ns(msg.header)
        if stamp < self._last_header:
            raise BagError(f"{self.path}: time goes backwards on {topic!r}: header stamp {stamp} ns of message "
                           f"{n} is before the previous one ({self._last_header} ns)")
        self._last_header = stamp

    def _finish(self) -> None:
        """The account's entries known at the end of the bag."""
        acc, s, tm = self.account, self.state, self.tm
        self.rule.note(acc)
        if tm.effort_source == "commands":
            acc.commands_unused = int(acc.messages.get(tm.commands, 0) - s.used["cmd"])
        acc.rows, acc.episodes = s.rows, len(s.episodes)
        acc.velocities = ("from joint_states" if s.vel_missing == 0 else
                          f"{rs.VELOCITY_RULE} ({s.vel_missing} joint states without velocities)")
        if tm.effort_source == "commands":
            acc.efforts = f"commanded: {tm.commands} (held over the period)"
        elif s.efforts() == "joint_states":
            acc.efforts = f"measured: {tm.joint_states} effort (first joint state after the period's start)"
        else:
            why = "effort_source: none" if tm.effort_source == "none" else \
                f"{s.eff_missing} of {acc.messages.get(tm.joint_states, 0)} joint states have no effort"
            acc.efforts = f"none ({why}): torques unknown, goals need state matching"
        if s.efforts() != "none" and not tm.effort_includes_gravity(s.efforts()):
            acc.efforts += "; logged without g(q), added from the robot model"
        acc.alignment = {"state_ms": stats_ms(np.concatenate(s.state_err) if s.state_err else []),
                         "command_age_ms": stats_ms(np.concatenate(s.cmd_age) if s.cmd_age else []),
                         "rule": self.rule.alignment_rule}
        if self._goal_frames - {tp.GOAL_FRAME, ""}:
            acc.goal_frames = sorted(self._goal_frames)
        acc.dropped = dict(s.drops.counts)
        acc.drop_time_ranges_s = s.drops.ranges_s(acc.start_ns)
        acc.drop_time_ranges_not_listed = dict(s.drops.more) or None


def read_bag(path: str | Path, topic_map: TopicMap | None = None, *, model=None, max_state_age: float = 0.01,
             options: ReadOptions | None = None) -> Trajectories:
    """All rows of a bag (folder, ``.mcap`` or ``.db3``) in one ``Trajectories``; the account of the
    read is in ``meta["account"]`` (module docstring). ``max_state_age`` is a shortcut for
    ``options.max_state_age``."""
    opt = options or ReadOptions(max_state_age=max_state_age)
    stream = BagStream(path, topic_map, opt, model)
    parts = list(stream)
    path = Path(path)
    if parts:
        out = Trajectories.concatenate(parts)
    else:
        out = _empty(stream)
    out.meta = {"source": str(path), "topic_map": stream.tm.to_dict(), "account": stream.account,
                "custom_data": stream.custom_data,
                "obs_layout": parts[0].meta["obs_layout"] if parts else [list(x) for x in OBS_LAYOUT]}
    return out


def iter_bag(path: str | Path, topic_map: TopicMap | None = None, options: ReadOptions | None = None,
             model=None) -> BagStream:
    """``BagStream(path, topic_map, options, model)``: the bag's rows chunk by chunk."""
    return BagStream(path, topic_map, options, model)


def _empty(stream: BagStream) -> Trajectories:
    width = OBS_DIM if stream.tm.task_state is not None else sum(n for _, n in ARM_OBS_LAYOUT)
    z, nj = np.zeros(0), len(stream.tm.arm_joints)
    return Trajectories(t=z, stamp=np.zeros(0, np.int64), q=np.zeros((0, nj)), qd=np.zeros((0, nj)),
                        tau=np.zeros((0, nj)), reward=z, success=np.zeros(0, bool), episode=np.zeros(0, np.int64),
                        step=np.zeros(0, np.int64), obs=np.zeros((0, width)), timeout=np.zeros(0, bool),
                        terminal=np.zeros(0, bool))
