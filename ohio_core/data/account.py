"""Accounts of the pipeline steps: what a step dropped, per reason, with the time ranges it covers
(``Drops``), and the accounts themselves as dataclasses (``Record``) whose mapping view is the JSON
that sidecars and ``--json`` outputs hold.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np

#: ranges kept per reason (the count stays exact beyond it)
MAX_RANGES = 200
#: ranges closer than this are merged into one (ns)
MERGE_NS = 100_000_000


class Drops:
    """Dropped items per reason, and the (merged) bag time ranges they cover::

        d = Drops(); d.add("gap longer than 0.1 s", 12, start_ns, end_ns)
        d.counts   -> {"gap longer than 0.1 s": 12}
        d.ranges_s(origin_ns) -> {"gap ...": [[t0, t1], ...]}   # seconds since origin
    """

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.ranges: dict[str, list[list[int]]] = {}
        self.more: dict[str, int] = {}

    def add(self, reason: str, n: int, start_ns=None, end_ns=None) -> None:
        """Count ``n`` items under ``reason``; ``start_ns``/``end_ns`` (scalars or arrays) are the bag
        times each dropped item (or group) covers."""
        n = int(n)
        if n <= 0:
            return
        self.counts[reason] = self.counts.get(reason, 0) + n
        if start_ns is None:
            return
        a = np.atleast_1d(np.asarray(start_ns, np.int64))
        b = np.atleast_1d(np.asarray(end_ns if end_ns is not None else start_ns, np.int64))
        self._add_ranges(reason, [[int(x), int(y)] for x, y in zip(a, b)])

    def _add_ranges(self, reason: str, new: list[list[int]]) -> None:
        merged = []
        for a, b in sorted(self.ranges.get(reason, []) + new):
            if merged and a - merged[-1][1] <= MERGE_NS:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        if len(merged) > MAX_RANGES:
            self.more[reason] = self.more.get(reason, 0) + len(merged) - MAX_RANGES
            merged = merged[:MAX_RANGES]
        self.ranges[reason] = merged

    def merge(self, other: "Drops") -> "Drops":
        for reason, n in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + n
        for reason, r in other.ranges.items():
            self._add_ranges(reason, [list(x) for x in r])
        for reason, n in other.more.items():
            self.more[reason] = self.more.get(reason, 0) + n
        return self

    def ranges_s(self, origin_ns: int) -> dict[str, list[list[float]]]:
        """Time ranges per reason in seconds since ``origin_ns`` (ms resolution)."""
        return {r: [[round((a - origin_ns) * 1e-9, 3), round((b - origin_ns) * 1e-9, 3)] for a, b in v]
                for r, v in self.ranges.items()}


def stats_ms(ns: np.ndarray) -> dict:
    """Count, median, p95 and max of durations given in ns, in ms."""
    x = np.asarray(ns, float)
    if len(x) == 0:
        return {"count": 0}
    return {"count": int(len(x)), "median_ms": round(float(np.median(x)) * 1e-6, 4),
            "p95_ms": round(float(np.percentile(x, 95)) * 1e-6, 4), "max_ms": round(float(np.max(x)) * 1e-6, 4)}


def optional():
    """A field of a ``Record`` left out of its JSON form while it is None."""
    return field(default=None, metadata={"optional": True})


def plain(value):
    """``value`` in JSON form: records as their ``to_dict``, containers copied."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class Record(Mapping):
    """Base of the accounts: a dataclass whose mapping view is its JSON form (``to_dict``), what
    sidecars and ``--json`` outputs hold: one key per field in field order, except an ``optional``
    field that is None (left out), a field named in ``FLAT`` (a dict or record whose entries are
    spread into the top level), and a field whose metadata gives its JSON form (``"json"``: a
    function of its value). Code reads the fields; the JSON form is for files and outputs."""

    FLAT: ClassVar[tuple[str, ...]] = ()

    def _entries(self) -> Iterator[tuple[str, object]]:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None and f.metadata.get("optional"):
                continue
            if "json" in f.metadata:
                v = f.metadata["json"](v)
            if f.name in self.FLAT:
                yield from (v.items() if isinstance(v, dict) else v._entries())
            else:
                yield f.name, v

    def to_dict(self) -> dict:
        return {k: plain(v) for k, v in self._entries()}

    def __getitem__(self, key: str):
        for k, v in self._entries():
            if k == key:
                return plain(v)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._entries())

    def __len__(self) -> int:
        return sum(1 for _ in self._entries())


