"""Output conventions of every ``ohio`` command: a human table, or one JSON object as the last line."""

from __future__ import annotations

import json
import math


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def table(rows: list[list], header: list[str]) -> str:
    cells = [[_fmt(c) for c in r] for r in [header] + rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_report(report: list) -> None:
    """Print a report (``data.account.Report``): its lines as they are, its tables formatted by ``table``."""
    for block in report:
        if isinstance(block, str):
            print(block)
        else:
            print("\n".join(block.indent + line for line in table(block.rows, block.header).splitlines()))


def check_targets(result: dict, targets: dict) -> list[list]:
    """Rows (metric, value, target, met) for the metrics that have a target."""
    rows = []
    for key, (op, bound) in targets.items():
        v = result[key]
        met = {"<=": v <= bound, "<": v < bound, ">=": v >= bound, ">": v > bound}[op]
        rows.append([key, v, f"{op} {bound:g}", "yes" if met else "NO"])
    return rows


def emit_json(obj: dict) -> None:
    print(json.dumps(obj, sort_keys=False), flush=True)


def emit_error(message: str) -> None:
    """The last line of a failed command run with ``--json``: ``{"error": message}``."""
    emit_json({"error": message})
