"""Counting what a pipeline step dropped, per reason, with the time ranges it covers."""

from __future__ import annotations

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
