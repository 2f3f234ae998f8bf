"""The row rule of bags with a task state (this stack's bags): rows are the control periods the
task state counts.

A row is the period from a task-state message of step s to the one of step s + 1 of the same
episode (episode boundaries and rewards: ``data.bags``). Its torque is the first command in the
period (``effort_source: commands``), or the measured effort of the first joint state after the
period's start, at or before its end (``joint_states``); its state is the latest joint state at or
before the command (or the period's start), at most ``max_state_age`` older. The observation comes
from the task state at the period's start and forward kinematics of the joint positions
(``bag_common.task_observation``). A period without its command, joint state or effort is dropped
and counted; the last row before a gap is closed as a timeout (counted) so that no episode piece
spans missing rows. Episodes must not interleave in time, and steps must increase within one.

Chunks: task states are buffered until ``chunk_rows`` are, then the whole episodes buffered so far
become rows at the next episode start; the rest at the end of the bag.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ohio_core.data import resample as rs
from ohio_core.data import topics as tp
from ohio_core.data.account import ReadAccount
from ohio_core.data.bag_common import BagError, task_observation
from ohio_core.data.rows_common import Columns, ReadState
from ohio_core.data.topics import TS, TopicMap
from ohio_core.data.trajectory import Trajectories
from ohio_core.envs.arm.tasks import OBS_DIM, OBS_LAYOUT


def task_state_index(path: Path, topic: str, label: str, tm: TopicMap):
    """(indices into our field order, indices into the message, values needed) of a task-state layout
    label (or of ``tm.task_state_fields`` for messages without one)."""
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
    names = tp.canonical_fields(names)
    mine = [TS[f] for f in names if f in TS]
    theirs = [i for i, f in enumerate(names) if f in TS]
    return np.array(mine), np.array(theirs), max(theirs) + 1


def pieces(rows: dict) -> np.ndarray:
    """Piece id of each row: a new piece at an episode change or a gap in the steps."""
    ep, step = rows["episode"], rows["step"]
    new = np.r_[True, (ep[1:] != ep[:-1]) | (step[1:] != step[:-1] + 1)]
    return np.cumsum(new)


class EpisodicRows:
    """Rows from task-state periods (module docstring), chunk by chunk, from the messages ``state``
    buffers."""

    row_rule = "task_state periods"
    layout = OBS_LAYOUT

    def __init__(self, state: ReadState):
        self.s = state
        self.seen_episodes: set[int] = set()
        self.ts_episode = None       # episode of the last task state
        self.ts_rows = 0             # task states buffered
        self.episodes_not_closed: list[int] | None = None   # once a piece ends without its end in the bag
        self.gaps_closed_by_timeout: int | None = None
        self.alignment_rule = ("joint state at or before the period's command (at most "
                               f"{state.opt.max_state_age * 1e3:g} ms older)")

    def after(self, role: str, ns: int) -> Iterator[Trajectories]:
        """The rows completed by the message of ``role`` just buffered (received at ``ns``): whole
        episodes once ``chunk_rows`` task states are buffered and the next episode starts."""
        if role != "task_state":
            return
        ep = self.s.ts.cols["row"][-1][TS["episode"]]
        if self.ts_episode is not None and ep != self.ts_episode and self.ts_rows >= self.s.opt.chunk_rows:
            yield from self._flush(ns)
        self.ts_episode = ep
        self.ts_rows += 1

    def finish(self) -> Iterator[Trajectories]:
        """The rows of what is left at the end of the bag."""
        yield from self._flush(None)

    def note(self, account: ReadAccount) -> None:
        """This rule's entries of the read's account."""
        account.joint_states_unused = int(account.messages.get(self.s.tm.joint_states, 0) - self.s.used["js"])
        account.episodes_not_closed = self.episodes_not_closed
        account.gaps_closed_by_timeout = self.gaps_closed_by_timeout

    def _flush(self, boundary: int | None) -> Iterator[Trajectories]:
        s = self.s
        if boundary is None:
            js, cmd, ts, goal, grip = s.js, s.cmd, s.ts, s.goal, s.grip
        else:
            js = s.js.split(boundary, keep_before=1)
            cmd, ts = s.cmd.split(boundary), s.ts.split(boundary)
            goal, grip = s.goal.split(boundary), s.grip.split(boundary)
            self.ts_rows = len(s.ts)
        rows = self._assemble(js, cmd, ts, goal, grip)
        if rows is not None and len(rows["t"]):
            if s.vel_missing:
                rows["qd"] = rs.differentiate(rows["q"], s.opt.control_period, pieces(rows))
            obs = task_observation(rows["q"], rows["qd"], rows.pop("finger_opening"), rows.pop("object_pos"),
                                   rows.pop("object_quat"), rows.pop("target"), rows.pop("angles"), s.model)
            rows["obs"] = obs.reshape(len(rows["t"]), OBS_DIM)
            yield s.trajectories(rows, self.layout)

    def _assemble(self, js: Columns, cmd: Columns, ts: Columns, goal: Columns, grip: Columns) -> dict | None:
        """Pair one chunk's messages into rows (``data.bags``: episode boundaries and rewards)."""
        s = self.s
        path, tm, opt, drops = s.path, s.tm, s.opt, s.drops
        ts_ns, TSV = ts.array("ns", np.int64), ts.array("row", width=len(tp.TASK_STATE_FIELDS))
        if len(ts_ns) == 0:
            return None
        nj = len(tm.arm_joints)
        js_ns, js_pos, js_vel = js.array("ns", np.int64), js.array("pos", width=nj), js.array("vel", width=nj)
        js_eff = js.array("eff", width=nj)
        cmd_ns, cmd_data = cmd.array("ns", np.int64), cmd.array("data", width=nj)
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
            if int(e) in self.seen_episodes:
                raise BagError(f"{path}: {tm.task_state!r}: episode {e} resumes at {ts_ns[run_start[r]]} ns "
                               f"after another episode: episodes interleave in time")
            self.seen_episodes.add(int(e))
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
        efforts = s.efforts()
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
            s.count_used("cmd", cmd_ns[c])
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
            tau = np.full((len(s_idx), nj), np.nan)
        s.count_used("js", js_ns[jj])
        s.state_err.append(age)
        if efforts == "commands":
            s.cmd_age.append(np.zeros(len(c), np.int64))
        start_ns = ep_start_ns[s_idx]

        def held(col: Columns, name: str, width: int):
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
            self.episodes_not_closed = (self.episodes_not_closed or []) + sorted(
                int(e) for e in rep[open_end & is_ep_end])
            self.gaps_closed_by_timeout = (self.gaps_closed_by_timeout or 0) + int(np.sum(open_end & ~is_ep_end))
            timeout |= open_end
        return {
            "t": (js_ns[jj] - start_ns) * 1e-9, "stamp": js_ns[jj],
            "q": js_pos[jj], "qd": js_vel[jj], "tau": tau,
            "reward": END[:, TS["reward"]], "success": END[:, TS["success"]] > 0.5,
            "episode": rep, "step": step, "timeout": timeout, "terminal": terminal,
            "finger_opening": START[:, TS["finger_opening"]],
            "object_pos": START[:, TS["object_x"]:TS["object_z"] + 1],
            "object_quat": START[:, TS["object_qx"]:TS["object_qw"] + 1],
            "target": START[:, TS["target_x"]:TS["target_z"] + 1],
            "angles": START[:, [TS["door_angle"], TS["handle_angle"]]],
            "goal": held(goal, "pose", 7), "gripper": held(grip, "value", 1),
        }
