"""The row rule of bags without a task state (a robot driver's log): rows on a control-period grid.

Rows are placed on the grid ``t_i = t_0 + i T`` by the rules of ``data.resample`` (states
interpolated, commands held, measured efforts of the next joint state), one episode piece per
stretch of joint states without a gap longer than ``max_gap`` (a gap is counted in control
periods), cut every ``max_piece`` s at a whole number of rows. A piece's grid starts at its first
command (``effort_source: commands``) or its first joint state. Reward 0, the last row of a piece a
timeout, observation = the arm's own state (``bag_common.ARM_OBS_LAYOUT``); the logged goal and
gripper command are held. A row without its command (older than ``max_gap``) or measured effort is
dropped and counted.

Chunks: one piece, or one ``max_piece`` stretch of a longer one, as soon as the joint states
buffered complete it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ohio_core.data import resample as rs
from ohio_core.data.account import ReadAccount
from ohio_core.data.bag_common import ARM_OBS_LAYOUT, arm_observation
from ohio_core.data.rows_common import ReadState
from ohio_core.data.trajectory import Trajectories


class ResampledRows:
    """Rows on a control-period grid (module docstring), chunk by chunk, from the messages ``state``
    buffers."""

    layout = ARM_OBS_LAYOUT
    alignment_rule = "states interpolated linearly at the grid time; commands held (zero-order)"

    def __init__(self, state: ReadState):
        self.s = state
        self.row_rule = f"resampled to {state.opt.control_period:g} s"
        self.piece = 0               # id of the next piece
        self.grid_next = None        # grid time where an open piece continues (ns)
        self.cuts = 0                # pieces cut at max_piece

    def after(self, role: str, ns: int) -> Iterator[Trajectories]:
        """The rows completed by the message of ``role`` just buffered (received at ``ns``)."""
        if role == "joint_states":
            yield from self._flush(final=False)

    def finish(self) -> Iterator[Trajectories]:
        """The rows of what is left at the end of the bag."""
        yield from self._flush(final=True)

    def note(self, account: ReadAccount) -> None:
        """This rule's entries of the read's account."""
        account.pieces_cut_at_max_piece = self.cuts
        if account.duration_s:
            account.joint_state_rate_hz = round(account.messages.get(self.s.tm.joint_states, 0) / account.duration_s, 1)

    def _flush(self, final: bool) -> Iterator[Trajectories]:
        """Hand on what the buffered joint states complete: a piece ended by a gap (or by the end of
        the bag) whole, and a longer piece in stretches of ``max_piece`` s."""
        s = self.s
        T, gap = s.opt.period_ns, s.opt.max_gap_ns
        piece_rows = max(int(s.opt.max_piece / s.opt.control_period), 1)
        js_ns = s.js.cols["ns"]
        if not js_ns:
            return
        if not final:
            ended = len(js_ns) >= 2 and js_ns[-1] - js_ns[-2] > gap
            start = self.grid_next if self.grid_next is not None else js_ns[0]
            if not ended and js_ns[-1] - start < piece_rows * T + 2 * gap:
                return
        nj = len(s.tm.arm_joints)
        buf = {"ns": np.asarray(js_ns, np.int64), "pos": s.js.array("pos", width=nj),
               "vel": s.js.array("vel", width=nj), "eff": s.js.array("eff", width=nj)}
        cmd = {"ns": s.cmd.array("ns", np.int64), "data": s.cmd.array("data", width=nj)}
        spans = rs.pieces(buf["ns"], gap)
        consumed = None
        for i, (a, b) in enumerate(spans):
            closed = final or i < len(spans) - 1
            nxt = int(buf["ns"][b]) if b < len(buf["ns"]) else None
            while True:
                rows, done_until = self._piece_rows({k: v[a:b] for k, v in buf.items()}, cmd, closed, nxt)
                if rows is not None:
                    yield s.trajectories(rows, self.layout)
                if done_until is None:
                    break
                consumed = done_until
                if self.grid_next is None:
                    break
        if consumed is not None:
            self._consume(consumed)

    def _piece_rows(self, js: dict, cmd: dict, closed: bool, next_ns: int | None) -> tuple[dict | None, int | None]:
        """(rows of the next piece of the joint-state span ``js``, time before which the messages
        are used up); (None, None) while an open span does not yet hold a full piece."""
        s = self.s
        opt, drops = s.opt, s.drops
        T, gap = opt.period_ns, opt.max_gap_ns
        piece_rows = max(int(opt.max_piece / opt.control_period), 1)
        jn = js["ns"]
        t_first, t_last = int(jn[0]), int(jn[-1])
        start = self.grid_next if self.grid_next is not None and t_first <= self.grid_next <= t_last else None
        efforts = s.efforts()
        if start is None:
            if efforts == "commands":
                i = int(np.searchsorted(cmd["ns"], t_first, "left"))
                if i >= len(cmd["ns"]) or cmd["ns"][i] > t_last:
                    if not closed:
                        return None, None
                    drops.add("no command while the joint states run", max((t_last - t_first) // T, 1), t_first, t_last)
                    self.grid_next = None
                    return None, t_last + 1
                start = int(cmd["ns"][i])
            else:
                start = t_first
        span = rs.grid(start, t_last, T)
        if not closed and (len(span) < piece_rows or span[piece_rows - 1] + T + gap > t_last):
            self.grid_next = start
            return None, None
        times = span[:piece_rows]
        if len(times) == 0:
            self.grid_next = None
            return None, t_last + 1
        q, err = rs.interpolate(jn, js["pos"], times)
        vel_missing = not np.isfinite(js["vel"]).all()
        qd = rs.differentiate(q, opt.control_period, np.zeros(len(times), int)) if vel_missing else \
            rs.interpolate(jn, js["vel"], times)[0]
        if efforts == "commands":
            tau, age = rs.hold(cmd["ns"], cmd["data"], times, gap)
            s.count_used("cmd", (times - age)[age >= 0])
            s.cmd_age.append(age[age >= 0])
            missing = age < 0
            drops.add(f"no command within max_gap ({opt.max_gap:g} s) before the period", int(missing.sum()),
                      times[missing], times[missing] + T)
        elif efforts == "joint_states":
            tau = rs.next_within(jn, js["eff"], times, T)
            missing = ~np.isfinite(tau).all(1)
            drops.add("no measured effort within the period", int(missing.sum()), times[missing], times[missing] + T)
        else:
            tau = np.full((len(times), len(s.tm.arm_joints)), np.nan)
            missing = np.zeros(len(times), bool)
        s.state_err.append(err)
        episode = self.piece
        self.piece += 1
        if len(span) > len(times):
            self.cuts += 1
            self.grid_next = int(times[-1] + T)
            done_until = self.grid_next - gap
        else:
            self.grid_next = None
            done_until = t_last + 1
            if next_ns is not None:
                drops.add(f"gap longer than max_gap ({opt.max_gap:g} s) in the joint states",
                          max(int((next_ns - times[-1]) // T) - 1, 1), int(times[-1] + T), next_ns)
        rows = {"t": (times - times[0]) * 1e-9, "stamp": times, "q": q, "qd": qd, "tau": tau,
                "reward": np.zeros(len(times)), "success": np.zeros(len(times), bool),
                "episode": np.full(len(times), episode, np.int64), "step": np.arange(len(times), dtype=np.int64),
                "timeout": np.zeros(len(times), bool), "terminal": np.zeros(len(times), bool)}
        rows["timeout"][-1] = True
        for name, col, field, width in (("goal", s.goal, "pose", 7), ("gripper", s.grip, "value", 1)):
            if len(col):
                v, _ = rs.hold(col.array("ns", np.int64), col.array(field, width=width).reshape(len(col), width),
                               times, np.iinfo(np.int64).max // 4)
                rows[name] = v if width > 1 else v[:, 0]
        keep = ~missing
        if not keep.any():
            return None, done_until
        rows = {k: v[keep] for k, v in rows.items()}
        rows["obs"] = arm_observation(rows["q"], rows["qd"], s.model)
        return rows, done_until

    def _consume(self, until_ns: int) -> None:
        """Forget buffered messages received before ``until_ns``, keeping the latest command, goal
        and gripper command before it (held into the next piece)."""
        s = self.s
        s.js.split(until_ns)
        for col in (s.cmd, s.goal, s.grip):
            col.split(until_ns, keep_before=1)
