"""What the bag reader (``data.bag_read.BagStream``) and its two row rules (``data.rows_episodic``,
``data.rows_resampled``) share: the read options, per-topic columns of decoded messages, and the
state of a read (the messages not yet made into rows, the counters its account is made from, and
the drops)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ohio_core.data.account import Drops
from ohio_core.data.gravity import rows_with_gravity
from ohio_core.data.topics import TopicMap
from ohio_core.data.trajectory import Trajectories


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

    @property
    def max_gap_ns(self) -> int:
        return int(round(self.max_gap * 1e9))


class Columns:
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

    def split(self, ns: int, keep_before: int = 0) -> "Columns":
        """Move the entries received before ``ns`` out into a new ``Columns`` (returned); the last
        ``keep_before`` of them also stay here (context for the next chunk)."""
        times = self.cols["ns"]
        i = int(np.searchsorted(np.asarray(times, np.int64), ns, "left")) if times else 0
        out = Columns(*self.names)
        for k in self.names:
            out.cols[k] = self.cols[k][:i]
            self.cols[k] = self.cols[k][max(i - keep_before, 0):]
        return out

    def __len__(self):
        return len(self.cols["ns"])


@dataclass
class ReadState:
    """A read in progress: the decoded messages of each role not yet made into rows, what has been
    read and used of them, the rows handed on, and the drops."""

    path: Path
    tm: TopicMap
    opt: ReadOptions
    model: object
    drops: Drops = field(default_factory=Drops)
    js: Columns = field(default_factory=lambda: Columns("ns", "pos", "vel", "eff"))
    cmd: Columns = field(default_factory=lambda: Columns("ns", "data"))
    ts: Columns = field(default_factory=lambda: Columns("ns", "row"))
    goal: Columns = field(default_factory=lambda: Columns("ns", "pose"))
    grip: Columns = field(default_factory=lambda: Columns("ns", "value"))
    js_read: int = 0                 # joint states read
    vel_missing: int = 0             # ... without velocities
    eff_missing: int = 0             # ... without efforts
    used: dict = field(default_factory=lambda: {"js": 0, "cmd": 0})       # distinct messages used for rows
    last_used: dict = field(default_factory=lambda: {"js": -1, "cmd": -1})  # receive time of the last used
    state_err: list = field(default_factory=list)   # alignment error of each row's state (ns), per chunk
    cmd_age: list = field(default_factory=list)     # age of each row's command (ns), per chunk
    rows: int = 0                                   # rows handed on
    episodes: set = field(default_factory=set)      # episode ids of the rows handed on

    def efforts(self) -> str:
        """Where the torques come from: commands, joint_states or none (measured efforts that no joint
        state read so far carries)."""
        src = self.tm.effort_source
        if src == "joint_states" and self.js_read and self.eff_missing == self.js_read:
            return "none"
        return src

    def count_used(self, kind: str, ns: np.ndarray) -> None:
        """Count the distinct messages of ``kind`` ("js", "cmd"), by receive time, used for rows; a
        context message used by two chunks counts once."""
        u = np.unique(ns)
        u = u[u > self.last_used[kind]]
        self.used[kind] += len(u)
        if len(u):
            self.last_used[kind] = int(u[-1])

    def trajectories(self, rows: dict, layout) -> Trajectories:
        """``rows`` (columns of ``Trajectories``) with the observation ``layout``, counted; torques
        logged without g(q) get it added (``data.gravity``)."""
        src = self.efforts()
        if src != "none" and not self.tm.effort_includes_gravity(src):
            rows["tau"] = rows_with_gravity(rows["tau"], rows["q"], False, self.model)
        rows.setdefault("goal", None)
        rows.setdefault("gripper", None)
        meta = {"source": str(self.path), "obs_layout": [list(x) for x in layout]}
        self.rows += len(rows["t"])
        self.episodes.update(int(e) for e in np.unique(rows["episode"]))
        return Trajectories(meta=meta, **rows)
