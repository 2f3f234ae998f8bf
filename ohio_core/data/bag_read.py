"""Read rosbag2 bags into time-aligned rows (``Trajectories``), streaming, with a full account.

Takes MCAP and sqlite3 storage, split bags (several files, as ``ros2 bag record --max-bag-*``
writes; also without their metadata.yaml), zstd compression (file or message), and the metadata
versions rosbag2 releases wrote (read by ``rosbags``; how a bag is opened, and which topics it
cannot read: ``data.bag_source``). Which topic holds what: ``data.topics.TopicMap``. Topics the
map does not use are never read; one it uses that cannot be read is an error naming it.

Two row rules:

- **with a task state** (this stack's bags): rows are the control periods the task state counts;
  episodes, rewards and the pairing of commands and joint states are described in ``data.bags``;
- **without** (a robot driver's log): rows on a control-period grid by the rules of
  ``data.resample`` (interpolated states, held commands), one episode piece per stretch without a
  gap longer than ``max_gap`` (cut every ``max_piece`` s at a whole number of rows), reward 0,
  observation = the arm's own state (``bag_common.ARM_OBS_LAYOUT``).

Missing velocities are differentiated (``resample.VELOCITY_RULE``); with ``effort_source: none``
(or empty measured efforts) the torques are NaN and the goals must come from state matching.

Streaming: messages are deserialized one at a time into per-topic columns and turned into rows
chunk by chunk, so memory holds one chunk: whole episodes until ``chunk_rows`` rows are buffered
(task state), or one piece of at most ``max_piece`` s (no task state). ``BagStream`` yields the
chunks; ``read_bag`` concatenates them.

Errors name the file and the problem (``BagError``): missing or unreadable file, not a bag,
truncated or corrupt storage, a topic missing, of another message type or unreadable (another
serialization format, a definition that cannot be parsed), joint names that do not match, time
going backwards, malformed task-state messages. Everything else that cannot become a
row is counted in the account, per reason, with the bag time ranges it covers.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ohio_core.data import resample as rs
from ohio_core.data import topics as tp
from ohio_core.data.account import Drops, stats_ms
from ohio_core.data.bag_common import ARM_OBS_LAYOUT, BagError, arm_observation, stamp_ns, task_observation
from ohio_core.data.bag_source import OpenBag, bag_custom_data, one_line, open_bag
from ohio_core.data.topics import TS, TopicMap
from ohio_core.data.trajectory import Trajectories
from ohio_core.envs.arm.tasks import OBS_DIM, OBS_LAYOUT

_TS_FLAGS = ("success", "last", "timeout", "terminal")


@dataclass(frozen=True)
class ReadOptions:
    """How rows are built. Times in seconds."""

    control_period: float = 0.02   # the deployment controller's period (grid of logs without task state)
    max_state_age: float = 0.01    # task state: a joint state may be this much older than its command
    max_gap: float = 0.1           # no task state: longer joint-state gaps end a piece; older commands are missing
    max_piece: float = 60.0        # no task state: longest piece (s)
    chunk_rows: int = 5000         # task state: rows buffered before whole episodes are handed on

    def __post_init__(self):
        for name in ("control_period", "max_state_age", "max_gap", "max_piece"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ValueError(f"ReadOptions.{name} must be a positive number of seconds, got {v!r}")
        if self.max_piece < 10 * self.control_period:
            raise ValueError(f"ReadOptions.max_piece ({self.max_piece} s) must be at least 10 control periods")
        if not isinstance(self.chunk_rows, int) or self.chunk_rows < 1:
            raise ValueError(f"ReadOptions.chunk_rows must be a positive integer, got {self.chunk_rows!r}")

    @property
    def period_ns(self) -> int:
        return int(round(self.control_period * 1e9))


class _Columns:
    """Growing per-topic columns (Python lists), turned into arrays when a chunk is cut."""

    def __init__(self, *names):
        self.names = names
        self.cols = {n: [] for n in names}

    def add(self, **vals):
        for k, v in vals.items():
            self.cols[k].append(v)

    def array(self, name, dtype=float, width=None):
        v = self.cols[name]
        if not v:
            return np.zeros((0,) if width is None else (0, width), dtype)
        return np.asarray(v, dtype)

    def split(self, ns: int, keep_before: int = 0) -> "_Columns":
        """Move the entries received before ``ns`` out into a new ``_Columns`` (returned); the last
        ``keep_before`` of them also stay here (context for the next chunk)."""
        times = self.cols["ns"]
        i = int(np.searchsorted(np.asarray(times, np.int64), ns, "left")) if times else 0
        out = _Columns(*self.names)
        for k in self.names:
            out.cols[k] = self.cols[k][:i]
            self.cols[k] = self.cols[k][max(i - keep_before, 0):]
        return out

    def __len__(self):
        return len(self.cols["ns"])


def open_reader(path: Path) -> OpenBag:
    """The open bag (``bag_source.open_bag``), or ``BagError`` naming the file and the problem."""
    return open_bag(path)


def _read_messages(path: Path, reader: OpenBag, connections) -> Iterator[tuple]:
    """(connection, log time ns, message) of ``reader``; what the storage or the decoder cannot read is a
    ``BagError`` naming the bag (errors of this module's own processing are not caught here)."""
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


def custom_data(path: Path) -> dict:
    """``custom_data`` of a bag (``bag_source.bag_custom_data``; {} when none is recorded)."""
    return bag_custom_data(path)


def match_roles(bag: OpenBag, tm: TopicMap) -> tuple[dict[str, str], list[tuple[str, str, str]], dict[str, set]]:
    """Which topic of the bag serves each role of the topic map: (topic -> role, the problems as
    (role, topic, what is wrong) in the order of the roles, topic -> message types in the bag).
    A role's topic must be in the bag (optional roles: when present), of the role's type and
    readable (``OpenBag.unreadable``); ``commands`` only counts with ``effort_source: commands``."""
    in_bag: dict[str, set] = {}
    for c in bag.connections:
        in_bag.setdefault(c.topic, set()).add(c.msgtype)
    listing = ", ".join(f"{t} ({'/'.join(sorted(ty))})" for t, ty in sorted(in_bag.items())) or "none"
    role_of, problems = {}, []
    for role, topic in tm.roles().items():
        if role == "commands" and tm.effort_source != "commands":
            continue
        if topic not in in_bag:
            if role in tp.REQUIRED_ROLES:
                problems.append((role, topic, f"topic {topic!r} ({role}) is not in the bag; topics in the bag: "
                                              f"{listing}"))
            continue
        want = tp.ROLE_TYPES[role]
        if in_bag[topic] != {want}:
            problems.append((role, topic, f"topic {topic!r} ({role}) has message type "
                                          f"{'/'.join(sorted(in_bag[topic]))}, expected {want}"))
        elif topic in bag.unreadable:
            hint = f" (optional: set {role} to null in the topic map to read the bag without it)" \
                if role in tp.OPTIONAL_ROLES else ""
            problems.append((role, topic, f"topic {topic!r} ({role}) cannot be read: {bag.unreadable[topic]}{hint}"))
        else:
            role_of[topic] = role
    return role_of, problems, in_bag


class BagStream:
    """A bag's rows, chunk by chunk::

        stream = BagStream(path, topic_map, options)
        for traj in stream:          # Trajectories with stamp (ns) and meta["obs_layout"]
            ...
        stream.account               # complete once the loop ends

    Episode ids are those of the task state, or numbered pieces (0, 1, ...) without one.
    """

    def __init__(self, path: str | Path, topic_map: TopicMap | None = None, options: ReadOptions | None = None,
                 model=None):
        self.path = Path(path)
        self.tm = topic_map or TopicMap()
        self.opt = options or ReadOptions()
        self.model = model
        self.drops = Drops()
        self.account: dict = {}
        self.custom_data: dict = {}

    # -- the message loop ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Trajectories]:
        reader = open_reader(self.path)
        try:
            yield from self._chunks(reader)
        finally:
            try:
                reader.close()
            except Exception:
                pass

    def _roles(self, reader: OpenBag) -> tuple[dict, list, dict]:
        role_of, problems, in_bag = match_roles(reader, self.tm)
        if problems:
            raise BagError(f"{self.path}: {problems[0][2]}")
        return role_of, reader.use(role_of), in_bag

    def _chunks(self, reader) -> Iterator[Trajectories]:
        path, tm, opt = self.path, self.tm, self.opt
        role_of, conns, in_bag = self._roles(reader)
        episodic = tm.task_state is not None
        self.start_ns = int(reader.start_time) if reader.message_count else 0
        counts = {t: 0 for t in role_of}
        self.account = {
            "bag": str(path), **reader.info, "messages": counts,
            "topics_in_bag": {t: "/".join(sorted(ty)) for t, ty in sorted(in_bag.items())},
            "start_ns": self.start_ns, "duration_s": round((int(reader.end_time) - self.start_ns) * 1e-9, 3)
            if reader.message_count else 0.0,
            "rows": 0, "episodes": 0, "dropped": self.drops.counts,
            "row_rule": "task_state periods" if episodic else f"resampled to {opt.control_period:g} s",
        }
        if reader.unreadable:
            self.account["topics_not_read"] = dict(sorted(reader.unreadable.items()))
        self.custom_data = reader.custom_data
        self.js = _Columns("ns", "pos", "vel", "eff")
        self.cmd = _Columns("ns", "data")
        self.ts = _Columns("ns", "row")
        self.goal = _Columns("ns", "pose")
        self.grip = _Columns("ns", "value")
        self._state = {"js_index": {}, "cmd_index": {}, "ts_index": {}, "last_header": -1, "goal_frames": set(),
                       "seen_episodes": set(), "episodes": set(), "piece": 0, "grid_next": None,
                       "js_read": 0, "vel_missing": 0, "eff_missing": 0, "state_err": [], "cmd_age": [], "js_used": 0,
                       "cmd_used": 0, "last_js": -1, "last_cmd": -1, "cuts": 0, "ts_episode": None, "ts_rows": 0}
        last_log = {t: -1 for t in role_of}
        for conn, ns, msg in _read_messages(path, reader, conns):
            topic = conn.topic
            counts[topic] += 1
            if ns < last_log[topic]:
                raise BagError(f"{path}: time goes backwards on {topic!r}: message {counts[topic]} received at "
                               f"{ns} ns, after one at {last_log[topic]} ns")
            last_log[topic] = ns
            role = role_of[topic]
            self._add(role, topic, ns, msg, counts[topic])
            if episodic:
                if role == "task_state":
                    ep = self.ts.cols["row"][-1][TS["episode"]]
                    st = self._state
                    if st["ts_episode"] is not None and ep != st["ts_episode"] and st["ts_rows"] >= opt.chunk_rows:
                        yield from self._flush_episodic(ns)
                    st["ts_episode"] = ep
                    st["ts_rows"] += 1
            elif role == "joint_states":
                yield from self._flush_resampled(final=False)
        self._check_counts(conns, counts)
        if episodic:
            yield from self._flush_episodic(None)
        else:
            yield from self._flush_resampled(final=True)
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
            self.account["messages_missing_vs_metadata"] = short

    def _add(self, role: str, topic: str, ns: int, msg, n: int) -> None:
        path, st, arm = self.path, self._state, self.tm.arm_joints
        if role == "joint_states":
            names = tuple(msg.name)
            idx = st["js_index"].get(names)
            if idx is None:
                missing = [j for j in arm if j not in names]
                if missing:
                    raise BagError(f"{path}: {topic!r} lacks the arm joint(s) {missing}; its messages name "
                                   f"{list(names)} (set arm_joints in the topic map)")
                idx = st["js_index"][names] = np.array([names.index(j) for j in arm])
            if len(msg.position) != len(names):
                raise BagError(f"{path}: {topic!r} message {n} has {len(names)} names but "
                               f"{len(msg.position)} positions")
            for field in ("velocity", "effort"):
                k = len(getattr(msg, field))
                if k not in (0, len(names)):
                    raise BagError(f"{path}: {topic!r} message {n} has {len(names)} names but {k} {field} values "
                                   f"(ROS: one per name, or none)")
            stamp = stamp_ns(msg.header)
            if stamp < st["last_header"]:
                raise BagError(f"{path}: time goes backwards on {topic!r}: header stamp {stamp} ns of message "
                               f"{n} is before the previous one ({st['last_header']} ns)")
            st["last_header"] = stamp
            vel = msg.velocity[idx] if len(msg.velocity) else _NAN7
            eff = msg.effort[idx] if len(msg.effort) else _NAN7
            st["js_read"] += 1
            st["vel_missing"] += not len(msg.velocity)
            st["eff_missing"] += not len(msg.effort)
            self.js.add(ns=ns, pos=msg.position[idx], vel=vel, eff=eff)
        elif role == "commands":
            dims = msg.layout.dim
            label = dims[0].label if dims else ""
            if label not in st["cmd_index"]:
                order = None
                names = [s.strip() for s in label.split(",")] if "," in label else None
                if names is not None:
                    if sorted(names) != sorted(arm):
                        raise BagError(f"{path}: {topic!r} names joints {names}, expected {list(arm)} "
                                       f"(set arm_joints in the topic map)")
                    order = np.array([names.index(j) for j in arm])
                st["cmd_index"][label] = order
            order = st["cmd_index"][label]
            if len(msg.data) != 7:
                self.drops.add(f"malformed command ({topic}: not 7 values)", 1, ns)
                return
            self.cmd.add(ns=ns, data=msg.data if order is None else msg.data[order])
        elif role == "task_state":
            dims = msg.layout.dim
            label = dims[0].label if dims else ""
            if label not in st["ts_index"]:
                st["ts_index"][label] = _task_state_index(path, topic, label, self.tm)
            mine, theirs, need = st["ts_index"][label]
            if len(msg.data) < need:
                self.drops.add(f"malformed task_state ({topic}: {len(msg.data)} values, layout needs {need})", 1, ns)
                return
            row = np.full(len(tp.TASK_STATE_FIELDS), np.nan)
            row[[TS[f] for f in _TS_FLAGS]] = 0.0
            row[mine] = msg.data[theirs]
            self.ts.add(ns=ns, row=row)
        elif role == "ee_goal":
            p, o = msg.pose.position, msg.pose.orientation
            st["goal_frames"].add(msg.header.frame_id)
            self.goal.add(ns=ns, pose=(p.x, p.y, p.z, o.x, o.y, o.z, o.w))
        elif role == "gripper":
            self.grip.add(ns=ns, value=float(msg.data))

    def _finish(self) -> None:
        acc, st, tm = self.account, self._state, self.tm
        n_js = acc["messages"].get(tm.joint_states, 0)
        if tm.task_state is not None:
            acc["joint_states_unused"] = int(n_js - st["js_used"])
        else:
            acc["pieces_cut_at_max_piece"] = st["cuts"]
            if acc["duration_s"]:
                acc["joint_state_rate_hz"] = round(n_js / acc["duration_s"], 1)
        if tm.effort_source == "commands":
            acc["commands_unused"] = int(acc["messages"].get(tm.commands, 0) - st["cmd_used"])
        acc["episodes"] = len(st["episodes"])
        acc["velocities"] = ("from joint_states" if st["vel_missing"] == 0 else
                             f"{rs.VELOCITY_RULE} ({st['vel_missing']} joint states without velocities)")
        if tm.effort_source == "commands":
            acc["efforts"] = f"commanded: {tm.commands} (held over the period)"
        elif self._use_efforts() == "joint_states":
            acc["efforts"] = f"measured: {tm.joint_states} effort (first joint state after the period's start)"
        else:
            why = "effort_source: none" if tm.effort_source == "none" else \
                f"{st['eff_missing']} of {n_js} joint states have no effort"
            acc["efforts"] = f"none ({why}): torques unknown, goals need state matching"
        acc["alignment"] = {"state_ms": stats_ms(np.concatenate(st["state_err"]) if st["state_err"] else []),
                            "command_age_ms": stats_ms(np.concatenate(st["cmd_age"]) if st["cmd_age"] else [])}
        acc["alignment"]["rule"] = ("joint state at or before the period's command (at most "
                                    f"{self.opt.max_state_age * 1e3:g} ms older)" if tm.task_state is not None else
                                    "states interpolated linearly at the grid time; commands held (zero-order)")
        if st["goal_frames"] - {tp.GOAL_FRAME, ""}:
            acc["goal_frames"] = sorted(st["goal_frames"])
        acc["dropped"] = dict(self.drops.counts)
        acc["drop_time_ranges_s"] = self.drops.ranges_s(self.start_ns)
        if self.drops.more:
            acc["drop_time_ranges_not_listed"] = dict(self.drops.more)

    def _use_efforts(self) -> str:
        """Where this chunk's torques come from: commands, joint_states or none."""
        src = self.tm.effort_source
        st = self._state
        if src == "joint_states" and st["js_read"] and st["eff_missing"] == st["js_read"]:
            return "none"
        return src

    def _trajectories(self, rows: dict, layout) -> Trajectories:
        n = len(rows["t"])
        rows.setdefault("goal", None)
        rows.setdefault("gripper", None)
        meta = {"source": str(self.path), "obs_layout": [list(x) for x in layout]}
        self.account["rows"] += n
        self._state["episodes"].update(int(e) for e in np.unique(rows["episode"]))
        return Trajectories(meta=meta, **rows)

    # -- rows from task-state periods ---------------------------------------------------------------
    def _flush_episodic(self, boundary: int | None) -> Iterator[Trajectories]:
        if boundary is None:
            js, cmd, ts, goal, grip = self.js, self.cmd, self.ts, self.goal, self.grip
        else:
            js = self.js.split(boundary, keep_before=1)
            cmd, ts = self.cmd.split(boundary), self.ts.split(boundary)
            goal, grip = self.goal.split(boundary), self.grip.split(boundary)
            self._state["ts_rows"] = len(self.ts)
        rows = self._assemble(js, cmd, ts, goal, grip)
        if rows is not None and len(rows["t"]):
            if self._state["vel_missing"]:
                rows["qd"] = rs.differentiate(rows["q"], self.opt.control_period, _pieces(rows))
            obs = task_observation(rows["q"], rows["qd"], rows.pop("finger_opening"), rows.pop("cube_pos"),
                                   rows.pop("cube_quat"), rows.pop("target"), self.model)
            rows["obs"] = obs.reshape(len(rows["t"]), OBS_DIM)
            yield self._trajectories(rows, OBS_LAYOUT)

    def _assemble(self, js, cmd, ts, goal, grip) -> dict | None:
        """Pair one chunk's messages into rows (``data.bags``: episode boundaries and rewards)."""
        path, tm, opt, drops, st = self.path, self.tm, self.opt, self.drops, self._state
        ts_ns, TSV = ts.array("ns", np.int64), ts.array("row", width=len(tp.TASK_STATE_FIELDS))
        if len(ts_ns) == 0:
            return None
        js_ns, js_pos, js_vel = js.array("ns", np.int64), js.array("pos", width=7), js.array("vel", width=7)
        js_eff = js.array("eff", width=7)
        cmd_ns, cmd_data = cmd.array("ns", np.int64), cmd.array("data", width=7)
        ep_f, st_f = TSV[:, TS["episode"]], TSV[:, TS["step"]]
        bad = ~np.isfinite(ep_f) | ~np.isfinite(st_f) | (ep_f != np.round(ep_f)) | (st_f != np.round(st_f))
        if bad.any():
            m = int(np.flatnonzero(bad)[0])
            raise BagError(f"{path}: {tm.task_state!r} message at {ts_ns[m]} ns: episode/step must be integers, "
                           f"got {ep_f[m]}, {st_f[m]}")
        ep, step_all = ep_f.astype(np.int64), st_f.astype(np.int64)
        # episodes: contiguous runs in time, steps increasing within each
        run_start = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])
        run_ep = ep[run_start]
        for r, e in enumerate(run_ep):
            if int(e) in st["seen_episodes"]:
                raise BagError(f"{path}: {tm.task_state!r}: episode {e} resumes at {ts_ns[run_start[r]]} ns "
                               f"after another episode: episodes interleave in time")
            st["seen_episodes"].add(int(e))
        same = ep[1:] == ep[:-1]
        back = np.flatnonzero(same & (step_all[1:] <= step_all[:-1]))
        if back.size:
            m = int(back[0])
            raise BagError(f"{path}: time goes backwards on {tm.task_state!r}: episode {ep[m]} step {step_all[m + 1]} "
                           f"at {ts_ns[m + 1]} ns comes after step {step_all[m]} at {ts_ns[m]} ns")
        run_id = np.cumsum(np.r_[True, ~same]) - 1
        ep_start_ns = ts_ns[run_start][run_id]
        jump = step_all[1:] - step_all[:-1]
        skipped = np.flatnonzero(same & (jump > 1))
        drops.add("task_state missing (step skipped)", int(np.sum(jump[skipped])), ts_ns[skipped],
                  ts_ns[skipped + 1])
        s_idx = np.flatnonzero(same & (jump == 1))
        e_idx = s_idx + 1
        efforts = self._use_efforts()
        if efforts == "commands":
            # the command of each period: the first in [start, end)
            i0 = np.searchsorted(cmd_ns, ts_ns[s_idx], "left")
            i1 = np.searchsorted(cmd_ns, ts_ns[e_idx], "left")
            ok = i1 - i0 >= 1
            drops.add("no command in the period", int(np.sum(~ok)), ts_ns[s_idx[~ok]], ts_ns[e_idx[~ok]])
            c = np.minimum(i0, max(len(cmd_ns) - 1, 0))
            anchor = cmd_ns[c] if len(cmd_ns) else np.zeros(len(s_idx), np.int64)
        else:
            ok = np.ones(len(s_idx), bool)
            c = np.zeros(len(s_idx), np.int64)
            anchor = ts_ns[s_idx]
        # the joint state: latest at or before the anchor, not older than max_state_age
        j = np.searchsorted(js_ns, anchor, "right") - 1
        jj = np.maximum(j, 0)
        age = anchor - (js_ns[jj] if len(js_ns) else 0)
        ok_js = (j >= 0) & (age <= int(round(opt.max_state_age * 1e9)))
        bad_js = ok & ~ok_js
        drops.add("no joint_states within max_state_age at or before the command", int(np.sum(bad_js)),
                  ts_ns[s_idx[bad_js]], ts_ns[e_idx[bad_js]])
        keep = ok & ok_js
        s_idx, e_idx, c, jj, anchor, age = s_idx[keep], e_idx[keep], c[keep], jj[keep], anchor[keep], age[keep]
        if efforts == "commands":
            self._count_used("cmd", cmd_ns[c])
            tau = cmd_data[c]
        elif efforts == "joint_states":
            # measured: the first joint state after the period's start, at or before its end
            nxt = np.searchsorted(js_ns, anchor, "right")
            valid = nxt < len(js_ns)
            valid[valid] &= js_ns[nxt[valid]] <= ts_ns[e_idx[valid]]
            tau = np.where(valid[:, None], js_eff[np.minimum(nxt, max(len(js_ns) - 1, 0))], np.nan)
            valid &= np.isfinite(tau).all(1)
            drops.add("no measured effort within the period", int(np.sum(~valid)), ts_ns[s_idx[~valid]],
                      ts_ns[e_idx[~valid]])
            s_idx, e_idx, jj, anchor, age, tau = (x[valid] for x in (s_idx, e_idx, jj, anchor, age, tau))
        else:
            tau = np.full((len(s_idx), 7), np.nan)
        self._count_used("js", js_ns[jj])
        st["state_err"].append(age)
        if efforts == "commands":
            st["cmd_age"].append(np.zeros(len(c), np.int64))
        start_ns = ep_start_ns[s_idx]

        def held(col: _Columns, name: str, width: int):
            if len(col) == 0:
                return None
            ns, val = col.array("ns", np.int64), col.array(name, width=width if width > 1 else None)
            g = np.searchsorted(ns, anchor, "right") - 1
            valid = (g >= 0) & (ns[np.maximum(g, 0)] >= start_ns)
            return np.where(valid.reshape(-1, *([1] * (val.ndim - 1))), val[np.maximum(g, 0)], np.nan)

        END, START = TSV[e_idx], TSV[s_idx]
        timeout, terminal = END[:, TS["timeout"]] > 0.5, END[:, TS["terminal"]] > 0.5
        timeout |= (END[:, TS["last"]] > 0.5) & ~terminal & ~timeout
        rep, step = ep[s_idx], step_all[s_idx]
        # episode ends and gaps: the last row of each run of consecutive steps must close it
        n = len(s_idx)
        run_end = np.ones(n, bool)
        if n > 1:
            run_end[:-1] = (rep[1:] != rep[:-1]) | (step[1:] != step[:-1] + 1)
        open_end = run_end & ~(timeout | terminal)
        if open_end.any():
            is_ep_end = np.r_[rep[1:] != rep[:-1], True]
            acc = self.account
            acc.setdefault("episodes_not_closed", []).extend(sorted(int(e) for e in rep[open_end & is_ep_end]))
            acc["gaps_closed_by_timeout"] = acc.get("gaps_closed_by_timeout", 0) + int(np.sum(open_end & ~is_ep_end))
            timeout |= open_end
        return {
            "t": (js_ns[jj] - start_ns) * 1e-9, "stamp": js_ns[jj],
            "q": js_pos[jj], "qd": js_vel[jj], "tau": tau,
            "reward": END[:, TS["reward"]], "success": END[:, TS["success"]] > 0.5,
            "episode": rep, "step": step, "timeout": timeout, "terminal": terminal,
            "finger_opening": START[:, TS["finger_opening"]],
            "cube_pos": START[:, TS["cube_x"]:TS["cube_z"] + 1], "cube_quat": START[:, TS["cube_qx"]:TS["cube_qw"] + 1],
            "target": START[:, TS["target_x"]:TS["target_z"] + 1],
            "goal": held(goal, "pose", 7), "gripper": held(grip, "value", 1),
        }

    # -- rows on a control-period grid (no task state) ----------------------------------------------
    def _flush_resampled(self, final: bool) -> Iterator[Trajectories]:
        """Hand on what the buffered joint states complete: a piece ended by a gap (or by the end of
        the bag) whole, and a longer piece in stretches of ``max_piece`` s."""
        opt, st = self.opt, self._state
        T, gap = opt.period_ns, int(round(opt.max_gap * 1e9))
        piece_rows = max(int(opt.max_piece / opt.control_period), 1)
        js_ns = self.js.cols["ns"]
        if not js_ns:
            return
        if not final:
            ended = len(js_ns) >= 2 and js_ns[-1] - js_ns[-2] > gap
            start = st["grid_next"] if st["grid_next"] is not None else js_ns[0]
            if not ended and js_ns[-1] - start < piece_rows * T + 2 * gap:
                return
        buf = {"ns": np.asarray(js_ns, np.int64), "pos": self.js.array("pos", width=7),
               "vel": self.js.array("vel", width=7), "eff": self.js.array("eff", width=7)}
        cmd = {"ns": self.cmd.array("ns", np.int64), "data": self.cmd.array("data", width=7)}
        spans = rs.pieces(buf["ns"], gap)
        consumed = None
        for i, (a, b) in enumerate(spans):
            closed = final or i < len(spans) - 1
            nxt = int(buf["ns"][b]) if b < len(buf["ns"]) else None
            while True:
                rows, done_until = self._piece_rows({k: v[a:b] for k, v in buf.items()}, cmd, closed, nxt)
                if rows is not None:
                    yield self._trajectories(rows, ARM_OBS_LAYOUT)
                if done_until is None:
                    break
                consumed = done_until
                if st["grid_next"] is None:
                    break
        if consumed is not None:
            self._consume(consumed)

    def _piece_rows(self, js: dict, cmd: dict, closed: bool, next_ns: int | None) -> tuple[dict | None, int | None]:
        """(rows of the next piece of the joint-state span ``js``, time before which the messages
        are used up); (None, None) while an open span does not yet hold a full piece."""
        opt, st, drops = self.opt, self._state, self.drops
        T, gap = opt.period_ns, int(round(opt.max_gap * 1e9))
        piece_rows = max(int(opt.max_piece / opt.control_period), 1)
        jn = js["ns"]
        t_first, t_last = int(jn[0]), int(jn[-1])
        start = st["grid_next"] if st["grid_next"] is not None and t_first <= st["grid_next"] <= t_last else None
        efforts = self._use_efforts()
        if start is None:
            if efforts == "commands":
                i = int(np.searchsorted(cmd["ns"], t_first, "left"))
                if i >= len(cmd["ns"]) or cmd["ns"][i] > t_last:
                    if not closed:
                        return None, None
                    drops.add("no command while the joint states run", max((t_last - t_first) // T, 1), t_first, t_last)
                    st["grid_next"] = None
                    return None, t_last + 1
                start = int(cmd["ns"][i])
            else:
                start = t_first
        span = rs.grid(start, t_last, T)
        if not closed and (len(span) < piece_rows or span[piece_rows - 1] + T + gap > t_last):
            st["grid_next"] = start
            return None, None
        times = span[:piece_rows]
        if len(times) == 0:
            st["grid_next"] = None
            return None, t_last + 1
        q, err = rs.interpolate(jn, js["pos"], times)
        vel_missing = not np.isfinite(js["vel"]).all()
        qd = rs.differentiate(q, opt.control_period, np.zeros(len(times), int)) if vel_missing else \
            rs.interpolate(jn, js["vel"], times)[0]
        if efforts == "commands":
            tau, age = rs.hold(cmd["ns"], cmd["data"], times, gap)
            self._count_used("cmd", (times - age)[age >= 0])
            st["cmd_age"].append(age[age >= 0])
            missing = age < 0
            drops.add(f"no command within max_gap ({opt.max_gap:g} s) before the period", int(missing.sum()),
                      times[missing], times[missing] + T)
        elif efforts == "joint_states":
            tau = rs.next_within(jn, js["eff"], times, T)
            missing = ~np.isfinite(tau).all(1)
            drops.add("no measured effort within the period", int(missing.sum()), times[missing], times[missing] + T)
        else:
            tau = np.full((len(times), 7), np.nan)
            missing = np.zeros(len(times), bool)
        st["state_err"].append(err)
        episode = st["piece"]
        st["piece"] += 1
        if len(span) > len(times):
            st["cuts"] += 1
            st["grid_next"] = int(times[-1] + T)
            done_until = st["grid_next"] - gap
        else:
            st["grid_next"] = None
            done_until = t_last + 1
            if next_ns is not None:
                drops.add(f"gap longer than max_gap ({opt.max_gap:g} s) in the joint states",
                          max(int((next_ns - times[-1]) // T) - 1, 1), int(times[-1] + T), next_ns)
        rows = {"t": (times - times[0]) * 1e-9, "stamp": times, "q": q, "qd": qd, "tau": tau,
                "reward": np.zeros(len(times)), "success": np.zeros(len(times), bool),
                "episode": np.full(len(times), episode, np.int64), "step": np.arange(len(times), dtype=np.int64),
                "timeout": np.zeros(len(times), bool), "terminal": np.zeros(len(times), bool)}
        rows["timeout"][-1] = True
        for name, col, field, width in (("goal", self.goal, "pose", 7), ("gripper", self.grip, "value", 1)):
            if len(col):
                v, _ = rs.hold(col.array("ns", np.int64), col.array(field, width=width).reshape(len(col), width),
                               times, np.iinfo(np.int64).max // 4)
                rows[name] = v if width > 1 else v[:, 0]
        keep = ~missing
        if not keep.any():
            return None, done_until
        rows = {k: v[keep] for k, v in rows.items()}
        rows["obs"] = arm_observation(rows["q"], rows["qd"], self.model)
        return rows, done_until

    def _consume(self, until_ns: int) -> None:
        """Forget buffered messages received before ``until_ns``, keeping the latest command, goal
        and gripper command before it (held into the next piece)."""
        self.js.split(until_ns)
        for col in (self.cmd, self.goal, self.grip):
            col.split(until_ns, keep_before=1)

    def _count_used(self, kind: str, ns: np.ndarray) -> None:
        """Count the distinct messages (by receive time) used for rows; a context message used by
        two chunks counts once."""
        st = self._state
        u = np.unique(ns)
        u = u[u > st[f"last_{kind}"]]
        st[f"{kind}_used"] += len(u)
        if len(u):
            st[f"last_{kind}"] = int(u[-1])


_NAN7 = np.full(7, np.nan)


def _pieces(rows: dict) -> np.ndarray:
    """Piece id of each row: a new piece at an episode change or a gap in the steps."""
    ep, step = rows["episode"], rows["step"]
    new = np.r_[True, (ep[1:] != ep[:-1]) | (step[1:] != step[:-1] + 1)]
    return np.cumsum(new)


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


def _role_status(bag: OpenBag, tm: TopicMap, role: str, topic: str, role_of: dict, problems: dict) -> str:
    if role == "commands" and tm.effort_source != "commands":
        return f"not used (effort_source: {tm.effort_source})"
    if role in problems:
        return problems[role]
    if topic in role_of:
        return f"{sum(c.msgcount for c in bag.connections if c.topic == topic)} messages"
    return "not in the bag (optional)"


def _first_message_problems(bag: OpenBag, tm: TopicMap, role_of: dict) -> dict[str, str]:
    """role -> what the first message of its topic shows is wrong (joint names, the command width,
    the task-state layout): what a read would stop at."""
    out = {}
    conns = bag.use(role_of)
    for topic, role in role_of.items():
        if role not in ("joint_states", "commands", "task_state"):
            continue
        try:
            first = next(_read_messages(bag.path, bag, [c for c in conns if c.topic == topic]), None)
        except BagError as exc:
            out[role] = str(exc).removeprefix(f"{bag.path}: ")
            continue
        if first is None:
            continue
        msg = first[2]
        if role == "joint_states":
            missing = [j for j in tm.arm_joints if j not in msg.name]
            if missing:
                out[role] = (f"topic {topic!r} lacks the arm joint(s) {missing}; its messages name {list(msg.name)} "
                             f"(set arm_joints in the topic map)")
            elif tm.effort_source == "joint_states" and not len(msg.effort):
                out["note"] = f"{topic!r} carries no efforts: goals only by state matching"
        elif role == "commands":
            label = msg.layout.dim[0].label if msg.layout.dim else ""
            names = [x.strip() for x in label.split(",")] if "," in label else None
            if names is not None and sorted(names) != sorted(tm.arm_joints):
                out[role] = f"topic {topic!r} names joints {names}, expected {list(tm.arm_joints)}"
            elif len(msg.data) != 7:
                out[role] = f"topic {topic!r} carries {len(msg.data)} values, expected 7 (one per arm joint)"
        else:
            label = msg.layout.dim[0].label if msg.layout.dim else ""
            try:
                _task_state_index(bag.path, topic, label, tm)
            except BagError as exc:
                out[role] = str(exc).removeprefix(f"{bag.path}: ")
    return out


def inspect_bag(path: str | Path, topic_map: TopicMap | None = None) -> dict:
    """What a bag holds and whether relabeling with ``topic_map`` finds what it needs (``ohio
    bag-info``): storage, files, metadata version, compression, messages, start and duration;
    each topic's types, message count, serialization, stored definition and why it cannot be read
    (None when it can); each role's topic and status; ``problems`` (what would stop a read,
    checked on the topics and on the first message of each topic a role needs; empty when
    relabeling can read the bag) and ``ready``."""
    tm = topic_map or TopicMap()
    bag = open_bag(path)
    try:
        role_of, found, _ = match_roles(bag, tm)
        problems = {role: text for role, _, text in found}
        if not problems:
            problems = _first_message_problems(bag, tm, role_of)
        note = problems.pop("note", None)
        start = int(bag.start_time) if bag.message_count else None
        out = {
            "bag": str(path), **bag.info, "messages": bag.message_count,
            "start": None if start is None else datetime.datetime.fromtimestamp(
                start * 1e-9, datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "duration_s": round((int(bag.end_time) - 1 - start) * 1e-9, 3) if start is not None else 0.0,
            "topics": bag.topics(),
            "roles": {role: {"topic": topic, "status": _role_status(bag, tm, role, topic, role_of, problems)}
                      for role, topic in tm.roles().items()},
            "effort_source": tm.effort_source,
            "problems": list(problems.values()), "ready": not problems,
        }
        if note:
            out["note"] = note
        return out
    finally:
        bag.close()


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
    z = np.zeros(0)
    return Trajectories(t=z, stamp=np.zeros(0, np.int64), q=np.zeros((0, 7)), qd=np.zeros((0, 7)),
                        tau=np.zeros((0, 7)), reward=z, success=np.zeros(0, bool), episode=np.zeros(0, np.int64),
                        step=np.zeros(0, np.int64), obs=np.zeros((0, width)), timeout=np.zeros(0, bool),
                        terminal=np.zeros(0, bool))