class Table(NamedTuple):
    """A table of a report: rows under a header, every line indented by ``indent``."""

    rows: list[list]
    header: list[str]
    indent: str = ""


#: a printout, in order: lines and tables (printed by ``cli.output.print_report``)
Report = list[Table | str]


@dataclass(eq=False)
class ReadAccount(Record):
    """What a bag read (``data.bag_read.BagStream``) did with every message: messages read per topic,
    rows built, rows dropped per reason (with the bag time ranges, s since ``start_ns``), messages left
    unused, where velocities and torques come from, and how far apart the aligned streams are."""

    bag: str
    info: dict                      # storage, files, metadata version, compression (``bag_storage.StoredBag.info``)
    messages: dict[str, int]        # read per topic used
    topics_in_bag: dict[str, str]   # topic -> message type(s)
    start_ns: int
    duration_s: float
    rows: int
    episodes: int
    dropped: dict[str, int]         # rows dropped per reason
    row_rule: str                   # the rule rows are made by (``data.rows_episodic``, ``data.rows_resampled``)
    topics_not_read: dict[str, str] | None = optional()      # topics in the bag that cannot be read, and why
    episodes_not_closed: list[int] | None = optional()       # episodes whose end is not in the bag
    gaps_closed_by_timeout: int | None = optional()          # pieces ended by missing rows
    messages_missing_vs_metadata: dict[str, int] | None = optional()
    joint_states_unused: int | None = optional()             # task state: joint states no row uses
    pieces_cut_at_max_piece: int | None = optional()         # no task state
    joint_state_rate_hz: float | None = optional()           # no task state
    commands_unused: int | None = optional()                 # effort_source commands: commands no row uses
    velocities: str | None = optional()
    efforts: str | None = optional()
    alignment: dict | None = optional()     # state_ms and command_age_ms statistics, and the rule
    goal_frames: list[str] | None = optional()               # frames of the logged goals other than world
    drop_time_ranges_s: dict[str, list] | None = optional()
    drop_time_ranges_not_listed: dict[str, int] | None = optional()

    FLAT = ("info",)


@dataclass(eq=False)
class SegmentCounts(Record):
    """What relabeling made of the rows: control steps in, segments built, written and dropped (per
    reason), rows in no segment (per reason), goals clipped to the deployment controller's range,
    pieces of episode ended by a drop. Summed over chunks and bags with ``add``."""

    control_steps_in: int = 0
    segments_built: int = 0
    segments_written: int = 0
    actions_clipped: int = 0
    pieces_ended_by_drop: int = 0
    segments_dropped: dict[str, int] = field(default_factory=dict)
    rows_not_in_segments: dict[str, int] = field(default_factory=dict)

    def add(self, other: Mapping) -> "SegmentCounts":
        """Add the counts of ``other``: the account of a ``pipeline.relabel.relabel`` call
        (``HighLevelData.account``) or another ``SegmentCounts``."""
        for f in fields(self):
            mine = getattr(self, f.name)
            if isinstance(mine, dict):
                for reason, n in other[f.name].items():
                    mine[reason] = mine.get(reason, 0) + n
            else:
                setattr(self, f.name, mine + other[f.name])
        return self

    @property
    def segments_dropped_total(self) -> int:
        return sum(self.segments_dropped.values())


@dataclass(eq=False)
class BagAccount(Record):
    """One bag's relabel account: its read, what became of its segments, and how far the deployment
    controller's torques for the recovered goals are from the logged ones."""

    read: ReadAccount
    segments: SegmentCounts
    method: str
    k: int
    k_recorded: int | None                        # the k ``ohio collect`` recorded (None: not said)
    segments_dropped_time_ranges_s: dict[str, list]
    recorded_controller: str                      # same, different or unknown (``ohio collect`` records it)
    residual_n_m: dict                            # count, mean, median, p95, max of the written segments
    warning: str | None = optional()
    gravity: str | None = optional()              # how the torques were put in the controller's convention

    FLAT = ("segments",)

    @property
    def dropped_total(self) -> int:
        """Rows dropped at read and segments dropped."""
        return self.segments.segments_dropped_total + sum(self.read.dropped.values())


def _by_bag(accounts: list[BagAccount]) -> dict[str, BagAccount]:
    return {a.read.bag: a for a in accounts}


@dataclass(eq=False)
class RunAccount(Record):
    """The account of a relabel run (``pipeline.bag_relabel.relabel_bags``): totals over the bags
    read, the bags skipped with their errors, and each bag's own account."""

    segments: SegmentCounts
    method: str
    k: int
    bags_read: int
    bags_skipped: dict[str, str]                  # bag -> error
    messages: dict[str, int]                      # read per topic, over the bags
    rows_dropped_at_read: dict[str, int]
    episodes_in: int
    residual_n_m: dict
    per_bag: list[BagAccount] = field(metadata={"json": _by_bag})   # JSON: bag -> account
    warnings: list[str] = field(default_factory=list)

    FLAT = ("segments",)

    @classmethod
    def total(cls, bags: list[BagAccount], skipped: dict[str, str], method: str, k: int,
              residual_n_m: dict) -> "RunAccount":
        """The totals of the accounts of the bags read (``method``: when no bag was read)."""
        segments, messages, dropped = SegmentCounts(), {}, {}
        for a in bags:
            segments.add(a.segments)
            for topic, n in a.read.messages.items():
                messages[topic] = messages.get(topic, 0) + n
            for reason, n in a.read.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + n
        return cls(segments=segments, method=",".join(sorted({a.method for a in bags})) or method, k=k,
                   bags_read=len(bags), bags_skipped=dict(skipped), messages=messages, rows_dropped_at_read=dropped,
                   episodes_in=sum(a.read.episodes for a in bags), residual_n_m=residual_n_m, per_bag=list(bags),
                   warnings=[f"{a.read.bag}: {a.warning}" for a in bags if a.warning])

    def report(self) -> Report:
        """What ``ohio relabel`` and ``ohio pipeline`` print, in order: a table of the bags, a table of
        the totals, then lines: the time ranges of the drops per bag, the residual, the warnings, the
        worst alignment of the streams and the rules rows were made by."""
        s = self.segments
        bags = [[Path(a.read.bag).name, f"{a.read.info.get('storage')} x{a.read.info.get('files')}",
                 sum(a.read.messages.values()), a.read.rows, a.segments.segments_built, a.segments.segments_written,
                 a.dropped_total, "ok"] for a in self.per_bag]
        bags += [[Path(b).name, "-", "-", "-", "-", "-", "-", f"SKIPPED: {err[:90]}"]
                 for b, err in self.bags_skipped.items()]
        totals = [["bags read / skipped", f"{self.bags_read} / {len(self.bags_skipped)}"],
                  ["messages read", sum(self.messages.values())],
                  ["control steps", s.control_steps_in], ["segments built", s.segments_built],
                  ["segments written", s.segments_written],
                  ["goals clipped to the controller's range", s.actions_clipped],
                  ["episode pieces ended by a drop", s.pieces_ended_by_drop]]
        totals += [[f"rows dropped at read: {r}", n] for r, n in self.rows_dropped_at_read.items()]
        totals += [[f"segments dropped: {r}", n] for r, n in s.segments_dropped.items()]
        totals += [[f"rows not in a segment: {r}", n] for r, n in s.rows_not_in_segments.items()]
        out: Report = [Table(bags, ["bag", "storage", "messages", "rows", "segments", "written", "dropped", "status"]),
                       Table(totals, ["account", "count"])]
        for a in self.per_bag:
            for reason, spans in {**(a.read.drop_time_ranges_s or {}), **a.segments_dropped_time_ranges_s}.items():
                shown = ", ".join(f"{x:.2f}-{y:.2f}" for x, y in spans[:5]) + (" ..." if len(spans) > 5 else "")
                out.append(f"  {Path(a.read.bag).name}: {reason}: {shown} s")
        res = self.residual_n_m
        if res.get("count"):
            out.append(f"residual (N m): median {res['median']:.3g}, p95 {res['p95']:.3g}, max {res['max']:.3g}")
        out += [f"WARNING: {w}" for w in self.warnings]
        for kind, label in (("state_ms", "joint state to row time"), ("command_age_ms", "command age")):
            worst = [(a.read.alignment[kind], Path(a.read.bag).name) for a in self.per_bag
                     if a.read.alignment[kind].get("count")]
            if worst:
                stats, name = max(worst, key=lambda w: w[0]["max_ms"])
                out.append(f"alignment, {label}: p95 {stats['p95_ms']:g} ms, max {stats['max_ms']:g} ms "
                           f"(worst bag: {name})")
        rules = {a.read.alignment["rule"] for a in self.per_bag}
        rules |= {f"velocities {a.read.velocities}" for a in self.per_bag}
        rules |= {f"efforts {a.read.efforts}" for a in self.per_bag}
        out += [f"  rule: {rule}" for rule in sorted(rules)]
        return out
